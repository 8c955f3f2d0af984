"""RFC 8949 Appendix A vectors on both interpreters: what the profile supports decodes to the
right value and re-encodes to the same bytes; the rest is rejected with DecodeError."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from mpy_vectors import tag  # tests/protocol is on sys.path (not a package)

from protocol import cbor

# (hex, value) for the items the profile supports (SPEC §4). Every one is already in
# deterministic encoding, so dumps(value) gives the same bytes back.
SUPPORTED: list[tuple[str, Any]] = [
    ("00", 0),
    ("01", 1),
    ("0a", 10),
    ("17", 23),
    ("1818", 24),
    ("1819", 25),
    ("1864", 100),
    ("1903e8", 1000),
    ("1a000f4240", 1000000),
    ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    ("3bffffffffffffffff", -18446744073709551616),
    ("20", -1),
    ("29", -10),
    ("3863", -100),
    ("3903e7", -1000),
    ("f90000", 0.0),
    ("f98000", -0.0),
    ("f93c00", 1.0),
    ("fb3ff199999999999a", 1.1),
    ("f93e00", 1.5),
    ("f97bff", 65504.0),
    ("fa47c35000", 100000.0),
    ("fa7f7fffff", 3.4028234663852886e38),
    ("fb7e37e43c8800759c", 1.0e300),
    ("f90001", 5.960464477539063e-8),
    ("f90400", 0.00006103515625),
    ("f9c400", -4.0),
    ("fbc010666666666666", -4.1),
    ("f4", False),
    ("f5", True),
    ("f6", None),
    ("40", b""),
    ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""),
    ("6161", "a"),
    ("6449455446", "IETF"),
    ("62225c", '"\\'),
    ("62c3bc", "\u00fc"),
    ("63e6b0b4", "\u6c34"),
    ("64f0908591", "\U00010151"),
    ("80", []),
    ("83010203", [1, 2, 3]),
    ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819", list(range(1, 26))),
    ("a0", {}),
    ("a201020304", {1: 2, 3: 4}),
    ("a26161016162820203", {"a": 1, "b": [2, 3]}),
    ("826161a161626163", ["a", {"b": "c"}]),
    ("a56161614161626142616361436164614461656145",
     {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}),
]

# (hex, why) for the items the profile rejects.
REJECTED: list[tuple[str, str]] = [
    ("c249010000000000000000", "bignum 2**64 (tag 2)"),
    ("c349010000000000000000", "bignum -2**64-1 (tag 3)"),
    ("f97c00", "Infinity (half)"),
    ("f97e00", "NaN (half)"),
    ("f9fc00", "-Infinity (half)"),
    ("fa7f800000", "Infinity (single)"),
    ("fa7fc00000", "NaN (single)"),
    ("faff800000", "-Infinity (single)"),
    ("fb7ff0000000000000", "Infinity (double)"),
    ("fb7ff8000000000000", "NaN (double)"),
    ("fbfff0000000000000", "-Infinity (double)"),
    ("f7", "undefined"),
    ("f0", "simple(16)"),
    ("f8ff", "simple(255)"),
    ("c074323031332d30332d32315432303a30343a30305a", "tag 0"),
    ("c11a514b67b0", "tag 1 (int)"),
    ("c1fb41d452d9ec200000", "tag 1 (float)"),
    ("d74401020304", "tag 23"),
    ("d818456449455446", "tag 24"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", "tag 32"),
    ("5f42010243030405ff", "indefinite byte string"),
    ("7f657374726561646d696e67ff", "indefinite text string"),
    ("9fff", "indefinite empty array"),
    ("9f018202039f0405ffff", "indefinite arrays"),
    ("9f01820203820405ff", "indefinite outer array"),
    ("83018202039f0405ff", "indefinite inner array"),
    ("83019f0203ff820405", "indefinite middle array"),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", "indefinite 25 items"),
    ("bf61610161629f0203ffff", "indefinite maps"),
    ("826161bf61626163ff", "indefinite inner map"),
    ("bf6346756ef563416d7421ff", "indefinite map"),
]

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]


def _loads(h: str) -> dict[str, Any]:
    return {"op": "loads", "hex": h}


@pytest.mark.parametrize(
    ("req", "value"), [(_loads(h), v) for h, v in SUPPORTED], ids=[h for h, _ in SUPPORTED]
)
def test_supported_vector_decodes(req: dict[str, Any], value: Any, answer: AnswerFn) -> None:
    assert answer(req) == {"ok": tag(value)}


@pytest.mark.parametrize(
    ("req", "hexstr"),
    [({"op": "dumps", "value": tag(v)}, h) for h, v in SUPPORTED],
    ids=[h for h, _ in SUPPORTED],
)
def test_supported_vector_encodes(req: dict[str, Any], hexstr: str, answer: AnswerFn) -> None:
    assert answer(req) == {"ok": hexstr}


@pytest.mark.parametrize(("hexstr", "value"), SUPPORTED, ids=[h for h, _ in SUPPORTED])
def test_supported_vector_reencodes(hexstr: str, value: Any) -> None:
    data = bytes.fromhex(hexstr)
    assert cbor.dumps(value) == data
    assert cbor2.dumps(value, canonical=True) == data
    decoded = cbor.loads(data)
    assert decoded == value
    if isinstance(value, float):
        assert math.copysign(1.0, decoded) == math.copysign(1.0, value)


@pytest.mark.parametrize(
    "req", [_loads(h) for h, _ in REJECTED], ids=[why for _, why in REJECTED]
)
def test_unsupported_vector_rejected(req: dict[str, Any], answer: AnswerFn) -> None:
    got = answer(req)
    assert got.get("error") == "DecodeError", got
    assert got["reason"]
