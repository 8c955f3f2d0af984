"""ground/fuzz/model.py and profile.py: the fuzzer's reading of SPEC §4 and §5, on the spec's
own examples and on the reproducers of issue 10 (whole frames on the wire)."""

from __future__ import annotations

import binascii

import pytest
from cobs import cobs

from ground.fuzz import model, profile
from ground.fuzz.case import (
    BAD_ARGUMENTS,
    MALFORMED,
    NONE,
    OK,
    OUT_OF_RANGE,
    UNKNOWN_COMMAND,
    UNSUPPORTED_VERSION,
    WRONG_MODE,
    rej,
)
from ground.fuzz.encoding import command, dumps, envelope
from ground.fuzz.oracle import COMMAND_IDS
from protocol.dictionary_types import MODE_NOMINAL, MODE_SAFE

pytestmark = pytest.mark.usefixtures("boot_zero")  # commands bound to boot 0 (conftest)


def _message(wire_hex: str) -> bytes:
    """The message inside a whole frame on the wire (delimiters, COBS, CRC checked)."""
    wire = bytes.fromhex(wire_hex)
    assert wire[0] == 0 and wire[-1] == 0
    frame = cobs.decode(wire[1:-1])
    message, crc = frame[:-4], frame[-4:]
    assert binascii.crc32(message).to_bytes(4, "little") == crc
    return message


def _only(code: int) -> frozenset[str]:
    return rej(code)


@pytest.mark.parametrize(("wire", "address", "outcomes"), [
    # bug 2: id 2**33 + 1 must be named exactly in the rejection
    ("00038601041903e9021b01010202010107018022e308bc00", (1001, 2**33 + 1),
     _only(UNKNOWN_COMMAND)),
    # bug 3: invalid CBOR gets MALFORMED before any other reason
    ("000386010419e81e0a03820cf47a5dbffc9b00", (59422, 3), _only(MALFORMED)),
    ("00038601041907d70a08830e07f7319df9f800", (2007, 8), _only(MALFORMED)),
    ("000386010419dbb70107821984fef9800a46e61ffb75853e09f200", (56247, 0),
     _only(MALFORMED)),
    ("00038601041907d1160e81818181818181818181818181818180a864064600", (2001, 14),
     _only(MALFORMED)),
    # bug 4: no seq and id inside the array: counted, never answered
    ("000380010207070180f16c52b700", None, frozenset({NONE})),
    ("0003820102070601d31b92ad00", None, frozenset({NONE})),
])
def test_issue_reproducers_get_the_one_answer_the_spec_gives(
        wire: str, address: tuple[int, int] | None, outcomes: frozenset[str]) -> None:
    exp = model.expect(_message(wire))
    if model.BOUND_TO_BOOT and address is not None and outcomes == _only(UNKNOWN_COMMAND):
        outcomes = _only(MALFORMED)  # a six-item command is malformed once commands carry a boot
    assert (exp.address, exp.outcomes) == (address, outcomes)


@pytest.mark.parametrize(("payload", "outcomes"), [
    (bytes.fromhex("86 02 00 07 00 01 80"), _only(UNSUPPORTED_VERSION)),  # §5 examples
    (bytes.fromhex("85 01 00 07 00 01"), _only(MALFORMED)),
    (bytes.fromhex("86 01 07 07 00 01 80"), _only(MALFORMED)),
    (bytes.fromhex("86 01 00 07 05 01 80"), _only(MALFORMED)),
    (bytes.fromhex("86 01 00 07 00 01 80 00"), _only(MALFORMED)),
])
def test_spec_section_5_examples(payload: bytes, outcomes: frozenset[str]) -> None:
    assert model.expect(payload).outcomes == outcomes


def test_version_is_checked_before_the_item_count() -> None:
    # [2, 0, 7, 0, 1]: five items and version 2: the version is the first failure
    assert model.expect(bytes.fromhex("85 02 00 07 00 01")).outcomes == _only(
        UNSUPPORTED_VERSION)


def test_well_formedness_comes_before_the_version() -> None:
    # version 2, then an `undefined`: not one item under the profile, so MALFORMED
    payload = envelope(7, 1, b"\x81\xf7", version=2)
    assert model.expect(payload).outcomes == _only(MALFORMED)


