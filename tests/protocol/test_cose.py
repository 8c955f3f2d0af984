"""protocol.cose (SPEC §10): the spec's example-mac blocks, and the node's code cross-checked
with pycose both ways, on CPython and on the real MicroPython interpreter."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import cbor2
import pytest
from pycose.algorithms import HMAC256
from pycose.headers import KID, Algorithm
from pycose.keys import SymmetricKey
from pycose.messages import Mac0Message

from ground.micropython import find_micropython, micropython_path_env
from protocol import cose, cose_sign

HERE = Path(__file__).resolve().parent
SPEC = HERE.parents[1] / "protocol" / "SPEC.md"
KEYS = ("master", "key", "kid", "counter", "direction", "payload", "mac0", "refused")
DIRS = {"command": 0, "verification": 1}
LABELS = (cose.LABEL_COUNTER, cose.LABEL_ANSWERS)
AADS = (cose_sign.AAD_COMMAND, cose_sign.AAD_VERIFICATION)
PYCOSE_LABELS = (cose_sign.HDR_COUNTER, cose_sign.HDR_ANSWERS)


def mac_examples() -> list[tuple[int, dict[str, str]]]:
    blocks = []
    lines = SPEC.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```example-mac":
            i += 1
            continue
        start, fields, key = i + 1, {}, ""
        i += 1
        while lines[i].strip() != "```":
            line = lines[i]
            i += 1
            if line[0].isspace():
                fields[key] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            assert sep and key in KEYS, f"SPEC.md:{i}: unknown example-mac line {line!r}"
            fields[key] = value.strip()
        blocks.append((start, fields))
    return blocks


def _bytes(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"\s", "", text))


def run_micropython(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [find_micropython(), str(HERE / "mpy_cose_runner.py")],
        input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True,
        encoding="utf-8", env=micropython_path_env(), timeout=300, check=False)
    out = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(out) == len(requests), proc.stderr[-3000:]
    return [json.loads(line) for line in out]


def pycose_make(key: bytes, kid: bytes, counter: int, payload: bytes, d: int) -> bytes:
    msg = Mac0Message(phdr={Algorithm: HMAC256, KID: kid, PYCOSE_LABELS[d]: counter}, uhdr={},
                      payload=payload, external_aad=AADS[d])
    msg.key = SymmetricKey(k=key)
    return bytes(msg.encode())


def pycose_verify(mac0: bytes, key: bytes, d: int) -> bool:
    """pycose's verdict on mac0 (cbor2 6 gives tag contents as tuples and frozen maps, which
    pycose 1.1's decode() refuses: the object is handed over as lists and dicts)."""
    try:
        tagged = cbor2.loads(mac0)
        if tagged.tag != cose_sign.TAG_MAC0:
            return False
        p, u, payload, tag = tagged.value
        msg = Mac0Message.from_cose_obj([p, dict(u), payload, tag], True)
    except Exception:
        return False
    msg.key = SymmetricKey(k=key)
    msg.external_aad = AADS[d]
    try:
        return bool(msg.verify_tag())
    except Exception:
        return False


def cpython_check(mac0: bytes, key: bytes, kid: bytes, d: int) -> tuple[int, bool]:
    buf = bytearray(1024)
    buf[: len(mac0)] = mac0
    r = cose.Mac0Reader()
    code = r.parse(buf, len(mac0), LABELS[d])
    return code, code == cose.OK and cose.MacKey(kid, key).verify(r, d)


EXAMPLES = mac_examples()


def test_the_spec_has_mac_examples() -> None:
    assert len(EXAMPLES) == 6  # §10.2 (4), §10.7 (derivation), §10.8 (an arm)


