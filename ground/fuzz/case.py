"""A fuzz case: a message (or raw bytes), how it goes on the wire, and the outcomes it allows.

Outcomes are short strings:

- ``"none"``: no verification for this case's ``(seq, id)`` (dropped or counted only);
- ``"rej:N"``: rejected with reason code N (SPEC §6);
- ``"ok"``: accepted then completed; ``"fail:N"`` accepted then failed with code N, and
  ``"fail"`` allows any failure code.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, replace
from typing import Any, Final

from cobs import cobs

# Reason codes (SPEC §6); kept here so the generators do not depend on protocol.messages.
UNKNOWN_COMMAND: Final = 1
BAD_ARGUMENTS: Final = 2
OUT_OF_RANGE: Final = 3
WRONG_MODE: Final = 4
BUSY: Final = 5
MALFORMED: Final = 6
UNSUPPORTED_VERSION: Final = 7
UNAUTHENTICATED: Final = 9
NOT_ARMED: Final = 11

MAX_MESSAGE: Final = 1020
MAX_FRAME: Final = 1024

FRAME: Final = "frame"  # 00 cobs(payload + crc32 LE) 00
BAD_CRC: Final = "bad_crc"  # the same with a wrong CRC
RAW: Final = "raw"  # payload bytes exactly as they are

NONE: Final = "none"
OK: Final = "ok"
FAIL: Final = "fail"


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
    boot: int | None = None  # a stored payload whose last item is this boot: bound on sending

    @property
    def wire(self) -> bytes:
        return self.prefix + frame_bytes(self.bound_payload, self.framing)

    @property
    def bound_payload(self) -> bytes:
        """The payload, its trailing boot item (if ``boot`` says it has one) replaced by the
        boot the node is in now (SPEC §5.1), so a stored case still reaches the same checks."""
        from ground.fuzz.encoding import bound_boot, dumps

        old = dumps(self.boot) if self.boot is not None else b""
        if not old or not self.payload.endswith(old):
            return self.payload
        return self.payload[: -len(old)] + dumps(bound_boot())

    def with_payload(self, payload: bytes, prefix: bytes | None = None) -> Case:
        return replace(self, payload=payload, prefix=self.prefix if prefix is None else prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category, "name": self.name, "payload": self.payload.hex(),
            "framing": self.framing, "seq": self.seq, "cmd_id": self.cmd_id,
            "allowed": sorted(self.allowed), "prefix": self.prefix.hex(),
            **({} if self.boot is None else {"boot": self.boot}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        return cls(
            category=str(data["category"]), name=str(data["name"]),
            payload=bytes.fromhex(data["payload"]), framing=str(data.get("framing", FRAME)),
            seq=data.get("seq"), cmd_id=data.get("cmd_id"),
            allowed=frozenset(data.get("allowed", [NONE])),
            prefix=bytes.fromhex(data.get("prefix", "")), boot=data.get("boot"),
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
