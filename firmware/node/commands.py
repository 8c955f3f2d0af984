"""Node and plant commands that belong to no other service.

noop, status, clear_counters, reboot, maintenance, fault_inject, load_switch,
load_reset_trip, heater_mode, heater_setpoint. (set_mode: modes; param_*: params; hk_*:
housekeeping; time_correlate: timesvc; *_downlink: bulk.)

- load_switch: payloads (channels 4, 5) switch on only in SCIENCE, and a tripped channel not
  at all until load_reset_trip: both fail INHIBITED.
- heater_setpoint sets the heater's setpoint parameter (battery_setpoint /
  electronics_setpoint): a parameter message and a param_changed event follow, as for
  param_set.
- reboot / maintenance complete first, then the node flushes its event log and resets
  (reset cause COMMANDED / MAINTENANCE at the next boot).
- fault_inject (test only): CLEAR removes the plant's faults and any task hang; HANG_TASK
  stops task ``target`` (0..5, protocol.dictionary.TASKS; else NOT_FOUND) making progress so
  the watchdog resets the node; the sensor, drain and trip faults go to plant.inject (NOT_FOUND
  when the plant does not take the target). Each raises a fault_injected event.

noop allocates nothing; the others may.
"""

from protocol import messages as M
from protocol.ids import (
    CMD_CLEAR_COUNTERS,
    CMD_FAULT_INJECT,
    CMD_HEATER_MODE,
    CMD_HEATER_SETPOINT,
    CMD_LOAD_RESET_TRIP,
    CMD_LOAD_SWITCH,
    CMD_MAINTENANCE,
    CMD_NOOP,
    CMD_REBOOT,
    CMD_STATUS,
    EV_COUNTERS_CLEARED,
    EV_FAULT_INJECTED,
    EV_MAINTENANCE,
    EV_PARAM_CHANGED,
    EV_REBOOT,
    FAULT_CLEAR,
    FAULT_HANG_TASK,
    LOAD_PAYLOAD_A,
    LOAD_PAYLOAD_B,
    MODE_SCIENCE,
    PARAM_BATTERY_SETPOINT,
    PARAM_ELECTRONICS_SETPOINT,
    RESET_COMMANDED,
    RESET_MAINTENANCE,
)
from protocol.node_dictionary import DICT_HASH

FW_VERSION = "0.1.0"


class Commands:
    def __init__(self, app):
        self.app = app

    def register(self, d):
        d.register(CMD_NOOP, _noop)
        d.register(CMD_STATUS, self._status)
        d.register(CMD_CLEAR_COUNTERS, self._clear_counters)
        d.register(CMD_REBOOT, self._reboot)
        d.register(CMD_MAINTENANCE, self._maintenance)
        d.register(CMD_FAULT_INJECT, self._fault_inject)
        d.register(CMD_LOAD_SWITCH, self._load_switch)
        d.register(CMD_LOAD_RESET_TRIP, self._load_reset_trip)
        d.register(CMD_HEATER_MODE, self._heater_mode)
        d.register(CMD_HEATER_SETPOINT, self._heater_setpoint)

    def _status(self, d):
        app = self.app
        d.result = [app.modes.current, app.boot_count, app.reset_cause, app.clock.now_ms(),
                    DICT_HASH, app.events.seq - 1 if app.events.seq else 0, FW_VERSION]
        return M.OK

    def _clear_counters(self, d):
        app = self.app
        app.link.clear_counters()
        app.dispatcher.clear_counters()
        app.events.emit(EV_COUNTERS_CLEARED)
        return M.OK

    def _reboot(self, d):
        self.app.events.emit(EV_REBOOT)
        self.app.request_reset(RESET_COMMANDED)
        return M.OK

    def _maintenance(self, d):
        self.app.events.emit(EV_MAINTENANCE)
        self.app.request_reset(RESET_MAINTENANCE)
        return M.OK

    def _fault_inject(self, d):
        app = self.app
        fault = d.args[0]
        target = d.args[1]
        if fault == FAULT_CLEAR:
            app.plant.clear_faults()
            for task in app.tasks:
                task.hung = False
        elif fault == FAULT_HANG_TASK:
            if target >= len(app.tasks):
                return M.NOT_FOUND
            app.tasks[target].hung = True
        elif not app.plant.inject(fault, target, d.args[2]):
            return M.NOT_FOUND
        app.events.emit(EV_FAULT_INJECTED, fault, target)
        return M.OK

    def _load_switch(self, d):
        app = self.app
        ch = d.args[0]
        on = d.args[1]
        if on and (ch == LOAD_PAYLOAD_A or ch == LOAD_PAYLOAD_B) \
                and app.modes.current != MODE_SCIENCE:
            return M.INHIBITED
        if not app.plant.switch(ch, on):
            return M.INHIBITED
        app.sync_load_pins()
        return M.OK

    def _load_reset_trip(self, d):
        self.app.plant.reset_trip(d.args[0])
        self.app.sync_load_pins()
        return M.OK

    def _heater_mode(self, d):
        if not self.app.plant.set_heater_mode(d.args[0], d.args[1]):
            return M.EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
        return M.OK

    def _heater_setpoint(self, d):
        app = self.app
        pid = PARAM_BATTERY_SETPOINT if d.args[0] == 0 else PARAM_ELECTRONICS_SETPOINT
        code = app.params.set(pid, d.args[1])
        if code:
            return M.EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
        app.params.send(pid)
        app.events.emit(EV_PARAM_CHANGED, pid)
        return M.OK


def _noop(d):
    return M.OK
