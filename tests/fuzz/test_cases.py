"""ground/fuzz/cases.py: the generators produce what they claim, reproducibly and safely."""

from __future__ import annotations

import math
import struct

import cbor2
import pytest
from cobs import cobs

from ground.fuzz import cases as fc
from ground.fuzz import gen_auth
from ground.fuzz.keyring import foreign_key
from protocol import cbor, errors, messages
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer

N = 3000  # cases checked per property


def all_cases(seed: int = 1, n: int = N) -> list[fc.Case]:
    gen_auth.bind_key(foreign_key())  # counters from the start again: the same cases
    return [fc.generate(seed, i, i & 0xFFFF) for i in range(n)]


def test_generation_is_reproducible_and_seed_dependent() -> None:
    assert all_cases(5, 200) == all_cases(5, 200)
    assert all_cases(5, 200) != all_cases(6, 200)
    # case i does not depend on the cases before it (an authenticated one, on the counters
    # its key handed out before it only)
    plain = next(i for i in range(100) if fc.generate(9, i, 7).category != "auth")
    assert fc.generate(9, plain, 7) == fc.generate(9, plain, 7)
    auth = next(i for i in range(1000) if fc.generate(9, i, 7).category == "auth")
    gen_auth.bind_key(foreign_key())
    first = fc.generate(9, auth, 7)
    gen_auth.bind_key(foreign_key())
    assert fc.generate(9, auth, 7) == first


def test_every_category_is_generated() -> None:
    seen = {case.category for case in all_cases()}
    assert seen == set(fc.CATEGORIES)


def test_good_frames_carry_a_good_crc_and_bad_crc_frames_do_not() -> None:
    for case in all_cases():
        if case.framing == fc.RAW:
            continue
        d = Deframer()
        d.feed(b"\x00")
        messages_out = d.feed(case.wire)
        if case.framing == fc.BAD_CRC:
            assert messages_out == [] and d.crc_errors == 1
        elif not case.payload:  # a frame with only a CRC is too short
            assert messages_out == [] and d.truncated == 1
        elif len(case.payload) <= fc.MAX_MESSAGE:
            assert messages_out == [case.payload]
        else:
            assert messages_out == [] and d.oversize == 1


def test_frame_bytes_matches_the_protocol_framing() -> None:
    assert fc.frame_bytes(b"\x86\x01") == encode_frame(b"\x86\x01")


def test_malformed_cbor_is_refused_by_the_node_codec() -> None:
    """What the generator calls malformed, protocol.cbor (the node's strict codec) refuses,
    or the message it decodes to breaks the command's rules; it may never execute."""
    refused = 0
    for case in all_cases():
        if case.category != "malformed_cbor":
            continue
        assert not case.allowed & fc.EXECUTES, case
        try:
            cbor.loads(case.payload)
        except errors.DecodeError:
            refused += 1
    assert refused == sum(c.category == "malformed_cbor" for c in all_cases())


def test_nothing_hazardous_can_execute() -> None:
    """reboot, maintenance, fault_inject... only ever appear with arguments that are refused."""
    for case in all_cases(2, 10000):
        if case.cmd_id in fc.NEVER_VALID:
            assert not case.allowed & fc.EXECUTES, case
        if case.category in ("valid", "boundary", "bad_args") and case.cmd_id is not None:
            msg = cbor2.loads(case.payload)
            if msg[4] in fc.NEVER_VALID:
                assert fc.command_outcomes(msg[4], msg[5]) & fc.EXECUTES == frozenset(), case


@pytest.mark.parametrize(("arg_type", "lo", "hi", "value", "code"), [
    ("u8", 0, 5, 5, 0), ("u8", 0, 5, 6, fc.OUT_OF_RANGE), ("u8", 0, 5, -1, fc.BAD_ARGUMENTS),
    ("u8", None, None, 256, fc.OUT_OF_RANGE), ("u8", 0, 5, 1.0, fc.BAD_ARGUMENTS),
    ("u8", 0, 5, True, fc.BAD_ARGUMENTS), ("i32", -10, 10, -11, fc.OUT_OF_RANGE),
    ("i32", None, None, -(2**31), 0), ("i32", None, None, 2**31, fc.OUT_OF_RANGE),
    ("bool", None, None, 1, fc.BAD_ARGUMENTS), ("bool", None, None, False, 0),
    ("f32", 0.1, 50.0, 50, 0), ("f32", 0.1, 50.0, 50.5, fc.OUT_OF_RANGE),
    ("f32", 0.1, 50.0, "1", fc.BAD_ARGUMENTS), ("f32", None, None, 1e39, fc.OUT_OF_RANGE),
    ("f32", 0.1, 50.0, True, fc.BAD_ARGUMENTS), ("any", None, None, "x", 0),
])
def test_check_value_follows_spec_5_1(arg_type: str, lo: object, hi: object, value: object,
                                      code: int) -> None:
    assert fc.check_value(arg_type, lo, hi, value) == code


