# MicroPython: bytes the node's whole verify path, node.auth.Auth.check (layout, key lookup,
# tag, replay window, a refusal's counters), allocates per command, and what hashlib alone
# allocates for the same hashing. Used by bench/verify_bench.py and
# tests/firmware/test_auth_alloc.py.
#
# run(request), request {"root": dir, "keys": hex of keys.bin, "frames": [hex, ...]}: the
# frames are checked in that order, each copied first into one receive buffer as the node's
# deframer holds it (the first normally takes the counter reservation's flash write).
# Returns {"alloc": [bytes per frame], "verdict": [check's result per frame], "hashlib":
# bytes one verification's hashing allocates in hashlib (two sha256 objects, two digests),
# "exact": that figure divided evenly over its runs, and the signing path: "wrap_alloc", bytes
# node.auth.Auth.wrap allocates signing each of the request's "answers" (payload sizes) under
# the key of the last accepted frame, and "wrapped", the hex of each object it made}. No
# collection while measuring.
# As a script (the Unix port): ``micropython bench/mpy_auth_check.py REQUEST.json`` prints the
# result as one JSON line; in the 32-bit VM it is imported (bench/heap32_vm/script.mjs).
import gc
import json
import os
import sys
from binascii import hexlify, unhexlify

from node.auth import Auth


class _Enc:  # what Auth.wrap uses of the node's protocol.cbor_encoder.Encoder
    def __init__(self):
        self.buf = bytearray(1024)
        self.pos = 0


class _Events:
    def emit(self, a, b=0, c=0):
        pass


def _hashlib(runs):
    import hashlib

    pad = bytes(64)
    data = bytes(100)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(runs):  # the same hashing, hashlib alone
        h = hashlib.sha256(pad)
        h.update(data)
        o = hashlib.sha256(pad)
        o.update(h.digest())
        o.digest()
    total = gc.mem_alloc() - a
    gc.enable()
    return total // runs, total % runs == 0


def run(req):
    root = req["root"]
    try:
        os.mkdir(root)
    except OSError:
        pass
    with open(root + "/keys.bin", "wb") as f:
        f.write(unhexlify(req["keys"]))
    auth = Auth(root, [0] * 64, _Events(), lambda: 0)
    frames = [unhexlify(h) for h in req["frames"]]
    buf = bytearray(1024)  # one receive buffer, as the node's deframer has
    n = len(frames)
    alloc = [0] * n
    verdict = [0] * n
    gc.collect()
    gc.disable()
    for i in range(n):
        f = frames[i]
        buf[0:len(f)] = f
        a = gc.mem_alloc()
        v = auth.check(buf, len(f))
        alloc[i] = gc.mem_alloc() - a
        verdict[i] = v
    gc.enable()
    enc = _Enc()
    sizes = req.get("answers", [])
    wrap_alloc = [0] * len(sizes)
    wrapped = []
    for i in range(len(sizes)):
        size = sizes[i]
        for j in range(size):
            enc.buf[j] = (j * 5 + size) & 0xFF
        enc.pos = size
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        ok = auth.wrap(enc, auth.slot, auth.reader.generation, auth.counter)
        wrap_alloc[i] = gc.mem_alloc() - a
        gc.enable()
        wrapped.append(hexlify(enc.buf[0:enc.pos]).decode() if ok else "")
    base, exact = _hashlib(50)
    return {"alloc": alloc, "verdict": verdict, "hashlib": base, "exact": exact,
            "wrap_alloc": wrap_alloc, "wrapped": wrapped}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(run(json.load(f))))
