"""Framing on the ground: COBS (the ``cobs`` package, C speed) and CRC-32 (SPEC §2, §3).

``encode_frame(message)`` gives the wire bytes ``00 cobs(message || crc32le) 00``.
``Deframer.feed(data)`` is pure: it returns what the bytes contained, in order, as
``Frame`` (the COBS bytes between the delimiters, and the verified message) and ``Discard``
(bytes that were not part of a verified frame, with the reason), and counts both. Nothing is
dropped silently: the caller logs every ``Discard``.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from cobs import cobs

from protocol.crc import CRC32_RESIDUE, crc32

MAX_FRAME: Final = 1024  # decoded frame: message + CRC (SPEC §2)
CRC_SIZE: Final = 4
# COBS adds at most one byte per 254, plus one.
MAX_ENCODED: Final = MAX_FRAME + MAX_FRAME // 254 + 1

_cobs_decode = cobs.decode
_new = tuple.__new__
_MIN_FRAME: Final = CRC_SIZE + 1
_CobsError = cobs.DecodeError

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
        out: list[Frame | Discard] = []
        parts = data.split(b"\x00")
        last = parts.pop()  # the bytes after the last delimiter: a frame still arriving
        if parts:
            # The first part completes what was pending (or is skipped, or is before sync).
            self._complete(out, parts[0])
            # Every other part lay between two delimiters: a whole frame. This is the hot
            # path, so the good case of decode_wire is written out here.
            append = out.append
            good = 0
            for wire in parts[1:] if len(parts) > 1 else ():
                if not wire:
                    continue
                try:
                    body = _cobs_decode(wire)
                except _CobsError:
                    body = b""
                if _MIN_FRAME <= len(body) <= MAX_FRAME and crc32(body) == CRC32_RESIDUE:
                    append(_new(Frame, (wire, body[:-CRC_SIZE])))
                    good += 1
                else:
                    item = decode_wire(wire)  # says why
                    if isinstance(item, Frame):  # cannot happen; keeps the paths honest
                        good += 1
                        append(item)
                    else:
                        self._discard(out, item.data, item.reason)
            self.frames += good
        if self._skipping:
            if last:
                self._discard(out, last, OVERSIZE, count=False)
        else:
            self._pending += last
            if len(self._pending) > MAX_ENCODED:
                self._discard(out, bytes(self._pending), OVERSIZE)
                self._pending.clear()
                self._skipping = True
        return out

    def _complete(self, out: list[Frame | Discard], part: bytes) -> None:
        """The bytes up to a delimiter: the end of a pending frame, or of a skipped run."""
        if self._skipping:
            self._skipping = False
            if part:
                self._discard(out, part, OVERSIZE, count=False)
            return
        wire = bytes(self._pending) + part if self._pending else part
        self._pending.clear()
        if not self._synced:
            self._synced = True
            if wire:
                self._discard(out, wire, SYNC)
            return
        if not wire:
            return  # two delimiters in a row: an empty frame, legal and ignored
        item = decode_wire(wire)
        if isinstance(item, Frame):
            self.frames += 1
            out.append(item)
        else:
            self._discard(out, item.data, item.reason)

    def _discard(
        self, out: list[Frame | Discard], data: bytes, reason: str, count: bool = True
    ) -> None:
        self.discarded_bytes += len(data)
        if count:
            if reason == CRC:
                self.crc_errors += 1
            elif reason == OVERSIZE:
                self.oversize += 1
            elif reason == TRUNCATED:
                self.truncated += 1
        out.append(Discard(data, reason))
