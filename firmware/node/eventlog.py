"""The persistent event log: a ring of 256 fixed-size records in one file on the flash.

File ``events.log``: 256 slots of 48 bytes; the event with sequence number s lives in slot
s % 256, so the file never grows and the newest 256 events survive. A slot:

    0   magic 0xE5          1   event id        2   severity     3   nargs (0..3)
    4   event_seq  <I       8   node time ms <I 12  boot count <H 14  arg tags (2 bits each:
    16  arg 0 (8 bytes)     24  arg 1           32  arg 2                0 null, 1 int <q,
    40  CRC-32 of bytes 0..39, <I               44  unused                2 float <f, 3 bool)

Writes are append-safe: each slot is written in place with its own CRC, so a power cut
during a write spoils at most that one slot, which the boot scan then ignores. At boot the
scan (node.boot) finds the newest valid record; event numbering continues after it.

Numbering survives any power cut without reuse (SPEC §5.4): event numbers are reserved in
blocks ahead of use. ``evseq.bin`` (a storage blob, written atomically) holds a high-water
mark: no number at or above it has been used. Before an event takes a number at or above the
mark, ``claim`` moves the mark _RESERVE further and persists it; the eventlog task tops the
reservation up early (``flush``), so a burst rarely waits for the flash. At boot numbering
continues at the larger of the mark and the newest stored record + 1: numbers given out
before a power cut but not yet stored are skipped, never reused (a gap the ground reports);
a power cut or watchdog reset skips fewer than _RESERVE numbers, a commanded reset (close)
none.

Records reach the flash from a RAM queue (``add`` is allocation-free; it drops the oldest
queued record, counted in ``lost``, when the flash falls behind) by ``flush`` from the
eventlog task. ``records(from_seq)`` yields the stored records oldest first for the bulk
downlink (node.logread). Scanning, flushing and reading allocate.
"""

import struct

from micropython import const

import node
from node import storage
from protocol.crc import crc32_append, crc32_check

_FILE = const("events.log")
_SEQ_FILE = const("evseq.bin")  # (node.boot reads it at boot)
_RESERVE = const(32)  # event numbers reserved per write of the high-water mark
_SLOTS = const(256)
_SLOT_SIZE = const(48)
_CRC_AT = const(40)
_MAGIC = const(0xE5)
_QUEUE = const(16)
_TAG_NULL = const(0)
_TAG_INT = const(1)
_TAG_FLOAT = const(2)  # (node.logread reads them back)
_TAG_BOOL = const(3)
_I64_MIN = const(-0x8000000000000000)
_I64_MAX = const(0x7FFFFFFFFFFFFFFF)


class EventLog:
    def __init__(self, root, fs_sync, boot_count):
        self.root = root
        self.path = root + "/" + _FILE
        self._sync = fs_sync
        self._boot = boot_count
        self._queue = bytearray(_QUEUE * _SLOT_SIZE)
        self._head = 0  # next queue slot to fill
        self._count = 0  # queued records
        self.lost = 0  # records dropped from the queue before reaching the flash
        self.write_errors = 0
        self.newest = -1  # newest event_seq on the flash or queued
        self.stored = 0  # valid records found at boot
        self.reserved = 0  # event numbers below this may have been used (persisted mark)
        self._claimed = -1  # the highest number claimed this boot
        self._f = None

    # --- boot ---------------------------------------------------------------------------

    def open(self):
        """Open (creating if missing) and scan the ring; return the next event_seq. The scan
        is node.boot's (imported for it)."""
        return node.call("boot", "open_log", self)

    def _reserve(self, seq):
        # Persist a high-water mark _RESERVE beyond seq (allocates: boot and rarely in claim).
        mark = seq + _RESERVE
        try:
            storage.write_atomic(self.root, _SEQ_FILE, struct.pack("<I", mark))
        except OSError:
            self.write_errors += 1  # numbering goes on; the flash fault shows in the counter
        self.reserved = mark

    def claim(self, seq):
        """Event number seq is about to be used: make sure the flash mark is above it."""
        if seq > self._claimed:
            self._claimed = seq
        if seq >= self.reserved:
            self._reserve(seq)

    # --- writing ------------------------------------------------------------------------

    def add(self, seq, time_ms, event_id, severity, nargs, a, b, c):
        """Queue a record for the flash. Allocation-free for int, bool and None args."""
        if self._count == _QUEUE:
            self.lost += 1
            self._count -= 1  # overwrite the oldest queued record
        i = self._head
        self._head = (i + 1) % _QUEUE
        self._count += 1
        q = self._queue
        off = i * _SLOT_SIZE
        q[off] = _MAGIC
        q[off + 1] = event_id
        q[off + 2] = severity
        q[off + 3] = nargs
        struct.pack_into("<IIH", q, off + 4, seq, time_ms & 0xFFFFFFFF, self._boot)
        tags = _put(q, off + 16, a) | (_put(q, off + 24, b) << 2) | (_put(q, off + 32, c) << 4)
        q[off + 14] = tags
        q[off + 15] = 0
        crc32_append(q, off, off + _CRC_AT)
        if seq > self.newest:
            self.newest = seq

    def pending(self):
        return self._count

    def flush(self):
        """Write the queued records into their slots and top the numbering reservation up
        when half of it is used. Returns how many records were written."""
        if self._claimed + _RESERVE // 2 >= self.reserved:
            self._reserve(self._claimed + 1)
        f = self._f
        if f is None or not self._count:
            return 0
        q = memoryview(self._queue)
        written = 0
        try:
            while self._count:
                i = (self._head - self._count) % _QUEUE
                off = i * _SLOT_SIZE
                seq = struct.unpack_from("<I", q, off + 4)[0]
                f.seek((seq % _SLOTS) * _SLOT_SIZE)
                f.write(q[off:off + _SLOT_SIZE])
                self._count -= 1
                written += 1
            if self._sync:
                f.flush()
        except OSError:
            self.write_errors += 1
        return written

    def close(self):
        """Flush and close (a commanded reset): the mark becomes exactly the next number, so
        a clean reboot skips none."""
        if self._f is not None:
            self.flush()
            self._f.close()
            self._f = None
            try:
                storage.write_atomic(self.root, _SEQ_FILE, struct.pack("<I", self._claimed + 1))
                self.reserved = self._claimed + 1
            except OSError:
                self.write_errors += 1

    # --- reading ------------------------------------------------------------------------

    def records(self, from_seq):
        """Yield (seq, time_ms, event_id, severity, args list) oldest first, from from_seq or
        the oldest kept (flushing first). Allocates: node.logread reads them, imported for the
        reading (the generator holds it) and let go after."""
        return node.call("logread", "records", self, from_seq)


def valid_seq(slot):
    """A slot's event_seq if it holds a valid record, else -1."""
    if slot[0] != _MAGIC or slot[3] > 3:
        return -1
    if not crc32_check(slot, 0, _CRC_AT + 4):
        return -1
    return struct.unpack_from("<I", slot, 4)[0]


def _put(buf, off, v):
    t = type(v)
    if v is None:
        struct.pack_into("<q", buf, off, 0)
        return _TAG_NULL
    if t is bool:
        struct.pack_into("<q", buf, off, 1 if v else 0)
        return _TAG_BOOL
    if t is float:
        struct.pack_into("<f4x", buf, off, v)
        return _TAG_FLOAT
    if t is int and _I64_MIN <= v <= _I64_MAX:
        struct.pack_into("<q", buf, off, v)
        return _TAG_INT
    struct.pack_into("<q", buf, off, 0)  # an argument type the log cannot keep
    return _TAG_NULL
