"""protocol.messages: each validation rule of SPEC §5/§6 at its edges, with the one reason it
gives. The values just inside every bound decode and re-encode to the same bytes; the values
just outside are refused with the reason that names the rule broken (what ``ground`` shows an
operator), so a rule checked at the wrong bound, in the wrong order or not at all is seen."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from protocol import messages as M
from protocol.errors import MessageError

MAX_SEQ = 65535

VERIFICATION = "verification body must be [cmd_seq, stage, code, result]"
NULL_RESULT = "verification result must be null unless completed (or rejected STALE_BOOT)"
STALE_RESULT = "a STALE_BOOT rejection's result must be the node's boot count, a uint"
EVENT = "event body must be [event_seq, severity, args]"
PARAMETER = "parameter body must be [value], a bool, integer or float"
TIME_BODY = "time correlation body must be [node_time_ms, utc_ms], uints"
BULK_BODY = "bulk body must be [transfer, index, last, payload]"
BULK_NUMBERS = "bulk transfer must be a uint 0..65535 and index a uint"
BULK_TYPES = "bulk last must be a bool and payload a byte string"
HOUSEKEEPING = "housekeeping values must be bools, integers or floats"


def _v(body: list[Any]) -> list[Any]:
    return [1, M.KIND_VERIFICATION, 7, 1000, 3, body]


VALID = [
    _v([MAX_SEQ, M.STAGE_ACCEPTED, 0, None]),
    _v([0, M.STAGE_REJECTED, 1, None]),
    _v([0, M.STAGE_REJECTED, 15, None]),
    _v([0, M.STAGE_REJECTED, M.STALE_BOOT, 0]),
    _v([0, M.STAGE_REJECTED, M.STALE_BOOT, 2**32]),
    _v([0, M.STAGE_COMPLETED, 0, None]),
    _v([0, M.STAGE_COMPLETED, 0, [1, "x", 2.5]]),
    _v([0, M.STAGE_FAILED, 16, None]),
    _v([0, M.STAGE_FAILED, 31, None]),
    [1, M.KIND_HOUSEKEEPING, MAX_SEQ, 0, 1, []],
    [1, M.KIND_HOUSEKEEPING, 0, 0, 1, [True, -1, 0, 1.5, 2**64 - 1]],
    [1, M.KIND_EVENT, 0, 0, 0, [0, M.SEV_DEBUG, []]],
    [1, M.KIND_EVENT, 0, 0, 1, [2**40, M.SEV_FATAL, [1, "a", None]]],
    [1, M.KIND_PARAMETER, 0, 0, 1, [False]],
    [1, M.KIND_PARAMETER, 0, 0, 1, [-7]],
    [1, M.KIND_PARAMETER, 0, 0, 1, [0.5]],
    [1, M.KIND_TIME, 0, 0, 0, [0, 0]],
    [1, M.KIND_TIME, 0, 5, 0, [2**33, 1_700_000_000_000]],
    [1, M.KIND_BULK, 0, 0, 1, [0, 0, False, b""]],
    [1, M.KIND_BULK, 0, 0, 2, [MAX_SEQ, 2**32, True, b"\x00\x01"]],
    [1, M.KIND_COMMAND, MAX_SEQ, 0, 1, [], 0],
    [1, M.KIND_COMMAND, 0, 0, 2**64 - 1, [None, "x", b"", [1], {1: 2}], 2**64 - 1],
]


@pytest.mark.parametrize("fields", VALID, ids=lambda f: cbor2.dumps(f).hex())
def test_values_at_the_edges_decode_and_encode_back(fields: list[Any]) -> None:
    data = cbor2.dumps(fields, canonical=True)
    msg = M.decode_message(data)
    assert msg.fields() == fields
    assert msg.encode() == data
    assert M.encode_message(*fields[1:]) == data


MALFORMED = [
    ([1, 7, 0, 0, 1, []], "unknown kind 7"),
    ([1, -1, 0, 0, 1, []], "unknown kind -1"),
    ([1, False, 0, 0, 1, []], "unknown kind False"),  # a bool is not the command kind 0
    ([1, True, 0, 0, 1, []], "unknown kind True"),
    ([1, 0, 0, 0, 1, []], "message must have 7 items, not 6"),
    ([1, 0, 0, 0, 1, [], 0, 0], "message must have 7 items, not 8"),
    ([1, 3, 0, 0, 1, [0, 0, []], 0], "message must have 6 items, not 7"),
    ([1], "message must have 6 items, not 1"),
    ([1, 0], "message must have 7 items, not 2"),  # a command's count from kind on
    ([1, 3], "message must have 6 items, not 2"),
    ([1, 0, 0, 0, 1, [], -1], "a command's boot (its seventh item) must be a uint"),
    ([1, 0, 0, 0, 1, [], 1.0], "a command's boot (its seventh item) must be a uint"),
    ([1, 2, MAX_SEQ + 1, 0, 1, []], "seq must be a uint 0..65535"),
    ([1, 2, -1, 0, 1, []], "seq must be a uint 0..65535"),
    ([1, 2, True, 0, 1, []], "seq must be a uint 0..65535"),
    ([1, 2, 0, -1, 1, []], "time and id must be uints"),
    ([1, 2, 0, 0, -1, []], "time and id must be uints"),
    ([1, 2, 0, 0, None, []], "time and id must be uints"),
    ([1, 2, 0, 0, 1, {}], "body must be an array"),
    ([1, 2, 0, 0, 1, "x"], "body must be an array"),
    (_v([0, 0, 0]), VERIFICATION),
    (_v([0, 0, 0, None, None]), VERIFICATION),
    (_v([MAX_SEQ + 1, 0, 0, None]), "verification cmd_seq must be a uint 0..65535"),
    (_v([-1, 0, 0, None]), "verification cmd_seq must be a uint 0..65535"),
    (_v([0, 4, 0, None]), "verification stage must be 0..3"),
    (_v([0, -1, 0, None]), "verification stage must be 0..3"),
    (_v([0, 2, -1, None]), "verification code must be a uint"),
    (_v([0, 0, 1, None]), "verification code must be 0 when accepted"),
    (_v([0, 2, 1, None]), "verification code must be 0 when completed"),
    (_v([0, 1, 0, None]), "rejected code must be 1..15"),
    (_v([0, 1, 16, None]), "rejected code must be 1..15"),
    (_v([0, 3, 15, None]), "failed code must be 16..31"),
    (_v([0, 3, 32, None]), "failed code must be 16..31"),
    (_v([0, 1, M.STALE_BOOT, None]), STALE_RESULT),
    (_v([0, 1, M.STALE_BOOT, -1]), STALE_RESULT),
    (_v([0, 0, 0, 5]), NULL_RESULT),
    (_v([0, 1, 2, 5]), NULL_RESULT),
    (_v([0, 3, 16, 5]), NULL_RESULT),
    (_v([0, 3, 16, False]), NULL_RESULT),
    ([1, 2, 0, 0, 1, [1, "x"]], HOUSEKEEPING),
    ([1, 2, 0, 0, 1, [None]], HOUSEKEEPING),
    ([1, 2, 0, 0, 1, [1.5, [1]]], HOUSEKEEPING),
    ([1, 3, 0, 0, 1, [0, 0]], EVENT),
    ([1, 3, 0, 0, 1, [0, 0, [], 0]], EVENT),
    ([1, 3, 0, 0, 1, [-1, 0, []]], "event_seq must be a uint"),
    ([1, 3, 0, 0, 1, [0, 5, []]], "event severity must be 0..4"),
    ([1, 3, 0, 0, 1, [0, -1, []]], "event severity must be 0..4"),
    ([1, 3, 0, 0, 1, [0, 0, {}]], "event args must be an array"),
    ([1, 4, 0, 0, 1, []], PARAMETER),
    ([1, 4, 0, 0, 1, [1, 2]], PARAMETER),
    ([1, 4, 0, 0, 1, ["1"]], PARAMETER),
    ([1, 4, 0, 0, 1, [None]], PARAMETER),
    ([1, 5, 0, 0, 1, [0, 0]], "time correlation id must be 0"),
    ([1, 5, 0, 0, 0, [0]], TIME_BODY),
    ([1, 5, 0, 0, 0, [0, 0, 0]], TIME_BODY),
    ([1, 5, 0, 0, 0, [-1, 0]], TIME_BODY),
    ([1, 5, 0, 0, 0, [0, -1]], TIME_BODY),
    ([1, 6, 0, 0, 0, [0, 0, False, b""]], "bulk id (the bulk type) must not be 0"),
    ([1, 6, 0, 0, 1, [0, 0, False]], BULK_BODY),
    ([1, 6, 0, 0, 1, [0, 0, False, b"", 0]], BULK_BODY),
    ([1, 6, 0, 0, 1, [MAX_SEQ + 1, 0, False, b""]], BULK_NUMBERS),
    ([1, 6, 0, 0, 1, [0, -1, False, b""]], BULK_NUMBERS),
    ([1, 6, 0, 0, 1, [0, 0, 0, b""]], BULK_TYPES),
    ([1, 6, 0, 0, 1, [0, 0, True, "x"]], BULK_TYPES),
    ([], "message must be an array [version, kind, seq, time, id, body]"),
    ({1: 1}, "message must be an array [version, kind, seq, time, id, body]"),
    ([-1, 2, 0, 0, 1, []], "version must be a uint"),
    ([True, 2, 0, 0, 1, []], "version must be a uint"),
]


@pytest.mark.parametrize(("fields", "reason"), MALFORMED,
                         ids=[r + " " + cbor2.dumps(f).hex() for f, r in MALFORMED])
def test_each_rule_refuses_with_its_own_reason(fields: Any, reason: str) -> None:
    with pytest.raises(MessageError) as info:
        M.decode_message(cbor2.dumps(fields, canonical=True))
    assert (info.value.code, str(info.value)) == (M.MALFORMED, reason)
    if type(fields) is list and len(fields) >= 6 and fields[0] == 1 and type(fields[0]) is int \
            and not reason.startswith("message must have"):  # (item counts: decoding only)
        with pytest.raises(MessageError) as info:  # the encoder applies the same rules
            M.encode_message(*fields[1:])
        assert (info.value.code, str(info.value)) == (M.MALFORMED, reason)


@pytest.mark.parametrize("version", [0, 2, 2**64 - 1])
def test_another_version_is_unsupported_whatever_follows(version: int) -> None:
    for fields in ([version], [version, 99], [version, 2, 0, 0, 1, [], 0, 0]):
        with pytest.raises(MessageError) as info:
            M.decode_message(cbor2.dumps(fields))
        assert (info.value.code, str(info.value)) == (M.UNSUPPORTED_VERSION,
                                                      f"version {version} is not 1")


def test_not_cbor_is_malformed_and_says_why() -> None:
    for data in (b"", b"\xff", b"\x86\x01", b"\x80\x00"):
        with pytest.raises(MessageError) as info:
            M.decode_message(data)
        assert info.value.code == M.MALFORMED
        assert str(info.value).startswith("not a CBOR item: "), info.value


def test_only_a_command_takes_a_boot() -> None:
    for kind, body in ((M.KIND_VERIFICATION, [0, 0, 0, None]), (M.KIND_EVENT, [0, 0, []]),
                       (M.KIND_BULK, [0, 0, True, b""])):
        with pytest.raises(MessageError) as info:
            M.encode_message(kind, 0, 0, 1, body, 0)
        assert (info.value.code, str(info.value)) == (M.MALFORMED,
                                                      "only a command has a seventh item")
    with pytest.raises(MessageError) as info:
        M.encode_message(M.KIND_COMMAND, 0, 0, 1, [])
    assert str(info.value) == "a command's boot (its seventh item) must be a uint"


def _bulk_of(size: int) -> list[Any]:
    """[kind, seq, time, id, body] of a bulk message whose encoding is size bytes."""
    head = len(cbor2.dumps([1, M.KIND_BULK, 0, 0, 1, [0, 0, True, b""]])) - 1
    payload = size - head - 3  # a byte string of 256..65535 bytes has a 3-byte head
    assert 256 <= payload <= 65535
    return [M.KIND_BULK, 0, 0, 1, [0, 0, True, bytes(payload)]]


def test_a_message_may_fill_max_message_and_not_one_byte_more() -> None:
    assert M.MAX_MESSAGE == 1020
    data = M.encode_message(*_bulk_of(M.MAX_MESSAGE))
    assert len(data) == M.MAX_MESSAGE
    assert M.decode_message(data).encode() == data
    with pytest.raises(MessageError) as info:
        M.encode_message(*_bulk_of(M.MAX_MESSAGE + 1))
    assert (info.value.code, str(info.value)) == (M.MALFORMED,
                                                  "message of 1021 bytes, more than 1020")


def test_floats_become_single_precision_everywhere_in_the_body() -> None:
    body = [1.1, (2.2, [3.3]), {1: 4.4, "k": [5.5]}, True, 7]
    data = M.encode_message(M.KIND_COMMAND, 1, 0, 2, body, 0)
    f = M.f32
    assert cbor2.loads(data)[5] == [f(1.1), [f(2.2), [f(3.3)]], {1: f(4.4), "k": [f(5.5)]},
                                    True, 7]
    assert data == cbor2.dumps([1, 0, 1, 0, 2, [f(1.1), [f(2.2), [f(3.3)]],
                                                {1: f(4.4), "k": [f(5.5)]}, True, 7], 0],
                               canonical=True)
    largest = 3.4028234663852886e38  # the largest finite single
    assert cbor2.loads(M.encode_message(M.KIND_PARAMETER, 0, 0, 1, [largest]))[5] == [largest]
    assert M.encode_message(M.KIND_PARAMETER, 0, 0, 1, [-0.0]) == bytes.fromhex(
        "86010400000181f98000")
    for bad in (3.5e38, -3.5e38, float("inf"), float("-inf"), float("nan")):
        with pytest.raises(MessageError) as info:
            M.encode_message(M.KIND_HOUSEKEEPING, 0, 0, 1, [1, [bad]])
        assert info.value.code == M.MALFORMED
        assert str(info.value) == (f"float {bad!r} is not a finite single-precision value")


def test_message_fields_equality_and_repr() -> None:
    command = M.Message(1, M.KIND_COMMAND, 5, 0, 2, [1], 9)
    assert command.fields() == [1, 0, 5, 0, 2, [1], 9]
    assert repr(command) == "Message(v1 command seq=5 time=0 id=2 body=[1] boot=9)"
    event = M.Message(1, M.KIND_EVENT, 5, 0, 2, [0, 0, []])
    assert event.fields() == [1, 3, 5, 0, 2, [0, 0, []]]
    assert repr(event) == "Message(v1 event seq=5 time=0 id=2 body=[0, 0, []])"
    assert command == M.Message(1, 0, 5, 0, 2, [1], 9)
    assert command != M.Message(1, 0, 5, 0, 2, [1], 8)
    assert not (event == [1, 3, 5, 0, 2, [0, 0, []]])
    for version in (0, 2):
        with pytest.raises(MessageError) as info:
            M.Message(version, M.KIND_EVENT, 5, 0, 2, [0, 0, []]).encode()
        assert (info.value.code, str(info.value)) == (M.UNSUPPORTED_VERSION,
                                                      f"cannot encode version {version}")
    assert "v1 kind? " not in repr(M.Message(1, 9, 0, 0, 0, []))
    assert repr(M.Message(1, 9, 0, 0, 0, [])).startswith("Message(v1 9 seq=0")


def test_names_of_codes_and_kinds() -> None:
    assert M.name(M.STAGE_NAMES, 0) == "accepted"
    assert M.name(M.KIND_NAMES, 6) == "bulk" and M.name(M.KIND_NAMES, 7) == "7"
    assert M.name(M.REASON_NAMES, 0) == "OK" and M.name(M.REASON_NAMES, 6) == "MALFORMED"
    assert M.name(M.SEVERITY_NAMES, -5) == "-5" and M.name(M.SEVERITY_NAMES, 4) == "fatal"
    assert M.name(M.TYPE_NAMES, "u8") == "u8" and M.name(M.REASON_NAMES, None) == "None"


def test_command_arguments_are_the_argument_array_exactly_as_sent() -> None:
    message = cbor2.dumps([1, 0, 5, 0, 3, [7, 300, "x"], 2])
    assert M.command_arguments(message) == bytes.fromhex("8307 19012c 6178")
    assert M.command_arguments(bytearray(message)) == bytes.fromhex("830719012c6178")


@pytest.mark.parametrize(("data", "reason"), [
    (cbor2.dumps([1, 0, 5, 0, 3, [7]]), "not a command of seven items"),  # six items
    (cbor2.dumps([1, 0, 5, 0, 3, [7], 2, 0]), "not a command of seven items"),  # eight
    (cbor2.dumps({1: 0}), "not a command message"),  # not an array
    (bytes.fromhex("87010005000381"), "not a command message"),  # cut short in the arguments
])
def test_command_arguments_of_anything_else_is_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as info:
        M.command_arguments(data)
    assert (info.value.code, str(info.value)) == (M.MALFORMED, reason)
