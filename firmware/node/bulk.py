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

Dictionary payload: the description (SPEC §7.2), protocol.node_dictionary.DESCRIPTION, a
bytes constant (in flash under ROMFS): DESCRIPTION_SIZE bytes, more than one message holds, so
it goes out in parts like the log, read in place.
"""

import asyncio

from micropython import const

from node.dispatcher import PENDING
from protocol.cbor_encoder import Encoder
from protocol.node_dictionary import DESCRIPTION, DESCRIPTION_SIZE

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BULK_DICTIONARY = const(2)
_BULK_EVENT_LOG = const(1)
_BUSY = const(5)
_CMD_DICT_DOWNLINK = const(20)
_CMD_EVENT_LOG_DOWNLINK = const(16)
_EXECUTION_ERROR = const(16)
_KIND_BULK = const(6)
_OK = const(0)
_STORAGE_ERROR = const(17)

_PART = const(256)  # payload bytes per bulk message
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
        self._part = bytearray(_PART)
        self._rec = Encoder(_RECORD_MAX)
        self._mv = memoryview(self._part)
        self._type = _BULK_EVENT_LOG  # of the transfer running
        self._transfer = 0
        self._n = 0  # bytes in the part being filled
        self._index = 0
        self._total = 0  # payload bytes so far

    def register(self, dispatcher):
        dispatcher.register(_CMD_EVENT_LOG_DOWNLINK, self._cmd_event_log, self._check_idle)
        dispatcher.register(_CMD_DICT_DOWNLINK, self._cmd_dict, self._check_idle)

    def _check_idle(self, d):
        return _BUSY if self.busy else _OK

    check_idle = _check_idle  # for other services' bulk downlinks (node.ttqueue)

    def send_bytes(self, bulk_type, seq, cmd_id, data):
        """Start the downlink of data (bytes) as bulk type bulk_type for command (seq,
        cmd_id); returns PENDING (its handler's answer): completed follows the last part."""
        self._start(self._bytes(bulk_type, seq, cmd_id, data))
        return PENDING

    async def _bytes(self, bulk_type, seq, cmd_id, data):
        code = _EXECUTION_ERROR
        try:
            await asyncio.sleep_ms(0)
            self._begin(bulk_type, seq)
            mv = memoryview(data)
            for i in range(0, len(data), _PART):
                await self._append(mv[i:], min(_PART, len(data) - i))
            self._last()
            code = _OK
        finally:
            self._done(seq, cmd_id, code)

    def _cmd_event_log(self, d):
        self._start(self._event_log(d.cmd_seq, d.cmd_id, d.args[0]))
        return PENDING

    def _cmd_dict(self, d):
        self._start(self._dictionary(d.cmd_seq, d.cmd_id))
        return PENDING

    def _start(self, coro):
        self.busy = True
        self._task = asyncio.create_task(coro)

    def _send(self, bulk_type, transfer, index, last, payload):
        enc = self.link.begin(_KIND_BULK, bulk_type)
        enc.array(4)
        enc.uint(transfer)
        enc.uint(index)
        enc.bool(last)
        enc.bytes(payload)
        self.link.end()

    def _begin(self, bulk_type, transfer):
        self._type = bulk_type
        self._transfer = transfer
        self._n = 0
        self._index = 0
        self._total = 0

    def _add(self, data, length):
        # Add data[0:length] to the part; a full part goes out once more follows. Returns
        # True if a part went out.
        mv = self._mv
        i = 0
        sent = False
        while i < length:
            if self._n == _PART:
                self._send(self._type, self._transfer, self._index, False, mv[0:_PART])
                self._index += 1
                self._n = 0
                sent = True
            k = min(_PART - self._n, length - i)
            mv[self._n:self._n + k] = data[i:i + k]
            self._n += k
            i += k
        self._total += length
        return sent

    def _last(self):
        self._send(self._type, self._transfer, self._index, True, self._mv[0:self._n])

    async def _append(self, data, length):
        # _add, then let other traffic through if a part went out.
        if self._add(data, length):
            await asyncio.sleep_ms(0)

    async def _event_log(self, seq, cmd_id, from_seq):
        code = _EXECUTION_ERROR
        try:
            newest = self.log.newest
            count = 0
            for r in self.log.records(from_seq):
                if r[0] > newest:
                    break
                count += 1
            self._begin(_BULK_EVENT_LOG, seq)
            rec = self._rec
            rec.reset()
            rec.array(count)
            await self._append(rec.buf, rec.pos)
            sent = 0
            for r in self.log.records(from_seq):
                if sent == count or r[0] > newest:
                    break
                rec.reset()
                rec.item(r)
                await self._append(rec.buf, rec.pos)
                sent += 1
            null = b"\xf6"
            while sent < count:  # records overwritten meanwhile: keep the array length
                await self._append(null, 1)
                sent += 1
            self._last()
            code = _OK
        except OSError:
            code = _STORAGE_ERROR
        finally:
            self._done(seq, cmd_id, code)

    async def _dictionary(self, seq, cmd_id):
        code = _EXECUTION_ERROR
        try:
            await asyncio.sleep_ms(0)
            self._begin(_BULK_DICTIONARY, seq)
            description = memoryview(DESCRIPTION)
            for i in range(0, DESCRIPTION_SIZE, _PART):
                await self._append(description[i:], min(_PART, DESCRIPTION_SIZE - i))
            self._last()
            code = _OK
        finally:
            self._done(seq, cmd_id, code)

    def _done(self, seq, cmd_id, code):
        self.link.abort()
        self.busy = False
        self.transfers += 1
        self.dispatcher.finish(seq, cmd_id, code)