@pytest.mark.parametrize(("line", "ex"), EXAMPLES, ids=[f"SPEC.md:{n}" for n, _ in EXAMPLES])
def test_spec_mac_example(line: int, ex: dict[str, str]) -> None:
    key = _bytes(ex["key"])
    if "master" in ex:
        kid = _bytes(ex["kid"])
        assert cose.derive_key(_bytes(ex["master"]), kid) == key
        [mp] = run_micropython([{"op": "derive", "master": ex["master"].replace(" ", ""),
                                 "kid": kid.hex()}])
        assert bytes.fromhex(mp["key"]) == key
        return
    d = DIRS[ex["direction"]]
    mac0 = _bytes(ex["mac0"])
    kid = _bytes(ex.get("kid", "01 00"))
    mp_check = {"op": "check", "mac0": mac0.hex(), "key": key.hex(), "kid": kid.hex(), "dir": d}
    if "refused" in ex:
        assert ex["refused"] == "forged"
        assert cpython_check(mac0, key, kid, d)[1] is False
        assert not pycose_verify(mac0, key, d)
        [mp] = run_micropython([mp_check])
        assert mp["parse"] != 0 or mp["ok"] is False
        return
    counter, payload = int(ex["counter"]), _bytes(ex["payload"])
    mk = cose.MacKey(kid, key)
    assert cose_sign.encode_mac0(mk, LABELS[d], counter, payload, AADS[d]) == mac0
    assert pycose_make(key, kid, counter, payload, d) == mac0
    assert pycose_verify(mac0, key, d)
    assert cpython_check(mac0, key, kid, d) == (cose.OK, True)
    made, checked = run_micropython([
        {"op": "make", "key": key.hex(), "kid": kid.hex(), "counter": counter,
         "payload": payload.hex(), "dir": d}, mp_check])
    assert bytes.fromhex(made["mac0"]) == mac0
    assert checked == {"parse": 0, "ok": True, "counter": counter, "payload": payload.hex()}
    # the other direction's label or aad never verifies
    assert cpython_check(mac0, key, kid, 1 - d)[1] is False


def _random_cases(n: int, seed: int) -> list[tuple[bytes, bytes, int, bytes, int]]:
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        size = rng.choice((1, 23, 24, 255, 256, 900))
        counter = rng.choice((1, 23, 24, 255, 256, 65535, 65536, cose.MAX_COUNTER,
                              rng.randrange(1, cose.MAX_COUNTER)))
        cases.append((rng.randbytes(32), rng.randbytes(2), counter, rng.randbytes(size), i % 2))
    return cases


def test_pycose_made_objects_verify_on_the_node_and_node_made_on_pycose() -> None:
    cases = _random_cases(60, 13)
    reqs: list[dict[str, Any]] = []
    for key, kid, counter, payload, d in cases:
        made = pycose_make(key, kid, counter, payload, d)
        reqs.append({"op": "check", "mac0": made.hex(), "key": key.hex(), "kid": kid.hex(),
                     "dir": d})
        reqs.append({"op": "make", "key": key.hex(), "kid": kid.hex(), "counter": counter,
                     "payload": payload.hex(), "dir": d})
    answers = run_micropython(reqs)
    for i, (key, kid, counter, payload, d) in enumerate(cases):
        checked, made = answers[2 * i], answers[2 * i + 1]
        assert checked == {"parse": 0, "ok": True, "counter": counter, "payload": payload.hex()}
        mac0 = bytes.fromhex(made["mac0"])
        assert pycose_verify(mac0, key, d)
        assert mac0 == pycose_make(key, kid, counter, payload, d)
        assert cpython_check(mac0, key, kid, d) == (cose.OK, True)
        assert not pycose_verify(mac0, bytes(32), d)  # pycose agrees a wrong key fails


def _example() -> tuple[bytes, bytes, bytes]:
    ex = EXAMPLES[0][1]
    return _bytes(ex["mac0"]), _bytes(ex["key"]), _bytes(ex["kid"])


def test_every_single_bit_flip_is_refused() -> None:
    mac0, key, kid = _example()
    for bit in range(len(mac0) * 8):
        bad = bytearray(mac0)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert cpython_check(bytes(bad), key, kid, 0)[1] is False, bit
        if bit // 8 != 18:  # the unprotected map (a0) is outside the MAC, for pycose too
            assert not pycose_verify(bytes(bad), key, 0), bit


def test_truncated_extended_and_wrong_key_are_refused() -> None:
    mac0, key, kid = _example()
    for n in range(len(mac0)):
        assert cpython_check(mac0[:n], key, kid, 0)[1] is False
    assert cpython_check(mac0 + b"\x00", key, kid, 0)[0] == cose.BAD_TAG
    assert cpython_check(mac0, bytes(32), kid, 0) == (cose.OK, False)


