"""Ground message decoding: cbor2 plus the SPEC §4 profile and protocol.messages rules."""

from __future__ import annotations

from itertools import pairwise
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
    data = codec.encode_command(5, 2, [2], 3)
    assert data == node_cbor.dumps([1, 0, 5, 0, 2, [2], 3])
    assert codec.decode(data).body == [2]
    assert codec.encode_command(5, 2**33 + 1, [], 2**64 - 1) == bytes.fromhex(
        "87010005001b0000000200000001801bffffffffffffffff")
    with pytest.raises(codec.DecodeFailure, match="7 items"):
        codec.decode(node_cbor.dumps([1, 0, 5, 0, 2, [2]]))


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


def _fields(body_item: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    """[version, kind, seq, time, id, body], each around the edges of its valid range."""
    return st.tuples(
        st.integers(0, 2),
        st.integers(0, 7),
        st.integers(-1, 70000),
        st.integers(-1, 9),
        st.integers(-1, 9),
        st.lists(body_item, max_size=6),
    )


@settings(max_examples=400, deadline=None)
@given(_fields(st.one_of(_scalar, _item)))
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


# --- batches decoded together: every result as the message-by-message path gives it ----------


def _each(batch: list[bytes]) -> list[codec.Message | codec.DecodeFailure]:
    """The message-by-message path, with its exact reasons (a message cut short and completed
    by the next runs past its end, where alone it is not a CBOR item)."""
    return codec._decode_each(batch)


def _assert_same(got: list[Any], expected: list[Any]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if isinstance(e, codec.DecodeFailure):
            assert isinstance(g, codec.DecodeFailure) and g.reason == e.reason
        else:
            assert type(g) is codec.Message and g == e


def _hk(seq: int = 5, ident: int = 1, body: list[Any] | None = None) -> bytes:
    return codec.encode(codec.KIND_HOUSEKEEPING, seq, 1000 + seq, ident, body or [1, 2.5, True])


_EVENT = codec.encode(codec.KIND_EVENT, 9, 1000, 2, [3, 1, [1, 2]])


def test_a_housekeeping_batch_decodes_as_columns() -> None:
    batch = [_hk(1), _hk(2, 3, [0.5] * 14), _hk(70000 % 65536, 10, [1, -2, 3.0, False, 2**64 - 1])]
    decoded = codec.decode_columns(batch)
    assert isinstance(decoded, codec.Columns)
    assert decoded.ids == [1, 3, 10] and decoded.seqs == [1, 2, 4464]
    assert decoded.messages() == _each(batch)
    _assert_same(codec.decode_batch(batch), _each(batch))


def test_a_mixed_batch_decodes_message_by_message() -> None:
    batch = [_hk(1), _EVENT, _hk(2), codec.encode(codec.KIND_PARAMETER, 3, 0, 4, [1.5])]
    decoded = codec.decode_columns(batch)
    assert isinstance(decoded, list)
    _assert_same(decoded, _each(batch))


_HEAD = b"\x86\x01\x02"  # [1, 2, ...: a housekeeping message begins so


@pytest.mark.parametrize(
    ("batch", "bad", "reason"),
    [
        pytest.param([_hk(1), _hk(2) + _hk(3), _hk(4)], 1, "14 trailing", id="two in one frame"),
        pytest.param(
            [_hk(1), _hk(2)[:6], _hk(2)[6:], _hk(3)], 1, "runs past", id="cut short, completed"
        ),
        pytest.param([_hk(1), _hk(2)[:-1], _hk(3)], 1, "runs past", id="cut short"),
        pytest.param([_hk(1), _hk(2) + b"\x00", _hk(3)], 1, "1 trailing", id="trailing byte"),
        pytest.param(
            [_hk(1), _hk(2) + b"\x1b" + bytes(range(8)), _hk(3)], 1, "9 trailing", id="uint64"
        ),
        pytest.param([_hk(1), _HEAD, _hk(3)], 1, "not a CBOR item", id="only the head"),
        pytest.param(
            [_hk(1), _HEAD + b"\x00\x00\x01\x5a\x00\x00\x01\x00", _hk(3)],
            1,
            "not a CBOR item",
            id="a byte string that would swallow the rest",
        ),
        pytest.param([_hk(1), _HEAD + b"\x00\x00\x01\x9f\xff"], 1, "indefinite", id="indef"),
        pytest.param([_hk(1), _hk(2, body=[float("nan")]), _hk(3)], 1, "NaN", id="NaN"),
        pytest.param([_hk(1), _hk(2, body=[float("-inf"), 1.0])], 1, "NaN", id="infinity"),
        pytest.param([_hk(1), _hk(2, body=["text"])], 1, "housekeeping values", id="text"),
        pytest.param([_hk(1), _hk(2, body=[[1]])], 1, "housekeeping values", id="nested"),
        pytest.param([_hk(1), _hk(2, body=[None])], 1, "housekeeping values", id="null"),
        pytest.param([_hk(1), _HEAD + b"\xf5\x00\x01\x80"], 1, "seq", id="seq true"),
        pytest.param([_hk(1), _HEAD + b"\x00\xf9\x3c\x00\x01\x80"], 1, "time", id="time 1.0"),
        pytest.param([_hk(1), _HEAD + b"\x00\x00\x20\x80"], 1, "time and id", id="id -1"),
        pytest.param(
            [_hk(1), _HEAD + b"\x1a\x00\x01\x00\x00\x00\x01\x80"], 1, "seq", id="seq 65536"
        ),
        pytest.param(
            [_hk(1), _HEAD + b"\x00\x00\x01\x99\x01\x01" + bytes(257)], 1, "256", id="257"
        ),
        pytest.param([_hk(1), _HEAD + b"\x00\x00\x01\xa0"], 1, "array", id="body a map"),
        pytest.param([_hk(1), _HEAD + b"\x00\x00\x01\x81\xc2\x41\x01"], 1, "tag", id="bignum"),
        pytest.param(
            [_hk(1), b"\x86\x01\x04\x00\x00\x01\x81\xa2\x01\x01\x01\x02"],
            1,
            "Duplicate",
            id="duplicate keys",
        ),
        pytest.param([_hk(1), b"\x85\x01\x02\x00\x00\x01"], 1, "6 items", id="five items"),
        pytest.param([_hk(1), b""], 1, "not a CBOR item", id="empty"),
        pytest.param([b"\x86", _hk(1)[1:]], 0, "runs past", id="head split off"),
        pytest.param([_hk(1), _EVENT + b"\x00", _EVENT], 1, "1 trailing", id="event trailing"),
        pytest.param([_EVENT[:-2], _EVENT[-2:] + _EVENT], 1, "15 trailing", id="events cut"),
    ],
)
def test_each_message_of_a_batch_is_judged_by_itself(
    batch: list[bytes], bad: int, reason: str
) -> None:
    got = codec.decode_batch(batch)
    _assert_same(got, _each(batch))
    decoded = codec.decode_columns(batch)
    _assert_same(decoded.messages() if isinstance(decoded, codec.Columns) else decoded, got)
    assert isinstance(got[bad], codec.DecodeFailure) and reason in got[bad].reason
    for i, message in enumerate(batch):  # a whole message elsewhere in the batch is unhurt
        if i != bad and message in (_hk(1), _hk(3), _hk(4), _EVENT):
            assert got[i] == codec.decode(message)


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param([_hk(1), b"\x98\x06" + _hk(2)[1:]], id="non-canonical array"),
        pytest.param([_hk(1), _HEAD + b"\x19\x00\x07\x00\x01\x80"], id="non-canonical seq"),
        pytest.param([_hk(1), _HEAD + b"\x00\x00\x01\x81\x3b" + b"\xff" * 8], id="-2**64"),
    ],
)
def test_what_the_general_path_accepts_a_batch_accepts(batch: list[bytes]) -> None:
    got = codec.decode_batch(batch)
    _assert_same(got, _each(batch))
    assert all(isinstance(x, codec.Message) for x in got[1:])


