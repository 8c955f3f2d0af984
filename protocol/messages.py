"""Messages (SPEC §5, §6): the envelope [version, kind, seq, time, id, body] and its kinds.

Constants for kinds, verification stages, reason codes, severities and argument type codes,
with names for display; ``encode_message`` and ``decode_message`` with full validation of
each kind's body shape; and the node's allocation-free helpers around protocol.cbor's
Encoder and Decoder.

Allocation: ``encode_message``, ``decode_message``, ``Message``, ``validate`` and ``f32``
allocate (ground, tests, and rare node paths). ``begin``, ``write_verification``
(with a null result), ``write_event_head``, ``read_command_head`` and ``check_arg`` do not,
for ints below 2**30, except when they raise. ``read_args`` allocates only for float and
large-int arguments.
"""

from array import array

from protocol import cbor
from protocol.compat import const
from protocol.errors import MessageError, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any

    from protocol.cbor import Decoder, Encoder

VERSION = const(1)
MAX_SEQ = const(0xFFFF)  # seq and cmd_seq wrap at 65536
MAX_MESSAGE = const(1020)  # bytes (§2), the same as protocol.framing.MAX_MESSAGE

KIND_COMMAND = const(0)
KIND_VERIFICATION = const(1)
KIND_HOUSEKEEPING = const(2)
KIND_EVENT = const(3)
KIND_PARAMETER = const(4)
KIND_TIME = const(5)
KIND_BULK = const(6)
KIND_NAMES = ("command", "verification", "housekeeping", "event", "parameter",
              "time_correlation", "bulk")

STAGE_ACCEPTED = const(0)
STAGE_REJECTED = const(1)
STAGE_COMPLETED = const(2)
STAGE_FAILED = const(3)
STAGE_NAMES = ("accepted", "rejected", "completed", "failed")

# Reason codes (§6): rejections 1..15, failures 16..31; 0 in accepted/completed.
OK = const(0)
UNKNOWN_COMMAND = const(1)
BAD_ARGUMENTS = const(2)
OUT_OF_RANGE = const(3)
WRONG_MODE = const(4)
BUSY = const(5)
MALFORMED = const(6)
UNSUPPORTED_VERSION = const(7)
EXECUTION_ERROR = const(16)
STORAGE_ERROR = const(17)
INVALID_TRANSITION = const(18)
NOT_FOUND = const(19)
INHIBITED = const(20)
REJECTION_CODES = (1, 15)  # inclusive range a rejected verification's code lies in
FAILURE_CODES = (16, 31)
REASON_NAMES = {
    0: "OK", 1: "UNKNOWN_COMMAND", 2: "BAD_ARGUMENTS", 3: "OUT_OF_RANGE", 4: "WRONG_MODE",
    5: "BUSY", 6: "MALFORMED", 7: "UNSUPPORTED_VERSION", 16: "EXECUTION_ERROR",
    17: "STORAGE_ERROR", 18: "INVALID_TRANSITION", 19: "NOT_FOUND", 20: "INHIBITED",
}

SEV_DEBUG = const(0)
SEV_INFO = const(1)
SEV_WARNING = const(2)
SEV_ERROR = const(3)
SEV_FATAL = const(4)
SEVERITY_NAMES = ("debug", "info", "warning", "error", "fatal")

# Argument, channel and parameter type codes (§5.1, §7): index into TYPE_NAMES.
TYPE_BOOL = const(0)
TYPE_U8 = const(1)
TYPE_U16 = const(2)
TYPE_U32 = const(3)
TYPE_I32 = const(4)
TYPE_F32 = const(5)
TYPE_ANY = const(6)
TYPE_NAMES = ("bool", "u8", "u16", "u32", "i32", "f32", "any")
_TYPE_LO = (0, 0, 0, 0, -0x80000000)  # integer width of TYPE_U8..TYPE_I32 (index = code)
_TYPE_HI = (1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF)


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
    if result is not None and stage != STAGE_COMPLETED:
        return "verification result must be null unless completed"
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


