"""The sequence image: what is uploaded to the node and stored in a slot.

    [1, dict_hash, name, steps]           canonical CBOR (SPEC §4)
    command step  [0, delay_ms, command_id, [args], on_fail]
    wait step     [1, channel_id, op, value, timeout_ms, on_fail]

``compile(sequence)`` writes it (at most ``MAX_IMAGE_BYTES``); ``decode(image)`` reads one
back into a ``ground.sequence.Sequence`` (for ``ground seq show`` and the round-trip tests),
raising ``ImageError`` for anything that is not a well-formed image of this dictionary.
``hash_prefix(image)``: the first four bytes of its SHA-256 as a big-endian uint32, which the
node reports for each slot (the ``sequence`` housekeeping packet), so the ground can tell
which image a slot holds.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, Final

import cbor2

from ground import sequence as s
from ground import validate
from ground.errors import UsageError
from protocol.node_dictionary import DICT_HASH

IMAGE_VERSION: Final = 1
MAX_IMAGE_BYTES: Final = 4096
COMMAND: Final = 0
WAIT: Final = 1


class ImageError(UsageError):
    """Bytes that are not a sequence image this ground can read."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a sequence image: {reason}")


def step_item(step: s.Step) -> list[Any]:
    if isinstance(step, s.WaitStep):
        return [WAIT, step.channel.id, step.op, step.value, step.timeout_ms, step.on_fail]
    return [COMMAND, step.delay_ms, step.command.id, list(step.args), step.on_fail]


def compile(seq: s.Sequence, dict_hash: int = DICT_HASH) -> bytes:
    """The image of ``seq`` (its size is checked by ``ground.seqcheck``)."""
    return encode(dict_hash, seq.name, [step_item(st) for st in seq.steps])


def encode(dict_hash: int, name: str, steps: list[list[Any]]) -> bytes:
    return cbor2.dumps([IMAGE_VERSION, dict_hash, name, steps], canonical=True)


def digest(image: bytes) -> bytes:
    """SHA-256 of the image: what seq_upload_begin and the node's commit check."""
    return hashlib.sha256(image).digest()


def hash_prefix(image: bytes) -> int:
    return int.from_bytes(digest(image)[:4], "big")


def _int(x: Any, lo: int, hi: int, what: str) -> int:
    if type(x) is not int or not lo <= x <= hi:
        raise ImageError(f"{what} must be an integer {lo}..{hi}, got {x!r}")
    return x


def decode(image: bytes, dict_hash: int = DICT_HASH) -> tuple[int, s.Sequence]:
    """(the image's dictionary hash, its sequence); ImageError if malformed."""
    fp = io.BytesIO(image)
    try:
        item = cbor2.CBORDecoder(fp).decode()
    except Exception as exc:  # cbor2 raises several types; all mean "not CBOR"
        raise ImageError(f"not CBOR: {exc}") from None
    if fp.tell() != len(image):
        raise ImageError(f"{len(image) - fp.tell()} bytes after the image")
    if cbor2.dumps(item, canonical=True) != image:
        raise ImageError("not in canonical CBOR")
    if not isinstance(item, list) or len(item) != 4:
        raise ImageError("not an array of 4 items [version, dict_hash, name, steps]")
    version, image_hash, name, steps = item
    if version != IMAGE_VERSION:
        raise ImageError(f"version {version!r}, this ground reads {IMAGE_VERSION}")
    _int(image_hash, 0, 0xFFFFFFFF, "dict_hash")
    if image_hash != dict_hash:
        raise ImageError(f"built against dictionary 0x{image_hash:08x}, this ground has "
                         f"0x{dict_hash:08x}")
    if not isinstance(name, str) or s.name_problem(name):
        raise ImageError(s.name_problem(name) if isinstance(name, str) else "name not text")
    if not isinstance(steps, list) or not 1 <= len(steps) <= s.MAX_STEPS:
        raise ImageError(f"steps must be an array of 1..{s.MAX_STEPS}")
    return image_hash, s.Sequence(name, tuple(_step(i, x) for i, x in enumerate(steps)))


def _step(i: int, x: Any) -> s.Step:
    where = f"step {i}"
    if not isinstance(x, list) or not x or x[0] not in (COMMAND, WAIT):
        raise ImageError(f"{where}: not a command or wait step")
    if x[0] == COMMAND:
        if len(x) != 5 or not isinstance(x[3], list):
            raise ImageError(f"{where}: a command step is [0, delay_ms, id, [args], on_fail]")
        delay = _int(x[1], 0, s.MAX_MS, f"{where} delay_ms")
        cmd = validate.COMMANDS_BY_ID.get(x[2])
        if cmd is None:
            raise ImageError(f"{where}: unknown command id {x[2]!r}")
        on_fail = _int(x[4], 0, 2, f"{where} on_fail")
        try:  # the same checks as a typed step: the args must be what prepare makes
            _, args = validate.prepare(cmd.name, dict(zip((a.name for a in cmd.args), x[3],
                                                          strict=True)))
        except (UsageError, ValueError) as exc:
            raise ImageError(f"{where}: {exc}") from None
        if [(type(a), a) for a in args] != [(type(a), a) for a in x[3]]:
            raise ImageError(f"{where}: arguments {x[3]!r} are not in their wire form")
        return s.CommandStep(0, delay, cmd, tuple(args), on_fail)
    if len(x) != 6:
        raise ImageError(f"{where}: a wait step is [1, channel_id, op, value, timeout_ms, "
                         "on_fail]")
    channel = next((c for c in validate.CHANNELS.values() if c.id == x[1]), None)
    if channel is None:
        raise ImageError(f"{where}: unknown channel id {x[1]!r}")
    op = _int(x[2], 0, len(s.OPS) - 1, f"{where} op")
    try:
        value = s.wait_value(channel, x[3])
    except UsageError as exc:
        raise ImageError(f"{where}: {exc}") from None
    if value != x[3] or type(value) is not type(x[3]):
        raise ImageError(f"{where}: value {x[3]!r} is not in its wire form")
    timeout = _int(x[4], 0, s.MAX_MS, f"{where} timeout_ms")
    on_fail = _int(x[5], 0, 2, f"{where} on_fail")
    return s.WaitStep(0, channel, op, value, timeout, on_fail)
