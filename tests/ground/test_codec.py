"""Ground message decoding: cbor2 plus the SPEC §4 profile and protocol.messages rules."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground import codec
from protocol import cbor as node_cbor


def test_decode_housekeeping() -> None:
    msg = codec.decode(cbor2.dumps([1, 2, 7, 1000, 1, [2, 3, 0xA08C4832, 1.5]]))
    assert msg == codec.Message(1, 2, 7, 1000, 1, [2, 3, 0xA08C4832, 1.5])


def test_encode_command_matches_the_node_codec() -> None:
    data = codec.encode_command(5, 2, [2])
    assert data == node_cbor.dumps([1, 0, 5, 0, 2, [2]])
    assert codec.decode(data).body == [2]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "not a CBOR item"),
        (cbor2.dumps({"a": 1}), "must be an array"),
        (cbor2.dumps([2, 2, 0, 0, 1, []]), "version"),
        (cbor2.dumps([1, 2, 0, 0, 1]), "6 items"),
        (cbor2.dumps([1, 9, 0, 0, 1, []]), "kind"),
        (cbor2.dumps([1, 2, 0, 0, 1, [float("nan")]]), "NaN"),
        (cbor2.dumps([1, 2, 0, 0, 1, [cbor2.CBORTag(99, 1)]]), "tag"),
        (cbor2.dumps([1, 2, 0, 0, 1, [cbor2.undefined]]), "unsupported"),
        (cbor2.dumps([1, 1, 0, 0, 1, [1, 9, 0, None]]), "stage"),
        (cbor2.dumps([1, 3, 0, 0, 1, [1, 1]]), "event body"),
        (cbor2.dumps([1, 2, 0, 0, 1, [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]), "nesting"),
    ],
)
def test_decode_rejects_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeFailure, match=reason) as info:
        codec.decode(data)
    assert isinstance(info.value, ValueError)


def test_names() -> None:
    assert codec.reason_name(18) == "INVALID_TRANSITION"
    assert codec.stage_name(1) == "rejected"
    assert codec.kind_name(2) == "housekeeping"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (cbor2.dumps([1, 2, 0, 0, 1, [1]]) + b"\x01", "1 trailing bytes"),
        (cbor2.dumps([1, 2, 0, 0, 1, [1]])[:-1], "not a CBOR item"),
        (b"\x86\x01\x02\x00\x00\x01\x81\xc2\x41\x01", "tag"),  # a bignum 1
        (b"\x86\x01\x02\x00\x00\x01\x81\xd9\xd9\xf7\x01", "tag"),  # self-described 1
        (b"\x86\x01\x02\x00\x00\x01\x9f\x01\xff", "not a CBOR item"),  # indefinite body
        (
            cbor2.dumps([1, 4, 0, 0, 1, [1.0]], canonical=True).replace(
                b"\xf9\x3c\x00", b"\xf9\x7e\x00"
            ),
            "NaN",
        ),
    ],
)
def test_spec_profile_beyond_what_cbor2_checks(data: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeFailure, match=reason):
        codec.decode(data)


def test_a_bad_message_in_a_batch_spoils_only_itself() -> None:
    good = cbor2.dumps([1, 2, 5, 0, 1, [1, 2.5]])
    batch = [good, good + b"\x00", b"\xff", good, cbor2.dumps([1, 3, 6, 0, 2, [1, 1, [1, 2]]])]
    out = codec.decode_batch(batch)
    assert [type(x).__name__ for x in out] == [
        "Message",
        "DecodeFailure",
        "DecodeFailure",
        "Message",
        "Message",
    ]
    assert out[3] == codec.Message(1, 2, 5, 0, 1, [1, 2.5])


_scalar = st.one_of(st.integers(-(2**64), 2**64 - 1), st.floats(width=32), st.booleans())
_item = st.one_of(
    _scalar, st.none(), st.text(max_size=3), st.binary(max_size=3), st.lists(_scalar, max_size=2)
)


@settings(max_examples=400, deadline=None)
@given(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 7),
        st.integers(-1, 70000),
        st.integers(-1, 9),
        st.integers(-1, 9),
        st.lists(st.one_of(_scalar, _item), max_size=6),
    ),
)
def test_fast_path_agrees_with_the_general_rules(fields: tuple[Any, ...]) -> None:
    """decode_batch's housekeeping shortcut accepts exactly what the full checks accept."""
    obj = list(fields)
    try:
        data = cbor2.dumps(obj, canonical=True)
    except Exception:
        return
    try:
        expected: object = codec._message(cbor2.loads(data))
    except codec.DecodeFailure:
        expected = codec.DecodeFailure
    got = codec.decode_batch([data])[0]
    if expected is codec.DecodeFailure:
        assert isinstance(got, codec.DecodeFailure)
    else:
        assert got == expected
