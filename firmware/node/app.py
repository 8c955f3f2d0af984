"""The node application: builds every service around a board and runs the asyncio tasks.

    from node.app import run
    run(board)            # does not return on a Pico; returns after a maintenance request

Boot: boot count +1 (persisted), parameters loaded (defaults on failure), event log scanned,
plant built from the parameters, services registered with the dispatcher (node.boot, imported
for the boot only), the tasks made; then, when the node runs, the boot events
(boot, watchdog_reset after a watchdog reset, params_loaded or params_defaulted), then SAFE.

Tasks, numbered as protocol.dictionary.TASKS (fault injection, crash events):
    0 link       receive and dispatch commands
    1 telemetry  housekeeping scheduler
    2 plant      plant.step at 10 Hz real time, dt = elapsed * time_factor model seconds
    3 fdir       fdir.check() at 1 Hz
    4 watchdog   feeds only while tasks 0-3 and 5 progress
    5 eventlog   event queue, throttle window, event log to the flash at 10 Hz
    6 timetag    the time-tagged queue: runs entries at their times (node.ttqueue)
    7 sequencer  stored sequences: triggers and steps every 100 ms (node.sequencer)
Each runs under ``_supervise``: an exception becomes a task_crashed(task, error) event (error:
ERROR_* below), SAFE is forced, and the task restarts after a pause; after _MAX_CRASHES
crashes it stays down and the watchdog resets the node. asyncio's global exception handler
does the same for any other task (task number 255).

Allocation: building allocates; the tasks' steady state allocates only floats in the plant
and FDIR, and asyncio's poll bookkeeping.
"""

import asyncio

from micropython import const

import node

# The services node.boot builds, imported with node.app (main.py collects once after it, before
# the App's buffers are made) and held for good; the names stay node.boot's.
import node.auth
import node.bulk
import node.commands
import node.dispatcher
import node.eventlog
import node.events
import node.housekeeping
import node.link
import node.modes
import node.params
import node.telemetry
import node.timesvc
import node.ttqueue
from node.sequencer import TICK_MS
from node.watchdog import Watchdog

TYPE_CHECKING = const(0)  # the type checker takes it as true; MicroPython compiles it away
if TYPE_CHECKING:  # the services' types, for App's annotations below
    from node.auth import Auth
    from node.bulk import Bulk
    from node.dispatcher import Dispatcher
    from node.eventlog import EventLog
    from node.events import Events
    from node.fdir import Fdir
    from node.housekeeping import Housekeeping
    from node.link import Link
    from node.modes import Modes
    from node.params import Params
    from node.plant import Plant
    from node.sequencer import Sequencer
    from node.telemetry import Telemetry
    from node.timesvc import TimeService
    from node.ttqueue import TimeTagQueue

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_HEAP_FREE = const(6)
_EV_TASK_CRASHED = const(13)
_LOAD_COUNT = const(10)
_SAFE_TASK_CRASH = const(2)
_PARAM_BATTERY_SETPOINT = const(2)
_PARAM_DUST_RATE = const(12)
_PARAM_ELECTRONICS_SETPOINT = const(3)
_PARAM_HEATER_HYSTERESIS = const(4)
_PARAM_NODE_ID = const(24)
_PARAM_TIME_FACTOR = const(1)


_PLANT_PERIOD_MS = const(100)
_FDIR_PERIOD_MS = const(1000)
_SLICE_MS = const(100)  # the longest a task sleeps without showing progress
_EVENTLOG_PERIOD_MS = const(100)
_MAX_CRASHES = const(5)
_TASK_OTHER = const(255)

# task_crashed error codes
_ERROR_OTHER = const(0)
_ERROR_VALUE = const(1)
_ERROR_TYPE = const(2)
_ERROR_LOOKUP = const(3)
_ERROR_ATTRIBUTE = const(4)
_ERROR_OS = const(5)
_ERROR_MEMORY = const(6)
_ERROR_ZERO_DIVISION = const(7)


def error_code(exc):
    if isinstance(exc, MemoryError):
        return _ERROR_MEMORY
    if isinstance(exc, OSError):
        return _ERROR_OS
    if isinstance(exc, ZeroDivisionError):
        return _ERROR_ZERO_DIVISION
    if isinstance(exc, (IndexError, KeyError)):
        return _ERROR_LOOKUP
    if isinstance(exc, AttributeError):
        return _ERROR_ATTRIBUTE
    if isinstance(exc, TypeError):
        return _ERROR_TYPE
    if isinstance(exc, ValueError):
        return _ERROR_VALUE
    return _ERROR_OTHER


class _Task:
    """A periodic task body with the watchdog's progress counter and the hang flag."""

    def __init__(self, period_ms, step):
        self.period_ms = period_ms
        self.step = step
        self.progress = 0
        self.hung = False

    async def run(self):
        left = 0
        while True:
            await asyncio.sleep_ms(_SLICE_MS)
            if self.hung:
                continue
            self.progress += 1
            left -= _SLICE_MS
            if left <= 0:
                left += self.period_ms
                self.step()


