"""Ground message decoding: cbor2 plus the SPEC §4 profile and protocol.messages rules."""

from __future__ import annotations

import cbor2
import pytest

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
