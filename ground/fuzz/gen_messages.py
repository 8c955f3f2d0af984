"""Generators of damaged messages, correctly framed: a broken envelope, and CBOR that breaks
the profile of SPEC §4 (reserved values, indefinite lengths, tags, nesting, limits...)."""

from __future__ import annotations

import random
from typing import Final

from ground.fuzz.case import (
    BAD_ARGUMENTS,
    MALFORMED,
    MAX_MESSAGE,
    NONE,
    OUT_OF_RANGE,
    UNKNOWN_COMMAND,
    UNSUPPORTED_VERSION,
    Case,
    rej,
)
from ground.fuzz.encoding import args_raw, bound_boot, command, dumps, envelope
from ground.fuzz.oracle import COMMAND_IDS


def _plain(seq: int) -> tuple[int, bytes]:
    """noop, the command the envelope generators damage."""
    return COMMAND_IDS["noop"], dumps([])


def gen_envelope(rng: random.Random, seq: int) -> Case:
    cmd_id, body = _plain(seq)
    drop = frozenset({NONE}) | rej(MALFORMED)
    variants: list[tuple[str, bytes, frozenset[str], int | None]] = [
        ("not_array", dumps(rng.choice([1, "cmd", b"\x86", {1: 2}, None, True, 1.5])), drop, None),
        ("short", dumps([1, 0, seq, 0, cmd_id][: rng.randrange(6)]), drop, None),
        ("long", dumps([1, 0, seq, 0, cmd_id, [], bound_boot(), *([0] * rng.randrange(1, 5))]),
         drop, seq),
        ("version", envelope(seq, cmd_id, body, version=rng.choice([0, 2, 255, 65536])),
         rej(UNSUPPORTED_VERSION), seq),
        ("version_type", envelope(seq, cmd_id, body, version=rng.choice(["1", 1.0, None, -1])),
         drop | rej(UNSUPPORTED_VERSION), seq),
        ("kind", envelope(seq, cmd_id, body, kind=rng.choice([1, 2, 3, 4, 5, 6, 7, 255, -1,
                                                              "0", None])), drop, seq),
        ("seq", b"\x86" + dumps(1) + dumps(0)
         + dumps(rng.choice([65536, 2**32, -1, "s", 1.5, None, [seq]])) + dumps(0)
         + dumps(cmd_id) + body, drop, None),
        # a uint time is a time-tagged command (SPEC §11.2), in 1970 here: past
        ("time", envelope(seq, cmd_id, body, time=rng.choice([1, 2**32, -1, "t", None])),
         drop | rej(12, 13), seq),
        ("id_type", b"\x86" + dumps(1) + dumps(0) + dumps(seq) + dumps(0)
         + dumps(rng.choice(["noop", -1, 1.0, None, [1], 2**40])) + body,
         drop | rej(UNKNOWN_COMMAND), None),
        ("body", envelope(seq, cmd_id, dumps(rng.choice([0, "x", {1: 1}, None, b"", True]))),
         drop | rej(BAD_ARGUMENTS), seq),
    ]
    name, payload, allowed, match = rng.choice(variants)
    return Case("envelope", name, payload, seq=match, cmd_id=cmd_id if match is not None else None,
                allowed=allowed)


def _deep(depth: int, leaf: bytes = b"\x00") -> bytes:
    return b"\x81" * depth + leaf


