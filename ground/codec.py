"""Messages on the ground: cbor2 (C speed) for the bytes, protocol.messages for the rules.

``decode(message_bytes) -> Message`` parses with cbor2 (strict: no tags, no indefinite
lengths, no duplicate map keys, depth ≤ 16, and no trailing bytes after the item), enforces the
rest of the SPEC §4 profile on the decoded item (no ``undefined`` or other simple values,
finite floats, integers within ±2**64, ≤ 512 items, map keys integers or text) and then
applies ``protocol.messages.validate``, the same shape rules the node uses. Any failure is a
``DecodeFailure`` carrying the reason; nothing else escapes.

``encode_command(seq, command_id, args, boot)`` writes a command (seven items, bound to the
node's boot ``boot``, SPEC §5.1) with cbor2's deterministic (``canonical=True``) encoding,
which SPEC §4 requires.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from math import isfinite
from typing import Any, Final, NamedTuple, cast

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

_validate_boot: Callable[[Any, Any, Any, Any, Any, Any], None] = m.validate
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


class AuthenticatedMessage(Message):
    """A message that arrived as a COSE_Mac0 object and checked out under the client's key
    (SPEC §10.5); ``answers`` is the counter of the command transmission it answers."""

    answers: int = 0


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
_ARRAY32: Final = b"\x9a"  # a definite array, its length in the next four bytes
_UINT64: Final = b"\x1b"  # an unsigned integer in the next eight bytes
_MARKER_BITS: Final = 2**63 | 1
_ARRAY6_HEAD: Final = b"\x86"  # every downlink message: an array of six items
_HOUSEKEEPING_HEAD: Final = bytes((0x86, VERSION, KIND_HOUSEKEEPING))  # [1, 2, ...
_LIST: Final = {list}
_INT: Final = {int}


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
    Message, or the DecodeFailure saying why not, for each."""
    decoded = decode_columns(messages)
    if isinstance(decoded, Columns):
        return cast(list[Message | DecodeFailure], decoded.messages())  # (lists are invariant)
    return decoded


class Columns(NamedTuple):
    """Valid housekeeping messages as columns: message i is ``[VERSION, KIND_HOUSEKEEPING,
    seqs[i], times[i], ids[i], bodies[i]]``."""

    seqs: list[int]
    times: list[int]
    ids: list[int]
    bodies: list[list[Any]]

    def messages(self) -> list[Message]:
        rows = zip(repeat(VERSION), repeat(KIND_HOUSEKEEPING), *self, strict=False)
        return list(map(_new, repeat(Message), rows))


def decode_columns(messages: Sequence[bytes]) -> Columns | list[Message | DecodeFailure]:
    """What ``decode_batch`` says, as Columns when every message (two or more) is a valid
    housekeeping message of finite numbers, the common case, so that no Message need be made.

    cbor2.loads would ignore trailing bytes (SPEC §4 makes them an error), so every message's
    item must be shown to end where the message ends. Two or more messages are first decoded
    in one cbor2 call (``_decode_together``): as housekeeping if they all begin as such,
    checked a field at a time across the batch (``_housekeeping_columns``), else as arrays of
    six, checked a message at a time (``_checked``). When that cannot vouch for every
    boundary, or a message is not valid CBOR, each message is decoded on its own
    (``_decode_each``), which says exactly what is wrong with which. The shortcuts accept
    exactly what ``_message`` (the general path) accepts, which property tests in
    tests/ground/test_codec.py check.
    """
    if len(messages) < 2:
        return _decode_each(messages)
    fields = _decode_together(messages, _HOUSEKEEPING_HEAD, 4)
    if fields is not None:
        columns = _housekeeping_columns(*fields)
        if columns is not None:
            return columns
        return [_checked([VERSION, KIND_HOUSEKEEPING, *row]) for row in zip(*fields, strict=True)]
    fields = _decode_together(messages, _ARRAY6_HEAD, 6)
    if fields is not None:
        return [_checked(list(row)) for row in zip(*fields, strict=True)]
    return _decode_each(messages)


def _decode_each(messages: Sequence[bytes]) -> list[Message | DecodeFailure]:
    """Each message's item decoded from one stream, its end checked against the message's."""
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
        append(_checked(obj))
    return out


def _new_marker() -> tuple[int, bytes]:
    """A fresh marker for ``_decode_together``: an odd integer in [2**63, 2**64) and its
    CBOR encoding, 0x1B and eight big-endian bytes none of which is 0x1B."""
    while True:
        marker = secrets.randbits(64) | _MARKER_BITS
        encoded = _UINT64 + marker.to_bytes(8, "big")
        if _UINT64 not in encoded[1:]:
            return marker, encoded


