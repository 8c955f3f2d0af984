"""The fuzzer's own reading of SPEC §4, independent of protocol/: is a byte string one CBOR item
under the profile, and is it in the deterministic (canonical) form encoders must write?

``check(data)`` returns None when ``data`` is exactly one item the profile accepts, else the
reason (a short text). ``check(data, canonical=True)`` also requires what §4 and §4.1 ask of
an encoder: shortest heads, floats in preferred serialization (half, else single, else
double) and, for the node, no float that single precision cannot hold; map keys sorted
length-first then bytewise.

Written from the spec alone (not from protocol.cbor_decoder), so that a bug shared by the node
and the ground's codec still shows.
"""

from __future__ import annotations

import math
import struct
from typing import Final

MAX_DEPTH: Final = 16
MAX_ITEMS: Final = 512
MAX_STRING: Final = 1020
MAX_ARRAY: Final = 256
MAX_MAP: Final = 64


class ProfileError(ValueError):
    """Why bytes are not one item under the profile (or not in canonical form)."""


def _shortest_ai(value: int) -> int:
    if value < 24:
        return value
    if value < 0x100:
        return 24
    if value < 0x10000:
        return 25
    if value < 0x100000000:
        return 26
    return 27


def _half_exact(x: float) -> bool:
    try:
        return bool(struct.unpack(">e", struct.pack(">e", x))[0] == x)
    except (OverflowError, struct.error):
        return False


def _single_exact(x: float) -> bool:
    try:
        return bool(struct.unpack(">f", struct.pack(">f", x))[0] == x)
    except (OverflowError, struct.error):
        return False


class _Reader:
    def __init__(self, data: bytes, canonical: bool, node_floats: bool) -> None:
        self.data = data
        self.pos = 0
        self.items = 0
        self.canonical = canonical
        self.node_floats = node_floats

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProfileError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def head(self) -> tuple[int, int, int]:
        """(major, additional information, argument) of the next head."""
        (initial,) = self._take(1)
        major, ai = initial >> 5, initial & 0x1F
        if ai < 24:
            return major, ai, ai
        if ai in (28, 29, 30):
            raise ProfileError(f"reserved additional information {ai}")
        if ai == 31:
            raise ProfileError("indefinite length" if major in (2, 3, 4, 5, 7) else
                               "additional information 31")
        size = 1 << (ai - 24)
        value = int.from_bytes(self._take(size), "big")
        if self.canonical and major != 7 and _shortest_ai(value) != ai:
            raise ProfileError(f"head of {value} not in shortest form (ai {ai})")
        return major, ai, value

    def item(self, depth: int) -> tuple[int, object]:
        """Read one item at nesting level ``depth`` (arrays and maps count; the outermost item
        is level 1); returns (major, its value for scalars) and checks the limits."""
        self.items += 1
        if self.items > MAX_ITEMS:
            raise ProfileError(f"more than {MAX_ITEMS} items")
        start = self.pos
        major, ai, value = self.head()
        if major in (0, 1):
            return major, (value if major == 0 else -1 - value)
        if major in (2, 3):
            if value > MAX_STRING:
                raise ProfileError(f"string of {value} bytes")
            raw = self._take(value)
            if major == 3:
                try:
                    return major, raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProfileError("invalid UTF-8") from None
            return major, raw
        if major in (4, 5) and depth > MAX_DEPTH:
            raise ProfileError(f"nesting deeper than {MAX_DEPTH}")
        if major == 4:
            if value > MAX_ARRAY:
                raise ProfileError(f"array of {value} items")
            for _ in range(value):
                self.item(depth + 1)
            return major, None
        if major == 5:
            if value > MAX_MAP:
                raise ProfileError(f"map of {value} pairs")
            keys: list[bytes] = []
            seen: set[object] = set()
            for _ in range(value):
                key_start = self.pos
                key_major, key = self.item(depth + 1)
                if key_major not in (0, 1, 3):
                    raise ProfileError("map key not an integer or text")
                marker = (key_major == 3, key)
                if marker in seen:
                    raise ProfileError("duplicate map key")
                seen.add(marker)
                keys.append(self.data[key_start:self.pos])
                self.item(depth + 1)
            if self.canonical and keys != sorted(keys, key=lambda k: (len(k), k)):
                raise ProfileError("map keys not in canonical order")
            return major, None
        if major == 6:
            raise ProfileError("tag")
        # major 7
        if ai < 24:
            if value in (20, 21, 22):
                return major, None
            raise ProfileError(f"simple value {value}")
        if ai == 24:
            raise ProfileError(f"simple value {value} (two bytes)")
        raw = self.data[start + 1:self.pos]
        x = {25: lambda b: struct.unpack(">e", b)[0], 26: lambda b: struct.unpack(">f", b)[0],
             27: lambda b: struct.unpack(">d", b)[0]}[ai](raw)
        if not math.isfinite(x):
            raise ProfileError("NaN or infinity")
        if self.canonical:
            want = 25 if _half_exact(x) else 26 if _single_exact(x) else 27
            if want != ai:
                raise ProfileError(f"float {x!r} not in preferred serialization")
            if self.node_floats and ai == 27:
                raise ProfileError(f"float {x!r} not rounded to single precision")
        return major, x


def check(data: bytes, *, canonical: bool = False, node_floats: bool = False) -> str | None:
    """None if ``data`` is exactly one item under SPEC §4 (and canonical, if asked), else why."""
    reader = _Reader(bytes(data), canonical, node_floats)
    try:
        reader.item(1)
    except ProfileError as e:
        return str(e)
    if reader.pos != len(data):
        return f"{len(data) - reader.pos} trailing byte(s)"
    return None


def address(data: bytes) -> tuple[int, int] | None:
    """(seq, command id) a node must answer a command message with, or None (SPEC §5): the
    bytes start with a definite array head of 5 to 256 items and five uint heads, the third
    (seq) at most 65535. Heads of any length; nothing after them is looked at."""
    reader = _Reader(bytes(data), False, False)
    try:
        major, _ai, count = reader.head()
        if major != 4 or not 5 <= count <= MAX_ARRAY:
            return None
        fields = []
        for _ in range(5):
            major, _ai, value = reader.head()
            if major != 0:
                return None
            fields.append(value)
    except ProfileError:
        return None
    seq, cmd_id = fields[2], fields[4]
    return (seq, cmd_id) if seq <= 0xFFFF else None
