"""Ground framing: COBS + CRC-32, the deframer's frames and discards (SPEC §2, §3)."""

from __future__ import annotations

from binascii import crc32

import pytest
from cobs import cobs
from hypothesis import given
from hypothesis import strategies as st

from ground.link import (
    CRC,
    MAX_FRAME,
    OVERSIZE,
    SYNC,
    TRUNCATED,
    Deframer,
    Discard,
    Frame,
    decode_wire,
    encode_frame,
)


def test_encode_frame_layout() -> None:
    msg = b"\x86\x01\x00\x00\x00\x01\x80"
    wire = encode_frame(msg)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    body = cobs.decode(wire[1:-1])
    assert body == msg + crc32(msg).to_bytes(4, "little")


def test_back_to_back_frames_and_empty_frames() -> None:
    d = Deframer()
    out = d.feed(encode_frame(b"A") + b"\x00\x00" + encode_frame(b"B"))
    assert [f.message for f in out if isinstance(f, Frame)] == [b"A", b"B"]
    assert d.frames == 2 and d.discarded_bytes == 0


def test_joining_mid_stream_discards_up_to_the_first_delimiter() -> None:
    d = Deframer()
    out = d.feed(b"\r\n" + encode_frame(b"hello"))
    assert out[0] == Discard(b"\r\n", SYNC)
    assert isinstance(out[1], Frame) and out[1].message == b"hello"
    assert d.discarded_bytes == 2


def test_bad_crc_truncated_and_oversize_are_discarded_and_counted() -> None:
    d = Deframer(synced=True)
    good = encode_frame(b"payload")
    bad = bytearray(good)
    bad[3] ^= 0x40
    out = d.feed(bytes(bad) + b"\x00\x05\x01\x00" + b"\x01" * (MAX_FRAME + 20) + good)
    reasons = [x.reason for x in out if isinstance(x, Discard)]
    assert reasons == [CRC, TRUNCATED, OVERSIZE]
    assert isinstance(out[-1], Frame) and out[-1].message == b"payload"
    assert (d.crc_errors, d.truncated, d.oversize) == (1, 1, 1)
    assert d.discarded_bytes == sum(len(x.data) for x in out if isinstance(x, Discard))


def test_oversize_run_without_delimiter_is_bounded() -> None:
    d = Deframer(synced=True)
    for _ in range(10):
        d.feed(b"\x01" * 500)
    assert len(d._pending) < 1100  # never buffers more than a frame
    out = d.feed(b"\x00" + encode_frame(b"ok"))
    assert isinstance(out[-1], Frame)
    assert d.discarded_bytes == 5000


def test_message_too_large_to_encode() -> None:
    with pytest.raises(ValueError):
        encode_frame(bytes(MAX_FRAME))


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 64))
def test_any_chunking_gives_the_same_frames(messages: list[bytes], chunk: int) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    d = Deframer()
    out = []
    for i in range(0, len(stream), chunk):
        out += d.feed(stream[i : i + chunk])
    assert [f.message for f in out if isinstance(f, Frame)] == messages
    assert d.discarded_bytes == 0


def test_deframe_gives_the_same_as_columns() -> None:
    d = Deframer(synced=True)
    good = [encode_frame(bytes([i]) * (i + 1)) for i in range(4)]
    bad = bytearray(good[2])
    bad[2] ^= 1
    got = d.deframe(good[0] + good[1] + bytes(bad) + good[3] + b"\x07\x07")
    assert got.messages == [b"\x00", b"\x01\x01", b"\x03" * 4]
    assert got.wires == [good[0][1:-1], good[1][1:-1], good[3][1:-1]]
    assert got.discards == [(2, Discard(bytes(bad[1:-1]), CRC))]
    assert [type(x).__name__ for x in got.items()] == ["Frame", "Frame", "Discard", "Frame"]
    assert d.frames == 3 and d.crc_errors == 1


def _reference(stream: bytes) -> list[Frame | Discard]:
    """What a fresh Deframer must return for ``stream``, frame by frame (no oversize runs)."""
    first, *parts = stream.split(b"\x00")
    out: list[Frame | Discard] = [Discard(first, SYNC)] if first and parts else []
    return out + [decode_wire(part) for part in parts[:-1] if part]


def _corrupt(kind: int, message: bytes) -> bytes:
    wire = bytearray(encode_frame(message))
    if kind == 1:  # a bit flipped: CRC
        wire[1 + len(message) // 2] ^= 0x10 if wire[1 + len(message) // 2] != 0x10 else 0x20
    elif kind == 2:  # the last COBS block claims more bytes than follow: truncated
        wire[-2:] = b"\x09\x00"
    elif kind == 3:  # too short to hold a CRC
        wire = bytearray(b"\x00\x03\x01\x02\x00")
    elif kind == 4:  # noise between frames
        wire = bytearray(b"\x0d\x0a" + bytes(wire))
    return bytes(wire)


@given(
    st.lists(st.tuples(st.integers(0, 6), st.binary(min_size=1, max_size=60)), max_size=12),
    st.lists(st.integers(1, 200), min_size=1, max_size=8),
)
def test_damaged_streams_in_any_chunks(frames: list[tuple[int, bytes]], sizes: list[int]) -> None:
    """Good, damaged and empty frames and noise, fed in chunks of any size: the deframer
    returns what checking each frame alone gives, in order, and counts it."""
    stream = b"\x05\x05" + b"".join(_corrupt(kind, message) for kind, message in frames)
    d = Deframer()
    out: list[Frame | Discard] = []
    i = 0
    while i < len(stream):
        size = sizes[i % len(sizes)]
        out += d.feed(stream[i : i + size])
        i += size
    assert out == _reference(stream)
    discards = [x for x in out if isinstance(x, Discard)]
    assert d.frames == len(out) - len(discards)
    assert d.discarded_bytes == sum(len(x.data) for x in discards)
    assert d.crc_errors == sum(x.reason == CRC for x in discards)
    assert d.truncated == sum(x.reason == TRUNCATED for x in discards)
