"""Parameters on the flash, and the commands that move them: param_save, param_load,
param_reset (node.params imports this per use and lets it go: its code is not in the heap
between uses). The file's layout is in node.params; everything here allocates.
"""

import struct

from micropython import const

from node import storage
from protocol.node_dictionary import NO_RECORD, PARAM_PERSISTED, PARAM_TYPES

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_PARAM_LOAD = const(10)
_CMD_PARAM_SAVE = const(9)
_EV_PARAMS_LOADED = const(28)
_EV_PARAMS_SAVED = const(11)
_EV_PARAM_RESET = const(29)
_NOT_FOUND = const(19)
_OK = const(0)
_STORAGE_ERROR = const(17)
_TYPE_BOOL = const(0)
_TYPE_F32 = const(5)

_FILE = const("params.bin")  # node.params.FILE
_MAGIC = const(b"PRM1")
_ENTRY = const(10)


def save(params):
    """Persist the persisted parameters; return how many. Raises OSError."""
    out = bytearray(_MAGIC)
    count = 0
    for pid in range(1, len(PARAM_TYPES)):
        t = PARAM_TYPES[pid]
        if t == NO_RECORD or not PARAM_PERSISTED[pid]:
            continue
        v = params.values[pid]
        if t == _TYPE_F32:
            out += struct.pack("<BBf4x", pid, t, v)
        else:
            out += struct.pack("<BBq", pid, t, 1 if v is True else int(v or 0))
        count += 1
    storage.write_atomic(params.root, _FILE, out)
    return count


def load(params):
    """(status, count, invalid): status storage.OK/MISSING/CORRUPT; RAM changes only on OK."""
    from node.params import check

    status, payload = storage.read_checked(params.root, _FILE)
    if payload is None or payload[:4] != _MAGIC or (len(payload) - 4) % _ENTRY:
        return (status if status != storage.OK else storage.CORRUPT), 0, 0
    params.reset()
    count = invalid = 0
    for off in range(4, len(payload), _ENTRY):
        pid, t = payload[off], payload[off + 1]
        if not 0 < pid < len(PARAM_TYPES) or PARAM_TYPES[pid] != t \
                or not PARAM_PERSISTED[pid]:
            invalid += 1
            continue
        if t == _TYPE_F32:
            v = struct.unpack_from("<f", payload, off + 2)[0]
        else:
            v = struct.unpack_from("<q", payload, off + 2)[0]
            if t == _TYPE_BOOL:
                v = bool(v) if v in (0, 1) else None
        code, v = check(pid, v)
        if code:
            invalid += 1
            continue
        params.values[pid] = v
        count += 1
    return status, count, invalid


def handle(commands, d):
    """param_save, param_load, param_reset for node.params.ParamCommands ``commands``."""
    params = commands.params
    if d.cmd_id == _CMD_PARAM_SAVE:
        try:
            count = save(params)
        except OSError:
            return _STORAGE_ERROR
        commands.events.emit(_EV_PARAMS_SAVED, count)
        return _OK
    old = list(params.values)
    if d.cmd_id == _CMD_PARAM_LOAD:
        status, count, _invalid = load(params)
        if status == storage.MISSING:
            return _NOT_FOUND
        if status != storage.OK:
            return _STORAGE_ERROR
        params.notify_changed(old)
        commands.events.emit(_EV_PARAMS_LOADED, count)
        return _OK
    params.reset()  # param_reset
    params.notify_changed(old)
    commands.events.emit(_EV_PARAM_RESET)
    return _OK
