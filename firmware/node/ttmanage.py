"""The time-tagged queue's rarely needed parts (node.ttqueue imports this only when needed).

- ``load(q)``: at boot, when the flash holds entries: read them into the queue's tables, and
  settle each entry a reset cut mid-execution (SPEC §11.5): removed quietly when the event log
  holds its tt_executed event, else reported by a tt_unknown event (written to the log
  first), never run again.
- ``cmd_list(q, d)``: tt_list, the queue as bulk type 4 (SPEC §11.4).

Kept apart so a node with an empty queue does not carry this code in its heap (a Pico's RAM
holds the bytecode of every module it imports from .mpy files). Everything here allocates.
"""

import struct

from micropython import const

from node import storage
from node.ttqueue import _HDR, ENTRIES, EXECUTING, QUEUED, entry_name
from protocol.cbor_encoder import Encoder

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BULK_TT_QUEUE = const(4)
_EV_TT_EXECUTED = const(37)
_EV_TT_UNKNOWN = const(38)
_MALFORMED = const(6)
_UNSUPPORTED_VERSION = const(7)

_LIST_ITEM = const(24)  # an encoded tt_list item, at most
_NO_DUE = const(0x3FFFFFFF)


def load(q):
    for i in range(ENTRIES):
        status, payload = storage.read_checked(q.root, entry_name(i))
        if status == storage.MISSING:
            continue
        if status != storage.OK or payload is None or len(payload) <= _HDR:
            q._remove(i)  # unreadable (a flash fault, never a cut write): dropped
            q.storage_errors += 1
            continue
        if not _load(q, i, payload):
            q._remove(i)
            continue
        if payload[0] == EXECUTING:
            _settle_cut(q, i, payload)


def _load(q, i, payload):
    d = q.d
    code = d.parse(payload, _HDR, len(payload))
    if code == _MALFORMED or code == _UNSUPPORTED_VERSION:
        return False  # never accepted so (an unknown id or arguments fail when due)
    q.state[i] = payload[0]
    q.seq[i] = d.cmd_seq
    q.cmd[i] = d.cmd_id
    q.tag[i] = d.tag
    k = payload[1]
    q.key[i] = -1 if k == 0xFF else k
    boot, _, _, order = struct.unpack_from("<HHII", payload, 2)
    q.boot_of[i] = boot
    q.order[i] = order
    if order >= q.next_order:
        q.next_order = order + 1
    q.due[i] = _NO_DUE
    if payload[0] == QUEUED:
        q.count += 1
    for k in range(d.nargs):
        d.args[k] = None
    return True


def _settle_cut(q, i, payload):
    # Its tt_executed event, if it reached the log, is numbered at or above the mark.
    mark = struct.unpack_from("<I", payload, 14)[0]
    seq = q.seq[i]
    cmd = q.cmd[i]
    found = False
    try:
        for r in q.log.records(mark):
            a = r[4]
            if r[2] == _EV_TT_EXECUTED and len(a) == 3 and a[0] == seq and a[1] == cmd:
                found = True
                break
    except OSError:
        pass
    if not found:
        q.durable_event(_EV_TT_UNKNOWN, seq, cmd)
    q.free(i)


def cmd_list(q, d):
    # [[entry, seq, command, time_utc_ms, boot], ...] in entry order
    enc = Encoder(2 + q.count * _LIST_ITEM)
    enc.array(q.count)
    for i in range(ENTRIES):
        if q.state[i] == QUEUED:
            enc.array(5)
            enc.uint(i)
            enc.uint(q.seq[i])
            enc.uint(q.cmd[i])
            enc.uint(q.tag[i])
            enc.uint(q.boot_of[i])
    return q.bulk.send_bytes(_BULK_TT_QUEUE, d.cmd_seq, d.cmd_id, enc.getvalue())
