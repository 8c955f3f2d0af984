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

status, clear_counters, reboot, maintenance and fault_inject live in node.admin, imported for
each command and let go afterwards. noop allocates nothing; the others may.
"""

from micropython import const

import node

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
_EV_PARAM_CHANGED = const(12)
_EXECUTION_ERROR = const(16)
_INHIBITED = const(20)
_LOAD_PAYLOAD_A = const(4)
_LOAD_PAYLOAD_B = const(5)
_MODE_SCIENCE = const(3)
_NOT_FOUND = const(19)
_OK = const(0)
_PARAM_BATTERY_SETPOINT = const(2)
_PARAM_ELECTRONICS_SETPOINT = const(3)


class Commands:
    def __init__(self, app):
        self.app = app

    def register(self, d):
        d.register(_CMD_NOOP, _noop)
        lazy = node.Lazy(self.app, "admin")  # the occasional ones, imported per command
        for cmd_id in (_CMD_STATUS, _CMD_CLEAR_COUNTERS, _CMD_REBOOT, _CMD_MAINTENANCE,
                       _CMD_FAULT_INJECT):
            d.register(cmd_id, lazy)
        d.register(_CMD_LOAD_SWITCH, self._load_switch)
        d.register(_CMD_LOAD_RESET_TRIP, self._load_reset_trip)
        d.register(_CMD_HEATER_MODE, self._heater_mode)
        d.register(_CMD_HEATER_SETPOINT, self._heater_setpoint)

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
