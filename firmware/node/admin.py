"""The node's occasional commands: status, clear_counters, reboot, maintenance, fault_inject
(SPEC §5; what each does: node.commands). node.commands registers them through node.Lazy:
this module is imported for each of them and let go afterwards, so its code is not in the
heap between commands. Everything here may allocate.
"""

from micropython import const

from protocol.node_dictionary import DICT_HASH

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_CLEAR_COUNTERS = const(17)
_CMD_MAINTENANCE = const(19)
_CMD_REBOOT = const(18)
_CMD_STATUS = const(15)
_EV_COUNTERS_CLEARED = const(26)
_EV_FAULT_INJECTED = const(18)
_EV_MAINTENANCE = const(24)
_EV_REBOOT = const(30)
_FAULT_CLEAR = const(0)
_FAULT_HANG_TASK = const(5)
_NOT_FOUND = const(19)
_OK = const(0)
_RESET_COMMANDED = const(2)
_RESET_MAINTENANCE = const(3)

_FW_VERSION = const("0.1.0")
_CH_NODE_ID = const(63)


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
        app.request_reset(_RESET_COMMANDED)
        return _OK
    if cmd_id == _CMD_MAINTENANCE:
        app.events.emit(_EV_MAINTENANCE)
        app.request_reset(_RESET_MAINTENANCE)
        return _OK
    return _fault_inject(app, d)


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
