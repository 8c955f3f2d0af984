"""The node's occasional commands: status, clear_counters, reboot, maintenance, fault_inject,
load_switch, load_reset_trip, heater_mode, heater_setpoint (SPEC §5; what each does:
node.commands), and those of the other services: set_mode (node.modes), hk_rate, hk_enable
(node.housekeeping), time_correlate (node.timesvc). node.commands registers them through
node.Lazy: this module is imported for each of them and let go afterwards, so its code is not
in the heap between commands. Everything here may allocate.
"""

import asyncio

from micropython import const

from protocol.node_dictionary import DICT_HASH

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_BATTERY_SOC = const(11)
_CMD_CLEAR_COUNTERS = const(17)
_CMD_FAULT_INJECT = const(21)
_CMD_HEATER_MODE = const(5)
_CMD_HEATER_SETPOINT = const(6)
_CMD_HK_ENABLE = const(13)
_CMD_HK_RATE = const(12)
_CMD_LOAD_RESET_TRIP = const(4)
_CMD_LOAD_SWITCH = const(3)
_CMD_MAINTENANCE = const(19)
_CMD_REBOOT = const(18)
_CMD_SET_MODE = const(2)
_CMD_STATUS = const(15)
_CMD_TIME_CORRELATE = const(14)
_EV_COUNTERS_CLEARED = const(26)
_EV_FAULT_INJECTED = const(18)
_EV_MAINTENANCE = const(24)
_EV_PARAM_CHANGED = const(12)
_EV_REBOOT = const(30)
_EV_TIME_CORRELATED = const(15)
_EXECUTION_ERROR = const(16)
_FAULT_CLEAR = const(0)
_FAULT_HANG_TASK = const(5)
_INHIBITED = const(20)
_INVALID_TRANSITION = const(18)
_KIND_TIME = const(5)
_LOAD_PAYLOAD_A = const(4)
_LOAD_PAYLOAD_B = const(5)
_MODE_NOMINAL = const(2)
_MODE_SAFE = const(1)
_MODE_SCIENCE = const(3)
_NOT_FOUND = const(19)
_OK = const(0)
_PARAM_BATTERY_SETPOINT = const(2)
_PARAM_ELECTRONICS_SETPOINT = const(3)
_PARAM_SCIENCE_MIN_SOC_PCT = const(7)
_RESET_COMMANDED = const(2)
_RESET_MAINTENANCE = const(3)

_FW_VERSION = const("0.1.0")
_CH_NODE_ID = const(63)
_DRIFT_SPAN_MS = const(10000)  # node time from the base before a drift is measured
_DRIFT_MAX_PPB = const(990000000)  # a crystal is within 100 ppm, an emulator 34x slow
_PPB = const(1000000000)
_RESET_DELAY_MS = const(100)  # let the completed verification leave before a reset


def handle(app, d):
    cmd_id = d.cmd_id
    if cmd_id == _CMD_STATUS:
        d.result = [app.modes.current, app.boot_count, app.reset_cause, app.clock.now_ms(),
                    DICT_HASH, app.events.seq - 1 if app.events.seq else 0, _FW_VERSION,
                    app.tlm[_CH_NODE_ID]]
        return _OK
    if cmd_id == _CMD_CLEAR_COUNTERS:
        app.link.clear_counters()
        app.dispatcher.clear_counters()
        app.auth.clear_counters()
        app.events.emit(_EV_COUNTERS_CLEARED)
        return _OK
    if cmd_id == _CMD_REBOOT:
        app.events.emit(_EV_REBOOT)
        _reset_soon(app, _RESET_COMMANDED)
        return _OK
    if cmd_id == _CMD_MAINTENANCE:
        app.events.emit(_EV_MAINTENANCE)
        _reset_soon(app, _RESET_MAINTENANCE)
        return _OK
    if cmd_id == _CMD_FAULT_INJECT:
        return _fault_inject(app, d)
    if cmd_id == _CMD_SET_MODE:
        return _set_mode(app, d.args[0])
    if cmd_id == _CMD_TIME_CORRELATE:
        return _time_correlate(app, d)
    if cmd_id == _CMD_HK_RATE or cmd_id == _CMD_HK_ENABLE:
        return _hk(app.hk, cmd_id, d.args[0], d.args[1], app.clock.now_ms())
    return _plant(app, cmd_id, d.args[0], d.args[1])


def _reset_soon(app, cause):
    # Reset soon, after the command's verification has gone out (the task holds this module's
    # code until then).
    app.reset_request = cause
    app.reset_task = asyncio.create_task(_reset_later(app, cause))


async def _reset_later(app, cause):
    await asyncio.sleep_ms(_RESET_DELAY_MS)
    app.events.pump()
    app.log.close()
    app.board.link_close()
    if cause == _RESET_MAINTENANCE:
        app.board.enter_maintenance()
    else:
        app.board.reset(cause)
    raise SystemExit  # a board whose reset returned: stop the node