def test_the_marker_itself_in_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the marker known: as a value it is just a value, as trailing bytes an error."""
    marker = 0x8123456789ABCDEF
    encoded = b"\x1b" + marker.to_bytes(8, "big")
    monkeypatch.setattr(codec, "_new_marker", lambda: (marker, encoded))
    batch = [_hk(1, body=[marker]), _hk(2, body=[marker, marker]), _hk(3)]
    decoded = codec.decode_columns(batch)
    assert isinstance(decoded, codec.Columns) and decoded.bodies[1] == [marker, marker]
    for batch in (
        [_hk(1) + encoded, _hk(2)],
        [_hk(1), _hk(2) + encoded],
        [_hk(1) + encoded + _hk(2)[3:], _hk(3)],
        [encoded, _hk(1)],
        [_hk(1)[:4] + encoded, _hk(2)],
    ):
        _assert_same(codec.decode_batch(batch), _each(batch))
        assert any(isinstance(x, codec.DecodeFailure) for x in codec.decode_batch(batch))


def test_a_batch_whose_sum_overflows_takes_the_slower_way() -> None:
    batch = [_hk(1, body=[1.7e308]), _hk(2, body=[1.7e308, 1.0])]
    decoded = codec.decode_columns(batch)
    assert not isinstance(decoded, codec.Columns)
    _assert_same(decoded, _each(batch))
    assert all(isinstance(x, codec.Message) for x in decoded)


def test_markers_are_fresh_and_well_formed() -> None:
    markers = {codec._new_marker() for _ in range(200)}
    assert len(markers) == 200
    for value, encoded in markers:
        assert 2**63 <= value < 2**64 and value % 2 == 1
        assert encoded == cbor2.dumps(value) and b"\x1b" not in encoded[1:]


def test_nesting_to_the_limit_in_a_batch() -> None:
    accepted = []
    for depth in range(12, 18):
        deep: Any = 1
        for _ in range(depth):
            deep = [deep]
        batch = [_hk(1), codec.encode(codec.KIND_EVENT, 1, 0, 2, [1, 1, [deep]]), _hk(2)]
        got = codec.decode_batch(batch)
        _assert_same(got, _each(batch))
        _assert_same(got[1:2], codec.decode_batch(batch[1:2]))  # as if alone
        accepted.append(isinstance(got[1], codec.Message))
    assert True in accepted and False in accepted  # the limit lies within the range


_finite = st.one_of(  # what the node sends: floats are single precision (SPEC §4.1)
    st.integers(-(2**64), 2**64 - 1),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_valid_hk = st.builds(
    lambda seq, time, ident, body: cbor2.dumps([1, 2, seq, time, ident, body], canonical=True),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**64 - 1),
    st.integers(0, 12),
    st.lists(_finite, max_size=20),
)
_any_message = st.builds(
    lambda fields: cbor2.dumps(list(fields), canonical=True),
    _fields(st.one_of(_scalar, _item, st.floats())),
)
_hk_shaped = st.builds(  # begins as housekeeping, may be anything after that
    lambda seq, time, ident, body: cbor2.dumps([1, 2, seq, time, ident, body], canonical=True),
    st.one_of(st.integers(-1, 70000), _scalar),
    st.one_of(st.integers(-1, 9), _scalar),
    st.one_of(st.integers(-1, 9), _scalar),
    st.one_of(st.lists(st.one_of(_finite, _item, st.floats()), max_size=6), _item),
)
_message = st.one_of(_valid_hk, _valid_hk, _hk_shaped, _any_message, st.binary(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, min_size=2, max_size=8), st.data())
def test_a_batch_decodes_as_message_by_message(batch: list[bytes], data: st.DataObject) -> None:
    """Whatever the batch, every result is what the message-by-message path gives; and a
    batch of valid housekeeping messages takes the shortcut (Columns)."""
    if data.draw(st.booleans(), label="recut"):
        # Frames cut elsewhere: two messages in one, one cut short and completed by the next.
        stream = b"".join(batch)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts"))
        edges = [0, *cuts, len(stream)]
        batch = [stream[a:b] for a, b in pairwise(edges)]
        if len(batch) < 2:
            return
    expected = _each(batch)
    decoded = codec.decode_columns(batch)
    got = decoded.messages() if isinstance(decoded, codec.Columns) else decoded
    _assert_same(got, expected)
    valid_hk = all(
        isinstance(e, codec.Message) and e.kind == codec.KIND_HOUSEKEEPING for e in expected
    )
    if valid_hk and all(m.startswith(b"\x86\x01\x02") for m in batch):
        assert isinstance(decoded, codec.Columns)


_field = st.one_of(  # mostly good, sometimes not quite
    st.integers(0, 9), st.integers(-1, 70000), _scalar, st.none(), st.text(max_size=1)
)
_body = st.one_of(
    st.lists(_finite, max_size=4), st.lists(st.one_of(_scalar, _item), max_size=4), _item
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_field, _field, _field, _body), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),
            st.integers(0, 9),
            st.integers(0, 9),
            st.lists(_finite, max_size=4),
        ),
        max_size=5,
    ),
    st.randoms(use_true_random=False),
)
def test_the_batch_checks_accept_what_each_message_check_accepts(
    odd: list[tuple[Any, ...]], valid: list[tuple[Any, ...]], rng: Any
) -> None:
    """_housekeeping_columns takes a batch exactly when _checked takes every message in it."""
    rows = [list(row) for row in valid + odd]
    rng.shuffle(rows)
    expected = [codec._checked([1, 2, *row]) for row in rows]
    columns = codec._housekeeping_columns(*(list(col) for col in zip(*rows, strict=True)))
    if columns is None:
        assert any(isinstance(e, codec.DecodeFailure) for e in expected)
    else:
        assert columns.messages() == expected
