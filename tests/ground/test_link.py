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
