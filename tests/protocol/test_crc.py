"""protocol.crc: CRC-32/ISO-HDLC on both interpreters (binascii and the node's viper table),
the little-endian trailer, the residue check, and the errors it must catch: every single-bit
flip and every burst of up to 32 bits."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import crc

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]

CHECK = [
    ("", 0),
    (b"123456789".hex(), 0xCBF43926),  # the catalogue's check value
    ("00", 0xD202EF8D),
    ("ff" * 32, zlib.crc32(b"\xff" * 32)),
    ("86010007000180", 0xD48259CB),  # SPEC 1.1's noop, seq 7 -> trailer cb 59 82 d4
    ("8701000700018003", 0x8BC327C8),  # SPEC §2: noop, seq 7, boot 3 -> c8 27 c3 8b
]


@pytest.mark.parametrize(
    "req", [{"op": "crc", "hex": h} for h, _ in CHECK], ids=[h[:16] or "empty" for h, _ in CHECK]
)
def test_check_values(req: dict[str, Any], answer: AnswerFn) -> None:
    expected = dict(CHECK)[req["hex"]]
    assert answer(req) == {"ok": expected, "check": True, "le": struct.pack("<I", expected).hex()}


# A frame (SPEC §2's noop, bound to boot 3) and damaged trailers that each CRC byte must catch,
# on the node's viper check as on CPython's residue: every trailer byte compared, and the
# residue on all 32 bits.
CHECK_FRAMES = [
    ("8701000700018003c827c38b", True),
    ("8701000700018003c927c38b", False),  # first trailer byte off by one bit
    ("8701000700018003c826c38b", False),
    ("8701000700018003c827c28b", False),
    ("8701000700018003c827c38a", False),  # only the 4th trailer byte differs
    ("8701000700018003c827c30b", False),  # its top bit
    # trailers whose residue differs from CRC32_RESIDUE only in its top 8 bits (0x2044df1c,
    # 0xa144df1c): a check of 24 bits of the residue lets them through
    ("87010007000180030a4ac0b4", False),
    ("87010007000180031ba8f6d0", False),
    # each trailer byte one above and one below the CRC's: a check that compares a byte with
    # <= or >= instead of == lets one of the two through
    ("8701000700018003c727c38b", False),
    ("8701000700018003c828c38b", False),
    ("8701000700018003c827c48b", False),
    ("8701000700018003c827c38c", False),
]


@pytest.mark.parametrize("req", [{"op": "crc_check", "hex": h} for h, _ in CHECK_FRAMES],
                         ids=[h[16:] for h, _ in CHECK_FRAMES])
def test_check_compares_every_trailer_bit(req: dict[str, Any], answer: AnswerFn) -> None:
    assert answer(req) == {"check": dict(CHECK_FRAMES)[req["hex"]]}



# CRC-32's reflected nibble table (polynomial 0xEDB88320), then the register's initial value
# and final XOR: exactly 17 words (68 bytes), all the viper kernel reads
NIBBLE_TABLE = [0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
                0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C, 0xFFFFFFFF]


@pytest.mark.parametrize("req", [{"op": "crc_table"}], ids=["table"])
def test_the_table_is_17_words(req: dict[str, Any], answer: AnswerFn) -> None:
    assert answer(req) == {"ok": NIBBLE_TABLE}

def test_residue_constant() -> None:
    for message in (b"", b"a", b"123456789", bytes(range(256))):
        framed = message + struct.pack("<I", zlib.crc32(message))
        assert zlib.crc32(framed) == crc.CRC32_RESIDUE


@given(st.binary(max_size=1100), st.integers(0, 2**32 - 1))
def test_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc.crc32(data) == zlib.crc32(data)
    assert crc.crc32(data, start) == zlib.crc32(data, start)


@given(st.binary(max_size=300), st.integers(0, 4))
def test_append_and_check(data: bytes, offset: int) -> None:
    buf = bytearray(b"\x55" * offset + data + bytes(4))
    crc.crc32_append(buf, offset, offset + len(data))
    assert bytes(buf[offset + len(data) :]) == struct.pack("<I", zlib.crc32(data))
    assert crc.crc32_check(buf, offset, len(buf))


# The region bounds, on both interpreters (each branch has its own checks): every edge and one
# past it. "append" writes a CRC after start..end in a buffer of `size` bytes; "check" reads a
# message and its CRC in start..end of a view of `size` bytes (the runner puts a valid one there
# where it fits). With `pre`/`spare` bytes the view is a slice of a longer buffer, as a slice of
# a receive buffer is, and the frame reaches past the view: the node's viper check would read
# outside the view if a bound were not checked.
REGIONS = [
    # size, start, end, append, check, pre, spare
    (8, 0, 4, "ok", True, 0, 0),  # append: the CRC ends exactly at the buffer's end
    (8, 0, 5, "ValueError", True, 0, 0),  # one past it
    (8, 4, 4, "ok", False, 0, 0),  # append: an empty region
    (8, 4, 8, "ValueError", True, 0, 0),  # check: exactly a CRC, an empty message
    (8, 5, 4, "ValueError", False, 0, 0),  # end before start
    (8, 0, 0, "ok", False, 0, 0),  # start 0 is inside
    (8, -1, 4, "ValueError", False, 0, 0),  # start -1 is not
    (8, 0, 8, "ValueError", True, 0, 0),  # check: the message ends exactly at the view's end
    (8, 0, 9, "ValueError", False, 0, 0),  # one past it, though the bytes up to the end are a frame
    (8, 5, 8, "ValueError", False, 0, 0),  # 3 bytes: shorter than a CRC
    (8, -1, 8, "ValueError", False, 0, 0),
    (12, 1, 12, "ValueError", True, 0, 0),
    (8, 0, 9, "ValueError", False, 0, 4),  # a frame in 0..9, one byte past the view's end
    (8, 0, 8, "ValueError", True, 0, 4),
    (8, -1, 8, "ValueError", False, 1, 0),  # a frame in -1..8, one byte before the view
    (8, 0, 8, "ValueError", True, 1, 0),
]


@pytest.mark.parametrize(
    "req",
    [{"op": "crc_region", "size": n, "start": a, "end": b, "pre": p, "spare": x}
     for n, a, b, _, _, p, x in REGIONS],
    ids=[f"{n}-{a}-{b}-{p}-{x}" for n, a, b, _, _, p, x in REGIONS],
)
def test_region_bounds(req: dict[str, Any], answer: AnswerFn) -> None:
    expected = {(n, a, b, p, x): {"append": ap, "check": ck} for n, a, b, ap, ck, p, x in REGIONS}
    key = (req["size"], req["start"], req["end"], req["pre"], req["spare"])
    assert answer(req) == expected[key]


def test_region_checks() -> None:
    with pytest.raises(ValueError):
        crc.crc32_append(bytearray(5), 0, 2)
    assert not crc.crc32_check(bytearray(8), 0, 3)
    assert not crc.crc32_check(bytearray(8), 0, 9)


def _framed(message: bytes) -> int:
    return int.from_bytes(message + struct.pack("<I", zlib.crc32(message)), "little")


def _detects(bits: int, nbytes: int) -> bool:
    return not crc.crc32_check(bits.to_bytes(nbytes, "little"), 0, nbytes)


@pytest.mark.parametrize("size", [1, 8, 64, 300])
def test_every_single_bit_flip_is_caught(size: int) -> None:
    message = bytes(random.Random(size).randrange(256) for _ in range(size))
    frame = _framed(message)
    nbytes = size + 4
    assert not _detects(frame, nbytes)
    for bit in range(8 * nbytes):
        assert _detects(frame ^ (1 << bit), nbytes), bit


@pytest.mark.parametrize("size", [1, 40])
def test_every_burst_up_to_32_bits_is_caught(size: int) -> None:
    # At every position and length: the burst with every bit set, and one with random inner
    # bits (a burst of length L flips its first and last bit and any bits between).
    rng = random.Random(size)
    message = bytes(rng.randrange(256) for _ in range(size))
    frame = _framed(message)
    nbits = 8 * (size + 4)
    for length in range(1, 33):
        full = (1 << length) - 1
        edges = 1 | (1 << (length - 1))
        for start in range(nbits - length + 1):
            inner = rng.getrandbits(length) | edges
            for pattern in (full, inner):
                assert _detects(frame ^ (pattern << start), size + 4), (start, length)


@given(
    st.binary(min_size=1, max_size=200),
    st.integers(1, 32),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_any_burst_is_caught(message: bytes, length: int, inner: int, data: Any) -> None:
    nbytes = len(message) + 4
    start = data.draw(st.integers(0, 8 * nbytes - length))
    pattern = (inner & ((1 << length) - 1)) | 1 | (1 << (length - 1))
    assert _detects(_framed(message) ^ (pattern << start), nbytes)


def test_random_corpus_on_both(on_both: Any) -> None:
    # The node's viper CRC against binascii, over lengths around the table's word boundaries.
    rng = random.Random(32)
    reqs = [
        {"op": "crc", "hex": bytes(rng.randrange(256) for _ in range(n)).hex()}
        for n in [*range(0, 20), 255, 256, 1020, *(rng.randrange(1100) for _ in range(40))]
    ]
    cpython, micropython = on_both(reqs)
    assert micropython == cpython
    assert all(a["check"] for a in cpython)
