"""The event log read back from the flash (node.eventlog's ring): for the bulk downlink
(node.bulkxfer) and the time-tagged queue's boot settle (node.ttmanage), imported for the
reading and let go after (``EventLog.records``; the generator holds this code while it runs).
Everything here allocates.
"""

import struct

from micropython import const

from node.eventlog import valid_seq

_SLOTS = const(256)  # node.eventlog's ring: its slots, the bytes of one
_SLOT_SIZE = const(48)
_TAG_INT = const(1)  # node.eventlog's argument tags
_TAG_FLOAT = const(2)
_TAG_BOOL = const(3)


def records(log, from_seq):
    """Yield (seq, time_ms, event_id, severity, args list) oldest first, from from_seq (or
    the oldest kept) to the newest, after flushing the queue."""
    log.flush()
    f = log._f
    if f is None or log.newest < 0:
        return
    first = log.newest - _SLOTS + 1
    if first < from_seq:
        first = from_seq
    if first < 0:
        first = 0
    slot = bytearray(_SLOT_SIZE)
    for seq in range(first, log.newest + 1):
        f.seek((seq % _SLOTS) * _SLOT_SIZE)
        if f.readinto(slot) != _SLOT_SIZE or valid_seq(slot) != seq:
            continue  # overwritten, spoilt or never written (lost before a power cut)
        time_ms = struct.unpack_from("<I", slot, 8)[0]
        nargs = slot[3]
        tags = slot[14]
        args = [_get(slot, 16 + 8 * k, (tags >> (2 * k)) & 3) for k in range(nargs)]
        yield seq, time_ms, slot[1], slot[2], args


def _get(buf, off, tag):
    if tag == _TAG_INT:
        return struct.unpack_from("<q", buf, off)[0]
    if tag == _TAG_FLOAT:
        return struct.unpack_from("<f", buf, off)[0]
    if tag == _TAG_BOOL:
        return buf[off] != 0
    return None
