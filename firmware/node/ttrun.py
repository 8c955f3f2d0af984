"""The time-tagged queue's execution and its rare commands (SPEC §11): what node.ttqueue
imports only when an entry is due or ends, or for tt_delete, tt_clear and tt_pause, and lets
go after (node.call, node.Lazy). Running an entry, ending one that will not run, and the
order of their steps on the flash: node.ttqueue's docstring.
"""

import struct

from micropython import const

from node import storage
from node.ttqueue import _HDR, ENTRIES, EXECUTING, QUEUED, entry_name

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_TT_CLEAR = const(29)
_CMD_TT_DELETE = const(28)
_EV_TT_EXECUTED = const(37)
_EV_TT_NOT_RUN = const(39)
_EV_TT_PAUSED = const(40)
_NOT_ALLOWED_NOW = const(22)
_NOT_FOUND = const(19)
_NOT_RUN = const(23)
_OK = const(0)
_STORAGE_ERROR = const(17)
_WHY_CLEARED = const(2)
_WHY_DELETED = const(1)
_PENDING = const(-1)
_PAUSE_FILE = const("ttpause.bin")  # the held state (read at boot by node.boot)


def run(q, i):
    """Run entry i, due now: marked EXECUTING, run, answered, tt_executed, removed."""
    status, payload = storage.read_checked(q.root, entry_name(i))
    seq = q.seq[i]
    cmd = q.cmd[i]
    if status != storage.OK or payload is None:
        q.storage_errors += 1
        _report(q, i, _STORAGE_ERROR)
        q.durable_event(_EV_TT_EXECUTED, seq, cmd, _STORAGE_ERROR)
        q.free(i)
        return
    payload = bytearray(payload)
    payload[0] = EXECUTING
    struct.pack_into("<H", payload, 4, q.d.boot_count)
    struct.pack_into("<I", payload, 14, q.events.seq)
    try:
        storage.write_atomic(q.root, entry_name(i), payload)
    except OSError:
        q.storage_errors += 1
        _report(q, i, _STORAGE_ERROR)  # not run: it could not be marked
        q.durable_event(_EV_TT_EXECUTED, seq, cmd, _STORAGE_ERROR)
        q.free(i)
        return
    q.state[i] = EXECUTING
    q.count -= 1
    d = q.d
    code = d.parse(payload, _HDR, len(payload))
    result = None
    if not code:
        code, result = d.execute(cmd)
    if code == _PENDING:  # never queued (immediate commands); keep the books straight
        code = _OK
    elif 0 < code < 16:  # the mode or the command's own check, when due
        code = _NOT_ALLOWED_NOW
    q.executed += 1
    _report(q, i, code, result, payload)
    q.durable_event(_EV_TT_EXECUTED, seq, cmd, code)
    q.free(i)


def end(q, i, why):
    """A queued entry that will not run: failed NOT_RUN and a tt_not_run event, in the log
    before the file goes."""
    q.count -= 1
    q.state[i] = EXECUTING  # off the schedule while it is settled
    _report(q, i, _NOT_RUN)
    q.durable_event(_EV_TT_NOT_RUN, q.seq[i], q.cmd[i], why)
    q.free(i)


def _report(q, i, code, result=None, payload=None):
    ctr = 0
    if q.key[i] >= 0:  # signed: the answers' label is in the entry (not kept in RAM)
        if payload is None:
            payload = storage.read_checked(q.root, entry_name(i))[1]
        if payload is not None:
            ctr = struct.unpack_from("<I", payload, 6)[0]
    q.d.report(q.seq[i], q.cmd[i], code, result, q.key[i], ctr, q.boot_of[i])


def handle(q, d):
    """tt_delete, tt_clear, tt_pause (node.Lazy)."""
    if d.cmd_id == _CMD_TT_DELETE:
        if q.state[d.args[0]] != QUEUED:
            return _NOT_FOUND
        end(q, d.args[0], _WHY_DELETED)
        return _OK
    if d.cmd_id == _CMD_TT_CLEAR:
        n = 0
        for i in range(ENTRIES):
            if q.state[i] == QUEUED:
                end(q, i, _WHY_CLEARED)
                n += 1
        d.result = n
        return _OK
    paused = d.args[0]  # tt_pause
    try:
        storage.write_atomic(q.root, _PAUSE_FILE, b"\x01" if paused else b"\x00")
    except OSError:
        return _STORAGE_ERROR
    q.paused = paused
    q.events.emit(_EV_TT_PAUSED, paused)
    q.update_tlm()
    return _OK
