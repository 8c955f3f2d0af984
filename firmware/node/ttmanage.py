"""The time-tagged queue's rarely needed parts (node.ttqueue imports this only when needed).

- ``admit(q, d, seq, cmd_id, tag)``: a time-tagged command judged, in this order (SPEC §11.2):
  the clock correlated (CLOCK_UNCORRELATED), the time no further in the past than
  tt_tolerance_ms (TIME_PAST), the command's own check, an entry free (QUEUE_FULL; the same
  command queued already: _REPEAT, answered again); then written to its file (a flash fault:
  QUEUE_FULL, not accepted) and entered in the queue's tables.
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
_CLOCK_UNCORRELATED = const(12)
_EV_TT_EXECUTED = const(37)
_EV_TT_UNKNOWN = const(38)
_MALFORMED = const(6)
_OK = const(0)
_PARAM_TT_TOLERANCE_MS = const(18)
_QUEUE_FULL = const(14)
_TIME_PAST = const(13)
_UNSUPPORTED_VERSION = const(7)

_LIST_ITEM = const(24)  # an encoded tt_list item, at most
_NO_DUE = const(0x3FFFFFFF)
_FREE = const(0)  # node.ttqueue's entry states (QUEUED, EXECUTING imported)
_REPEAT = const(-2)  # node.dispatcher's


def admit(q, d, seq, cmd_id, tag):
    clock = q.clock
    if not clock.correlated:
        return _CLOCK_UNCORRELATED
    if tag < clock.utc_now() - q.params.get(_PARAM_TT_TOLERANCE_MS):
        return _TIME_PAST
    code = d.run_check(cmd_id)
    if code:
        return code
    key = d.sign_slot
    boot = d.boot_count
    free = -1
    for i in range(ENTRIES):
        if q.state[i] == _FREE:
            if free < 0:
                free = i
        elif q.seq[i] == seq and q.cmd[i] == cmd_id and q.key[i] == key \
                and q.boot_of[i] == boot and q.tag[i] == tag:
            return _REPEAT
    if free < 0:
        return _QUEUE_FULL
    order = q.next_order
    hdr = bytearray(_HDR)
    hdr[0] = QUEUED
    hdr[1] = 0xFF if key < 0 else key
    struct.pack_into("<HHIII", hdr, 2, boot, 0, d.sign_ctr if key >= 0 else 0, order, 0)
    try:
        storage.write_atomic(q.root, entry_name(free),
                             hdr + bytes(d.msg_buf[d.msg_start:d.msg_end]))
    except OSError:
        q.storage_errors += 1
        return _QUEUE_FULL  # not stored: not accepted
    q.next_order = order + 1
    q.state[free] = QUEUED
    q.seq[free] = seq
    q.cmd[free] = cmd_id
    q.key[free] = key
    q.boot_of[free] = boot
    q.order[free] = order
    q.tag[free] = tag
    q.due[free] = clock.node_of(tag)
    q.count += 1
    q.update_tlm()
    return _OK


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
