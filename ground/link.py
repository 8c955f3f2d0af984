"""Framing on the ground: COBS (the ``cobs`` package, C speed) and CRC-32 (SPEC §2, §3).

``encode_frame(message)`` gives the wire bytes ``00 cobs(message || crc32le) 00``.
``Deframer.feed(data)`` is pure: it returns what the bytes contained, in order, as
``Frame`` (the COBS bytes between the delimiters, and the verified message) and ``Discard``
(bytes that were not part of a verified frame, with the reason), and counts both. Nothing is
dropped silently: the caller logs every ``Discard``. ``Deframer.deframe(data)`` returns the
same as columns (``Deframed``), for a caller that handles many frames a read.
"""

from __future__ import annotations

from binascii import crc32  # CRC-32/ISO-HDLC: protocol.crc.crc32 without its wrapper
from itertools import islice, repeat
from operator import itemgetter
from typing import Final, NamedTuple

from cobs import cobs

from protocol.crc import CRC32_RESIDUE

MAX_FRAME: Final = 1024  # decoded frame: message + CRC (SPEC §2)
CRC_SIZE: Final = 4
# COBS adds at most one byte per 254, plus one.
MAX_ENCODED: Final = MAX_FRAME + MAX_FRAME // 254 + 1

_cobs_decode = cobs.decode
_new = tuple.__new__
_CobsError = cobs.DecodeError
_without_crc = itemgetter(slice(None, -CRC_SIZE))

# Discard reasons, as written in the session log.
SYNC: Final = "sync"  # bytes before the first delimiter (joined mid-stream, stray CR LF)
OVERSIZE: Final = "oversize"
TRUNCATED: Final = "truncated"  # COBS block past the end, or shorter than a CRC
CRC: Final = "crc"


class Frame(NamedTuple):
    wire: bytes  # COBS bytes between the delimiters, as received
    message: bytes  # the verified message, CRC removed


class Discard(NamedTuple):
    data: bytes
    reason: str


def encode_frame(message: bytes) -> bytes:
    """Frame a message for the wire (allocates; the ground is not short of memory)."""
    if len(message) + CRC_SIZE > MAX_FRAME:
        raise ValueError(f"message of {len(message)} bytes exceeds {MAX_FRAME - CRC_SIZE}")
    body = message + crc32(message).to_bytes(CRC_SIZE, "little")
    encoded: bytes = cobs.encode(body)
    return b"\x00" + encoded + b"\x00"


def decode_wire(wire: bytes) -> Frame | Discard:
    """Check one frame's COBS bytes (no delimiters): a Frame, or a Discard with the reason."""
    if len(wire) > MAX_ENCODED:
        return Discard(wire, OVERSIZE)
    try:
        body = _cobs_decode(wire)
    except _CobsError:
        return Discard(wire, TRUNCATED)
    n = len(body)
    if n > MAX_FRAME:
        return Discard(wire, OVERSIZE)
    if n < CRC_SIZE + 1:
        return Discard(wire, TRUNCATED)
    # The CRC of a message followed by its own little-endian CRC is a constant (the residue).
    if crc32(body) != CRC32_RESIDUE:
        return Discard(wire, CRC)
    return Frame(wire, body[:-CRC_SIZE])


class Deframed(NamedTuple):
    """What a piece of the stream contained, as columns: the verified frames' COBS bytes and
    messages (parallel lists), and the discards, each after how many of those frames."""

    wires: list[bytes]
    messages: list[bytes]
    discards: list[tuple[int, Discard]]

    def items(self) -> list[Frame | Discard]:
        """Frames and discards in the order they arrived."""
        frames = map(_new, repeat(Frame), zip(self.wires, self.messages, strict=True))
        if not self.discards:
            return list(frames)
        out: list[Frame | Discard] = []
        done = 0
        for before, discard in self.discards:
            out += islice(frames, before - done)
            out.append(discard)
            done = before
        out += frames
        return out


