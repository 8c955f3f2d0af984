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
  stops task ``target`` (0..6, protocol.dictionary.TASKS; else NOT_FOUND) making progress so
  the watchdog resets the node; the sensor, drain and trip faults go to plant.inject (NOT_FOUND
  when the plant does not take the target). Each raises a fault_injected event.

noop allocates nothing; the others may.
"""

from micropython import const

from protocol.node_dictionary import DICT_HASH

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_CLEAR_COUNTERS = const(17)
_CMD_FAULT_INJECT = const(21)
_CMD_HEATER_MODE = const(5)
_CMD_HEATER_SETPOINT = const(6)
_CMD_LOAD_RESET_TRIP = const(4)
_CMD_LOAD_SWITCH = const(3)
_CMD_MAINTENANCE = const(19)
_CMD_NOOP = const(1)
_CMD_REBOOT = const(18)
_CMD_STATUS = const(15)
_EV_COUNTERS_CLEARED = const(26)
_EV_FAULT_INJECTED = const(18)
_EV_MAINTENANCE = const(24)
_EV_PARAM_CHANGED = const(12)
_EV_REBOOT = const(30)
_EXECUTION_ERROR = const(16)
_FAULT_CLEAR = const(0)
_FAULT_HANG_TASK = const(5)
_INHIBITED = const(20)
_LOAD_PAYLOAD_A = const(4)
_LOAD_PAYLOAD_B = const(5)
_MODE_SCIENCE = const(3)
_NOT_FOUND = const(19)
_OK = const(0)
_PARAM_BATTERY_SETPOINT = const(2)
_PARAM_ELECTRONICS_SETPOINT = const(3)
_RESET_COMMANDED = const(2)
_RESET_MAINTENANCE = const(3)

_FW_VERSION = const("0.1.0")


class Commands:
    def __init__(self, app):
        self.app = app

    def register(self, d):
        d.register(_CMD_NOOP, _noop)
        d.register(_CMD_STATUS, self._status)
        d.register(_CMD_CLEAR_COUNTERS, self._clear_counters)
        d.register(_CMD_REBOOT, self._reboot)
        d.register(_CMD_MAINTENANCE, self._maintenance)
        d.register(_CMD_FAULT_INJECT, self._fault_inject)
        d.register(_CMD_LOAD_SWITCH, self._load_switch)
        d.register(_CMD_LOAD_RESET_TRIP, self._load_reset_trip)
        d.register(_CMD_HEATER_MODE, self._heater_mode)
        d.register(_CMD_HEATER_SETPOINT, self._heater_setpoint)

    def _status(self, d):
        app = self.app
        d.result = [app.modes.current, app.boot_count, app.reset_cause, app.clock.now_ms(),
                    DICT_HASH, app.events.seq - 1 if app.events.seq else 0, _FW_VERSION]
        return _OK

    def _clear_counters(self, d):
        app = self.app
        app.link.clear_counters()
        app.dispatcher.clear_counters()
        app.auth.clear_counters()
        app.events.emit(_EV_COUNTERS_CLEARED)
        return _OK

    def _reboot(self, d):
        self.app.events.emit(_EV_REBOOT)
        self.app.request_reset(_RESET_COMMANDED)
        return _OK

    def _maintenance(self, d):
        self.app.events.emit(_EV_MAINTENANCE)
        self.app.request_reset(_RESET_MAINTENANCE)
        return _OK

    def _fault_inject(self, d):
        app = self.app
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

    def _load_switch(self, d):
        app = self.app
        ch = d.args[0]
        on = d.args[1]
        if on and (ch == _LOAD_PAYLOAD_A or ch == _LOAD_PAYLOAD_B) \
                and app.modes.current != _MODE_SCIENCE:
            return _INHIBITED
        if not app.plant.switch(ch, on):
            return _INHIBITED
        app.sync_load_pins()
        return _OK

    def _load_reset_trip(self, d):
        self.app.plant.reset_trip(d.args[0])
        self.app.sync_load_pins()
        return _OK

    def _heater_mode(self, d):
        if not self.app.plant.set_heater_mode(d.args[0], d.args[1]):
            return _EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
        return _OK

    def _heater_setpoint(self, d):
        app = self.app
        pid = _PARAM_BATTERY_SETPOINT if d.args[0] == 0 else _PARAM_ELECTRONICS_SETPOINT
        code = app.params.set(pid, d.args[1])
        if code:
            return _EXECUTION_ERROR  # the dictionary ranges agree, so this is a bug
        app.params.send(app.link, pid)
        app.events.emit(_EV_PARAM_CHANGED, pid)
        return _OK


def _noop(d):
    return _OK
