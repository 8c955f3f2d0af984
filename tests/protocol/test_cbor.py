"""protocol.cbor: byte-for-byte agreement with cbor2 (canonical) both ways, round trips, the
strict bounded decoder (DecodeError only, whatever the bytes), the Encoder and Decoder APIs,
and the same vectors and fuzz corpora on MicroPython."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpy_vectors import tag  # tests/protocol is on sys.path (not a package)

from protocol import cbor
from protocol.errors import DecodeError, EncodeError

AnswerFn = Callable[[dict[str, Any]], dict[str, Any]]

ints = st.integers(-(2**64), 2**64 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
keys = st.one_of(ints, st.text(max_size=8))
leaves = st.one_of(
    st.none(), st.booleans(), ints, finite, st.text(max_size=24), st.binary(max_size=24)
)
values = st.recursive(
    leaves,
    lambda c: st.one_of(st.lists(c, max_size=6), st.dictionaries(keys, c, max_size=5)),
    max_leaves=40,
)
# what the node sends: floats already in single precision
values32 = st.recursive(
    st.one_of(
        st.none(), st.booleans(), ints, st.floats(width=32, allow_nan=False, allow_infinity=False)
    ),
    lambda c: st.lists(c, max_size=6),
    max_leaves=30,
)


def canonical(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def same(a: Any, b: Any) -> bool:
    """Equal, with floats compared by their bits (so -0.0 != 0.0)."""
    return canonical(a) == canonical(b) and a == b


# --- agreement with cbor2 -------------------------------------------------------------------


@given(values)
def test_dumps_is_cbor2_canonical(value: Any) -> None:
    data = cbor.dumps(value)
    assert data == canonical(value)
    assert same(cbor2.loads(data), value)


@given(values)
def test_loads_reads_cbor2(value: Any) -> None:
    assert same(cbor.loads(canonical(value)), value)
    assert same(cbor.loads(cbor.dumps(value)), value)


@given(finite)
def test_general_float_is_shortest_exact(x: float) -> None:
    data = cbor.dumps(x)
    assert data == canonical(x)
    assert struct.pack(">d", cbor.loads(data)) == struct.pack(">d", x)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_single_floats_agree(x: float) -> None:
    enc = cbor.Encoder()
    enc.float32(x)
    assert enc.getvalue() == canonical(x)
    assert cbor.dumps(x, single=True) == canonical(x)


@given(st.floats(allow_nan=False, allow_infinity=False, max_value=3.4e38, min_value=-3.4e38))
def test_float32_rounds_like_struct(x: float) -> None:
    rounded = struct.unpack(">f", struct.pack(">f", x))[0]
    enc = cbor.Encoder()
    enc.float32(x)
    assert enc.getvalue() == canonical(rounded)


# --- the decoder is strict and raises only DecodeError ------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        value = cbor.loads(data)
    except DecodeError as e:
        assert isinstance(e.args[0], str) and e.args[0]
    else:
        assert same(cbor2.loads(data), value)


@given(values, st.data())
def test_mutated_encodings_raise_only_decode_error(value: Any, data: Any) -> None:
    buf = bytearray(cbor.dumps(value))
    for _ in range(data.draw(st.integers(1, 3))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = cbor.loads(bytes(buf))
    except DecodeError:
        return
    assert same(cbor2.loads(bytes(buf)), decoded)


@given(values)
def test_every_truncation_is_rejected(value: Any) -> None:
    data = cbor.dumps(value)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            cbor.loads(data[:n])
    with pytest.raises(DecodeError, match="trailing"):
        cbor.loads(data + b"\x00")


def _nested(depth: int) -> bytes:
    return b"\x81" * (depth - 1) + b"\x80"


REJECT = {
    "reserved-ai-28": "1c",
    "reserved-ai-29": "3d",
    "reserved-ai-30": "5e",
    "indefinite-bytes": "5f4101ff",
    "indefinite-array": "9f01ff",
    "break": "ff",
    "undefined": "f7",
    "simple-0": "e0",
    "simple-19": "f3",
    "simple-24": "f820",
    "tag": "c001",
    "tag-55799": "d9d9f701",
    "nan-half": "f97e01",
    "inf-single": "faff800000",
    "nan-double": "fb7ff0000000000001",
    "duplicate-int-key": "a201010102",
    "duplicate-text-key": "a2616101616102",
    "bytes-key": "a1410101",
    "array-key": "a18001",
    "float-key": "a1f93c0001",
    "overlong-utf8": "62c080",
    "surrogate-utf8": "63eda080",
    "above-10ffff": "64f4908080",
    "lone-continuation": "6180",
    "cut-utf8": "62e282",
    "truncated-head": "19 01",
    "truncated-string": "4301",
    "array-header-only": "8301",
    "depth-17": _nested(17).hex(),
    "map-depth-17": ("a100" * 17) + "00",  # maps count towards the nesting limit too
    "mixed-depth-17": ("81a100" * 8) + "8100",
    "items-513": "82" + "98ff" + "00" * 255 + "98ff" + "00" * 255,
    "array-257": "990101" + "00" * 257,
    "map-65": "b841" + "".join(f"18{i:02x}00" for i in range(65)),
    "string-1021": "5903fd" + "00" * 1021,
    "huge-declared-array": "9b" + "ff" * 8,
    "huge-declared-string": "5bffffffffffffffff",
}


@pytest.mark.parametrize(
    "req", [{"op": "loads", "hex": h.replace(" ", "")} for h in REJECT.values()], ids=list(REJECT)
)
def test_rejections(req: dict[str, Any], answer: AnswerFn) -> None:
    got = answer(req)
    assert got.get("error") == "DecodeError", got
    assert got["reason"]


ACCEPT = {
    "depth-16": (_nested(16).hex(), [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]),
    "items-512": ("82" + "98ff" + "00" * 255 + "98fe" + "00" * 254, [[0] * 255, [0] * 254]),
    "array-256": ("990100" + "00" * 256, [0] * 256),
    "string-1020": ("5903fc" + "61" * 1020, b"a" * 1020),
    "map-text-and-int": ("a201f66161f5", {1: None, "a": True}),
    "non-shortest-int": ("1b0000000000000001", 1),
    "four-byte-utf8": ("64f09f9a80", "\U0001f680"),
    "negative-64": ("3b7fffffffffffffff", -(2**63)),
}


@pytest.mark.parametrize(
    ("req", "value"),
    [({"op": "loads", "hex": h}, v) for h, v in ACCEPT.values()],
    ids=list(ACCEPT),
)
def test_acceptances(req: dict[str, Any], value: Any, answer: AnswerFn) -> None:
    assert answer(req) == {"ok": tag(value)}


def test_limits_are_parameters() -> None:
    with pytest.raises(DecodeError, match="nesting"):
        cbor.loads(_nested(3), max_depth=2)
    with pytest.raises(DecodeError, match="items"):
        cbor.loads(bytes.fromhex("83010203"), max_items=3)
    with pytest.raises(DecodeError, match="long"):
        cbor.loads(bytes.fromhex("43010203"), max_string=2)


@given(st.binary(max_size=40))
def test_utf8_validator_agrees_with_cpython(data: bytes) -> None:
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert cbor._utf8_valid(data, 0, len(data)) is valid


# --- Encoder ---------------------------------------------------------------------------------


def test_encoder_typed_writes() -> None:
    enc = cbor.Encoder(64)
    enc.array(9)
    enc.uint(0)
    enc.uint(500)
    enc.int(-500)
    enc.bool(True)
    enc.null()
    enc.float32(3.3)
    enc.float(1.1)
    enc.bytes(b"\x01")
    enc.text("ü")
    assert enc.getvalue().hex() == "89" "00" "1901f4" "3901f3" "f5" "f6" "fa40533333" \
        "fb3ff199999999999a" "4101" "62c3bc"
    assert enc.length == enc.pos == len(enc.getvalue())
    assert bytes(enc.view()) == enc.getvalue()
    enc.reset()
    enc.map(1)
    enc.text("a")
    enc.extend([1, 2.5, None])
    assert enc.getvalue().hex() == "a1616101f94100f6"


@given(st.lists(values32, max_size=5), st.booleans())
def test_extend_writes_items(items: list[Any], single: bool) -> None:
    enc = cbor.Encoder(64, single=single, grow=True)
    enc.array(len(items))
    enc.extend(items)
    assert enc.getvalue() == cbor.dumps(items, single=single)


@given(values32, st.integers(0, 80))
def test_a_full_buffer_raises_and_rolls_back(value: Any, size: int) -> None:
    enc = cbor.Encoder(size + 3)
    enc.uint(7)
    try:
        enc.item(value)
    except EncodeError as e:
        assert "full" in e.args[0]
        assert enc.getvalue() == b"\x07"
    else:
        assert enc.getvalue() == b"\x07" + cbor.dumps(value, single=True)


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        ("uint", -1), ("uint", 2**64), ("int", -(2**64) - 1), ("int", 2**64),
        ("float32", math.nan), ("float32", math.inf), ("float32", 1e39), ("float", -math.inf),
        ("item", 2**64), ("item", math.nan), ("item", 1e39), ("item", {1.5: 1}),
        ("item", {b"": 1}), ("item", {1, 2}), ("item", object()), ("item", "\ud800"),
        ("item", [[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]),
    ],
)
def test_encode_errors(call: str, arg: Any) -> None:
    enc = cbor.Encoder(64)
    with pytest.raises(EncodeError):
        getattr(enc, call)(arg)
    assert enc.pos == 0


# Encodings that end in a float and fill the buffer exactly: the float's scratch bytes (a single
# is packed before it may shrink to a half, a double before it may shrink) must not count.
_FITS = [
    ("float32", 1.5, True), ("float32", 3.3, True), ("float32", 1.5, False),
    ("float", 1.5, False), ("float", 3.3, False), ("float", 1.1, False),
    ("item", [1, 1.5], True), ("item", [1, 3.3], True), ("item", [1, 1.5], False),
    ("item", [1, 1.1], False), ("item", [[1.5]], True),
    # a bulk record of 94-96 bytes ending in a half float (Encoder(96) on the node)
    *[("item", [b"x" * (n - 5), 1.5], True) for n in (94, 95, 96)],
]


def _fit_req(call: str, value: Any, single: bool, size: int) -> dict[str, Any]:
    return {"op": "fit", "call": call, "value": tag(value), "single": single, "size": size}


def _encoded(call: str, value: Any, single: bool) -> bytes:
    enc = cbor.Encoder(64, single=single, grow=True)
    getattr(enc, call)(value)
    return enc.getvalue()


@pytest.mark.parametrize(
    "req",
    [_fit_req(c, v, s, len(_encoded(c, v, s)) + extra) for c, v, s in _FITS for extra in (0, -1)],
)
def test_an_encoding_ending_in_a_float_fits_exactly(req: dict[str, Any], answer: AnswerFn) -> None:
    from mpy_vectors import untag

    want = _encoded(req["call"], untag(req["value"]), req["single"])
    got = answer(req)
    if req["size"] == len(want):  # it fits: written, the same bytes as with room to spare
        assert got == {"ok": want.hex()}
    else:  # one byte short: refused, nothing half written
        assert got == {"error": "EncodeError", "reason": "encoder buffer full"}


def test_a_float_that_fits_leaves_the_encoder_usable() -> None:
    enc = cbor.Encoder(3)
    enc.float32(1.5)
    assert enc.getvalue().hex() == "f93e00"
    with pytest.raises(EncodeError, match="full"):
        enc.null()
    assert enc.getvalue().hex() == "f93e00"


def test_cyclic_list_is_an_encode_error() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    with pytest.raises(EncodeError, match="nesting"):
        cbor.dumps(cyclic)


# --- Decoder -----------------------------------------------------------------------------------


def test_pull_decoder() -> None:
    data = bytearray(b"pad" + cbor.dumps([1, 0, 300, 0, 2, [-7, True, None, 1.5, b"x", "y", {}]]))
    dec = cbor.Decoder()
    dec.reset(data, 3)
    assert dec.array() == 6
    assert [dec.uint() for _ in range(5)] == [1, 0, 300, 0, 2]
    assert dec.array() == 7
    assert dec.int() == -7
    assert dec.bool() is True
    assert dec.peek() == 0xF6
    dec.null()
    assert dec.float() == 1.5
    assert dec.bytes() == b"x"
    assert dec.text() == "y"
    assert not dec.at_end
    assert dec.map() == 0
    assert dec.at_end and dec.peek() == -1
    dec.done()


@pytest.mark.parametrize(
    ("hexstr", "call"),
    [("20", "uint"), ("01", "array"), ("80", "map"), ("f6", "bool"), ("f5", "null"),
     ("01", "float"), ("", "uint"), ("", "float"), ("", "bool"), ("61", "text"),
     ("4101", "text"), ("6101", "bytes"), ("1c", "uint"), ("9f", "array")],
)
def test_pull_decoder_errors(hexstr: str, call: str) -> None:
    dec = cbor.Decoder()
    dec.reset(bytes.fromhex(hexstr))
    with pytest.raises(DecodeError):
        getattr(dec, call)()


def test_pull_decoder_trailing_and_budget() -> None:
    dec = cbor.Decoder(max_items=2)
    dec.reset(b"\x01\x02\x03")
    dec.uint()
    with pytest.raises(DecodeError, match="trailing"):
        dec.done()
    dec.uint()
    with pytest.raises(DecodeError, match="items"):
        dec.uint()


# --- MicroPython: the same values and fuzz corpora -------------------------------------------

VALUES = [
    0, 23, 24, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1,
    -1, -24, -25, -(2**31), -(2**63) - 1, -(2**64), 1.5, 1.1, -0.0, 65504.0, 65505.0,
    2.0**-24, 2.0**-25, 2.0**-149, 2.0**-1074, 1e300, 3.4028234663852886e38, 0.1,
    True, False, None, b"", b"\x00\xff", "", "ü\u6c34\U0001f680", [], [1, [2, [3]]],
    {"b": 1, "a": 2, 10: [], -1: {}, "aa": None, 100000: 1.5},
    [1, 2, 4711, 123456789, 1, [2, 7, 0x9A3F12C4, 87.25, 3.712, -12.5, 0.245, True, None]],
]


@pytest.mark.parametrize(
    "req",
    [{"op": "dumps", "value": tag(v), "single": s} for v in VALUES for s in (False, True)],
    ids=[f"{i}-{'single' if s else 'double'}" for i in range(len(VALUES)) for s in (0, 1)],
)
def test_dumps_vectors(req: dict[str, Any], answer: AnswerFn) -> None:
    from mpy_vectors import untag

    value = untag(req["value"])
    got = answer(req)
    if req["single"]:
        try:
            value = _round_floats(value)
        except OverflowError:  # beyond single precision: the node cannot send it
            assert got.get("error") == "EncodeError", got
            return
    assert got == {"ok": canonical(value).hex()}


def _round_floats(v: Any) -> Any:
    if isinstance(v, float):
        return struct.unpack(">f", struct.pack(">f", v))[0]
    if isinstance(v, list):
        return [_round_floats(x) for x in v]
    if isinstance(v, dict):
        return {k: _round_floats(x) for k, x in v.items()}
    return v


def _fuzz_corpus() -> list[dict[str, Any]]:
    rng = random.Random(7049)
    reqs = []
    valid = [cbor.dumps(v) for v in VALUES]
    for _ in range(400):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randrange(1, len(data) + 1)])
        reqs.append({"op": "loads", "hex": data.hex()})
    return reqs


def _random_value(rng: random.Random, depth: int, budget: list[int]) -> Any:
    # budget[0]: items left to create, so the values stay small however deep they go
    budget[0] -= 1
    roll = rng.random()
    if budget[0] > 0 and depth < 17 and roll < 0.4:
        width = min(budget[0], rng.choice([0, 1, 2, 5, 23, 24, 30]))
        return [_random_value(rng, depth + 1, budget) for _ in range(width)]
    if budget[0] > 3 and depth < 17 and roll < 0.45:
        return {rng.randrange(-30, 300): _random_value(rng, depth + 1, budget) for _ in range(3)}
    return rng.choice([
        rng.randrange(24), rng.randrange(256), rng.randrange(65536), rng.randrange(2**33),
        -rng.randrange(1, 30), -rng.randrange(1, 2**40), True, False, None, 1.5, 3.3, -0.0,
        65504.0, "t\u00fc", b"\x00\x01", 2.0**-149,
    ])


def _structured_corpus() -> list[dict[str, Any]]:
    # Valid nested arrays (the node's fast loads path on MicroPython), deep and wide ones
    # at the limits, and every one cut short or extended.
    rng = random.Random(1616)
    reqs = []
    for i in range(150):
        value = [_random_value(rng, 1 if i % 3 else 12, [rng.randrange(1, 80)])]
        data = cbor2.dumps(value, canonical=True)
        cut = data[: rng.randrange(len(data))]
        for sample in (data, cut, data + b"\x01"):
            reqs.append({"op": "loads", "hex": sample.hex()})
    for depth in (15, 16, 17):
        reqs.append({"op": "loads", "hex": (b"\x81" * (depth - 1) + b"\x81\x01").hex()})
    return reqs


def test_structured_corpus_agrees_on_both(on_both: Any) -> None:
    cpython, micropython = on_both(_structured_corpus())
    assert micropython == cpython
    assert sum("ok" in a for a in cpython) > 100
    assert all("ok" in a or a.get("error") == "DecodeError" for a in cpython)


def test_fuzz_corpus_agrees_on_both(on_both: Any) -> None:
    cpython, micropython = on_both(_fuzz_corpus())
    assert micropython == cpython
    assert all("ok" in a or a.get("error") == "DecodeError" for a in cpython)
    assert sum("ok" in a for a in cpython) > 20  # the corpus reaches the decoder's insides


@pytest.mark.micropython
@pytest.mark.parametrize("req", [{"op": "heap"}], ids=["heap_lock"])
def test_encoder_and_decoder_allocate_nothing(
    req: dict[str, Any], micropython_batch: AnswerFn
) -> None:
    # Encoder.item of a housekeeping-like packet (small and 32-bit ints, floats, bools,
    # null), the typed writes and extend(); Decoder.reset/array/uint/int/done on a command.
    got = micropython_batch(req)["ok"]
    assert {k: got[k] for k in ("encoder", "decoder")} == {"encoder": "ok", "decoder": "ok"}
