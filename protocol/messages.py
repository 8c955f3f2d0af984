"""Messages (SPEC §5, §6): the envelope [version, kind, seq, time, id, body] and its kinds.

The codes for kinds, verification stages, reasons, severities and argument types (their one
public definition); everything of protocol.envelope (the node-facing half: the node's
allocation-free helpers ``begin``, ``write_verification``, ``write_event_head``,
``read_command_head``, ``check_arg``, ``read_args``, ``f32``), re-exported; and what only the
ground and the tests need: names for display, ``validate``, ``encode_message`` and
``decode_message`` with full validation of each kind's body shape, and ``Message``. The node
imports protocol.envelope, never this module.

Allocation: ``encode_message``, ``decode_message``, ``Message`` and ``validate`` allocate
(ground, tests); see protocol.envelope for the node's helpers.
"""

from protocol import cbor
from protocol.cbor_decoder import Decoder
from protocol.envelope import *  # noqa: F403  (re-exported: the node-facing half)
from protocol.envelope import f32
from protocol.errors import MessageError, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any

# The codes (SPEC §5-§7), defined here once: protocol.envelope and the firmware inline the
# ones they use as private ``_NAME = const(n)`` (tests check they agree).
VERSION = 1
MAX_SEQ = 0xFFFF  # seq and cmd_seq wrap at 65536
MAX_MESSAGE = 1020  # bytes (§2), the same as protocol.framing.MAX_MESSAGE
MESSAGE_ITEMS = 6  # [version, kind, seq, time, id, body]: every message but a command
COMMAND_ITEMS = 7  # [version, kind, seq, time, id, body, boot] (§5.1)

KIND_COMMAND = 0
KIND_VERIFICATION = 1
KIND_HOUSEKEEPING = 2
KIND_EVENT = 3
KIND_PARAMETER = 4
KIND_TIME = 5
KIND_BULK = 6

STAGE_ACCEPTED = 0
STAGE_REJECTED = 1
STAGE_COMPLETED = 2
STAGE_FAILED = 3

# Reason codes (§6): rejections 1..15, failures 16..31; 0 in accepted/completed.
OK = 0
UNKNOWN_COMMAND = 1
BAD_ARGUMENTS = 2
OUT_OF_RANGE = 3
WRONG_MODE = 4
BUSY = 5
MALFORMED = 6
UNSUPPORTED_VERSION = 7
STALE_BOOT = 8
UNAUTHENTICATED = 9
COUNTER_STORE_FAILED = 10
NOT_ARMED = 11
CLOCK_UNCORRELATED = 12  # time-tagged commands (§11)
TIME_PAST = 13
QUEUE_FULL = 14
UPLOAD_STATE = 15
EXECUTION_ERROR = 16
STORAGE_ERROR = 17
INVALID_TRANSITION = 18
NOT_FOUND = 19
INHIBITED = 20
KEY_REFUSED = 21
NOT_ALLOWED_NOW = 22  # time-tagged commands (§11)
NOT_RUN = 23
UPLOAD_MISMATCH = 24
INVALID_SEQUENCE = 25
WAIT_TIMEOUT = 26

SEV_DEBUG = 0
SEV_INFO = 1
SEV_WARNING = 2
SEV_ERROR = 3
SEV_FATAL = 4

# Argument, channel and parameter type codes (§5.1, §7): index into TYPE_NAMES.
TYPE_BOOL = 0
TYPE_U8 = 1
TYPE_U16 = 2
TYPE_U32 = 3
TYPE_I32 = 4
TYPE_F32 = 5
TYPE_ANY = 6

KIND_NAMES = ("command", "verification", "housekeeping", "event", "parameter",
              "time_correlation", "bulk")
STAGE_NAMES = ("accepted", "rejected", "completed", "failed")
REJECTION_CODES = (1, 15)  # inclusive range a rejected verification's code lies in
FAILURE_CODES = (16, 31)
REASON_NAMES = {
    0: "OK", 1: "UNKNOWN_COMMAND", 2: "BAD_ARGUMENTS", 3: "OUT_OF_RANGE", 4: "WRONG_MODE",
    5: "BUSY", 6: "MALFORMED", 7: "UNSUPPORTED_VERSION", 8: "STALE_BOOT", 9: "UNAUTHENTICATED",
    10: "COUNTER_STORE_FAILED", 11: "NOT_ARMED", 12: "CLOCK_UNCORRELATED", 13: "TIME_PAST",
    14: "QUEUE_FULL", 15: "UPLOAD_STATE", 16: "EXECUTION_ERROR", 17: "STORAGE_ERROR",
    18: "INVALID_TRANSITION", 19: "NOT_FOUND", 20: "INHIBITED", 21: "KEY_REFUSED",
    22: "NOT_ALLOWED_NOW", 23: "NOT_RUN", 24: "UPLOAD_MISMATCH", 25: "INVALID_SEQUENCE",
    26: "WAIT_TIMEOUT",
}
SEVERITY_NAMES = ("debug", "info", "warning", "error", "fatal")
TYPE_NAMES = ("bool", "u8", "u16", "u32", "i32", "f32", "any")


