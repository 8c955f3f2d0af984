"""The message envelope as the node handles it (SPEC §5, §6): allocation-free helpers.

The node-facing half of protocol.messages, which re-exports everything here and adds what
only the ground needs (names for display, validation, ``encode_message``/``decode_message``,
``Message``). The node imports this module only: its import cost is paid in a Pico's RAM.

- Codes: none public. The version, kinds, verification stages, reason codes, severities and
  argument type codes (§5.1, §7) are protocol.messages' (the firmware inlines them as
  ``_NAME = const(n)``, as this module does with those it uses).
- ``begin(enc, kind, seq, time, id)``: write the envelope head into a protocol.cbor_encoder
  Encoder; ``write_verification`` and ``write_event_head``: whole verification messages and
  event heads.
- ``read_address(dec, head)``, ``read_command_head(dec, head)``, ``read_args(dec, nargs, specs,
  out)``, ``check_arg``: read and check a command with a protocol.cbor_decoder Decoder.
- ``f32(x)``: x rounded to single precision.

Allocation: ``begin``, ``write_verification`` (with a null result), ``write_event_head``,
``read_address``, ``read_command_head`` and ``check_arg`` allocate nothing for ints below 2**30
and messages without maps, except when they raise. ``read_args`` allocates only for float
and large-int arguments; ``f32`` its float.
"""

from array import array

from protocol.compat import const
from protocol.errors import MessageError, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any

    from protocol.cbor_decoder import Decoder
    from protocol.cbor_encoder import Encoder

# Codes from protocol.messages (their one public definition, SPEC §5-§7), inlined at compile
# time: a public name would cost the node a globals entry and its text (tests/protocol/
# test_messages.py checks they agree).
_VERSION = const(1)
_MAX_SEQ = const(0xFFFF)
_KIND_COMMAND = const(0)
_KIND_VERIFICATION = const(1)
_KIND_EVENT = const(3)
_OK = const(0)
_BAD_ARGUMENTS = const(2)
_OUT_OF_RANGE = const(3)
_MALFORMED = const(6)
_UNSUPPORTED_VERSION = const(7)
_TYPE_BOOL = const(0)
_TYPE_I32 = const(4)
_TYPE_F32 = const(5)
_TYPE_ANY = const(6)
_TYPE_LO = const((0, 0, 0, 0, -0x80000000))  # integer width of TYPE_U8..TYPE_I32 (index = code)
_TYPE_HI = const((1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF))

_F32 = array("f", [0.0])


def f32(x: "Any") -> "Any":
    """x rounded to single precision (§4.1), the value a Pico holds; an int stays an int."""
    if type(x) is not float:
        return x
    _F32[0] = x
    return _F32[0]


# --- writing: into a preallocated encoder ------------------------------------------------

def begin(enc: "Encoder", kind: int, seq: int, time: int, id: int) -> None:
    """Reset enc (a protocol.cbor_encoder.Encoder) and write the envelope up to the body.

    The caller then writes the body, one array: ``enc.array(n)`` and its items.
    """
    enc.reset()
    enc.array(6)
    enc.uint(_VERSION)
    enc.uint(kind)
    enc.uint(seq)
    enc.uint(time)
    enc.uint(id)


def write_verification(enc: "Encoder", seq: int, time: int, cmd_id: int, cmd_seq: int,
                       stage: int, code: int, result: "Any" = None) -> None:
    """Write a whole verification message (§5.2) into enc; result is written with item()."""
    begin(enc, _KIND_VERIFICATION, seq, time, cmd_id)
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
    begin(enc, _KIND_EVENT, seq, time, event_id)
    enc.array(3)
    enc.uint(event_seq)
    enc.uint(severity)
    enc.array(nargs)


# --- reading: a pull decoder over the received frame -------------------------------------

def read_address(dec: "Decoder", head: "list[Any]") -> None:
    """Set head[0:2] to [seq, cmd_id] when the message can be answered, else [-1, -1] (§5).

    dec is reset on the whole message. Answerable: the bytes start with a definite array head
    of 5 to 256 items followed by five uint heads (any length), the third (seq) at most 65535.
    Nothing else is looked at: the rest may be anything. cmd_id is echoed exactly, up to
    2**64 - 1 (a heap integer from 2**30 on a 32-bit port). Never raises.
    """
    head[0] = -1
    head[1] = -1
    try:
        if dec.array() < 5:
            return
        dec.uint()
        dec.uint()
        seq = dec.uint()
        dec.uint()
        cmd_id = dec.uint()
    except ProtocolError:
        return
    if seq <= _MAX_SEQ:
        head[0] = seq
        head[1] = cmd_id


