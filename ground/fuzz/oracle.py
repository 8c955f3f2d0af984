"""What the node must do with a command: the dictionary's argument checks (SPEC §5.1) as the
fuzzer's model, and the commands a campaign must never let run.

A campaign never runs a command that would reset the node or change what the fuzzer relies on
(reboot, maintenance, fault_inject, clear_counters, hk_rate, hk_enable, param_save, some
parameters, and auth_policy when authenticated): ``is_hazard`` tells the generators which
argument lists those would accept.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from typing import Final

from ground.fuzz.case import (
    BAD_ARGUMENTS,
    BUSY,
    EXECUTES,
    FAIL,
    NOT_ARMED,
    OK,
    OUT_OF_RANGE,
    UNAUTHENTICATED,
    UNKNOWN_COMMAND,
    WRONG_MODE,
    rej,
)
from protocol import dictionary
from protocol.dictionary_types import (
    ANY,
    BOOL,
    F32,
    I32,
    IN_ANY,
    MODE_NOMINAL,
    MODE_SAFE,
    MODE_SCIENCE,
    TYPE_RANGES,
    U8,
    U16,
    U32,
)
from protocol.messages import f32

COMMANDS: Final = {cmd.id: cmd for cmd in dictionary.COMMANDS}
COMMAND_IDS: Final = {cmd.name: cmd.id for cmd in dictionary.COMMANDS}
PARAMS: Final = {param.id: param for param in dictionary.PARAMS}

# Commands that must never execute during a campaign: they reset the node, leave the
# protocol, change the counters or telemetry the fuzzer checks, or wear the flash.
NEVER_VALID: Final = frozenset(COMMAND_IDS[name] for name in (
    "reboot", "maintenance", "fault_inject", "clear_counters", "hk_rate", "hk_enable",
    "param_save", "arm",
    # the node's clock stays the ground's: a time-tagged case is then judged past or future
    # exactly (SPEC §11.2), and nothing the campaign queued comes due during it
    "time_correlate", "tt_pause",
    # stored sequences: they write the flash or run what a slot holds
    "seq_upload_begin", "seq_upload_part", "seq_upload_commit", "seq_start", "seq_trigger",
    "seq_delete"))
# Hazardous commands (SPEC §10.8) run only right after an arm: the campaign never arms (arm
# is in NEVER_VALID), so they are rejected NOT_ARMED; these three are taken only
# authenticated and their own check (UNAUTHENTICATED) comes first.
HAZARDOUS: Final = frozenset(cmd.id for cmd in dictionary.COMMANDS if cmd.hazardous)
AUTH_ONLY: Final = frozenset(COMMAND_IDS[name] for name in (
    "auth_policy", "key_rotate", "key_revoke"))
ARM_MAX_BYTES: Final = 64  # firmware/node/dispatcher.py _ARM_MAX_BYTES
# Stored sequences (SPEC §12.2, §12.4): the checks that depend on the node's upload and runs,
# which the campaign does not model: UPLOAD_STATE, BUSY, and a part's end beyond the size.
_UPLOAD_STATE: Final = 15
_SEQ_DIGEST: Final = 32
_SEQ_MAX_PART: Final = 128
# Parameters whose valid values would change the node's pace or its watchdog.
NEVER_SET: Final = frozenset(param.id for param in dictionary.PARAMS
                             if param.name in ("time_factor", "watchdog_timeout_ms"))


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


# Commands that start a bulk downlink (SPEC §5.7): BUSY while an earlier one still runs
# (tt_list: the time-tagged queue's listing, node.ttmanage through node.bulk's check_idle).
BULK_COMMANDS: Final = frozenset(COMMAND_IDS[name] for name in ("event_log_downlink",
                                                                  "dict_downlink", "tt_list"))
SET_MODE: Final = COMMAND_IDS["set_mode"]
AUTH_POLICY: Final = COMMAND_IDS["auth_policy"]


def _set_mode_outcomes(old: int, new: int) -> frozenset[str]:
    """SPEC §8: SAFE->NOMINAL, NOMINAL<->SCIENCE (SCIENCE needs charge: INHIBITED), any->SAFE."""
    if new == MODE_SAFE or (old, new) in ((MODE_SAFE, MODE_NOMINAL),
                                          (MODE_SCIENCE, MODE_NOMINAL)):
        return frozenset({OK})
    if (old, new) == (MODE_NOMINAL, MODE_SCIENCE):
        return frozenset({OK, "fail:20"})
    return frozenset({"fail:18"})


def command_outcomes(cmd_id: int, args: Sequence[object],
                     mode: int | None = None, signed: bool = False) -> frozenset[str]:
    """The outcomes the protocol allows for a well-formed command with these arguments.

    SPEC §5.1's order: unknown id, then the argument count, each argument in turn, then the
    mode, then the command's own check, then execution. With the node's ``mode`` every
    rejection is exactly one code; without it (``None``: the generators asking whether a
    command could run at all) WRONG_MODE is allowed as well wherever a mode could give it.
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
    if mode is None:
        extra = rej(WRONG_MODE) if cmd.modes != IN_ANY else frozenset()
    elif not cmd.modes & (1 << mode):
        return rej(WRONG_MODE)
    else:
        extra = frozenset()
    if cmd_id in AUTH_ONLY and not signed:  # taken only authenticated (SPEC §10.6, §10.7)
        return rej(UNAUTHENTICATED) | extra
    if cmd_id in HAZARDOUS:
        return rej(NOT_ARMED) | extra
    if cmd.name == "arm":
        if args[0] not in HAZARDOUS:
            return rej(NOT_ARMED) | extra
        if not isinstance(args[1], bytes) or len(args[1]) > ARM_MAX_BYTES:
            return rej(BAD_ARGUMENTS) | extra
        return frozenset({OK}) | extra
    if cmd.name == "param_set":
        return param_value_outcomes(args[0], args[1]) | extra
    if cmd.name == "time_correlate" and not (_is_int(args[0]) and args[0] >= 0):  # type: ignore[operator]
        return rej(BAD_ARGUMENTS) | extra
    if cmd_id == SET_MODE and mode is not None:
        return _set_mode_outcomes(mode, int(args[0]))  # type: ignore[call-overload]
    if cmd.name.startswith("seq_"):
        return _seq_outcomes(cmd.name, args) | extra
    if cmd_id in BULK_COMMANDS:  # a transfer of an earlier case may still be running
        return frozenset({OK, FAIL}) | rej(BUSY) | extra
    return frozenset({OK, FAIL}) | extra