@pytest.mark.parametrize(("type_code", "arg_type"), [(1, "u8"), (3, "u32"), (4, "i32"),
                                                     (5, "f32"), (0, "bool")])
def test_check_value_agrees_with_the_node_check(type_code: int, arg_type: str) -> None:
    """The fuzzer's model and protocol.messages.check_arg give the same code."""
    for value in [0, 1, -1, 255, 256, 2**32, -(2**31) - 1, 1.5, True, "s", None, 50.0]:
        node_value = value
        if type_code == messages.TYPE_F32 and type(value) in (int, float):
            node_value = messages.f32(float(value))  # read_args converts first
        assert fc.check_value(arg_type, 0, 200, value) == messages.check_arg(
            node_value, type_code, 0, 200), (arg_type, value)


def test_f32_overflow_counts_as_out_of_range() -> None:
    assert math.isinf(struct.unpack("<f", struct.pack("<f", 3.4e38 * 10 / 10))[0]) is False
    assert fc.check_value("f32", None, None, 1e39) == fc.OUT_OF_RANGE


def test_command_outcomes_per_dictionary() -> None:
    ids = fc.COMMAND_IDS
    assert fc.command_outcomes(ids["noop"], []) >= {fc.OK}
    assert fc.command_outcomes(ids["noop"], [1]) == fc.rej(fc.BAD_ARGUMENTS)
    assert fc.command_outcomes(ids["set_mode"], [9]) == fc.rej(fc.OUT_OF_RANGE)
    # arguments are checked before the mode: load_switch is not allowed in SAFE
    assert fc.command_outcomes(ids["load_switch"], [99, True]) == fc.rej(fc.OUT_OF_RANGE)
    assert fc.rej(fc.WRONG_MODE) <= fc.command_outcomes(ids["load_switch"], [1, True])
    assert fc.command_outcomes(999, []) == fc.rej(fc.UNKNOWN_COMMAND)
    # param_set: unknown parameter fails NOT_FOUND after acceptance
    assert fc.command_outcomes(ids["param_set"], [999, 1]) == {"fail:19"}
    assert fc.command_outcomes(ids["param_set"], [14, 5000]) == fc.rej(fc.OUT_OF_RANGE)
    assert fc.command_outcomes(ids["param_set"], [14, 5.0]) == fc.rej(fc.BAD_ARGUMENTS)
    assert fc.command_outcomes(ids["param_set"], [0, 5]) == fc.rej(fc.OUT_OF_RANGE)
    assert fc.command_outcomes(ids["time_correlate"], ["x"]) == fc.rej(fc.BAD_ARGUMENTS)


def test_case_json_round_trip() -> None:
    for case in all_cases(3, 300):
        assert fc.Case.from_json(case.to_json()) == case


def test_outcome_allowed() -> None:
    assert fc.outcome_allowed("fail:19", frozenset({fc.FAIL}))
    assert not fc.outcome_allowed("ok", fc.rej(2))
    assert fc.outcome_allowed("rej:2", fc.rej(2, 3))


def test_head_shortest_forms() -> None:
    assert fc.head(0, 23) == b"\x17"
    assert fc.head(0, 24) == b"\x18\x18"
    assert fc.head(2, 1000) == b"\x59\x03\xe8"
    assert fc.head(4, 2**32) == b"\x9b" + (2**32).to_bytes(8, "big")


def test_max_message_case_is_exactly_at_the_limit() -> None:
    sizes = {len(c.payload) for c in all_cases(4, 4000) if c.name == "max_message"}
    assert sizes == {fc.MAX_MESSAGE}


def test_truncated_cobs_cases_are_truncated() -> None:
    for case in all_cases():
        if case.name == "cobs_truncated":
            with pytest.raises(cobs.DecodeError):
                cobs.decode(case.payload.strip(b"\x00"))
