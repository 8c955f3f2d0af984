"""Fuzz cases: structure-aware, dictionary-driven inputs for the node, with what each must do.

A `Case` is a message (or raw bytes) plus how it goes on the wire (`framing`) and the outcomes
the protocol allows for it (`allowed`). Outcomes are short strings:

- ``"none"``: no verification for this case's ``(seq, id)`` (dropped or counted only);
- ``"rej:N"``: rejected with reason code N (SPEC §6);
- ``"ok"``: accepted then completed; ``"fail:N"`` accepted then failed with code N, and
  ``"fail"`` allows any failure code.

Cases are generated from ``(seed, index)`` alone, so a campaign is reproducible and any case
can be regenerated from its number. The generators never produce a command that would reset
the node or change what the fuzzer relies on when it is valid (reboot, maintenance,
fault_inject, clear_counters, hk_rate, hk_enable, param_save and some parameters): those only
appear with arguments that must be rejected.
"""

from __future__ import annotations

import binascii
import math
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import cbor2
from cobs import cobs

from protocol import dictionary
from protocol.dictionary_types import ANY, BOOL, F32, I32, IN_ANY, TYPE_RANGES, U8, U16, U32
from protocol.messages import f32

# Reason codes (SPEC §6); kept here so the generators do not depend on protocol.messages.
UNKNOWN_COMMAND: Final = 1
BAD_ARGUMENTS: Final = 2
OUT_OF_RANGE: Final = 3
WRONG_MODE: Final = 4
BUSY: Final = 5
MALFORMED: Final = 6
UNSUPPORTED_VERSION: Final = 7

MAX_MESSAGE: Final = 1020
MAX_FRAME: Final = 1024

FRAME: Final = "frame"  # 00 cobs(payload + crc32 LE) 00
BAD_CRC: Final = "bad_crc"  # the same with a wrong CRC
RAW: Final = "raw"  # payload bytes exactly as they are

NONE: Final = "none"
OK: Final = "ok"
FAIL: Final = "fail"

COMMANDS: Final = {cmd.id: cmd for cmd in dictionary.COMMANDS}
COMMAND_IDS: Final = {cmd.name: cmd.id for cmd in dictionary.COMMANDS}
PARAMS: Final = {param.id: param for param in dictionary.PARAMS}

# Commands that must never execute during a campaign: they reset the node, leave the
# protocol, change the counters or telemetry the fuzzer checks, or wear the flash.
NEVER_VALID: Final = frozenset(COMMAND_IDS[name] for name in (
    "reboot", "maintenance", "fault_inject", "clear_counters", "hk_rate", "hk_enable",
    "param_save"))
# Parameters whose valid values would change the node's pace or its watchdog.
NEVER_SET: Final = frozenset(param.id for param in dictionary.PARAMS
                             if param.name in ("time_factor", "watchdog_timeout_ms"))


def rej(*codes: int) -> frozenset[str]:
    return frozenset(f"rej:{code}" for code in codes)


EXECUTES: Final = frozenset({OK, FAIL})  # accepted: the command ran


