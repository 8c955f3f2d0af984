"""protocol.cobs: golden vectors on both interpreters, agreement with the ``cobs`` package,
round trips, encode_into, and rejection of malformed input (FrameError only)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from cobs import cobs as reference
from hypothesis import given
from hypothesis import strategies as st

from protocol import cobs
from protocol.errors import FrameError

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]

# (data, encoding): the examples of Cheshire and Baker's paper and Wikipedia, plus block edges.
GOLDEN = [
    ("", "01"),
    ("00", "0101"),
    ("0000", "010101"),
    ("001100", "01021101"),
    ("11220033", "03112202 33"),
    ("11223344", "0511223344"),
    ("11000000", "02110101 01"),
    ("01" * 254, "ff" + "01" * 254),
    ("01" * 255, "ff" + "01" * 254 + "0201"),
    ("01" * 253 + "00", "fe" + "01" * 253 + "01"),
    ("01" * 254 + "00", "ff" + "01" * 254 + "0101"),
    ("00" + "01" * 254, "01ff" + "01" * 254),
]
GOLDEN = [(d, e.replace(" ", "")) for d, e in GOLDEN]


def _ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [d[:12] + (f"..{len(d) // 2}B" if len(d) > 12 else "") or "empty" for d, _ in pairs]


@pytest.mark.parametrize(
    ("req", "encoded"), [({"op": "cobs", "hex": d}, e) for d, e in GOLDEN], ids=_ids(GOLDEN)
)
def test_golden(req: dict[str, Any], encoded: str, answer: AnswerFn) -> None:
    assert answer(req) == {"ok": encoded, "into": encoded, "back": req["hex"]}
    assert reference.encode(bytes.fromhex(req["hex"])).hex() == encoded


@given(st.binary(max_size=2000))
def test_matches_reference_and_round_trips(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert encoded == reference.encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= cobs.max_encoded_size(len(data))
    assert cobs.decode(encoded) == data


@given(st.lists(st.sampled_from([0, 1, 0xFF]), max_size=800).map(bytes))
def test_zero_heavy_data_round_trips(data: bytes) -> None:
    assert cobs.decode(cobs.encode(data)) == data
    assert cobs.encode(data) == reference.encode(data)


@given(st.binary(max_size=600), st.integers(0, 5), st.integers(0, 5))
def test_encode_into_offsets(data: bytes, src_pad: int, dst_start: int) -> None:
    src = bytearray(b"\xaa" * src_pad + data + b"\xbb")
    dst = bytearray(dst_start + cobs.max_encoded_size(len(data)))
    end = cobs.encode_into(src, dst, dst_start, src_pad, src_pad + len(data))
    assert bytes(dst[dst_start:end]) == reference.encode(data)
    assert end - dst_start <= cobs.max_encoded_size(len(data))
    assert cobs.encode_into(memoryview(src), dst, dst_start, src_pad, src_pad + len(data)) == end


def test_encode_into_rejects_a_short_destination() -> None:
    with pytest.raises(FrameError):
        cobs.encode_into(b"\x01" * 300, bytearray(301))
    with pytest.raises(FrameError):
        cobs.encode_into(b"abc", bytearray(10), 0, 2, 1)


@pytest.mark.parametrize(
    "req",
    [{"op": "cobs_decode", "hex": h} for h in ("0300", "03aa", "ff" + "01" * 10, "0211000100")],
    ids=["zero-in-block", "block-past-end", "ff-past-end", "zero-code"],
)
def test_decode_rejects_malformed(req: dict[str, Any], answer: AnswerFn) -> None:
    assert answer(req)["error"] == "FrameError"


@given(st.binary(max_size=600))
def test_decode_raises_only_frame_error(data: bytes) -> None:
    try:
        decoded = cobs.decode(data)
    except FrameError as e:
        assert e.args[0]
        with pytest.raises(Exception):  # noqa: B017 - the reference rejects it too
            reference.decode(data)
    else:
        assert decoded == reference.decode(data)


def test_random_corpus_on_both(on_both: Any) -> None:
    rng = random.Random(8949)
    reqs = []
    for _ in range(150):
        n = rng.choice([0, 1, 2, 253, 254, 255, 508, 509, rng.randrange(1100)])
        data = bytes(rng.choice([0, 0, 1, 0xFF, rng.randrange(256)]) for _ in range(n))
        reqs.append({"op": "cobs", "hex": data.hex()})
        reqs.append({"op": "cobs_decode", "hex": bytes(rng.randrange(4) for _ in range(n)).hex()})
    cpython, micropython = on_both(reqs)
    assert micropython == cpython
    assert not [a for a in cpython if "crash" in a]
