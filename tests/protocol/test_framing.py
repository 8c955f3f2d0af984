"""protocol.framing and protocol.frame_writer: frames on the wire, FrameWriter, and the
streaming Deframer (round trips under any chunking, never raising, counting and
resynchronising after noise, the push API), on both interpreters; FrameWriter and Deframer
allocate nothing on MicroPython."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from cobs import cobs as reference
from hypothesis import given
from hypothesis import strategies as st

from protocol import frame_writer, framing
from protocol.errors import FrameError

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]
messages = st.binary(min_size=1, max_size=framing.MAX_MESSAGE)


def _counters(d: framing.Deframer) -> list[int]:
    return [d.frames, d.crc_errors, d.oversize, d.truncated, d.discarded_bytes]


def _wire(frame: bytes) -> bytes:
    # A frame with any (possibly wrong) content, on the wire.
    return b"\x00" + reference.encode(frame) + b"\x00"


def test_spec_example_wire() -> None:
    # SPEC §2: noop with sequence number 7.
    wire = frame_writer.encode_frame(bytes.fromhex("86010007000180"))
    assert wire.hex() == "000386010207070180cb5982d400"


@given(messages)
def test_encode_frame_layout(message: bytes) -> None:
    wire = frame_writer.encode_frame(message)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert reference.decode(wire[1:-1]) == message + struct.pack("<I", zlib.crc32(message))
    writer = frame_writer.FrameWriter()
    n = writer.frame(bytearray(message + b"tail"), len(message))
    assert bytes(writer.buf[:n]) == wire
    assert bytes(writer.write(message)) == wire


@pytest.mark.parametrize("length", [0, framing.MAX_MESSAGE + 1])
def test_message_size_limits(length: int) -> None:
    with pytest.raises(FrameError):
        frame_writer.encode_frame(bytes(length))
    with pytest.raises(FrameError):
        frame_writer.FrameWriter().frame(bytes(length))


@given(st.lists(messages, max_size=6), st.lists(st.integers(1, 700), min_size=1, max_size=30))
def test_round_trip_under_any_chunking(msgs: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_writer.encode_frame(m) for m in msgs)
    d = framing.Deframer()
    got: list[bytes] = []
    pos = i = 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += d.feed(stream[pos : pos + step])
        pos += step
        i += 1
    assert got == msgs
    assert _counters(d) == [len(msgs), 0, 0, 0, 0]


@given(st.lists(messages, min_size=1, max_size=4))
def test_one_byte_at_a_time(msgs: list[bytes]) -> None:
    stream = b"".join(frame_writer.encode_frame(m) for m in msgs)
    d = framing.Deframer()
    got = [m for b in stream for m in d.feed(bytes([b]))]
    assert got == msgs


@given(st.binary(max_size=3000), st.integers(1, 500))
def test_any_stream_never_raises(stream: bytes, chunk: int) -> None:
    d = framing.Deframer()
    got = []
    for i in range(0, len(stream), chunk):
        got += d.feed(stream[i : i + chunk])
    assert d.frames == len(got)
    assert all(1 <= len(m) <= framing.MAX_MESSAGE for m in got)
    assert d.discarded_bytes <= len(stream)


@given(st.binary(max_size=400), messages, st.binary(max_size=400))
def test_resynchronises_after_noise(before: bytes, message: bytes, after: bytes) -> None:
    # Whatever precedes it, a frame that starts with its delimiter is received.
    d = framing.Deframer()
    got = d.feed(before) + d.feed(frame_writer.encode_frame(message)) + d.feed(after)
    assert message in got


@given(messages, st.data())
def test_corrupt_byte_is_dropped_and_counted(message: bytes, data: Any) -> None:
    wire = bytearray(frame_writer.encode_frame(message))
    i = data.draw(st.integers(1, len(wire) - 2))
    wire[i] = data.draw(st.integers(1, 255).filter(lambda b: b != wire[i]))
    d = framing.Deframer()
    nxt = frame_writer.encode_frame(b"next")
    got = d.feed(bytes(wire) + nxt)
    assert got == [b"next"]
    assert d.crc_errors + d.truncated == 1
    assert d.discarded_bytes == len(wire) - 2


def test_counters() -> None:
    good = frame_writer.encode_frame(b"ok")
    bad_crc = _wire(b"abc" + b"\x00\x00\x00\x00")
    short = _wire(b"abcd")  # 4 bytes: a CRC without a message
    cut = b"\x00\x05\x01\x02\x00"  # a block whose code points past the end
    over = _wire(bytes(range(1, 256)) * 5)  # 1275 decoded bytes
    d = framing.Deframer()
    stream = b"noise" + good + bad_crc + b"\x00\x00" + short + cut + over + good
    assert d.feed(stream) == [b"ok", b"ok"]
    assert _counters(d) == [
        2, 1, 1, 2,
        5 + (len(bad_crc) - 2) + (len(short) - 2) + 3 + (len(over) - 2),
    ]


def test_max_message_passes_and_one_more_byte_is_oversize() -> None:
    biggest = bytes(range(256)) * 3 + bytes(range(252))
    assert len(biggest) == framing.MAX_MESSAGE
    d = framing.Deframer()
    assert d.feed(frame_writer.encode_frame(biggest)) == [biggest]
    too_big = biggest + b"x"
    frame = too_big + struct.pack("<I", zlib.crc32(too_big))
    assert d.feed(_wire(frame) + frame_writer.encode_frame(b"after")) == [b"after"]
    assert d.oversize == 1


def test_push_api() -> None:
    # The node's loop: messages land in d.buf, d.pos says where to continue.
    frames = frame_writer.encode_frame(b"one") + frame_writer.encode_frame(b"two")
    stream = bytearray(b"xx" + frames + b"\x00\x07")
    d = framing.Deframer()
    got = []
    n = d.push(stream, 0, len(stream))
    while n:
        got.append(bytes(d.buf[:n]))
        n = d.push(stream, d.pos, len(stream))
    assert got == [b"one", b"two"]
    assert d.pos == len(stream)
    rest = frame_writer.encode_frame(b"three")
    # the partial frame "00 07" is completed by nothing: "07" then 00 -> a truncated frame
    assert d.feed(rest[1:]) == []
    assert d.truncated == 1
    with pytest.raises(FrameError):
        d.push(stream, 5, 2)


def test_reset_drops_a_partial_frame() -> None:
    wire = frame_writer.encode_frame(b"hello")
    d = framing.Deframer()
    assert d.feed(wire[:5]) == []
    d.reset()
    assert d.discarded_bytes == 4
    assert d.feed(wire[5:] + wire) == [b"hello"]


def _deframe_reqs() -> list[dict[str, Any]]:
    rng = random.Random(2)
    msgs = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 3, 254, 255, 700, 1020)]
    stream = b"junk" + b"".join(frame_writer.encode_frame(m) for m in msgs)
    stream += _wire(b"bad crc!") + b"\x00\x00" + _wire(bytes(1100))
    stream += frame_writer.encode_frame(b"z")
    return [{"op": "deframe", "hex": stream.hex(), "chunk": c} for c in (1, 3, 64, 5000)]


@pytest.mark.parametrize("req", _deframe_reqs(), ids=lambda r: f"chunk{r['chunk']}")
def test_deframe_vectors(req: dict[str, Any], answer: AnswerFn) -> None:
    d = framing.Deframer()
    expected = [m.hex() for m in d.feed(bytes.fromhex(req["hex"]))]
    assert answer(req) == {"ok": expected, "counters": _counters(d)}
    assert len(expected) == 7 and d.crc_errors == 1 and d.oversize == 1


@pytest.mark.parametrize(
    "req", [{"op": "frame", "hex": h} for h in ("00", "86010007000180", "01" * 1020)],
    ids=["zero", "spec-noop", "max"],
)
def test_frame_vectors(req: dict[str, Any], answer: AnswerFn) -> None:
    wire = frame_writer.encode_frame(bytes.fromhex(req["hex"])).hex()
    assert answer(req) == {"ok": wire, "writer": wire}


def test_random_streams_on_both(on_both: Any) -> None:
    rng = random.Random(1024)
    reqs = []
    for _ in range(40):
        parts = []
        for _ in range(rng.randrange(6)):
            m = bytes(rng.choice([0, 1, rng.randrange(256)]) for _ in range(rng.randrange(1, 600)))
            w = bytearray(frame_writer.encode_frame(m))
            if rng.random() < 0.3:
                w[rng.randrange(len(w))] = rng.randrange(256)
            parts.append(bytes(w) + bytes(rng.randrange(256) for _ in range(rng.randrange(8))))
        reqs.append({"op": "deframe", "hex": b"".join(parts).hex(), "chunk": rng.randrange(1, 90)})
    cpython, micropython = on_both(reqs)
    assert micropython == cpython


@pytest.mark.micropython
@pytest.mark.parametrize("req", [{"op": "heap"}], ids=["heap_lock"])
def test_node_paths_allocate_nothing(req: dict[str, Any], micropython_batch: AnswerFn) -> None:
    # FrameWriter.frame, Deframer.push receiving a frame, crc32_append/check and
    # cobs.encode_into, each run under micropython.heap_lock() inside a function.
    got = micropython_batch(req)["ok"]
    assert {k: got[k] for k in ("frame_writer", "deframer", "crc_cobs")} == {
        "frame_writer": "ok", "deframer": "ok", "crc_cobs": "ok"}
