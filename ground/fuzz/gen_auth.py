"""Authenticated cases (SPEC §10): COSE_Mac0 objects, signed with the campaign's key or damaged.

The key is the campaign's (``bind_key``): the node's own key when the fuzzer runs with it
(``ground fuzz --key``), else a key the node does not hold (``keyring.foreign_key``), and then
every one of these cases must be refused as forged. Families (the case's ``name``):

- ``signed``: a valid object around the message of another category's case (a command with
  bad arguments, malformed CBOR, a damaged envelope...), so that with the key they reach the
  dispatcher's checks authenticated; a command that would run something hazardous is
  replaced by ``status``;
- ``ahead`` / ``held``: a valid object with a counter a few ahead, and later one of the
  counters skipped (accepted while within the 24-counter window, else replayed);
  ``window_edge``: the next authenticated case after one that jumped 23, 24 or 25 ahead
  sends the lowest counter skipped (just inside, on, just outside the window's edge);
- ``replay``: a recent object again, byte for byte, or its counter on another message;
  ``old_counter``: a counter well below the window;
- ``protected``: the protected header damaged (algorithm, key order, extra or missing keys,
  counter 0, beyond 2^30 - 1, not in shortest form, negative, kid of 1 or 3 bytes, a map
  instead of a bstr), the tag right for the bytes sent: only the layout check refuses it;
- ``unprotected``: the unprotected map not empty, or not a map;
- ``kid``: an operator or a generation the node has no key for (tag right for that kid);
- ``tag_length``: the tag cut to 0, 8 or 16 bytes, 33 bytes, or its head not shortest;
- ``tag_bits`` / ``payload_bits``: one bit flipped in the tag / in the payload after signing;
- ``nested``: a valid object whose payload is itself a valid object;
- ``shape``: tag 17 around an array of 3 or 5, a map, a bstr; the payload or the tag as text
  or a number; tag 16 or 97 (COSE_Encrypt0, COSE_Mac) instead of 17; trailing bytes.

What the node must do with each is not said here: the runner asks ``authmodel`` (§10.3 in
order) and then ``model`` for the command inside.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Final

import cbor2

from ground.fuzz import model
from ground.fuzz.case import FRAME, MAX_MESSAGE, Case
from ground.fuzz.encoding import bound_boot, command
from ground.fuzz.keyring import (
    ALG_LABEL,
    COUNTER_LABEL,
    HMAC_256_256,
    KID_LABEL,
    MAX_COUNTER,
    FuzzKey,
    foreign_key,
    mac0,
    protected,
    tag_of,
)
from ground.fuzz.oracle import COMMAND_IDS, is_hazard
from protocol.dictionary_types import MODE_NOMINAL

CATEGORY: Final = "auth"
_KEY: list[FuzzKey] = [foreign_key()]
_RECENT: deque[bytes] = deque(maxlen=64)  # objects signed lately, for replays
_HELD: deque[int] = deque(maxlen=16)  # counters skipped by an ``ahead`` case, for ``held``
_EDGE: list[int] = []  # the lowest counter an ``ahead`` case skipped 23..25 past, sent next
# the plain generators (set by ground.fuzz.cases: it imports this module)
INNER: dict[str, Callable[[random.Random, int], Case]] = {}


def bind_key(key: FuzzKey) -> None:
    """Sign the cases generated from now on with ``key`` (the campaign's)."""
    _KEY[0] = key
    _RECENT.clear()
    _HELD.clear()
    _EDGE.clear()


def bound_key() -> FuzzKey:
    return _KEY[0]


def _inner(rng: random.Random, seq: int) -> bytes:
    """The message of a plain case of another category, or status if it could be hazardous
    once authenticated."""
    names = sorted(INNER)
    for _ in range(8):
        case = INNER[rng.choice(names)](rng, seq)
        if case.framing != FRAME or not case.payload or case.prefix:
            continue
        exp = model.expect(case.payload, mode=MODE_NOMINAL, boot=bound_boot(), signed=True)
        if exp.command is not None and is_hazard(exp.command[0], list(exp.command[1]),
                                                 signed=True):
            break
        return case.payload
    return command(seq, COMMAND_IDS["status"], [])


def _case(name: str, obj: bytes) -> Case:
    return Case(CATEGORY, name, obj)


def _signed(key: FuzzKey, message: bytes, counter: int | None = None) -> bytes:
    obj, _ = key.sign(message, counter)
    _RECENT.append(obj)
    return obj


def _with_header(key: FuzzKey, header: bytes, message: bytes) -> bytes:
    """An object with these protected bytes, its tag right for them."""
    return mac0(header, message, tag_of(key.key, header, message))


def _bad_protected(rng: random.Random, key: FuzzKey) -> bytes:
    counter = key.next_counter()
    kid = key.kid
    dumps = cbor2.dumps
    variants: list[bytes] = [
        dumps({ALG_LABEL: 4, KID_LABEL: kid, COUNTER_LABEL: counter}),  # HMAC 256/64
        dumps({ALG_LABEL: rng.choice([0, 6, 7, -5, 255]), KID_LABEL: kid,
               COUNTER_LABEL: counter}),
        b"\xa3\x04\x42" + kid + b"\x01\x05" + dumps(COUNTER_LABEL) + dumps(counter),
        b"\xa3" + dumps(COUNTER_LABEL) + dumps(counter) + b"\x01\x05\x04\x42" + kid,
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid}),
        dumps({ALG_LABEL: HMAC_256_256, COUNTER_LABEL: counter}),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid, COUNTER_LABEL: counter, 5: b""}),
        protected(kid, 0),
        protected(kid, MAX_COUNTER + 1 + rng.randrange(2**32)),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid, COUNTER_LABEL: -counter}),
        b"\xa3\x01\x05\x04\x42" + kid + dumps(COUNTER_LABEL) + b"\x1b"
        + counter.to_bytes(8, "big"),  # counter not in shortest form
        b"\xa3\x01\x05\x04\x42" + kid + dumps(COUNTER_LABEL) + b"\x1a"
        + counter.to_bytes(4, "big"),  # shortest only from 65536 on
        b"\xa3\x01\x18\x05\x04\x42" + kid + dumps(COUNTER_LABEL) + dumps(counter),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid[:1], COUNTER_LABEL: counter}),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid + b"\x00", COUNTER_LABEL: counter}),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid.hex(), COUNTER_LABEL: counter}),
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid, -65538: counter}),  # a verification's
        dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid, COUNTER_LABEL: float(counter)}),
        b"\xbf\x01\x05\x04\x42" + kid + dumps(COUNTER_LABEL) + dumps(counter) + b"\xff",
        b"",
    ]
    return rng.choice(variants)