def test_arguments_then_mode() -> None:
    set_mode = COMMAND_IDS["set_mode"]
    load_switch = COMMAND_IDS["load_switch"]
    assert model.expect(command(9, load_switch, [3, True]),
                        mode=MODE_SAFE).outcomes == _only(WRONG_MODE)
    assert model.expect(command(9, load_switch, [10, True]),
                        mode=MODE_SAFE).outcomes == _only(OUT_OF_RANGE)
    assert model.expect(command(9, load_switch, [3, 1]),
                        mode=MODE_SAFE).outcomes == _only(BAD_ARGUMENTS)
    assert model.expect(command(8, set_mode, [2]), mode=MODE_SAFE).outcomes == {OK}
    assert model.expect(command(8, set_mode, [3]),
                        mode=MODE_SAFE).outcomes == {"fail:18"}
    assert model.expect(command(8, set_mode, [3]),
                        mode=MODE_NOMINAL).outcomes == {OK, "fail:20"}


@pytest.mark.parametrize(("data", "why"), [
    (b"\x81" * 16 + b"\x00", None),
    (b"\x81" * 17 + b"\x00", "nesting deeper than 16"),
    (b"\x81" * 15 + b"\xa1\x00\x00", None),
    (b"\x81" * 16 + b"\xa1\x00\x00", "nesting deeper than 16"),
    (b"\xf7", "simple value 23"),
    (b"\xc1\x00", "tag"),
    (b"\x9f\xff", "indefinite length"),
    (b"\xf9\x7e\x00", "NaN or infinity"),
    (b"\xa2\x01\x00\x01\x00", "duplicate map key"),
    (b"\x99\x01\x01" + b"\x00" * 257, "array of 257 items"),
    (b"\x62\xc3\x28", "invalid UTF-8"),
    (b"\x00\x00", "1 trailing byte(s)"),
])
def test_profile_limits(data: bytes, why: str | None) -> None:
    assert profile.check(data) == why


@pytest.mark.parametrize(("data", "canonical"), [
    (bytes.fromhex("1a 00 00 00 01"), False),  # bug 2's id 1 written in five bytes
    (bytes.fromhex("18 17"), False),
    (bytes.fromhex("fa 3f c0 00 00"), False),  # 1.5 fits half precision
    (bytes.fromhex("f9 3e 00"), True),
    (bytes.fromhex("fa 40 53 33 33"), True),  # 3.3 in single precision
    (bytes.fromhex("fb 40 0a 66 66 66 66 66 66"), False),  # the node never sends a double
    (bytes.fromhex("a2 61 62 00 01 00"), False),  # keys out of length-first order
    (bytes.fromhex("a2 01 00 61 62 00"), True),
])
def test_canonical_form(data: bytes, canonical: bool) -> None:
    assert (profile.check(data, canonical=True, node_floats=True) is None) is canonical
    assert profile.check(data) is None  # all of them are well-formed


def test_address_reads_heads_of_any_length_and_nothing_else() -> None:
    long_seq = bytes.fromhex("86 01 00 1a 00 00 00 07 00 1b 00 00 00 02 00 00 00 01")
    assert profile.address(long_seq + b"\xff") == (7, 2**33 + 1)
    assert profile.address(bytes.fromhex("84 01 00 07 00")) is None  # four items
    assert profile.address(bytes.fromhex("86 01 00 1a 00 01 00 00 00 01")) is None  # seq 65536
    assert profile.address(bytes.fromhex("86 01 00 07 00 21 80")) is None  # id negative
    assert profile.address(dumps([1, 0, 7, 0, 1, []])) == (7, 1)


def test_time_tagged_commands_are_judged_after_their_arguments() -> None:
    """SPEC §11.2: arguments first (exact), then immediate (BAD_ARGUMENTS), then the time; the
    mode is not judged on arrival."""
    import cbor2

    def tagged(cmd_id: int, args: list[object], time_ms: int) -> bytes:
        return cbor2.dumps([1, 0, 9, time_ms, cmd_id, args, 3], canonical=True)

    load_switch = COMMAND_IDS["load_switch"]
    future = 1_900_000_000_000
    assert model.expect(tagged(load_switch, [10, True], future), mode=MODE_SAFE,
                        boot=3).outcomes == _only(OUT_OF_RANGE)
    assert model.expect(tagged(COMMAND_IDS["dict_downlink"], [], future), mode=MODE_SAFE,
                        boot=3).outcomes == _only(BAD_ARGUMENTS)
    assert model.expect(tagged(load_switch, [3, True], 5), mode=MODE_SAFE,
                        boot=3).outcomes == frozenset({"rej:12", "rej:13"})
    later = model.expect(tagged(load_switch, [3, True], future), mode=MODE_SAFE, boot=3)
    assert "rej:4" not in later.outcomes and OK in later.outcomes