def test_layout_must_be_canonical() -> None:
    key, kid = bytes(range(32)), b"\x01\x00"
    # counter 23 written in two bytes (18 17): not the shortest form
    mk = cose.MacKey(kid, key)
    prot = b"\xa3\x01\x05\x04\x42" + kid + cose.LABEL_COUNTER + b"\x18\x17"
    payload = bytes.fromhex("8701000700018003")
    tag = cose_sign.tag(mk, prot, cose_sign.AAD_COMMAND, payload)
    long_form = b"\xd1\x84\x50" + prot + b"\xa0\x48" + payload + b"\x58\x20" + tag
    assert cpython_check(long_form, key, kid, 0)[0] == cose.BAD_FORM
    # keys in another order: refused too
    prot2 = b"\xa3\x04\x42" + kid + b"\x01\x05" + cose.LABEL_COUNTER + b"\x17"
    tag2 = cose_sign.tag(mk, prot2, cose_sign.AAD_COMMAND, payload)
    other = b"\xd1\x84\x4e" + prot2 + b"\xa0\x48" + payload + b"\x58\x20" + tag2
    assert cpython_check(other, key, kid, 0)[0] == cose.BAD_FORM
    # counter 0 and 2**30 cannot be made
    with pytest.raises(ValueError):
        cose_sign.protected_header(kid, cose.LABEL_COUNTER, 0)
    with pytest.raises(ValueError):
        cose_sign.protected_header(kid, cose.LABEL_COUNTER, cose.MAX_COUNTER + 1)


def test_equal_compares_every_byte() -> None:
    a = bytes(range(32))
    assert cose.equal(a, 0, a, 32)
    for i in range(32):
        b = bytearray(a)
        b[i] ^= 0x80
        assert not cose.equal(a, 0, b, 32)
    assert cose.equal(b"xx" + a, 2, a, 32)


def test_equal_compares_every_byte_on_the_node() -> None:
    a = bytes(range(40))
    reqs = [{"op": "equal", "a": a.hex(), "start": 8, "b": a[8:].hex(), "n": 32}]
    for i in range(32):
        b = bytearray(a[8:])
        b[i] ^= 0x01
        reqs.append({"op": "equal", "a": a.hex(), "start": 8, "b": b.hex(), "n": 32})
    answers = run_micropython(reqs)
    assert answers[0] == {"equal": True}
    assert all(x == {"equal": False} for x in answers[1:])


def test_repr_never_shows_the_key() -> None:
    key = bytes.fromhex("5daa18054dbf5d6a6229b54b75fd4becf352a689ac8850f1fb37769226690 2b9"
                        .replace(" ", ""))
    text = repr(cose.MacKey(b"\x01\x00", key)) + str(cose.MacKey(b"\x01\x00", key))
    assert text.startswith("MacKey(kid=0100)")
    assert key.hex() not in text and "5daa" not in text


# Counters of each encoded width (1, 2, 3, 5 bytes) and payload lengths across the blocks
# MacKey.verify hashes: MAC_structure's first 22..26 bytes come before the payload's head.
WIDTH_COUNTERS = (5, 100, 1000, 100000)
BLOCK_SIZES = [*range(1, 140), 191, 192, 193, 255, 256, 257, 511, 512, 513,
               *range(1020 - cose.WRAP_OVERHEAD - 3, 1020 - cose.WRAP_OVERHEAD + 1)]


def _block_cases(d: int) -> list[bytes]:
    key = cose.MacKey(b"\x03\x01", bytes(range(100, 132)))
    return [cose_sign.encode_mac0(key, LABELS[d], c,
                                  bytes((i * 13 + c) & 0xFF for i in range(size)), AADS[d])
            for c in WIDTH_COUNTERS for size in BLOCK_SIZES]


def _last_payload_byte_flipped(mac0: bytes) -> bytes:
    bad = bytearray(mac0)
    bad[-35] ^= 0x01  # before 58 20 and the tag
    return bytes(bad)


@pytest.mark.parametrize("d", [0, 1])
def test_verify_across_block_boundaries_with_one_reader(d: int) -> None:
    # One reader and one buffer for every object, as on the node: each length class of
    # counter and payload, the payload ending on, before and after each 64-byte block.
    key, kid = bytes(range(100, 132)), b"\x03\x01"
    good = _block_cases(d)
    bad = [_last_payload_byte_flipped(m) for m in good]
    mk, r, buf = cose.MacKey(kid, key), cose.Mac0Reader(), bytearray(1024)
    for mac0, expected in [(m, True) for m in good] + [(m, False) for m in bad]:
        buf[:len(mac0)] = mac0
        assert r.parse(buf, len(mac0), LABELS[d]) == cose.OK
        assert mk.verify(r, d) is expected, (len(mac0), expected)
    [mp] = run_micropython([{"op": "checks", "mac0s": [m.hex() for m in good + bad],
                             "key": key.hex(), "kid": kid.hex(), "dir": d}])
    assert mp["ok"] == [True] * len(good) + [False] * len(bad)


