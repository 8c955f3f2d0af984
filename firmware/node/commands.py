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

All but noop live in node.admin, imported for each command and let go afterwards, with the
occasional commands of the other services: set_mode (node.modes), hk_rate and hk_enable
(node.housekeeping), time_correlate (node.timesvc, whose check stays resident). noop
allocates nothing; the others may.
"""

from micropython import const

import node
from node.timesvc import check_utc

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_NOOP = const(1)
_CMD_TIME_CORRELATE = const(14)
_OK = const(0)

# node.admin's: set_mode, load_switch, load_reset_trip, heater_mode, heater_setpoint, hk_rate,
# hk_enable, status, clear_counters, reboot, maintenance, fault_inject (time_correlate too,
# with its check)
_OCCASIONAL = const((2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 19, 21))


def register(app, d):
    """Register these commands with the dispatcher d (node.boot, at boot)."""
    d.register(_CMD_NOOP, _noop)
    lazy = node.Lazy(app, "admin")  # the occasional ones, imported per command
    for cmd_id in _OCCASIONAL:
        d.register(cmd_id, lazy)
    d.register(_CMD_TIME_CORRELATE, lazy, check_utc)


def _noop(d):
    return _OK