def name(names: "Any", value: "Any") -> str:
    """Display name of value in a tuple or dict of names, else the number as text."""
    if type(value) is int and value < 0:
        return str(value)
    try:
        return str(names[value])
    except (IndexError, KeyError, TypeError):
        return str(value)


# --- validation (§5) ----------------------------------------------------------------------

def _uint(x: "Any", hi: "int | None" = None) -> bool:
    return type(x) is int and x >= 0 and (hi is None or x <= hi)


def _scalar(x: "Any") -> bool:
    return type(x) is int or type(x) is float or type(x) is bool


def _command(id: int, body: "list[Any]") -> "str | None":
    return None  # any items: the node checks them against its dictionary (§5.1)


def _verification(id: int, body: "list[Any]") -> "str | None":
    if len(body) != 4:
        return "verification body must be [cmd_seq, stage, code, result]"
    cmd_seq, stage, code, result = body
    if not _uint(cmd_seq, MAX_SEQ):
        return "verification cmd_seq must be a uint 0..65535"
    if not _uint(stage, STAGE_FAILED):
        return "verification stage must be 0..3"
    if not _uint(code):
        return "verification code must be a uint"
    if stage == STAGE_ACCEPTED or stage == STAGE_COMPLETED:
        if code != OK:
            return "verification code must be 0 when " + STAGE_NAMES[stage]
    else:
        lo, hi = REJECTION_CODES if stage == STAGE_REJECTED else FAILURE_CODES
        if not lo <= code <= hi:
            return f"{STAGE_NAMES[stage]} code must be {lo}..{hi}"
    if stage == STAGE_REJECTED and code == STALE_BOOT:
        if not _uint(result):
            return "a STALE_BOOT rejection's result must be the node's boot count, a uint"
    elif result is not None and stage != STAGE_COMPLETED:
        return "verification result must be null unless completed (or rejected STALE_BOOT)"
    return None


def _housekeeping(id: int, body: "list[Any]") -> "str | None":
    for value in body:
        if not _scalar(value):
            return "housekeeping values must be bools, integers or floats"
    return None


def _event(id: int, body: "list[Any]") -> "str | None":
    if len(body) != 3:
        return "event body must be [event_seq, severity, args]"
    if not _uint(body[0]):
        return "event_seq must be a uint"
    if not _uint(body[1], SEV_FATAL):
        return "event severity must be 0..4"
    if type(body[2]) is not list:
        return "event args must be an array"
    return None


def _parameter(id: int, body: "list[Any]") -> "str | None":
    if len(body) != 1 or not _scalar(body[0]):
        return "parameter body must be [value], a bool, integer or float"
    return None


def _time(id: int, body: "list[Any]") -> "str | None":
    if id != 0:
        return "time correlation id must be 0"
    if len(body) != 2 or not (_uint(body[0]) and _uint(body[1])):
        return "time correlation body must be [node_time_ms, utc_ms], uints"
    return None


def _bulk(id: int, body: "list[Any]") -> "str | None":
    if id == 0:
        return "bulk id (the bulk type) must not be 0"
    if len(body) != 4:
        return "bulk body must be [transfer, index, last, payload]"
    transfer, index, last, payload = body
    if not (_uint(transfer, MAX_SEQ) and _uint(index)):
        return "bulk transfer must be a uint 0..65535 and index a uint"
    if type(last) is not bool or type(payload) is not bytes:
        return "bulk last must be a bool and payload a byte string"
    return None


_BODY_CHECKS = (_command, _verification, _housekeeping, _event, _parameter, _time, _bulk)


def validate(kind: "Any", seq: "Any", time: "Any", id: "Any", body: "Any",
             boot: "Any" = None) -> None:
    """Raise MessageError(MALFORMED) unless the fields have the shape of a version 1 message.

    boot: a command's seventh item (the boot it is bound to, a uint); None for other kinds.
    """
    if not _uint(kind, KIND_BULK):
        raise MessageError(MALFORMED, f"unknown kind {kind}")
    if kind == KIND_COMMAND and not _uint(boot):
        raise MessageError(MALFORMED, "a command's boot (its seventh item) must be a uint")
    if kind != KIND_COMMAND and boot is not None:
        raise MessageError(MALFORMED, "only a command has a seventh item")
    if not _uint(seq, MAX_SEQ):
        raise MessageError(MALFORMED, "seq must be a uint 0..65535")
    if not _uint(time) or not _uint(id):
        raise MessageError(MALFORMED, "time and id must be uints")
    if type(body) is not list:
        raise MessageError(MALFORMED, "body must be an array")
    reason = _BODY_CHECKS[kind](id, body)
    if reason is not None:
        raise MessageError(MALFORMED, reason)