@dataclass(frozen=True)
class Case:
    """One fuzz input. ``prefix`` is raw bytes sent before the (framed) payload."""

    category: str
    name: str
    payload: bytes
    framing: str = FRAME
    seq: int | None = None  # (seq, cmd_id) identify the verification that belongs to it
    cmd_id: int | None = None
    allowed: frozenset[str] = frozenset({NONE})
    prefix: bytes = b""

    @property
    def wire(self) -> bytes:
        return self.prefix + frame_bytes(self.payload, self.framing)

    def with_payload(self, payload: bytes, prefix: bytes | None = None) -> Case:
        return replace(self, payload=payload, prefix=self.prefix if prefix is None else prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category, "name": self.name, "payload": self.payload.hex(),
            "framing": self.framing, "seq": self.seq, "cmd_id": self.cmd_id,
            "allowed": sorted(self.allowed), "prefix": self.prefix.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        return cls(
            category=str(data["category"]), name=str(data["name"]),
            payload=bytes.fromhex(data["payload"]), framing=str(data.get("framing", FRAME)),
            seq=data.get("seq"), cmd_id=data.get("cmd_id"),
            allowed=frozenset(data.get("allowed", [NONE])),
            prefix=bytes.fromhex(data.get("prefix", "")),
        )


def frame_bytes(payload: bytes, framing: str = FRAME) -> bytes:
    """Put a payload on the wire: framed with a good or bad CRC-32, or raw."""
    if framing == RAW:
        return payload
    crc = binascii.crc32(payload)
    if framing == BAD_CRC:
        crc ^= 0x5A5A5A5A
    return b"\x00" + bytes(cobs.encode(payload + struct.pack("<I", crc))) + b"\x00"


EXECUTION_ERROR: Final = "fail:16"  # the command raised: a bug, unless a case says otherwise


def outcome_allowed(outcome: str, allowed: frozenset[str]) -> bool:
    """Is the outcome one the case allows? ``fail`` allows any failure but EXECUTION_ERROR."""
    if outcome in allowed:
        return True
    return outcome.startswith("fail:") and FAIL in allowed and outcome != EXECUTION_ERROR


# --- CBOR pieces ---------------------------------------------------------------------------


def dumps(obj: object) -> bytes:
    data: bytes = cbor2.dumps(obj, canonical=True)
    return data


def head(major: int, value: int) -> bytes:
    """A CBOR head (major type and argument) in its shortest form."""
    mt = major << 5
    if value < 24:
        return bytes([mt | value])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if value < 1 << (8 * struct.calcsize(fmt)):
            return bytes([mt | ai]) + struct.pack(fmt, value)
    raise ValueError(f"{value} does not fit a CBOR head")


def envelope(seq: int, cmd_id: int, body_raw: bytes, *, version: object = 1, kind: object = 0,
             time: object = 0) -> bytes:
    """A command envelope whose body is already encoded (so it may be malformed)."""
    return (b"\x86" + dumps(version) + dumps(kind) + dumps(seq) + dumps(time) + dumps(cmd_id)
            + body_raw)


def command(seq: int, cmd_id: int, args: Sequence[object]) -> bytes:
    return envelope(seq, cmd_id, dumps(list(args)))


def args_raw(items: Sequence[bytes]) -> bytes:
    return head(4, len(items)) + b"".join(items)


# --- argument values -----------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range_of(arg_type: str, lo: object, hi: object) -> tuple[float, float]:
    t_lo, t_hi = TYPE_RANGES.get(arg_type, (-math.inf, math.inf))
    return (t_lo if lo is None else float(lo)), (t_hi if hi is None else float(hi))  # type: ignore[arg-type]


def check_value(arg_type: str, lo: object, hi: object, value: object) -> int:
    """0 if `value` is a valid argument, else the rejection code the node must give."""
    if arg_type == ANY:
        return 0
    if arg_type == BOOL:
        return 0 if isinstance(value, bool) else BAD_ARGUMENTS
    if arg_type == F32:
        if not (_is_int(value) or isinstance(value, float)):
            return BAD_ARGUMENTS
        number = float(f32(float(value)))  # type: ignore[arg-type]  # as the node holds it
        if not math.isfinite(number):
            return OUT_OF_RANGE
        r_lo, r_hi = _range_of(arg_type, lo, hi)
        return 0 if r_lo <= number <= r_hi else OUT_OF_RANGE
    if not _is_int(value) or (value < 0 and arg_type != I32):  # type: ignore[operator]
        return BAD_ARGUMENTS  # a negative integer is the wrong major type for a uint
    t_lo, t_hi = TYPE_RANGES[arg_type]
    r_lo, r_hi = _range_of(arg_type, lo, hi)
    number = int(value)  # type: ignore[call-overload]
    if not t_lo <= number <= t_hi or not r_lo <= number <= r_hi:
        return OUT_OF_RANGE
    return 0


def boundary_values(arg_type: str, lo: object, hi: object) -> list[object]:
    """Values at and just beyond the argument's range and its type's width."""
    if arg_type == BOOL:
        return [True, False, 0, 1, None]
    if arg_type == ANY:
        return [0, -1, 2**32, 1.5, "x", b"", [], None, True]
    r_lo, r_hi = _range_of(arg_type, lo, hi)
    if arg_type == F32:
        return [r_lo, r_hi, math.nextafter(r_lo, -math.inf), math.nextafter(r_hi, math.inf),
                r_lo - 1.0, r_hi + 1.0, 3.4028234663852886e38, 1e39, -1e39, -0.0,
                int(r_lo), int(r_hi), 5e-324]
    t_lo, t_hi = TYPE_RANGES[arg_type]
    values: list[object] = [int(r_lo), int(r_hi), int(r_lo) - 1, int(r_hi) + 1, t_lo - 1,
                            t_hi + 1, 2**64 - 1, -(2**64), 0]
    if arg_type in (U8, U16, U32, I32):
        values += [float(int(r_lo)), True]
    return values


def valid_value(rng: random.Random, arg_type: str, lo: object, hi: object) -> object:
    if arg_type == BOOL:
        return rng.random() < 0.5
    if arg_type == ANY:
        return rng.randrange(0, 2**40)
    r_lo, r_hi = _range_of(arg_type, lo, hi)
    if arg_type == F32:
        return struct.unpack("<f", struct.pack("<f", rng.uniform(r_lo, r_hi)))[0]
    return rng.randint(int(r_lo), int(r_hi))


WRONG_TYPES: Final[tuple[object, ...]] = (
    "text", b"\x01\x02", [1, 2], [], None, 1.25, True, -7, 2**40, {"k": 1}, "",
)


def param_value_outcomes(param_id: object, value: object) -> frozenset[str]:
    """What param_set(param_id, value) does once its arguments passed the dictionary checks:
    a bad value for a known parameter is rejected; an unknown id is accepted and fails."""
    param = PARAMS.get(param_id) if _is_int(param_id) else None
    if param is None:
        return frozenset({"fail:19"})
    code = check_value(param.type, param.lo, param.hi, value)
    return rej(code) if code else frozenset({OK})


def command_outcomes(cmd_id: int, args: Sequence[object]) -> frozenset[str]:
    """The outcomes the protocol allows for a well-formed command with these arguments.

    The node's order (firmware dispatcher): unknown id, then the argument count, each
    argument in turn, then the mode, then the command's own check, then execution.
    """
    cmd = COMMANDS.get(cmd_id)
    if cmd is None:
        return rej(UNKNOWN_COMMAND)
    if len(args) != len(cmd.args):
        return rej(BAD_ARGUMENTS)
    for arg, value in zip(cmd.args, args, strict=True):
        code = check_value(arg.type, arg.lo, arg.hi, value)
        if code:  # arguments are checked in order; the first bad one gives the code
            return rej(code)
    mode = rej(WRONG_MODE) if cmd.modes != IN_ANY else frozenset()
    if cmd.name == "param_set":
        return param_value_outcomes(args[0], args[1]) | mode
    if cmd.name == "time_correlate" and not (_is_int(args[0]) and args[0] >= 0):  # type: ignore[operator]
        return rej(BAD_ARGUMENTS) | mode
    return frozenset({OK, FAIL}) | mode | rej(BUSY)


def is_hazard(cmd_id: int, args: Sequence[object]) -> bool:
    """True when this command might really run and is one the campaign must not run."""
    if not command_outcomes(cmd_id, args) & EXECUTES:
        return False
    if cmd_id in NEVER_VALID:
        return True
    name = COMMANDS[cmd_id].name if cmd_id in COMMANDS else ""
    return name == "param_set" and args[0] in NEVER_SET


# --- the generators ----------------------------------------------------------------------

Gen = Callable[[random.Random, int], Case]


def _some_command(rng: random.Random) -> Any:
    return rng.choice(dictionary.COMMANDS)


def _valid_args(rng: random.Random, cmd: Any) -> list[object]:
    return [valid_value(rng, a.type, a.lo, a.hi) for a in cmd.args]


def _safe_valid_command(rng: random.Random, seq: int) -> tuple[int, list[object]]:
    while True:
        cmd = _some_command(rng)
        args = _valid_args(rng, cmd)
        if cmd.name == "param_set":
            args[0] = rng.choice(list(PARAMS))
            param = PARAMS[int(args[0])]  # type: ignore[call-overload]
            args[1] = valid_value(rng, param.type, param.lo, param.hi)
        if not is_hazard(cmd.id, args):
            return cmd.id, args


def gen_valid(rng: random.Random, seq: int) -> Case:
    cmd_id, args = _safe_valid_command(rng, seq)
    return Case("valid", COMMANDS[cmd_id].name, command(seq, cmd_id, args), seq=seq,
                cmd_id=cmd_id, allowed=command_outcomes(cmd_id, args))


def _guarded(category: str, name: str, seq: int, cmd_id: int, args: list[object]) -> Case:
    """A command case, turned into an unknown-id case if it could run something hazardous."""
    if is_hazard(cmd_id, args):
        args = [*args, 0]  # one argument too many: must be rejected
    return Case(category, name, command(seq, cmd_id, args), seq=seq, cmd_id=cmd_id,
                allowed=command_outcomes(cmd_id, args))


def gen_boundary(rng: random.Random, seq: int) -> Case:
    cmd = rng.choice([c for c in dictionary.COMMANDS if c.args])
    args = _valid_args(rng, cmd)
    i = rng.randrange(len(cmd.args))
    arg = cmd.args[i]
    args[i] = rng.choice(boundary_values(arg.type, arg.lo, arg.hi))
    if cmd.name == "param_set" and i == 1:
        param = PARAMS[rng.choice(list(PARAMS))]
        args[0] = param.id
        args[1] = rng.choice(boundary_values(param.type, param.lo, param.hi))
    return _guarded("boundary", f"{cmd.name}.{arg.name}", seq, cmd.id, args)


def gen_bad_args(rng: random.Random, seq: int) -> Case:
    cmd = _some_command(rng)
    args = _valid_args(rng, cmd)
    choice = rng.randrange(3)
    if choice == 0 or not cmd.args:
        args.append(rng.choice(WRONG_TYPES))
        name = "too_many"
    elif choice == 1:
        args.pop(rng.randrange(len(args)))
        name = "too_few"
    else:
        i = rng.randrange(len(args))
        args[i] = rng.choice(WRONG_TYPES)
        name = f"type.{cmd.args[i].name}"
    return _guarded("bad_args", f"{cmd.name}.{name}", seq, cmd.id, args)


def gen_unknown_id(rng: random.Random, seq: int) -> Case:
    known = set(COMMANDS)
    cmd_id = rng.choice([0, max(known) + 1, rng.randrange(max(known) + 1, 256),
                         rng.randrange(256, 65536), 65535])
    while cmd_id in known:
        cmd_id += 1
    body: list[object] = rng.choice([[], [1], [1, True], ["x"]])
    return Case("unknown_id", str(cmd_id), command(seq, cmd_id, body), seq=seq, cmd_id=cmd_id,
                allowed=rej(UNKNOWN_COMMAND))


def _plain(seq: int) -> tuple[int, bytes]:
    """noop, the command the envelope generators damage."""
    return COMMAND_IDS["noop"], dumps([])


def gen_envelope(rng: random.Random, seq: int) -> Case:
    cmd_id, body = _plain(seq)
    drop = frozenset({NONE}) | rej(MALFORMED)
    variants: list[tuple[str, bytes, frozenset[str], int | None]] = [
        ("not_array", dumps(rng.choice([1, "cmd", b"\x86", {1: 2}, None, True, 1.5])), drop, None),
        ("short", dumps([1, 0, seq, 0, cmd_id][: rng.randrange(6)]), drop, None),
        ("long", dumps([1, 0, seq, 0, cmd_id, [], *([0] * rng.randrange(1, 5))]), drop, seq),
        ("version", envelope(seq, cmd_id, body, version=rng.choice([0, 2, 255, 65536])),
         rej(UNSUPPORTED_VERSION), seq),
        ("version_type", envelope(seq, cmd_id, body, version=rng.choice(["1", 1.0, None, -1])),
         drop | rej(UNSUPPORTED_VERSION), seq),
        ("kind", envelope(seq, cmd_id, body, kind=rng.choice([1, 2, 3, 4, 5, 6, 7, 255, -1,
                                                              "0", None])), drop, seq),
        ("seq", b"\x86" + dumps(1) + dumps(0)
         + dumps(rng.choice([65536, 2**32, -1, "s", 1.5, None, [seq]])) + dumps(0)
         + dumps(cmd_id) + body, drop, None),
        ("time", envelope(seq, cmd_id, body, time=rng.choice([1, 2**32, -1, "t", None])),
         drop | {OK}, seq),
        ("id_type", b"\x86" + dumps(1) + dumps(0) + dumps(seq) + dumps(0)
         + dumps(rng.choice(["noop", -1, 1.0, None, [1], 2**40])) + body,
         drop | rej(UNKNOWN_COMMAND), None),
        ("body", envelope(seq, cmd_id, dumps(rng.choice([0, "x", {1: 1}, None, b"", True]))),
         drop | rej(BAD_ARGUMENTS), seq),
    ]
    name, payload, allowed, match = rng.choice(variants)
    return Case("envelope", name, payload, seq=match, cmd_id=cmd_id if match is not None else None,
                allowed=allowed)


def _deep(depth: int, leaf: bytes = b"\x00") -> bytes:
    return b"\x81" * depth + leaf


_BAD_ITEMS: Final[tuple[tuple[str, bytes], ...]] = (
    ("reserved_ai", b"\x1c"), ("reserved_ai_bytes", b"\x5d"), ("reserved_ai_array", b"\x9e"),
    ("huge_bytes", b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
    ("huge_text", b"\x7a\x7f\xff\xff\xff" + b"a" * 4),
    ("huge_array", b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00\x00"),
    ("huge_map", b"\xba\xff\xff\xff\xff\x01\x02"),
    ("long_bytes", b"\x59\x04\x00" + b"\x01" * 8),
    ("indef_array", b"\x9f\x01\x02\xff"), ("indef_bytes", b"\x5f\x41\x01\xff"),
    ("indef_text", b"\x7f\x61a\xff"), ("indef_map", b"\xbf\x01\x02\xff"),
    ("break", b"\xff"), ("invalid_utf8", b"\x62\xc3\x28"), ("overlong_utf8", b"\x62\xc0\xaf"),
    ("surrogate_utf8", b"\x63\xed\xa0\x80"), ("lone_ff_utf8", b"\x61\xff"),
    ("nan_half", b"\xf9\x7e\x00"), ("inf_half", b"\xf9\x7c\x00"), ("ninf_half", b"\xf9\xfc\x00"),
    ("nan_single", b"\xfa\x7f\xc0\x00\x00"), ("nan_double", b"\xfb\x7f\xf8" + b"\x00" * 6),
    ("inf_double", b"\xfb\x7f\xf0" + b"\x00" * 6), ("undefined", b"\xf7"),
    ("simple_0", b"\xe0"), ("simple_ext", b"\xf8\x20"), ("simple_ff", b"\xf8\xff"),
    ("tag_epoch", b"\xc1\x1a\x00\x00\x00\x01"), ("tag_bignum", b"\xc2\x49\x01" + b"\x00" * 8),
    ("tag_self", b"\xd9\xd9\xf7\x00"), ("tag_nested", b"\xc6" * 20 + b"\x00"),
    ("tag_huge", b"\xdb\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
    ("deep_17", _deep(17)), ("deep_64", _deep(64)), ("deep_900", _deep(900)),
    ("deep_map", b"\xa1\x00" * 40 + b"\x00"),
    ("too_many_items", b"\x99\x02\x58" + b"\x00" * 600),
    ("array_257", b"\x99\x01\x01" + b"\x00" * 257), ("map_65", b"\xb8\x41" + b"".join(
        bytes([0x18, i, 0]) if i >= 24 else bytes([i, 0]) for i in range(65))),
    ("dup_keys", b"\xa2\x01\x01\x01\x02"), ("map_key_float", b"\xa1\xf9\x3c\x00\x00"),
    ("ai_31_int", b"\x1f"), ("neg_ai_31", b"\x3f"), ("float_trunc", b"\xfa\x00"),
    ("int_trunc", b"\x1b\x00\x00"),
)


def gen_malformed_cbor(rng: random.Random, seq: int) -> Case:
    """Correctly framed and CRC'd, but the CBOR breaks the profile (SPEC §4)."""
    cmd_id = COMMAND_IDS["param_set"]
    valid = command(seq, cmd_id, [14, rng.randrange(-1000, 1001)])
    choice = rng.randrange(5)
    never = frozenset({NONE}) | rej(MALFORMED, BAD_ARGUMENTS, OUT_OF_RANGE)
    if choice == 0:
        cut = rng.randrange(0, len(valid))
        return Case("malformed_cbor", "truncated", valid[:cut], seq=seq, cmd_id=cmd_id,
                    allowed=never)
    if choice == 1:
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        return Case("malformed_cbor", "trailing", valid + tail, seq=seq, cmd_id=cmd_id,
                    allowed=never)
    name, item = rng.choice(_BAD_ITEMS)
    if choice == 2:  # in the value argument of param_set(test_value, ...)
        payload = envelope(seq, cmd_id, args_raw([dumps(14), item]))
    elif choice == 3:  # as a whole body
        payload = envelope(seq, cmd_id, item)
    else:  # in the envelope itself, in place of a field
        field = rng.randrange(6)
        parts = [dumps(1), dumps(0), dumps(seq), dumps(0), dumps(cmd_id),
                 args_raw([dumps(14), dumps(1)])]
        parts[field] = item
        payload = b"\x86" + b"".join(parts)
        name = f"{name}@{field}"
    return Case("malformed_cbor", name, payload[:MAX_MESSAGE], seq=seq, cmd_id=cmd_id,
                allowed=never)


def gen_bad_crc(rng: random.Random, seq: int) -> Case:
    cmd_id, args = _safe_valid_command(rng, seq)
    return Case("bad_crc", COMMANDS[cmd_id].name, command(seq, cmd_id, args), framing=BAD_CRC,
                seq=seq, cmd_id=cmd_id)


def gen_noise(rng: random.Random, seq: int) -> Case:
    size = rng.choice([1, 2, 5, 17, 64, 255, 1100, rng.randrange(1, 400)])
    zeros = rng.random() < 0.5
    data = bytes(rng.randrange(0 if zeros else 1, 256) for _ in range(size))
    return Case("noise", "with_zeros" if zeros else "no_zeros", data, framing=RAW)


def gen_frame_errors(rng: random.Random, seq: int) -> Case:
    """Oversize frames, truncated COBS blocks and frames too short for a CRC."""
    choice = rng.randrange(4)
    if choice == 0:
        size = rng.choice([MAX_FRAME - 3, MAX_FRAME + 1, 2 * MAX_FRAME, 4000])
        message = envelope(seq, COMMAND_IDS["param_set"], args_raw([dumps(14),
                                                                    head(2, size) + bytes(size)]))
        return Case("frame_errors", f"oversize_{size}", message, seq=seq,
                    cmd_id=COMMAND_IDS["param_set"])
    if choice == 1:
        body = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 20)))
        code = len(body) + 1 + rng.randrange(1, 200)
        return Case("frame_errors", "cobs_truncated", b"\x00" + bytes([min(code, 255)]) + body
                    + b"\x00", framing=RAW)
    if choice == 2:
        short = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        return Case("frame_errors", "too_short", b"\x00" + cobs.encode(short) + b"\x00",
                    framing=RAW)
    # exactly at the limit: a 1020-byte message is legal, and must be answered
    cmd_id = COMMAND_IDS["param_set"]
    size = MAX_MESSAGE - len(envelope(seq, cmd_id, args_raw([dumps(14), head(2, 1000)])))
    while len(message := envelope(seq, cmd_id, args_raw([dumps(14),
                                                         head(2, size) + bytes(size)]))) \
            > MAX_MESSAGE:
        size -= 1
    return Case("frame_errors", "max_message", message, seq=seq, cmd_id=cmd_id,
                allowed=rej(BAD_ARGUMENTS, OUT_OF_RANGE) | {FAIL})


def gen_burst(rng: random.Random, seq: int) -> Case:
    """Garbage between frames, then a valid noop the node must still find and answer."""
    size = rng.randrange(1, 300)
    garbage = bytes(rng.randrange(256) for _ in range(size))
    cmd_id = COMMAND_IDS["noop"]
    return Case("burst", "noise_then_noop", command(seq, cmd_id, []), seq=seq, cmd_id=cmd_id,
                allowed=frozenset({OK}), prefix=garbage)


# Category name -> (generator, weight)
GENERATORS: Final[dict[str, tuple[Gen, int]]] = {
    "malformed_cbor": (gen_malformed_cbor, 30),
    "envelope": (gen_envelope, 12),
    "unknown_id": (gen_unknown_id, 5),
    "bad_args": (gen_bad_args, 14),
    "boundary": (gen_boundary, 14),
    "valid": (gen_valid, 5),
    "bad_crc": (gen_bad_crc, 6),
    "noise": (gen_noise, 6),
    "frame_errors": (gen_frame_errors, 5),
    "burst": (gen_burst, 3),
}
CATEGORIES: Final = tuple(GENERATORS)


def case_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{index}")


def generate(seed: int, index: int, seq: int, categories: Sequence[str] = CATEGORIES) -> Case:
    """Case number `index` of campaign `seed`, with command sequence number `seq`."""
    rng = case_rng(seed, index)
    weights = [GENERATORS[name][1] for name in categories]
    category = rng.choices(list(categories), weights)[0]
    return GENERATORS[category][0](rng, seq)
