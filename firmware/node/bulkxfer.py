"""The bulk transfers (SPEC §5.7) of node.bulk, imported when one starts and let go at once
(its coroutine keeps this code alive until the transfer ends). Each function here returns the
transfer's coroutine; it fills node.bulk.Bulk's part buffer and sends the parts through the
link, yielding between parts, and ends with ``bulk.done``. Payloads: see node.bulk.
"""

import asyncio

from micropython import const

import node
from protocol.node_dictionary import DESCRIPTION_SIZE

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BULK_DICTIONARY = const(2)
_BULK_EVENT_LOG = const(1)
_EXECUTION_ERROR = const(16)
_KIND_BULK = const(6)
_OK = const(0)
_STORAGE_ERROR = const(17)

_PART = const(256)  # payload bytes per bulk message (node.bulk's part buffer)


async def send_bytes(bulk, bulk_type, seq, cmd_id, data):
    code = _EXECUTION_ERROR
    try:
        await asyncio.sleep_ms(0)
        _begin(bulk, bulk_type, seq)
        mv = memoryview(data)
        for i in range(0, len(data), _PART):
            await _append(bulk, mv[i:], min(_PART, len(data) - i))
        _last(bulk)
        code = _OK
    finally:
        bulk.done(seq, cmd_id, code)


async def event_log(bulk, seq, cmd_id, from_seq):
    code = _EXECUTION_ERROR
    log = bulk.log
    try:
        newest = log.newest
        count = 0
        for r in log.records(from_seq):
            if r[0] > newest:
                break
            count += 1
        _begin(bulk, _BULK_EVENT_LOG, seq)
        rec = bulk.rec
        rec.reset()
        rec.array(count)
        await _append(bulk, rec.buf, rec.pos)
        sent = 0
        for r in log.records(from_seq):
            if sent == count or r[0] > newest:
                break
            rec.reset()
            rec.item(r)
            await _append(bulk, rec.buf, rec.pos)
            sent += 1
        null = b"\xf6"
        while sent < count:  # records overwritten meanwhile: keep the array length
            await _append(bulk, null, 1)
            sent += 1
        _last(bulk)
        code = _OK
    except OSError:
        code = _STORAGE_ERROR
    finally:
        bulk.done(seq, cmd_id, code)


async def dictionary(bulk, seq, cmd_id):
    code = _EXECUTION_ERROR
    try:
        await asyncio.sleep_ms(0)
        _begin(bulk, _BULK_DICTIONARY, seq)
        from protocol.node_description import DESCRIPTION

        node.forget("protocol.node_description")  # this transfer holds what it sends
        description = memoryview(DESCRIPTION)
        for i in range(0, DESCRIPTION_SIZE, _PART):
            await _append(bulk, description[i:], min(_PART, DESCRIPTION_SIZE - i))
        _last(bulk)
        code = _OK
    finally:
        bulk.done(seq, cmd_id, code)


def _send(bulk, last, payload):
    link = bulk.link
    enc = link.begin(_KIND_BULK, bulk.type)
    enc.array(4)
    enc.uint(bulk.transfer)
    enc.uint(bulk.index)
    enc.bool(last)
    enc.bytes(payload)
    link.end()


def _begin(bulk, bulk_type, transfer):
    bulk.type = bulk_type
    bulk.transfer = transfer
    bulk.n = 0
    bulk.index = 0
    bulk.total = 0


def _add(bulk, data, length):
    # Add data[0:length] to the part; a full part goes out once more follows. Returns True
    # if a part went out.
    mv = bulk.mv
    i = 0
    sent = False
    while i < length:
        if bulk.n == _PART:
            _send(bulk, False, mv[0:_PART])
            bulk.index += 1
            bulk.n = 0
            sent = True
        k = min(_PART - bulk.n, length - i)
        mv[bulk.n:bulk.n + k] = data[i:i + k]
        bulk.n += k
        i += k
    bulk.total += length
    return sent


def _last(bulk):
    _send(bulk, True, bulk.mv[0:bulk.n])


async def _append(bulk, data, length):
    # _add, then let other traffic through if a part went out.
    if _add(bulk, data, length):
        await asyncio.sleep_ms(0)
