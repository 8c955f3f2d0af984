"""Single precision on the node (SPEC §4.1), identical on both interpreters.

A Pico's MicroPython has only binary32 floats; the Unix port and CPython have binary64. The
node rounds every float to single precision before it sends it, so these vectors fail if node
code relies on double precision anywhere on that path: a value only a double can hold must not
survive the float32 round trip, and both interpreters must produce the same bytes and read back
the same binary32 value."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mpy_vectors import tag  # tests/protocol is on sys.path (not a package)

from protocol import cbor
from protocol.errors import EncodeError

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]

# (value given to float32, encoding, value read back)
VECTORS: list[tuple[str, float, str, float]] = [
    ("3.3", 3.3, "fa40533333", 3.299999952316284),
    ("0.1", 0.1, "fa3dcccccd", 0.10000000149011612),
    ("1+2**-30", 1.0 + 2.0**-30, "f93c00", 1.0),
    ("2**24+1", 16777217.0, "fa4b800000", 16777216.0),
    ("tie-to-even-down", 1.0 + 2.0**-24, "f93c00", 1.0),
    ("tie-to-even-up", 1.0 + 3 * 2.0**-24, "fa3f800002", 1.0 + 2.0**-22),
    ("-0.0", -0.0, "f98000", -0.0),
    ("1.5", 1.5, "f93e00", 1.5),
    ("65504", 65504.0, "f97bff", 65504.0),
    ("65520", 65520.0, "fa477ff000", 65520.0),
    ("half-subnormal", 3 * 2.0**-24, "f90003", 3 * 2.0**-24),
    ("below-half-range", 2.0**-25, "fa33000000", 2.0**-25),
    ("single-subnormal", 2.0**-149, "fa00000001", 2.0**-149),
    ("underflow-to-zero", 1e-46, "f90000", 0.0),
    ("FLT_MAX", 3.4028234663852886e38, "fa7f7fffff", 3.4028234663852886e38),
    ("-12.5", -12.5, "f9ca40", -12.5),
    ("3.712", 3.712, "fa406d9168", 3.7119998931884766),
]


@pytest.mark.parametrize(
    ("req", "encoded", "back"),
    [({"op": "float32", "value": tag(x)}, e, b) for _, x, e, b in VECTORS],
    ids=[name for name, *_ in VECTORS],
)
def test_float32_vectors(req: dict[str, Any], encoded: str, back: float, answer: AnswerFn) -> None:
    assert answer(req) == {"ok": encoded, "back": tag(back)}


def test_double_only_values_do_not_survive() -> None:
    for _, x, _, back in VECTORS:
        single = struct.unpack(">f", struct.pack(">f", x))[0]
        assert back == single
        if single != x:  # it needed a double: the node must not send it unchanged
            enc = cbor.Encoder()
            enc.float32(x)
            assert cbor.loads(enc.getvalue()) != x


@pytest.mark.parametrize(
    "req",
    [{"op": "float32", "value": tag(x)} for x in (1e39, -1e39, float("inf"), float("nan"))],
    ids=["1e39", "-1e39", "inf", "nan"],
)
def test_float32_rejects_what_single_precision_cannot_hold(
    req: dict[str, Any], answer: AnswerFn
) -> None:
    assert answer(req)["error"] == "EncodeError"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-3.4e38, max_value=3.4e38))
def test_float32_reads_back_as_the_single_rounding(x: float) -> None:
    enc = cbor.Encoder()
    enc.float32(x)
    single = struct.unpack(">f", struct.pack(">f", x))[0]
    assert struct.pack(">d", cbor.loads(enc.getvalue())) == struct.pack(">d", single)
    assert enc.getvalue()[0] in (0xF9, 0xFA)  # never a double


@given(st.floats(width=16, allow_nan=False, allow_infinity=False))
def test_halves_are_written_as_halves(x: float) -> None:
    enc = cbor.Encoder()
    enc.float32(x)
    assert enc.getvalue() == b"\xf9" + struct.pack(">e", x)


def test_general_float_keeps_doubles() -> None:
    # dumps (the ground's and bulk's general path) keeps what only a double holds.
    assert cbor.dumps(3.3).hex() == "fb400a666666666666"
    assert cbor.dumps(3.3, single=True).hex() == "fa40533333"
    with pytest.raises(EncodeError):
        cbor.dumps(1e300, single=True)