def _decode_together(messages: Sequence[bytes], head: bytes, width: int) -> list[list[Any]] | None:
    """Messages that all begin with ``head`` (the start of an array of six, and perhaps its
    first items) followed by ``width`` more items, decoded in one cbor2 call: those items as
    ``width`` columns. None when some message begins otherwise, or when the call cannot
    vouch that each message holds exactly one item (``_decode_each`` then finds out why).

    With K a marker drawn afresh for each batch (``_new_marker``), the bytes decoded are a
    definite array of the messages without their heads, each followed by K:
    ``[rest1..., K, rest2..., K, ..., restN..., K]``. The heads come off with one
    ``replace(K + head, K)``. The result is trusted only if the array is the whole input and
    every (width + 1)-th item equals the marker. The marker is odd and at least 2**63, so no
    float equals it (floats that large are even integers), nor does anything else cbor2
    returns (tags are refused) but that integer, whose only encoding is K; so the markers
    found are N occurrences of K, in order, the last ending the input. K begins with the
    only 0x1B in it, so two occurrences cannot overlap, and one we did not insert would have
    to lie within bytes the node sent, chosen before the marker was drawn: a chance below
    2**-56 a position. Barring that, replace() took exactly the N - 1 heads after the first,
    the markers found are those we inserted, and each message is its head and exactly
    ``width`` items: one array, nothing after it. A message with trailing bytes, one cut
    short and completed by the next, or one whose item swallows its neighbours leaves a
    marker out of place, or input unread. The items are nested as deep as in the message
    alone, so every limit applies as it would there.
    """
    n = len(messages)
    stride = width + 1
    if n * stride >= 2**32:  # the array's length must fit in four bytes
        return None
    marker, encoded = _new_marker()
    joined = encoded.join(messages) + encoded
    if not joined.startswith(head):
        return None
    rest = joined[len(head) :].replace(encoded + head, encoded)
    if len(rest) != len(joined) - n * len(head):
        return None  # a message begins otherwise
    data = _ARRAY32 + (n * stride).to_bytes(4, "big") + rest
    fp = io.BytesIO(data)
    try:
        items = cbor2.CBORDecoder(fp, read_size=len(data), **_STRICT).decode()
    except Exception:  # a message that is not valid CBOR: _decode_each says which and why
        return None
    if (
        fp.tell() != len(data)
        or type(items) is not list
        or len(items) != n * stride
        or items[width::stride].count(marker) != n
    ):
        return None
    return [items[i::stride] for i in range(width)]


def _housekeeping_columns(
    seqs: list[Any], times: list[Any], idents: list[Any], bodies: list[Any]
) -> Columns | None:
    """Columns for the fields of messages that begin ``[VERSION, KIND_HOUSEKEEPING, ...``
    when all are valid housekeeping messages of finite numbers, each check of ``_checked``
    made across the batch at once; None if any is something else."""
    if (
        set(map(type, chain(seqs, times, idents))) != _INT
        or min(seqs) < 0
        or max(seqs) > 0xFFFF
        or min(times) < 0
        or min(idents) < 0
        or set(map(type, bodies)) != _LIST
        or max(map(len, bodies)) > 256
    ):
        return None
    try:
        # As in _checked, summed over the batch: a NaN or infinity anywhere makes the total
        # NaN or infinite (a total that overflows only sends the batch the slower way).
        if not isfinite(sum(chain.from_iterable(bodies))):
            return None
    except TypeError:
        return None
    return Columns(seqs, times, idents, bodies)


def _checked(obj: Any) -> Message | DecodeFailure:
    """One decoded item: the housekeeping shortcut, else the general path."""
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
                    return _new(Message, obj)
            except TypeError:
                pass
    try:
        return _message(obj)
    except DecodeFailure as exc:
        return exc


def _message(obj: Any) -> Message:
    """The general path: the whole SPEC §4 profile, then protocol.messages.validate."""
    if type(obj) is not list or not obj:
        raise DecodeFailure("message must be an array [version, kind, seq, time, id, body]")
    _check(obj, 0, [0])
    version = obj[0]
    if version != VERSION or type(version) is not int:
        raise DecodeFailure(f"protocol version {version!r}, expected {VERSION}")
    n = 7 if len(obj) > 1 and obj[1] == KIND_COMMAND and type(obj[1]) is int else 6
    if len(obj) != n:
        raise DecodeFailure(f"message must have {n} items, not {len(obj)}")
    _, kind, seq, time, ident, body = obj[:6]
    try:  # a command (an uplink frame in a session log): its boot is checked, not kept
        _validate_boot(kind, seq, time, ident, body, obj[6] if n == 7 else None)
    except MessageError as exc:
        raise DecodeFailure(exc.reason) from None
    return Message(version, kind, seq, time, ident, body)


def encode(kind: int, seq: int, time: int, ident: int, body: Sequence[Any]) -> bytes:
    return cbor2.dumps([VERSION, kind, seq, time, ident, list(body)], canonical=True)


def encode_command(seq: int, command_id: int, args: Sequence[Any], boot: int,
                   at_utc_ms: int = 0) -> bytes:
    """A command message (SPEC §5.1): positional arguments, bound to boot ``boot`` (0 when the
    node's boot is not known: the node answers STALE_BOOT with its boot); ``at_utc_ms`` its
    execution time, UTC ms (0: now; else a time-tagged command, SPEC §11)."""
    return cbor2.dumps([VERSION, KIND_COMMAND, seq & 0xFFFF, at_utc_ms, command_id, list(args),
                        boot], canonical=True)