class Deframer:
    """Splits a byte stream at 0x00 delimiters into frames and discarded bytes."""

    def __init__(self, synced: bool = False) -> None:
        # A fresh link starts unsynchronised: everything before the first delimiter may be
        # the tail of a frame or noise, so it is discarded (and reported) as SYNC.
        self._synced = synced
        self._pending = bytearray()
        self._skipping = False  # inside an oversize run: drop until the next delimiter
        self.frames = 0
        self.discarded_bytes = 0
        self.crc_errors = 0
        self.oversize = 0
        self.truncated = 0

    def reset(self) -> None:
        """Forget a partial frame (after the link was lost and re-opened)."""
        self._synced = False
        self._pending.clear()
        self._skipping = False

    def feed(self, data: bytes) -> list[Frame | Discard]:
        """The frames and discards ``data`` completed, in order."""
        return self.deframe(data).items()

    def deframe(self, data: bytes) -> Deframed:
        """What ``feed`` returns, as columns (no Frame made for each frame)."""
        got = Deframed([], [], [])
        parts = data.split(b"\x00")
        last = parts.pop()  # the bytes after the last delimiter: a frame still arriving
        if parts:
            # The first part completes what was pending (or is skipped, or is before sync);
            # every other part lay between two delimiters: a whole frame, or nothing.
            self._complete(got, parts[0])
            if len(parts) > 1:
                self._whole(got, list(filter(None, islice(parts, 1, None))))
        if self._skipping:
            if last:
                self._discard(got, last, OVERSIZE, count=False)
        else:
            self._pending += last
            if len(self._pending) > MAX_ENCODED:
                self._discard(got, bytes(self._pending), OVERSIZE)
                self._pending.clear()
                self._skipping = True
        return got

    def _whole(self, got: Deframed, wires: list[bytes]) -> None:
        """Frames that arrived whole. The hot path: when every one is good, as on a clean
        link, each check of ``decode_wire`` is made across them all at once; otherwise
        ``decode_wire`` looks at each and says why not."""
        if not wires:
            return
        try:
            bodies: list[bytes] | None = list(map(_cobs_decode, wires))
        except _CobsError:
            bodies = None
        if bodies is not None and max(map(len, bodies)) <= MAX_FRAME:
            messages = list(map(_without_crc, bodies))
            # all(): no empty message, so every body holds more than a CRC.
            if all(messages) and list(map(crc32, bodies)).count(CRC32_RESIDUE) == len(bodies):
                got.wires.extend(wires)
                got.messages.extend(messages)
                self.frames += len(messages)
                return
        for wire in wires:
            self._add(got, decode_wire(wire))

    def _complete(self, got: Deframed, part: bytes) -> None:
        """The bytes up to a delimiter: the end of a pending frame, or of a skipped run."""
        if self._skipping:
            self._skipping = False
            if part:
                self._discard(got, part, OVERSIZE, count=False)
            return
        wire = bytes(self._pending) + part if self._pending else part
        self._pending.clear()
        if not self._synced:
            self._synced = True
            if wire:
                self._discard(got, wire, SYNC)
            return
        if wire:  # else two delimiters in a row: an empty frame, legal and ignored
            self._add(got, decode_wire(wire))

    def _add(self, got: Deframed, item: Frame | Discard) -> None:
        if isinstance(item, Frame):
            self.frames += 1
            got.wires.append(item.wire)
            got.messages.append(item.message)
        else:
            self._discard(got, item.data, item.reason)

    def _discard(self, got: Deframed, data: bytes, reason: str, count: bool = True) -> None:
        self.discarded_bytes += len(data)
        if count:
            if reason == CRC:
                self.crc_errors += 1
            elif reason == OVERSIZE:
                self.oversize += 1
            elif reason == TRUNCATED:
                self.truncated += 1
        got.discards.append((len(got.wires), Discard(data, reason)))