def validate(kind: "Any", seq: "Any", time: "Any", id: "Any", body: "Any") -> None:
    """Raise MessageError(MALFORMED) unless the fields have the shape of a version 1 message."""
    if not _uint(kind, KIND_BULK):
        raise MessageError(MALFORMED, f"unknown kind {kind}")
    if not _uint(seq, MAX_SEQ):
        raise MessageError(MALFORMED, "seq must be a uint 0..65535")
    if not _uint(time) or not _uint(id):
        raise MessageError(MALFORMED, "time and id must be uints")
    if kind == KIND_COMMAND and time != 0:
        raise MessageError(MALFORMED, "command time must be 0 (no time-tagged commands in v1)")
    if type(body) is not list:
        raise MessageError(MALFORMED, "body must be an array")
    reason = _BODY_CHECKS[kind](id, body)
    if reason is not None:
        raise MessageError(MALFORMED, reason)


# --- encoding and decoding (ground, tests) ------------------------------------------------

_F32 = array("f", [0.0])


def f32(x: "Any") -> "Any":
    """x rounded to single precision (§4.1), the value a Pico holds; an int stays an int."""
    if type(x) is not float:
        return x
    _F32[0] = x
    return _F32[0]


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


def encode_message(kind: int, seq: int, time: int, id: int, body: "Any") -> bytes:
    """The CBOR bytes of a message; floats rounded to single precision (§4.1). Allocates.

    Raises MessageError(MALFORMED) if the fields do not have a valid shape or the message
    would exceed MAX_MESSAGE bytes; lets the codec's EncodeError through for values CBOR
    cannot carry (integers beyond 64 bits, for example).
    """
    body = _single(body)
    validate(kind, seq, time, id, body)
    data = cbor.dumps([VERSION, kind, seq, time, id, body])
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
    if len(obj) != 6:
        raise MessageError(MALFORMED, f"message must have 6 items, not {len(obj)}")
    validate(obj[1], obj[2], obj[3], obj[4], obj[5])
    return Message(VERSION, obj[1], obj[2], obj[3], obj[4], obj[5])


class Message:
    """A decoded message: version, kind, seq, time, id, body (a list)."""

    def __init__(self, version: int, kind: int, seq: int, time: int, id: int,
                 body: "list[Any]") -> None:
        self.version = version
        self.kind = kind
        self.seq = seq
        self.time = time
        self.id = id
        self.body = body

    def encode(self) -> bytes:
        if self.version != VERSION:
            raise MessageError(UNSUPPORTED_VERSION, f"cannot encode version {self.version}")
        return encode_message(self.kind, self.seq, self.time, self.id, self.body)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.fields() == other.fields()

    def fields(self) -> "list[Any]":
        """The envelope as a list [version, kind, seq, time, id, body]."""
        return [self.version, self.kind, self.seq, self.time, self.id, self.body]

    def __repr__(self) -> str:
        kind = name(KIND_NAMES, self.kind)
        return (f"Message(v{self.version} {kind} seq={self.seq} time={self.time} id={self.id} "
                f"body={self.body!r})")


# --- node side: preallocated encoder and pull decoder -------------------------------------

def begin(enc: "Encoder", kind: int, seq: int, time: int, id: int) -> None:
    """Reset enc (a protocol.cbor.Encoder) and write the envelope up to the body.

    The caller then writes the body, one array: ``enc.array(n)`` and its items.
    """
    enc.reset()
    enc.array(6)
    enc.uint(VERSION)
    enc.uint(kind)
    enc.uint(seq)
    enc.uint(time)
    enc.uint(id)


def write_verification(enc: "Encoder", seq: int, time: int, cmd_id: int, cmd_seq: int,
                       stage: int, code: int, result: "Any" = None) -> None:
    """Write a whole verification message (§5.2) into enc; result is written with item()."""
    begin(enc, KIND_VERIFICATION, seq, time, cmd_id)
    enc.array(4)
    enc.uint(cmd_seq)
    enc.uint(stage)
    enc.uint(code)
    if result is None:
        enc.null()
    else:
        enc.item(result)


