"""Messages on the ground: cbor2 (C speed) for the bytes, protocol.messages for the rules.

``decode(message_bytes) -> Message`` parses with cbor2 (strict: no tags, no indefinite
lengths, no duplicate map keys, depth ≤ 16, and no trailing bytes after the item), enforces the
rest of the SPEC §4 profile on the decoded item (no ``undefined`` or other simple values,
finite floats, integers within ±2**64, ≤ 512 items, map keys integers or text) and then
applies ``protocol.messages.validate``, the same shape rules the node uses. Any failure is a
``DecodeFailure`` carrying the reason; nothing else escapes.

``encode_command(seq, command_id, args)`` writes a command with cbor2's deterministic
(``canonical=True``) encoding, which SPEC §4 requires.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from math import isfinite
from typing import Any, Final, NamedTuple

import cbor2

from ground.errors import GroundError
from protocol import messages as m
from protocol.errors import MessageError

VERSION: Final[int] = m.VERSION
KIND_COMMAND: Final[int] = m.KIND_COMMAND
KIND_VERIFICATION: Final[int] = m.KIND_VERIFICATION
KIND_HOUSEKEEPING: Final[int] = m.KIND_HOUSEKEEPING
KIND_EVENT: Final[int] = m.KIND_EVENT
KIND_PARAMETER: Final[int] = m.KIND_PARAMETER
KIND_TIME: Final[int] = m.KIND_TIME
KIND_BULK: Final[int] = m.KIND_BULK
KIND_NAMES: Final[tuple[str, ...]] = tuple(m.KIND_NAMES)
STAGE_ACCEPTED: Final[int] = m.STAGE_ACCEPTED
STAGE_REJECTED: Final[int] = m.STAGE_REJECTED
STAGE_COMPLETED: Final[int] = m.STAGE_COMPLETED
STAGE_FAILED: Final[int] = m.STAGE_FAILED
STAGE_NAMES: Final[tuple[str, ...]] = tuple(m.STAGE_NAMES)

# Typed views of the shared (unannotated) protocol helpers.
_validate: Callable[[Any, Any, Any, Any, Any], None] = m.validate
_name: Callable[[Any, int], str] = m.name

_new = tuple.__new__
_MAX_ITEMS: Final = 512
_MAX_DEPTH: Final = 16
_INT_LO: Final = -(2**64)
_INT_HI: Final = 2**64 - 1


class DecodeFailure(GroundError, ValueError):
    """A verified frame whose content is not a valid message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Message(NamedTuple):
    version: int
    kind: int
    seq: int
    time: int
    id: int
    body: list[Any]


def reason_name(code: int) -> str:
    return str(m.REASON_NAMES.get(code, f"code {code}"))


def stage_name(stage: int) -> str:
    return _name(m.STAGE_NAMES, stage)


def kind_name(kind: int) -> str:
    return _name(m.KIND_NAMES, kind)


def _reject_tag(_decoder: Any, tag: Any) -> Any:
    raise DecodeFailure(f"CBOR tag {tag.tag} (version 1 uses no tags)")


def _reject_semantic(_decoder: Any, *_args: Any) -> Any:
    raise DecodeFailure("CBOR tag (version 1 uses no tags)")


# Tags cbor2 would decode itself (dates, bignums, shared values, ...) are rejected too.
_SEMANTIC_TAGS: Final = (
    0,
    1,
    2,
    3,
    4,
    5,
    25,
    28,
    29,
    30,
    35,
    36,
    37,
    52,
    54,
    100,
    256,
    258,
    260,
    261,
    262,
    263,
    1004,
    55799,
)
_STRICT: Final[dict[str, Any]] = {
    "tag_hook": _reject_tag,
    "semantic_decoders": {tag: _reject_semantic for tag in _SEMANTIC_TAGS},
    "max_depth": _MAX_DEPTH,
    "allow_indefinite": False,
    "allow_duplicate_keys": False,
}
_READ_SIZE: Final = 64  # cbor2 reads ahead this much and seeks back after each item


def _length_error(used: int, size: int) -> str:
    if used < size:
        return f"{size - used} trailing bytes after the CBOR item"
    return "CBOR item runs past the end of the message"