def read_command_head(dec: "Decoder", head: "list[Any]") -> int:
    """Check a command message (§5) with dec (a protocol.cbor_decoder.Decoder) and read its head.

    dec is reset on the whole message. head is a caller-owned list of three or four items:
    [seq, cmd_id] as read_address gives them (the message's address, -1 when it has none),
    then boot, the boot the command is bound to (-1 until read), then (a fourth item, when
    the list has one) the command's time: 0 to execute now, else its execution time, UTC ms
    (a time-tagged command, §11; a heap int on a 32-bit port). Checks, in the order of §5:
    the whole message is one well-formed item under §4, then the version, then the command's
    shape ([1, 0, seq, time, id, body, boot], seq <= 65535, all uints, body an array). Returns
    the number of arguments and leaves dec at the first one (read them with read_args). Raises
    MessageError MALFORMED or UNSUPPORTED_VERSION; when it does and head[1] >= 0 the node
    answers `rejected` with that code (§5), otherwise it only counts the message.
    """
    buf = dec.buf
    start = dec.pos
    end = dec.end
    head[2] = -1
    if len(head) > 3:
        head[3] = 0
    read_address(dec, head)
    dec.reset(buf, start, end)
    try:
        dec.skip()
        dec.done()
    except ProtocolError:
        raise MessageError(_MALFORMED, "not one CBOR item under the profile") from None
    dec.reset(buf, start, end)
    try:
        n = dec.array()
        if n == 0:
            raise MessageError(_MALFORMED, "empty array")
        version = dec.uint()
    except MessageError:  # a ProtocolError too: keep its reason
        raise
    except ProtocolError:
        raise MessageError(_MALFORMED, "the first item is not a uint version") from None
    if version != _VERSION:
        raise MessageError(_UNSUPPORTED_VERSION, "version is not 1")
    try:
        if n != 7 or dec.uint() != _KIND_COMMAND:
            raise MessageError(_MALFORMED, "not a command of seven items")
        seq = dec.uint()
        time = dec.uint()
        dec.uint()
        if seq > _MAX_SEQ:
            raise MessageError(_MALFORMED, "seq above 65535")
        nargs = dec.array()
        body = dec.pos
        for _ in range(nargs):
            dec.skip()
        head[2] = dec.uint()
        if len(head) > 3:
            head[3] = time
    except MessageError:  # the shape's own reasons, not the decoder's
        raise
    except ProtocolError:
        raise MessageError(_MALFORMED, "not a version 1 command") from None
    dec.reset(buf, body, end)
    return nargs


def check_arg(value: "Any", type_code: int, lo: "Any", hi: "Any") -> int:
    """0 if value is a valid argument of that type within [lo, hi] (None: open), else a code.

    BAD_ARGUMENTS for the wrong CBOR type (a negative value for an unsigned type is the wrong
    major type), OUT_OF_RANGE outside the type's width or lo..hi (§5.1). An f32 argument must
    already be a float (read_args converts integers and rounds).
    """
    t = type(value)
    if type_code == _TYPE_ANY:
        return _OK
    if type_code == _TYPE_BOOL:
        return _OK if t is bool else _BAD_ARGUMENTS
    if type_code == _TYPE_F32:
        if t is not float:
            return _BAD_ARGUMENTS
        if value - value != 0:
            return _OUT_OF_RANGE
    elif type_code <= _TYPE_I32:
        if t is not int or (value < 0 and type_code != _TYPE_I32):
            return _BAD_ARGUMENTS
        if value < _TYPE_LO[type_code] or value > _TYPE_HI[type_code]:
            return _OUT_OF_RANGE
    else:
        return _BAD_ARGUMENTS
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return _OUT_OF_RANGE
    return _OK


def read_args(dec: "Decoder", nargs: int, specs: "Any", out: "list[Any]") -> int:
    """Read and check a command's arguments after read_command_head; return 0 or a code.

    specs is the command's ((type, lo, hi), ...) from node_dictionary.command_args(); out a
    caller-owned list with room for them, receiving the values (f32 arguments rounded to
    single precision, integers accepted as floats). read_command_head has checked the whole
    message already; a decode error here (a caller that did not) is MALFORMED.
    """
    if nargs != len(specs) or nargs > len(out):
        return _BAD_ARGUMENTS
    try:
        for i in range(nargs):
            value = dec.item()
            type_code, lo, hi = specs[i]
            if type_code == _TYPE_F32 and (type(value) is int or type(value) is float):
                value = f32(float(value))
            code = check_arg(value, type_code, lo, hi)
            if code:
                return code
            out[i] = value
    except ProtocolError:
        return _MALFORMED
    return _OK