def gen_auth(rng: random.Random, seq: int) -> Case:
    key = _KEY[0]
    if _EDGE:  # right after an ``ahead`` case that jumped 23..25: the window's edge (§10.4)
        message = command(seq, COMMAND_IDS["noop"], [])
        return _case("window_edge", _signed(key, message, _EDGE.pop()))
    family = rng.choices(_FAMILIES, _WEIGHTS)[0]
    message = _inner(rng, seq) if family in ("signed", "nested") else \
        command(seq, COMMAND_IDS[rng.choice(("noop", "status", "param_get"))],
                [] if rng.random() < 0.7 else [rng.randrange(1, 20)])
    if family == "signed":
        return _case(family, _signed(key, message))
    if family == "ahead":
        skip = rng.choice((1, 2, 3, 23, 24, 25))
        start = key.counter + 1
        obj = _signed(key, message, key.next_counter(skip))
        if skip >= 23:  # the next authenticated case sends the lowest: 23..25 below this one
            _EDGE.append(start)
            start += 1
            skip -= 1
        _HELD.extend(range(start, start + skip))
        return _case(family, obj)
    if family == "held":
        counter = _HELD.popleft() if _HELD else key.next_counter()
        return _case(family, _signed(key, message, counter))
    if family == "replay":
        if _RECENT and rng.random() < 0.6:
            return _case(family, rng.choice(_RECENT))  # byte for byte
        old = cbor2.loads(rng.choice(_RECENT)) if _RECENT else None
        counter = cbor2.loads(old.value[0])[COUNTER_LABEL] if old is not None else 1
        return _case(family, mac0(protected(key.kid, counter), message,
                                  tag_of(key.key, protected(key.kid, counter), message)))
    if family == "old_counter":
        counter = max(1, key.counter - 25 - rng.randrange(2000))
        return _case(family, _with_header(key, protected(key.kid, counter), message))
    if family == "protected":
        header = _bad_protected(rng, key)
        return _case(family, mac0(header, message, tag_of(key.key, header, message)))
    if family == "unprotected":
        prot = protected(key.kid, key.next_counter())
        unprot = rng.choice([cbor2.dumps({KID_LABEL: key.kid}), b"\xa1\x01\x05", b"\x80",
                             b"\x40", b"\xf6", b"\xbf\xff"])
        return _case(family, mac0(prot, message, tag_of(key.key, prot, message), unprot))
    if family == "kid":
        operator, generation = rng.choice([(key.operator, (key.generation + 1) % 256),
                                           ((key.operator + 1) % 256, key.generation),
                                           (rng.randrange(256), rng.randrange(256))])
        kid = bytes((operator, generation))
        # the tag under a key derived for that kid, or under this very key (a node that
        # looked up the key by operator alone would take it)
        mac_key = FuzzKey(key.key, operator, generation) if rng.random() < 0.5 else key
        return _case(family, _with_header(mac_key, protected(kid, key.next_counter()),
                                          message))
    if family in ("tag_length", "tag_bits"):
        prot = protected(key.kid, key.next_counter())
        tag = tag_of(key.key, prot, message)
        body = b"\xd1\x84" + cbor2.dumps(prot) + b"\xa0" + cbor2.dumps(message)
        if family == "tag_bits":
            bit = rng.randrange(256)
            flipped = bytearray(tag)
            flipped[bit // 8] ^= 1 << (bit % 8)
            return _case(family, body + cbor2.dumps(bytes(flipped)))
        cut = rng.choice([b"\x40", cbor2.dumps(tag[:8]), cbor2.dumps(tag[:16]),
                          cbor2.dumps(tag + b"\x00"), b"\x59\x00\x20" + tag,
                          b"\x58\x20" + tag[:31], cbor2.dumps(tag[:31])])
        return _case(family, body + cut)
    if family == "payload_bits":
        prot = protected(key.kid, key.next_counter())
        tag = tag_of(key.key, prot, message)
        damaged = bytearray(message)
        bit = rng.randrange(8 * len(damaged))
        damaged[bit // 8] ^= 1 << (bit % 8)
        return _case(family, mac0(prot, bytes(damaged), tag))
    if family == "nested":
        inner = _signed(key, message)
        if len(inner) + 64 > MAX_MESSAGE:
            inner = _signed(key, command(seq, COMMAND_IDS["noop"], []))
        return _case(family, _signed(key, inner))
    return _case(family, _shape(rng, key, message))


def _shape(rng: random.Random, key: FuzzKey, message: bytes) -> bytes:
    prot = protected(key.kid, key.next_counter())
    tag = tag_of(key.key, prot, message)
    p, m, t = cbor2.dumps(prot), cbor2.dumps(message), cbor2.dumps(tag)
    variants = [
        b"\xd1\x83" + p + b"\xa0" + m,
        b"\xd1\x85" + p + b"\xa0" + m + t + b"\xf6",
        b"\xd1\xa1" + p + m,
        b"\xd1" + m,
        b"\xd1\x84" + p + b"\xa0" + cbor2.dumps(message.hex()) + t,
        b"\xd1\x84" + p + b"\xa0" + m + cbor2.dumps(tag.hex()),
        b"\xd1\x84" + p + b"\xa0" + m + b"\x1b" + tag[:8],
        b"\xd1\x84" + p + b"\xa0" + b"\x40" + t,  # an empty payload
        b"\xd1\x84" + p + b"\xa0" + b"\xf6" + t,  # payload nil (detached)
        b"\xd0\x84" + p + b"\xa0" + m + t,  # tag 16
        b"\xd8\x61\x84" + p + b"\xa0" + m + t,  # tag 97
        b"\xd1\x84" + p + b"\xa0" + m + t + b"\x00",  # a trailing byte
        b"\xd1\x9f" + p + b"\xa0" + m + t + b"\xff",  # indefinite-length array
        b"\xd1\x84" + p + b"\xa0" + b"\x5f" + m + b"\xff" + t,  # indefinite-length bstr
        b"\xd1\x84" + p + b"\xa0" + m[:-1],  # cut short
    ]
    return rng.choice(variants)


_FAMILY_WEIGHTS: Final = {
    "signed": 40, "ahead": 4, "held": 4, "replay": 8, "old_counter": 3, "protected": 8,
    "unprotected": 3, "kid": 4, "tag_length": 4, "tag_bits": 5, "payload_bits": 5,
    "nested": 3, "shape": 6,
}
_FAMILIES: Final = tuple(_FAMILY_WEIGHTS)
_WEIGHTS: Final = tuple(_FAMILY_WEIGHTS.values())