def _check(obj: Any, depth: int, count: list[int]) -> None:
    """Walk a decoded item: what cbor2 accepts but SPEC §4 does not."""
    count[0] += 1
    if count[0] > _MAX_ITEMS:
        raise DecodeFailure(f"more than {_MAX_ITEMS} data items")
    t = type(obj)
    if t is int:
        if not _INT_LO <= obj <= _INT_HI:
            raise DecodeFailure("integer outside -2**64..2**64-1")
    elif t is float:
        if obj - obj != 0:
            raise DecodeFailure("NaN or infinity (the protocol carries finite numbers)")
    elif t is list:
        if depth >= _MAX_DEPTH:
            raise DecodeFailure(f"nesting deeper than {_MAX_DEPTH}")
        if len(obj) > 256:
            raise DecodeFailure("array of more than 256 items")
        for x in obj:
            _check(x, depth + 1, count)
    elif t is dict:
        if depth >= _MAX_DEPTH:
            raise DecodeFailure(f"nesting deeper than {_MAX_DEPTH}")
        if len(obj) > 64:
            raise DecodeFailure("map of more than 64 pairs")
        for k, v in obj.items():
            if type(k) not in (int, str):
                raise DecodeFailure("map keys must be integers or text")
            _check(v, depth + 1, count)
    elif obj is None or t is bool or t is str or t is bytes:
        return
    else:
        raise DecodeFailure(f"unsupported CBOR item ({t.__name__})")


def decode(data: bytes) -> Message:
    """Decode and validate one message; raises DecodeFailure only."""
    result = decode_batch([data])[0]
    if isinstance(result, DecodeFailure):
        raise result
    return result


def decode_batch(messages: Sequence[bytes]) -> list[Message | DecodeFailure]:
    """Decode and validate several messages (what one read from the port delivered): a
    Message, or the DecodeFailure saying why not, for each.

    cbor2.loads would ignore trailing bytes (SPEC §4 makes them an error), so the messages
    are read as one stream and each item's end is checked against its message's end. A
    housekeeping message of finite numbers, the common case, is checked at C speed; it accepts
    exactly what ``_message`` (the general path) accepts for such a message, which a property
    test in tests/ground/test_codec.py checks.
    """
    out: list[Message | DecodeFailure] = []
    append = out.append
    fp = io.BytesIO(b"".join(messages))
    tell = fp.tell
    decode: Callable[[], Any] | None = None
    end = 0
    for message in messages:
        start, end = end, end + len(message)
        if decode is None:
            fp.seek(start)
            decode = cbor2.CBORDecoder(fp, read_size=_READ_SIZE, **_STRICT).decode
        try:
            obj = decode()
            if tell() != end:
                raise DecodeFailure(_length_error(tell() - start, len(message)))
        except Exception as exc:  # cbor2's errors and our hooks' are all reported the same
            append(
                exc if isinstance(exc, DecodeFailure) else DecodeFailure(f"not a CBOR item: {exc}")
            )
            decode = None  # start afresh at the next message
            continue
        if type(obj) is list and len(obj) == 6:
            version, kind, seq, time, ident, body = obj
            if (
                kind == KIND_HOUSEKEEPING
                and version == VERSION
                and type(version) is type(kind) is type(seq) is type(time) is type(ident) is int
                and 0 <= seq <= 0xFFFF
                and time >= 0
                and ident >= 0
                and type(body) is list
                and len(body) <= 256
            ):
                try:
                    # sum() takes only int, float and bool (str, None, a list... raise
                    # TypeError); a finite sum means no NaN or infinity; cbor2 integers are
                    # within ±2**64 (tags, and so bignums, are refused).
                    if isfinite(sum(body)):
                        append(_new(Message, obj))
                        continue
                except TypeError:
                    pass
        try:
            append(_message(obj))
        except DecodeFailure as exc:
            append(exc)
    return out


def _message(obj: Any) -> Message:
    """The general path: the whole SPEC §4 profile, then protocol.messages.validate."""
    if type(obj) is not list or not obj:
        raise DecodeFailure("message must be an array [version, kind, seq, time, id, body]")
    _check(obj, 0, [0])
    version = obj[0]
    if version != VERSION or type(version) is not int:
        raise DecodeFailure(f"protocol version {version!r}, expected {VERSION}")
    if len(obj) != 6:
        raise DecodeFailure(f"message must have 6 items, not {len(obj)}")
    _, kind, seq, time, ident, body = obj
    try:
        _validate(kind, seq, time, ident, body)
    except MessageError as exc:
        raise DecodeFailure(exc.reason) from None
    return Message(version, kind, seq, time, ident, body)


def encode(kind: int, seq: int, time: int, ident: int, body: Sequence[Any]) -> bytes:
    return cbor2.dumps([VERSION, kind, seq, time, ident, list(body)], canonical=True)


def encode_command(seq: int, command_id: int, args: Sequence[Any]) -> bytes:
    """A command message (SPEC §5.1): time 0, positional arguments."""
    return encode(KIND_COMMAND, seq & 0xFFFF, 0, command_id, args)
