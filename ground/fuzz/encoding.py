"""Command messages built by hand from CBOR pieces, so that any part of them may be malformed.

Commands are bound to the node's boot (SPEC §5.1, the seventh item): ``bind_boot(n)`` sets the
boot that ``envelope`` and ``command`` write unless given one (0 until then: the node answers
STALE_BOOT with its boot count, which NodePort.command binds)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import cbor2


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


_BOOT = [0]


def bind_boot(boot: int) -> None:
    """Bind the commands built from now on to the node's boot ``boot``."""
    _BOOT[0] = boot


def bound_boot() -> int:
    return _BOOT[0]


def envelope(seq: int, cmd_id: int, body_raw: bytes, *, version: object = 1, kind: object = 0,
             time: object = 0, boot: object = None) -> bytes:
    """A command envelope whose body is already encoded (so it may be malformed), bound to
    ``boot`` (default: the one bind_boot set)."""
    return (b"\x87" + dumps(version) + dumps(kind) + dumps(seq) + dumps(time) + dumps(cmd_id)
            + body_raw + dumps(_BOOT[0] if boot is None else boot))


def command(seq: int, cmd_id: int, args: Sequence[object]) -> bytes:
    return envelope(seq, cmd_id, dumps(list(args)))


def args_raw(items: Sequence[bytes]) -> bytes:
    return head(4, len(items)) + b"".join(items)