def test_node_verify_path_allocates_only_what_hashlib_does() -> None:
    """parse allocates nothing; verify exactly what hashlib does for the same hashing (two
    sha256 objects, two digests), byte for byte, on the real MicroPython: every length class
    of counter and payload, one reader and one buffer, 10 rounds, no collection meanwhile."""
    frames = [m.hex() for m in _block_cases(0)[::7]]
    key, kid = bytes(range(100, 132)), b"\x03\x01"
    [a] = run_micropython([{"op": "alloc", "mac0s": frames, "key": key.hex(),
                            "kid": kid.hex(), "runs": 10}])
    assert a["calls"] == 10 * len(frames)
    assert a["hashlib"] >= a["calls"] * 4 * 16  # the baseline sees hashlib's four objects
    assert a["parse"] == 0
    assert a["verify"] == a["hashlib"], a


@pytest.mark.parametrize("n", [0, 1, 23, 24, 25, 255, 256, 257, 500, 1020 - cose.WRAP_OVERHEAD])
def test_wrap_in_place_is_encode_mac0_of_the_payload(n: int) -> None:
    # The node's answers are wrapped in their own buffer, the payload moved up in pieces:
    # the result is exactly the object encode_mac0 makes, for every length class of head.
    key = cose.MacKey(b"\x07\x01", bytes(range(32)))
    payload = bytes((i * 7 + 3) & 0xFF for i in range(n))
    buf = bytearray(payload) + bytes(1024 - n)
    end = cose.wrap_in_place(buf, key, 12345, n)
    assert bytes(buf[:end]) == cose_sign.encode_mac0(key, cose.LABEL_ANSWERS, 12345, payload,
                                                     cose_sign.AAD_VERIFICATION)


@pytest.mark.parametrize("counter", [1, 23, 24, 255, 256, 65535, 65536, cose.MAX_COUNTER])
@pytest.mark.parametrize("n", [1, 40])
def test_wrap_in_place_writes_every_counter_form(counter: int, n: int) -> None:
    # The protected header is written byte by byte in place: each shortest form of the
    # counter, as encode_mac0 (through protected_header) makes it; the reader lent as scratch
    # is left with the object's offsets.
    key = cose.MacKey(b"\x02\x05", bytes(range(50, 82)))
    payload = bytes((i * 11 + 1) & 0xFF for i in range(n))
    buf = bytearray(payload) + bytes(200)
    r = cose.Mac0Reader()
    end = cose.wrap_in_place(buf, key, counter, n, r)
    want = cose_sign.encode_mac0(key, cose.LABEL_ANSWERS, counter, payload,
                                 cose_sign.AAD_VERIFICATION)
    assert bytes(buf[:end]) == want
    assert r.buf is buf
    assert (r.payload_head, r.tag_head) == (r.unprot + 1, end - cose_sign.TAG_BYTES - 2)
    assert buf[r.unprot] == 0xA0


@pytest.mark.parametrize("counter", [0, cose.MAX_COUNTER + 1])
def test_wrap_in_place_refuses_a_counter_out_of_range(counter: int) -> None:
    key = cose.MacKey(b"\x02\x05", bytes(range(50, 82)))
    buf = bytearray(b"\x01") + bytes(100)
    with pytest.raises(ValueError, match=r"a counter is 1\.\.1073741823"):
        cose.wrap_in_place(buf, key, counter, 1)
    assert buf == bytearray(b"\x01") + bytes(100)  # nothing written


def test_cose_inlines_the_sizes_and_labels_of_cose_sign():
    # protocol.cose keeps as private consts the ones of protocol.cose_sign it uses (a public
    # name costs the node a globals entry): each must equal cose_sign's.
    source = (Path(__file__).resolve().parents[2] / "protocol" / "cose.py").read_text()
    inlined = re.findall(r"^_([A-Z][A-Z0-9_]*) = const\((-?\w+)\)", source, re.M)
    shared = [(name, value) for name, value in inlined if hasattr(cose_sign, name)]
    assert {name for name, _ in shared} == {"ALG_HMAC_256_256", "KID_BYTES", "TAG_BYTES"}
    for name, value in shared:
        assert getattr(cose_sign, name) == int(value, 0), name
