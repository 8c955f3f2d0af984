"""Bulk downlink (SPEC §5.7): the event log (type 1) and the node dictionary (type 2); other
services send theirs with ``send_bytes`` (the time-tagged queue, type 4).

event_log_downlink(from_seq) and dict_downlink start a transfer and answer accepted at once;
the parts follow, interleaved with the other traffic (the transfer task yields between parts),
then the completed verification. Both go in parts of up to _PART payload bytes, through one
part buffer made at boot. One transfer at a time: a second request while one runs is rejected
BUSY.

Event log payload: one CBOR array of records [event_seq, time, event_id, severity, [args]],
oldest first, from from_seq (or the oldest kept) to the newest; an empty array when the log
has nothing from from_seq, up to the newest event when the command arrived. It is encoded
record by record into a part buffer made at boot, never whole. The log is read from the flash
(that allocates); the buffers do not.

Dictionary payload: the description (SPEC §7.2), protocol.node_description.DESCRIPTION, a
bytes constant (in flash under ROMFS) in a module imported for the transfer only and forgotten
at once (the transfer holds the bytes): DESCRIPTION_SIZE bytes, more than one message holds,
so it goes out in parts like the log, read in place.

The transfers themselves (encoding, parts, pacing) live in node.bulkxfer, imported when a
transfer starts and let go at once: the transfer's coroutine keeps the code alive while it
runs, and a collection frees it after the transfer. Between transfers only this small class
and its part buffer are in the heap.
"""

import asyncio

from micropython import const

import node
from node.dispatcher import PENDING
from protocol.cbor_encoder import Encoder

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BUSY = const(5)
_CMD_DICT_DOWNLINK = const(20)
_CMD_EVENT_LOG_DOWNLINK = const(16)
_OK = const(0)

_PART = const(256)  # payload bytes per bulk message (node.bulkxfer.PART)
_RECORD_MAX = const(96)  # an encoded event-log record (5 items, 3 args)


class Bulk:
    def __init__(self, link, log, dispatcher):
        self.link = link
        self.log = log
        self.dispatcher = dispatcher
        self.busy = False
        self.transfers = 0
        self._task = None
        # Made at boot: a fragmented heap may not offer the space in one piece later.
        self.part = bytearray(_PART)
        self.rec = Encoder(_RECORD_MAX)
        self.mv = memoryview(self.part)
        # The transfer running (node.bulkxfer): its type and number, the bytes in the part
        # being filled, the part's index, the payload bytes so far.
        self.type = 0
        self.transfer = 0
        self.n = 0
        self.index = 0
        self.total = 0

    def register(self, dispatcher):
        dispatcher.register(_CMD_EVENT_LOG_DOWNLINK, self._cmd_event_log, self._check_idle)
        dispatcher.register(_CMD_DICT_DOWNLINK, self._cmd_dict, self._check_idle)

    def _check_idle(self, d):
        return _BUSY if self.busy else _OK

    check_idle = _check_idle  # for other services' bulk downlinks (node.ttqueue)

    def send_bytes(self, bulk_type, seq, cmd_id, data):
        """Start the downlink of data (bytes) as bulk type bulk_type for command (seq,
        cmd_id); returns PENDING (its handler's answer): completed follows the last part."""
        self._start("send_bytes", bulk_type, seq, cmd_id, data)
        return PENDING

    def _cmd_event_log(self, d):
        self._start("event_log", d.cmd_seq, d.cmd_id, d.args[0])
        return PENDING

    def _cmd_dict(self, d):
        self._start("dictionary", d.cmd_seq, d.cmd_id)
        return PENDING

    def _start(self, fn, *args):
        try:
            coro = getattr(node.load("bulkxfer"), fn)(self, *args)
        finally:
            node.drop("bulkxfer")  # the coroutine holds the code while it runs
        self.busy = True
        self._task = asyncio.create_task(coro)

    def done(self, seq, cmd_id, code):
        """The transfer's end (node.bulkxfer): the link's partial frame dropped, the command's
        final verification."""
        self.link.abort()
        self.busy = False
        self.transfers += 1
        self._task = None
        self.dispatcher.finish(seq, cmd_id, code)