def _seq_outcomes(name: str, args: Sequence[object]) -> frozenset[str]:
    """The own checks of the sequence commands (node.seqcmds, SPEC §12.2): exact for the
    arguments' types and lengths, state-dependent after them."""
    if name == "seq_upload_begin":
        if not isinstance(args[2], bytes):
            return rej(BAD_ARGUMENTS)
        return rej(OUT_OF_RANGE) if len(args[2]) != _SEQ_DIGEST else frozenset({OK, FAIL})
    if name == "seq_upload_part":
        if not isinstance(args[2], bytes):
            return rej(BAD_ARGUMENTS)
        if not 1 <= len(args[2]) <= _SEQ_MAX_PART:
            return rej(OUT_OF_RANGE)
        return rej(_UPLOAD_STATE, OUT_OF_RANGE) | {OK, FAIL}
    if name == "seq_upload_commit":
        return rej(_UPLOAD_STATE, BUSY) | {OK, FAIL}
    if name in ("seq_start", "seq_delete"):
        return rej(BUSY) | {OK, FAIL}
    return frozenset({OK, FAIL})


def is_hazard(cmd_id: int, args: Sequence[object], signed: bool = False) -> bool:
    """True when this command might really run and is one the campaign must not run
    (``signed``: sent authenticated with the node's key; auth_policy would then run)."""
    if not command_outcomes(cmd_id, args, signed=signed) & EXECUTES:
        return False
    if cmd_id in NEVER_VALID or cmd_id == AUTH_POLICY:
        return True
    name = COMMANDS[cmd_id].name if cmd_id in COMMANDS else ""
    return name == "param_set" and args[0] in NEVER_SET