def _set_mode(app, new):
    modes = app.modes
    old = modes.current
    if new == _MODE_SAFE:
        modes.enter(_MODE_SAFE)
        return _OK
    if not ((old == _MODE_SAFE and new == _MODE_NOMINAL)
            or (old == _MODE_NOMINAL and new == _MODE_SCIENCE)
            or (old == _MODE_SCIENCE and new == _MODE_NOMINAL)):
        return _INVALID_TRANSITION
    if new == _MODE_SCIENCE and \
            app.tlm[_CH_BATTERY_SOC] < app.params.get(_PARAM_SCIENCE_MIN_SOC_PCT):
        return _INHIBITED
    modes.enter(new)
    return _OK


def _time_correlate(app, d):
    # A large utc_ms is a heap int.
    clock = app.clock
    link = app.link
    utc_ms = d.args[0]
    node_ms = clock.now_ms()
    _correlate(clock, node_ms, utc_ms)
    enc = link.begin(_KIND_TIME, 0)
    enc.array(2)
    enc.uint(node_ms)
    enc.uint(utc_ms)
    link.end()
    app.events.emit(_EV_TIME_CORRELATED, node_ms, utc_ms)
    if clock.on_correlate is not None:
        clock.on_correlate()
    d.result = clock.drift_ppb  # the completed result: the drift now in use (SPEC §11.1)
    return _OK


def _correlate(clock, node_ms, utc_ms):
    # Take the pair (node_ms, utc_ms) into the node.timesvc.TimeService clock; measure the
    # drift against the base (node.timesvc's docstring). Allocates.
    if not clock.correlated:
        clock.base_node_ms = node_ms
        clock.base_utc_ms = utc_ms
        clock.drift_ppb = 0
    else:
        dn = node_ms - clock.base_node_ms
        du = utc_ms - clock.base_utc_ms
        if dn >= _DRIFT_SPAN_MS and du > 0:
            ppb = (dn - du) * _PPB // du
            if -_DRIFT_MAX_PPB <= ppb <= _DRIFT_MAX_PPB:
                clock.drift_ppb = ppb
            else:  # the ground's clock jumped: start measuring again from here
                clock.base_node_ms = node_ms
                clock.base_utc_ms = utc_ms
                clock.drift_ppb = 0
        elif du <= 0 and dn > 0:  # UTC went backwards: a new base
            clock.base_node_ms = node_ms
            clock.base_utc_ms = utc_ms
            clock.drift_ppb = 0
    clock.node_ms = node_ms
    clock.utc_ms = utc_ms
    clock.correlated = True
    clock.correlations += 1
    clock.update_tlm()


def _hk(hk, cmd_id, pid, value, now):
    if cmd_id == _CMD_HK_RATE:
        period = int(1000.0 / value + 0.5)  # 0.1..50 Hz: 10000..20 ms
        hk.period_ms[pid] = period
        hk.due[pid] = (now // period + 1) * period  # the next multiple: on grid
        return _OK
    if value and not hk.enabled[pid]:  # hk_enable
        hk.due[pid] = now
    hk.enabled[pid] = value
    return _OK


def _plant(app, cmd_id, a, b):
    # load_switch, load_reset_trip, heater_mode, heater_setpoint
    plant = app.plant
    if cmd_id == _CMD_LOAD_SWITCH:
        if b and (a == _LOAD_PAYLOAD_A or a == _LOAD_PAYLOAD_B) \
                and app.modes.current != _MODE_SCIENCE:
            return _INHIBITED
        if not plant.switch(a, b):
            return _INHIBITED
        app.sync_load_pins()
        return _OK
    if cmd_id == _CMD_LOAD_RESET_TRIP:
        plant.reset_trip(a)
        app.sync_load_pins()
        return _OK
    if cmd_id == _CMD_HEATER_MODE:
        if not plant.set_heater_mode(a, b):
            return _EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
        return _OK
    pid = _PARAM_BATTERY_SETPOINT if a == 0 else _PARAM_ELECTRONICS_SETPOINT  # heater_setpoint
    if app.params.set(pid, b):
        return _EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
    app.params.send(app.link, pid)
    app.events.emit(_EV_PARAM_CHANGED, pid)
    return _OK


def _fault_inject(app, d):
    fault = d.args[0]
    target = d.args[1]
    if fault == _FAULT_CLEAR:
        app.plant.clear_faults()
        for task in app.tasks:
            task.hung = False
    elif fault == _FAULT_HANG_TASK:
        if target >= len(app.tasks):
            return _NOT_FOUND
        app.tasks[target].hung = True
    elif not app.plant.inject(fault, target, d.args[2]):
        return _NOT_FOUND
    app.events.emit(_EV_FAULT_INJECTED, fault, target)
    return _OK
