"""Generators that damage good commands at random and let the model say what must happen.

Unlike the hand-made cases of ``gen_messages``, these do not say what they expect: the
runner asks ``ground.fuzz.model`` for the one answer the spec gives to whatever bytes came
out. Families, each aimed at a way a receiver goes wrong:

- ``address``: seq and id in heads of any length (``1a 00 00 00 07``) and ids up to 2**64 - 1:
  the answer must name exactly the seq and id received, in shortest form;
- ``bytes``: bit flips, byte replacements, insertions and deletions anywhere in a command;
- ``items``: an item the profile forbids (a tag, ``undefined``, an indefinite length, NaN,
  nesting of 17...) put in place of, or next to, any item of a valid command: checking
  well-formedness first, the answer is MALFORMED before any other reason;
- ``short``: an array head of fewer items than a command has, then the rest of a command: a
  receiver must not read seq and id beyond the end of the array.

A damaged command may have become another valid command; the generators never send one that
could run something the campaign must not run (``oracle.is_hazard``).
"""

from __future__ import annotations

import random
from typing import Final

import cbor2

from ground.fuzz import profile
from ground.fuzz.case import Case
from ground.fuzz.encoding import command, dumps, envelope
from ground.fuzz.gen_commands import safe_valid_command
from ground.fuzz.gen_messages import _BAD_ITEMS
from ground.fuzz.oracle import is_hazard

_BIG_IDS: Final = (2**32, 2**32 + 1, 2**33 + 1, 2**40, 2**63, 2**64 - 1, 65536, 65535)


def _long_head(major: int, value: int, rng: random.Random) -> bytes:
    """A head for ``value`` of any length that holds it, shortest or not."""
    widths = [w for w in (0, 1, 2, 4, 8) if (w == 0 and value < 24) or (w and value < 1 << 8 * w)]
    width = rng.choice(widths)
    if width == 0:
        return bytes([major << 5 | value])
    ai = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | ai]) + value.to_bytes(width, "big")


def _safe(payload: bytes) -> bool:
    """False if the bytes are a well-formed command the campaign must never let run."""
    if profile.check(payload) is not None:
        return True
    try:
        item = cbor2.loads(payload)
    except Exception:
        return True
    if not isinstance(item, list) or len(item) < 6 or not isinstance(item[5], list):
        return True
    if not isinstance(item[4], int) or isinstance(item[4], bool):
        return True
    return not is_hazard(item[4], item[5])


def gen_address(rng: random.Random, seq: int) -> Case:
    cmd_id, args = safe_valid_command(rng, seq)
    if rng.random() < 0.5:
        cmd_id = rng.choice([*_BIG_IDS, rng.randrange(2**32, 2**64)])
    good = command(seq, cmd_id, args)
    # rebuild the head with fields in heads of random length
    body_and_tail = good[1 + len(dumps(1)) + len(dumps(0)) + len(dumps(seq)) + len(dumps(0))
                         + len(dumps(cmd_id)):]
    fields = [_long_head(0, v, rng) for v in (1, 0, seq, 0, cmd_id)]
    payload = good[:1] + b"".join(fields) + body_and_tail
    if not _safe(payload):
        payload = envelope(seq, cmd_id, dumps([*args, 0]))
    return Case("address", "long_heads" if payload != good else "plain", payload)


def _item_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every item in a well-formed item, outermost first."""
    spans: list[tuple[int, int]] = []

    def walk(pos: int) -> int:
        start = pos
        initial = data[pos]
        major, ai = initial >> 5, initial & 0x1F
        pos += 1
        value = ai
        if 24 <= ai <= 27:
            size = 1 << (ai - 24)
            value = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        index = len(spans)
        spans.append((start, -1))
        if major in (2, 3):
            pos += value
        elif major == 4:
            for _ in range(value):
                pos = walk(pos)
        elif major == 5:
            for _ in range(2 * value):
                pos = walk(pos)
        spans[index] = (start, pos)
        return pos

    walk(0)
    return spans


def gen_bytes(rng: random.Random, seq: int) -> Case:
    for _ in range(20):
        cmd_id, args = safe_valid_command(rng, seq)
        data = bytearray(command(seq, cmd_id, args))
        how = rng.randrange(4)
        i = rng.randrange(len(data))
        if how == 0:
            data[i] ^= 1 << rng.randrange(8)
            name = "bit_flip"
        elif how == 1:
            data[i] = rng.randrange(256)
            name = "replace"
        elif how == 2:
            data.insert(i, rng.randrange(256))
            name = "insert"
        else:
            del data[i]
            name = "delete"
        if data and _safe(bytes(data)):
            return Case("bytes", name, bytes(data))
    return Case("bytes", "plain", command(seq, cmd_id, [*args, 0]))


def gen_items(rng: random.Random, seq: int) -> Case:
    """A forbidden item in place of, or after, an item of a valid command (the array's
    count adjusted when it is inserted, so that only the item itself is wrong)."""
    cmd_id, args = safe_valid_command(rng, seq)
    if rng.random() < 0.5:
        args = [*args, rng.choice([1, True, "x", [1, [2]], {1: 2}, b"\x01", 1.5])]
    good = command(seq, cmd_id, args)
    spans = _item_spans(good)
    start, end = rng.choice(spans[1:])  # not the whole message
    name, bad = rng.choice(_BAD_ITEMS)
    if name.startswith("deep_"):
        bad = b"\x81" * rng.choice([14, 15, 16, 17, 18]) + b"\x00"
        name = "deep"
    payload = good[:start] + bad + good[end:]
    if not _safe(payload):
        payload = good[:start] + b"\xf7" + good[end:]
    return Case("items", name, payload)


def gen_short(rng: random.Random, seq: int) -> Case:
    """[] .. [a, b, c, d] of the command's first items, then the rest of the command's bytes."""
    cmd_id, args = safe_valid_command(rng, seq)
    good = command(seq, cmd_id, args)
    count = rng.randrange(5)
    payload = bytes([0x80 | count]) + good[1:]
    if rng.random() < 0.3:  # the rest cut off somewhere
        payload = payload[:rng.randrange(1, len(payload) + 1)]
    return Case("short", f"array_of_{count}", payload)