_BAD_ITEMS: Final[tuple[tuple[str, bytes], ...]] = (
    ("reserved_ai", b"\x1c"), ("reserved_ai_bytes", b"\x5d"), ("reserved_ai_array", b"\x9e"),
    ("huge_bytes", b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
    ("huge_text", b"\x7a\x7f\xff\xff\xff" + b"a" * 4),
    ("huge_array", b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00\x00"),
    ("huge_map", b"\xba\xff\xff\xff\xff\x01\x02"),
    ("long_bytes", b"\x59\x04\x00" + b"\x01" * 8),
    ("indef_array", b"\x9f\x01\x02\xff"), ("indef_bytes", b"\x5f\x41\x01\xff"),
    ("indef_text", b"\x7f\x61a\xff"), ("indef_map", b"\xbf\x01\x02\xff"),
    ("break", b"\xff"), ("invalid_utf8", b"\x62\xc3\x28"), ("overlong_utf8", b"\x62\xc0\xaf"),
    ("surrogate_utf8", b"\x63\xed\xa0\x80"), ("lone_ff_utf8", b"\x61\xff"),
    ("nan_half", b"\xf9\x7e\x00"), ("inf_half", b"\xf9\x7c\x00"), ("ninf_half", b"\xf9\xfc\x00"),
    ("nan_single", b"\xfa\x7f\xc0\x00\x00"), ("nan_double", b"\xfb\x7f\xf8" + b"\x00" * 6),
    ("inf_double", b"\xfb\x7f\xf0" + b"\x00" * 6), ("undefined", b"\xf7"),
    ("simple_0", b"\xe0"), ("simple_ext", b"\xf8\x20"), ("simple_ff", b"\xf8\xff"),
    ("tag_epoch", b"\xc1\x1a\x00\x00\x00\x01"), ("tag_bignum", b"\xc2\x49\x01" + b"\x00" * 8),
    ("tag_self", b"\xd9\xd9\xf7\x00"), ("tag_nested", b"\xc6" * 20 + b"\x00"),
    ("tag_huge", b"\xdb\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
    ("deep_17", _deep(17)), ("deep_64", _deep(64)), ("deep_900", _deep(900)),
    ("deep_map", b"\xa1\x00" * 40 + b"\x00"),
    ("too_many_items", b"\x99\x02\x58" + b"\x00" * 600),
    ("array_257", b"\x99\x01\x01" + b"\x00" * 257), ("map_65", b"\xb8\x41" + b"".join(
        bytes([0x18, i, 0]) if i >= 24 else bytes([i, 0]) for i in range(65))),
    ("dup_keys", b"\xa2\x01\x01\x01\x02"), ("map_key_float", b"\xa1\xf9\x3c\x00\x00"),
    ("ai_31_int", b"\x1f"), ("neg_ai_31", b"\x3f"), ("float_trunc", b"\xfa\x00"),
    ("int_trunc", b"\x1b\x00\x00"),
)


def gen_malformed_cbor(rng: random.Random, seq: int) -> Case:
    """Correctly framed and CRC'd, but the CBOR breaks the profile (SPEC §4)."""
    cmd_id = COMMAND_IDS["param_set"]
    valid = command(seq, cmd_id, [14, rng.randrange(-1000, 1001)])
    choice = rng.randrange(5)
    never = frozenset({NONE}) | rej(MALFORMED, BAD_ARGUMENTS, OUT_OF_RANGE)
    if choice == 0:
        cut = rng.randrange(0, len(valid))
        return Case("malformed_cbor", "truncated", valid[:cut], seq=seq, cmd_id=cmd_id,
                    allowed=never)
    if choice == 1:
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        return Case("malformed_cbor", "trailing", valid + tail, seq=seq, cmd_id=cmd_id,
                    allowed=never)
    name, item = rng.choice(_BAD_ITEMS)
    if choice == 2:  # in the value argument of param_set(test_value, ...)
        payload = envelope(seq, cmd_id, args_raw([dumps(14), item]))
    elif choice == 3:  # as a whole body
        payload = envelope(seq, cmd_id, item)
    else:  # in the envelope itself, in place of a field
        field = rng.randrange(6)
        parts = [dumps(1), dumps(0), dumps(seq), dumps(0), dumps(cmd_id),
                 args_raw([dumps(14), dumps(1)])]
        parts[field] = item
        payload = b"\x86" + b"".join(parts)
        name = f"{name}@{field}"
    return Case("malformed_cbor", name, payload[:MAX_MESSAGE], seq=seq, cmd_id=cmd_id,
                allowed=never)
