"""The fuzzer's model of the node's receiver: for any message, the ONE answer the spec gives.

``expect(payload, mode=..., boot=...)`` follows SPEC §5 and §5.1 step by step, from the bytes:

1. not one CBOR item under §4 (ground.fuzz.profile) -> MALFORMED;
2. not a non-empty array whose first item is a uint -> MALFORMED; version not 1 ->
   UNSUPPORTED_VERSION;
3. not a command of the right shape (COMMAND_ITEMS items, kind 0, seq a uint <= 65535, time
   a uint, id a uint, body an array, and the boot a uint where commands carry one) ->
   MALFORMED;
4. bound to another boot -> STALE_BOOT (where the protocol binds commands to a boot);
5. the dictionary's checks (oracle.command_outcomes): UNKNOWN_COMMAND, BAD_ARGUMENTS,
   OUT_OF_RANGE, in argument order, then WRONG_MODE for the node's mode, then the command's
   own checks. A time-tagged command (time not 0, SPEC §11.2) after the arguments: a
   hazardous one -> NOT_ARMED (SPEC §10.8); an immediate command -> BAD_ARGUMENTS; then
   CLOCK_UNCORRELATED or TIME_PAST (the campaign does not model the node's clock: both
   allowed; a time before _FUTURE_MS is past whatever the clock), or for a later time also
   its own check, QUEUE_FULL, or accepted (queued).

A message the node cannot address (profile.address: no readable seq and id) gets no answer
at all, whatever its failure; one it can address is answered with exactly that seq and id.
The result is an ``Expectation``: the address, and the outcomes allowed. A rejection is
always a single outcome; only what a command does once accepted may depend on state the
fuzzer does not model (a bulk transfer still running: BUSY; the plant: a failure code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cbor2

from ground.fuzz import profile
from ground.fuzz.case import EXECUTES, MALFORMED, NONE, UNAUTHENTICATED, UNSUPPORTED_VERSION, rej
from ground.fuzz.oracle import command_outcomes
from protocol import messages as _messages
from protocol.dictionary_types import MODE_SAFE

# Commands carry the boot they are bound to (a seventh item) once the protocol says so.
COMMAND_ITEMS: Final[int] = int(getattr(_messages, "COMMAND_ITEMS", 6))
STALE_BOOT: Final[int | None] = getattr(_messages, "STALE_BOOT", None)
BOUND_TO_BOOT: Final = COMMAND_ITEMS == 7


@dataclass(frozen=True)
class Expectation:
    address: tuple[int, int] | None  # (seq, command id) the answer must name, exactly
    outcomes: frozenset[str]  # what may come back for that address
    reason: str = ""  # why, for findings
    command: tuple[int, tuple[object, ...]] | None = None  # (id, args) of a well-formed command

    @property
    def answered(self) -> bool:
        return self.address is not None and self.outcomes != frozenset({NONE})


def _uint(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _reject(address: tuple[int, int] | None, code: int, why: str) -> Expectation:
    if address is None:
        return Expectation(None, frozenset({NONE}), f"{why}; no readable seq and id")
    return Expectation(address, rej(code), why)


def expect(payload: bytes, *, mode: int = MODE_SAFE, boot: int = 0, enforced: bool = False,
           signed: bool = False) -> Expectation:
    """What the node must answer to a correctly framed message ``payload``: a plain message,
    or (``signed``) the message inside an authenticated object the node accepted (SPEC §10.3:
    it is then judged from the first check on). ``enforced``: the node's auth_state is
    ENFORCED, and a plain command is rejected UNAUTHENTICATED after the checks of §5 (§10.6).
    """
    address = profile.address(payload)
    why = profile.check(payload)
    if why is not None:
        return _reject(address, MALFORMED, f"not one item under the profile: {why}")
    item = cbor2.loads(payload)
    if not isinstance(item, list) or not item or not _uint(item[0]):
        return _reject(address, MALFORMED, "not an array starting with a uint")
    if item[0] != 1:
        return _reject(address, UNSUPPORTED_VERSION, f"version {item[0]}")
    shape_ok = (len(item) == COMMAND_ITEMS and item[1] == 0 and _uint(item[1])
                and _uint(item[2]) and item[2] <= 0xFFFF and _uint(item[3])
                and _uint(item[4]) and isinstance(item[5], list)
                and (not BOUND_TO_BOOT or _uint(item[6])))
    if not shape_ok:
        return _reject(address, MALFORMED, "not a command of the right shape")
    assert address is not None and address == (item[2], item[4])
    if enforced and not signed:
        return Expectation(address, rej(UNAUTHENTICATED), "plain, and the node enforces")
    if BOUND_TO_BOOT and item[6] != boot and STALE_BOOT is not None:
        return Expectation(address, rej(STALE_BOOT), f"bound to boot {item[6]}, not {boot}")
    if item[3] != 0:
        return Expectation(address, _timetagged(item[4], item[5], item[3]), TIME_TAGGED,
                           (item[4], tuple(item[5])))
    return Expectation(address, command_outcomes(item[4], item[5], mode, signed=signed),
                       "well-formed" + (" (authenticated)" if signed else ""),
                       (item[4], tuple(item[5])))


TIME_TAGGED: Final = "time-tagged"  # the reason of a time-tagged command's expectation
_FUTURE_MS: Final = 1_700_000_000_000  # 2023-11-14: a time before it is past on any node
_ARG_CODES: Final = rej(1, 2, 3)  # UNKNOWN_COMMAND, BAD_ARGUMENTS, OUT_OF_RANGE
_CLOCK_UNCORRELATED: Final = 12
_TIME_PAST: Final = 13
_QUEUE_FULL: Final = 14
_NOT_ARMED: Final = 11


def _timetagged(cmd_id: int, args: list[object], time_ms: int) -> frozenset[str]:
    """The outcomes of a time-tagged command (SPEC §11.2): exact up to its arguments."""
    from ground.validate import COMMANDS_BY_ID

    checked = command_outcomes(cmd_id, args, None)
    if len(checked) == 1 and checked <= _ARG_CODES:
        return checked  # the arguments are judged before the time
    cmd = COMMANDS_BY_ID.get(cmd_id)
    if cmd is not None and cmd.hazardous:
        return rej(_NOT_ARMED)  # armed as it arrives (SPEC §10.8); the campaign never arms
    if cmd is not None and cmd.immediate:
        return rej(2)  # BAD_ARGUMENTS: never time-tagged
    if time_ms < _FUTURE_MS:
        return rej(_CLOCK_UNCORRELATED, _TIME_PAST)
    own = frozenset(o for o in checked if o.startswith("rej:") and o != "rej:4")
    return rej(_CLOCK_UNCORRELATED, _TIME_PAST, _QUEUE_FULL) | own | EXECUTES
