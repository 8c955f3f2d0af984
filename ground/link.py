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

from protocol.crc import crc32

MAX_FRAME: Final = 1024  # decoded frame: message + CRC (SPEC §2)
CRC_SIZE: Final = 4
# COBS adds at most one byte per 254, plus one.
MAX_ENCODED: Final = MAX_FRAME + MAX_FRAME // 254 + 1

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
        body = cobs.decode(wire)
    except cobs.DecodeError:
        return Discard(wire, TRUNCATED)
    if len(body) > MAX_FRAME:
        return Discard(wire, OVERSIZE)
    if len(body) < CRC_SIZE + 1:
        return Discard(wire, TRUNCATED)
    message = body[:-CRC_SIZE]
    if crc32(message) != int.from_bytes(body[-CRC_SIZE:], "little"):
        return Discard(wire, CRC)
    return Frame(wire, message)


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
        # Every part but the last ended at a delimiter.
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if self._skipping:
                if part:
                    self._discard(out, part, OVERSIZE, count=False)
                if not last:
                    self._skipping = False
                continue
            if last:
                self._pending += part
                if len(self._pending) > MAX_ENCODED:
                    self._discard(out, bytes(self._pending), OVERSIZE)
                    self._pending.clear()
                    self._skipping = True
                continue
            wire = bytes(self._pending) + part if self._pending else part
            self._pending.clear()
            if not self._synced:
                self._synced = True
                if wire:
                    self._discard(out, wire, SYNC)
                continue
            if not wire:
                continue  # two delimiters in a row: an empty frame, legal and ignored
            item = decode_wire(wire)
            if isinstance(item, Frame):
                self.frames += 1
                out.append(item)
            else:
                self._discard(out, item.data, item.reason)
        return out

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