def write_event_head(enc: "Encoder", seq: int, time: int, event_id: int, event_seq: int,
                     severity: int, nargs: int) -> None:
    """Write an event message (§5.4) up to its args: the caller then writes nargs items."""
    begin(enc, KIND_EVENT, seq, time, event_id)
    enc.array(3)
    enc.uint(event_seq)
    enc.uint(severity)
    enc.array(nargs)


def read_command_head(dec: "Decoder", head: "list[int]") -> int:
    """Read a command's envelope with dec (a protocol.cbor.Decoder already reset on it).

    head is a caller-owned list of two items; it receives [seq, cmd_id] as soon as both are
    read, and [-1, -1] until then. Returns the number of arguments; the caller reads them (see
    read_args) and then calls dec.done(). Raises MessageError UNSUPPORTED_VERSION or
    MALFORMED; when it does and head[1] >= 0, the node answers `rejected` with that code (§5),
    otherwise it only counts the message.
    """
    head[0] = -1
    head[1] = -1
    version = -1
    try:
        n = dec.array()
        version = dec.uint()
        kind = dec.uint()
        seq = dec.uint()
        time = dec.uint()
        cmd_id = dec.uint()
        if seq <= MAX_SEQ:
            head[0] = seq
            head[1] = cmd_id
        if version != VERSION:
            raise MessageError(UNSUPPORTED_VERSION, "version is not 1")
        if n != 6 or kind != KIND_COMMAND or time != 0 or seq > MAX_SEQ:
            raise MessageError(MALFORMED, "not a version 1 command envelope")
        return dec.array()
    except MessageError:
        raise
    except ProtocolError:
        if version != VERSION and version != -1:
            raise MessageError(UNSUPPORTED_VERSION, "version is not 1") from None
        raise MessageError(MALFORMED, "not a version 1 command envelope") from None


def check_arg(value: "Any", type_code: int, lo: "Any", hi: "Any") -> int:
    """0 if value is a valid argument of that type within [lo, hi] (None: open), else a code.

    BAD_ARGUMENTS for the wrong CBOR type (a negative value for an unsigned type is the wrong
    major type), OUT_OF_RANGE outside the type's width or lo..hi (§5.1). An f32 argument must
    already be a float (read_args converts integers and rounds).
    """
    t = type(value)
    if type_code == TYPE_ANY:
        return OK
    if type_code == TYPE_BOOL:
        return OK if t is bool else BAD_ARGUMENTS
    if type_code == TYPE_F32:
        if t is not float:
            return BAD_ARGUMENTS
        if value - value != 0:
            return OUT_OF_RANGE
    elif type_code <= TYPE_I32:
        if t is not int or (value < 0 and type_code != TYPE_I32):
            return BAD_ARGUMENTS
        if value < _TYPE_LO[type_code] or value > _TYPE_HI[type_code]:
            return OUT_OF_RANGE
    else:
        return BAD_ARGUMENTS
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return OUT_OF_RANGE
    return OK


def read_args(dec: "Decoder", nargs: int, specs: "Any", out: "list[Any]") -> int:
    """Read and check a command's arguments after read_command_head; return 0 or a code.

    specs is the command's ((type, lo, hi), ...) from node_dictionary.COMMANDS; out a
    caller-owned list with room for them, receiving the values (f32 arguments rounded to
    single precision, integers accepted as floats). Ends with dec.done(): trailing bytes are
    MALFORMED.
    """
    if nargs != len(specs) or nargs > len(out):
        return BAD_ARGUMENTS
    try:
        for i in range(nargs):
            value = dec.item()
            type_code, lo, hi = specs[i]
            if type_code == TYPE_F32 and (type(value) is int or type(value) is float):
                value = f32(float(value))
            code = check_arg(value, type_code, lo, hi)
            if code:
                return code
            out[i] = value
        dec.done()
    except ProtocolError:
        return MALFORMED
    return OK
