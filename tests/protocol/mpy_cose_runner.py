"""protocol.cose on MicroPython (the node's interpreter): one JSON request a line in, one answer
a line out. Usage: ``micropython tests/protocol/mpy_cose_runner.py < requests`` with MICROPYPATH
at the repository root (ground.micropython.micropython_path_env).

- ``{"op": "check", "mac0": hex, "key": hex, "kid": hex, "dir": 0|1}`` ->
  ``{"parse": code, "ok": tag right, "counter": n, "payload": hex}``
- ``{"op": "make", "key": hex, "kid": hex, "counter": n, "payload": hex, "dir": 0|1}`` ->
  ``{"mac0": hex}``
- ``{"op": "derive", "master": hex, "kid": hex}`` -> ``{"key": hex}``
- ``{"op": "equal", "a": hex, "start": n, "b": hex, "n": n}`` -> ``{"equal": bool}``
- ``{"op": "alloc", "mac0": hex, "key": hex, "kid": hex}`` -> ``{"parse": bytes allocated by
  parse, "verify": bytes allocated by verify}`` (averaged over 50 runs)
"""

import gc
import json
import sys
from binascii import hexlify, unhexlify

from protocol import cose

_LABEL = (cose.LABEL_COUNTER, cose.LABEL_ANSWERS)
_AAD = (cose.AAD_COMMAND, cose.AAD_VERIFICATION)


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
        return {"mac0": _hex(cose.encode_mac0(key, _LABEL[d], req["counter"],
                                               unhexlify(req["payload"]), _AAD[d]))}
    data = unhexlify(req["mac0"])
    buf = bytearray(1024)
    buf[0:len(data)] = data
    n = len(data)
    r = cose.Mac0Reader()
    if op == "alloc":
        r.parse(buf, n, _LABEL[0])
        key.verify(r, 0)
        gc.collect()
        a = gc.mem_alloc()
        for _ in range(50):
            r.parse(buf, n, _LABEL[0])
        p = (gc.mem_alloc() - a) // 50
        gc.collect()
        a = gc.mem_alloc()
        for _ in range(50):
            key.verify(r, 0)
        v = (gc.mem_alloc() - a) // 50
        import hashlib

        pad = bytes(64)
        gc.collect()
        a = gc.mem_alloc()
        for _ in range(50):  # what hashlib alone allocates for the same work
            h = hashlib.sha256(pad)
            h.update(data)
            o = hashlib.sha256(pad)
            o.update(h.digest())
            o.digest()
        return {"parse": p, "verify": v, "hashlib": (gc.mem_alloc() - a) // 50}
    code = r.parse(buf, n, _LABEL[d])
    if code:
        return {"parse": code}
    return {"parse": 0, "ok": key.verify(r, d), "counter": r.counter,
            "payload": _hex(buf[r.payload:r.payload_end])}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(handle(json.loads(line))))