class App:
    # Built by node.boot (the annotations are for the type checker: MicroPython compiles none)
    clock: TimeService
    tlm: list
    boot_count: int
    reset_cause: int
    params: Params
    link: Link
    log: EventLog
    events: Events
    modes: Modes
    plant: Plant
    fdir: Fdir
    telemetry: Telemetry
    board_node_id: int
    hk: Housekeeping
    auth: Auth
    dispatcher: Dispatcher
    bulk: Bulk
    timetag: TimeTagQueue
    sequencer: Sequencer

    def __init__(self, board):
        self.board = board
        node.call("boot", "build", self, board)  # the services, built and registered
        self._watch_params()
        self._plant_ms = self.clock.now_ms()
        self._load_pins = -1
        self.plant_task = _Task(_PLANT_PERIOD_MS, self.step_plant)
        self.fdir_task = _Task(_FDIR_PERIOD_MS, self.check_fdir)
        self.eventlog_task = _Task(_EVENTLOG_PERIOD_MS, self.service_events)
        self.sequencer_task = _Task(TICK_MS, self.sequencer.tick)
        self.watchdog = wd = Watchdog(board, self.params)
        # Index = task number (protocol.dictionary.TASKS)
        self.tasks = (self.link, self.hk, self.plant_task, self.fdir_task, wd,
                      self.eventlog_task, self.timetag, self.sequencer_task)
        for task in self.tasks:
            if task is not wd:
                wd.add(task)
        self.reset_request = -1  # a reset cause once reboot or maintenance asked (node.admin)
        self.sync_load_pins()

    def _watch_params(self):
        plant = self.plant
        params = self.params
        params.watch(_PARAM_BATTERY_SETPOINT, lambda v: plant.set_setpoint(0, v))
        params.watch(_PARAM_ELECTRONICS_SETPOINT, lambda v: plant.set_setpoint(1, v))
        params.watch(_PARAM_HEATER_HYSTERESIS, lambda v: setattr(plant, "hysteresis_c", v))
        params.watch(_PARAM_DUST_RATE, lambda v: setattr(plant, "dust_rate", v))
        telemetry, board_id = self.telemetry, self.board_node_id
        params.watch(_PARAM_NODE_ID, lambda v: telemetry.set_node_id(v, board_id))
        params.notify_all()

    def boot(self):
        """Boot events, the queue's and the sequences' state from the flash (runs and entries
        a reset cut: reported, never rerun), then SAFE (node.boot.start). Separate from
        __init__ so tests can build quietly."""
        node.call("boot", "start", self)

    # --- task bodies --------------------------------------------------------------------

    def step_plant(self):
        now = self.clock.now_ms()
        dt_ms = now - self._plant_ms
        self._plant_ms = now
        if dt_ms > 0:
            self.plant.step(dt_ms * 0.001 * self.params.get(_PARAM_TIME_FACTOR))
        self.sync_load_pins()
        self.board.led_tick(now)

    def sync_load_pins(self):
        on = self.plant.loads_on
        changed = on ^ self._load_pins
        if not changed:
            return
        self._load_pins = on
        for ch in range(_LOAD_COUNT):
            if (changed >> ch) & 1:
                self.board.set_load_pin(ch, (on >> ch) & 1)

    def check_fdir(self):
        self.telemetry.sample_heap()
        self.auth.report()
        self.dispatcher.arm_tick()
        self.clock.update_tlm()
        self.fdir.check()
        self.sync_load_pins()

    def service_events(self):
        events = self.events
        events.pump()
        events.roll_window()
        self.log.flush()
        self.link.flush()  # frames queued while the link was blocked leave as it drains

    # --- supervision --------------------------------------------------------------------

    def crashed(self, task_id, exc):
        try:
            self.board.log_exc(exc)
            self.link.abort()
            self.events.emit(_EV_TASK_CRASHED, task_id, error_code(exc))
            self.modes.force_safe(_SAFE_TASK_CRASH)
        except Exception as e:  # reporting failed too: keep going, the watchdog decides
            self.board.log_exc(e)

    async def _supervise(self, task_id, task):
        crashes = 0
        while True:
            try:
                await task.run()
            except Exception as e:
                crashes += 1
                self.crashed(task_id, e)
                if crashes >= _MAX_CRASHES:
                    return  # no more progress: the watchdog resets the node
                await asyncio.sleep_ms(100 * crashes)

    def _exception_handler(self, loop, context):
        self.crashed(_TASK_OTHER, context["exception"])

    async def main(self):
        loop = asyncio.get_event_loop()
        loop.set_exception_handler(self._exception_handler)
        self.board.link_open()
        self.boot()
        self.telemetry.sample_heap()
        self.board.log(f"node: boot {self.boot_count} cause {self.reset_cause}, "
                       f"heap free {self.tlm[_CH_HEAP_FREE]}")
        self._running = [asyncio.create_task(self._supervise(i, self.tasks[i]))
                         for i in range(len(self.tasks))]
        while True:
            await asyncio.sleep_ms(1000)


def run(board):
    app = App(board)
    try:
        asyncio.run(app.main())
    finally:
        board.link_close()