# --- encoding and decoding (ground, tests) ------------------------------------------------

def _single(obj: "Any") -> "Any":
    # A copy of obj with every float rounded to single precision, tuples made lists.
    t = type(obj)
    if t is float:
        v = f32(obj)
        if v - v != 0:  # inf or nan: out of single range, or not finite to start with
            raise MessageError(MALFORMED, f"float {obj!r} is not a finite single-precision value")
        return v
    if t is list or t is tuple:
        return [_single(x) for x in obj]
    if t is dict:
        return {k: _single(v) for k, v in obj.items()}
    return obj


def encode_message(kind: int, seq: int, time: int, id: int, body: "Any",
                   boot: "Any" = None) -> bytes:
    """The CBOR bytes of a message; floats rounded to single precision (§4.1). Allocates.

    A command (kind 0) needs boot, the node boot count it is bound to (§5.1): seven items.

    Raises MessageError(MALFORMED) if the fields do not have a valid shape or the message
    would exceed MAX_MESSAGE bytes; lets the codec's EncodeError through for values CBOR
    cannot carry (integers beyond 64 bits, for example).
    """
    body = _single(body)
    validate(kind, seq, time, id, body, boot)
    fields = [VERSION, kind, seq, time, id, body]
    if kind == KIND_COMMAND:
        fields.append(boot)
    data = cbor.dumps(fields)
    if len(data) > MAX_MESSAGE:
        raise MessageError(MALFORMED, f"message of {len(data)} bytes, more than {MAX_MESSAGE}")
    return data


def decode_message(data: "bytes | bytearray | memoryview") -> "Message":
    """The Message in data (bytes-like: exactly one CBOR item). Allocates.

    Raises MessageError only: code MALFORMED (with the decode error's reason when data is not
    valid CBOR) or UNSUPPORTED_VERSION.
    """
    try:
        obj = cbor.loads(data)
    except ProtocolError as e:
        raise MessageError(MALFORMED, "not a CBOR item: " + str(e.args[0] if e.args else e)
                           ) from None
    if type(obj) is not list or not obj:
        raise MessageError(MALFORMED, "message must be an array [version, kind, seq, time, "
                                      "id, body]")
    if not _uint(obj[0]):
        raise MessageError(MALFORMED, "version must be a uint")
    if obj[0] != VERSION:
        raise MessageError(UNSUPPORTED_VERSION, f"version {obj[0]} is not 1")
    n = COMMAND_ITEMS if len(obj) > 1 and obj[1] == KIND_COMMAND and type(obj[1]) is int \
        else MESSAGE_ITEMS
    if len(obj) != n:
        raise MessageError(MALFORMED, f"message must have {n} items, not {len(obj)}")
    boot = obj[6] if n == COMMAND_ITEMS else None
    validate(obj[1], obj[2], obj[3], obj[4], obj[5], boot)
    return Message(VERSION, obj[1], obj[2], obj[3], obj[4], obj[5], boot)


class Message:
    """A decoded message: version, kind, seq, time, id, body (a list), boot (commands only)."""

    def __init__(self, version: int, kind: int, seq: int, time: int, id: int,
                 body: "list[Any]", boot: "Any" = None) -> None:
        self.version = version
        self.kind = kind
        self.seq = seq
        self.time = time
        self.id = id
        self.body = body
        self.boot = boot

    def encode(self) -> bytes:
        if self.version != VERSION:
            raise MessageError(UNSUPPORTED_VERSION, f"cannot encode version {self.version}")
        return encode_message(self.kind, self.seq, self.time, self.id, self.body, self.boot)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.fields() == other.fields()

    def fields(self) -> "list[Any]":
        """The message as a list [version, kind, seq, time, id, body] (+ boot: a command)."""
        out = [self.version, self.kind, self.seq, self.time, self.id, self.body]
        if self.kind == KIND_COMMAND:
            out.append(self.boot)
        return out

    def __repr__(self) -> str:
        kind = name(KIND_NAMES, self.kind)
        return (f"Message(v{self.version} {kind} seq={self.seq} time={self.time} id={self.id} "
                f"body={self.body!r}" + ("" if self.boot is None else f" boot={self.boot}") + ")")


def command_arguments(message: "Any") -> bytes:
    """The bytes of a command message's argument array, head included, exactly as the message
    carries them: what an ``arm`` names for a hazardous command (SPEC §10.8). Allocates.

    Raises MessageError(MALFORMED) if message is not a command of seven items."""
    dec = Decoder()
    try:
        dec.reset(message)
        if dec.array() == COMMAND_ITEMS:
            for _ in range(5):
                dec.skip()
            start = dec.pos
            dec.skip()
            return bytes(message[start:dec.pos])
    except ProtocolError:
        raise MessageError(MALFORMED, "not a command message") from None
    raise MessageError(MALFORMED, "not a command of seven items")
