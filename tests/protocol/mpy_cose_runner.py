"""protocol.cose on MicroPython (the node's interpreter): one JSON request a line in, one answer
a line out. Usage: ``micropython tests/protocol/mpy_cose_runner.py < requests`` with MICROPYPATH
at the repository root (ground.micropython.micropython_path_env).

- ``{"op": "check", "mac0": hex, "key": hex, "kid": hex, "dir": 0|1}`` ->
  ``{"parse": code, "ok": tag right, "counter": n, "payload": hex}``
- ``{"op": "make", "key": hex, "kid": hex, "counter": n, "payload": hex, "dir": 0|1}`` ->
  ``{"mac0": hex}``
- ``{"op": "derive", "master": hex, "kid": hex}`` -> ``{"key": hex}``
- ``{"op": "equal", "a": hex, "start": n, "b": hex, "n": n}`` -> ``{"equal": bool}``
- ``{"op": "checks", "mac0s": [hex, ...], "key": hex, "kid": hex, "dir": 0|1}`` ->
  ``{"ok": [tag right, ...]}``: one reader and one receive buffer for all, as on the node
- ``{"op": "alloc", "mac0s": [hex, ...], "key": hex, "kid": hex, "runs": n}`` -> bytes
  allocated in all: ``{"parse": by parse, "verify": by verify, "hashlib": by hashlib alone
  doing the same hashing (two sha256 objects, two digests), "calls": verifications}``; each
  object in turn, ``runs`` rounds, one reader and one buffer, no collection while measured
"""

import gc
import json
import sys
from binascii import hexlify, unhexlify

from protocol import cose, cose_sign

_LABEL = (cose.LABEL_COUNTER, cose.LABEL_ANSWERS)
_AAD = (cose_sign.AAD_COMMAND, cose_sign.AAD_VERIFICATION)


def _hex(b):
    return hexlify(bytes(b)).decode()


def handle(req):
    op = req["op"]
    if op == "equal":
        a = bytearray(unhexlify(req["a"]))
        return {"equal": cose.equal(a, req["start"], unhexlify(req["b"]), req["n"])}
    if op == "derive":
        return {"key": _hex(cose.derive_key(unhexlify(req["master"]), unhexlify(req["kid"])))}
    key = cose.MacKey(unhexlify(req["kid"]), unhexlify(req["key"]))
    d = req.get("dir", 0)
    if op == "make":
        return {"mac0": _hex(cose_sign.encode_mac0(key, _LABEL[d], req["counter"],
                                               unhexlify(req["payload"]), _AAD[d]))}
    buf = bytearray(1024)
    r = cose.Mac0Reader()
    if op == "checks":
        return {"ok": [_check(r, buf, key, unhexlify(m), d) for m in req["mac0s"]]}
    if op == "alloc":
        return _alloc(r, buf, key, [unhexlify(m) for m in req["mac0s"]], req["runs"])
    data = unhexlify(req["mac0"])
    buf[0:len(data)] = data
    n = len(data)
    code = r.parse(buf, n, _LABEL[d])
    if code:
        return {"parse": code}
    return {"parse": 0, "ok": key.verify(r, d), "counter": r.counter,
            "payload": _hex(buf[r.payload:r.payload_end])}


def _check(r, buf, key, data, d):
    buf[0:len(data)] = data
    return r.parse(buf, len(data), _LABEL[d]) == cose.OK and key.verify(r, d)


def _alloc(r, buf, key, frames, runs):
    for f in frames:  # once each first: nothing measured is a first use
        buf[0:len(f)] = f
        r.parse(buf, len(f), _LABEL[0])
        key.verify(r, 0)
    lens = [len(f) for f in frames]
    parse = verify = 0
    gc.collect()
    gc.disable()  # mem_alloc differences then count every allocation
    for _ in range(runs):
        for i in range(len(frames)):
            buf[0:lens[i]] = frames[i]
            a = gc.mem_alloc()
            r.parse(buf, lens[i], _LABEL[0])
            b = gc.mem_alloc()
            key.verify(r, 0)
            c = gc.mem_alloc()
            parse += b - a
            verify += c - b
    gc.enable()
    import hashlib

    pad = bytes(64)
    data = frames[0]
    calls = runs * len(frames)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(calls):  # what hashlib alone allocates for the same work
        h = hashlib.sha256(pad)
        h.update(data)
        o = hashlib.sha256(pad)
        o.update(h.digest())
        o.digest()
    base = gc.mem_alloc() - a
    gc.enable()
    return {"parse": parse, "verify": verify, "hashlib": base, "calls": calls}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(handle(json.loads(line))))
