# MicroPython (Unix port): bytes the node's whole verify path allocates, node.auth.Auth.check
# (layout, key lookup, tag, replay window) on signed commands whose counters are inside the
# reservation (no flash write), against what hashlib alone allocates for the same hashing.
# stdin: one JSON line {"root": dir, "keys": hex of keys.bin, "frames": [hex, ...]} (the
# first frame takes the reservation write; the rest are measured). stdout: one JSON line
# {"check": bytes per call, "hashlib": bytes per call, "accepted": n}.
import gc
import json
import os
import sys
from binascii import unhexlify

from node.auth import ACCEPT, Auth


class _Events:
    def emit(self, *args):
        pass


def main():
    req = json.loads(sys.stdin.readline())
    root = req["root"]
    try:
        os.mkdir(root)
    except OSError:
        pass
    with open(root + "/keys.bin", "wb") as f:
        f.write(unhexlify(req["keys"]))
    auth = Auth(root, [0] * 64, _Events(), lambda: 0)
    frames = [unhexlify(h) for h in req["frames"]]
    # one receive buffer, as the node's link has (a new buffer would cost the reader a new
    # memoryview); copying each frame into it is measured alone and taken off
    buf = bytearray(1024)
    m = len(frames) - 1
    buf[0:len(frames[0])] = frames[0]
    accepted = 1 if auth.check(buf, len(frames[0])) == ACCEPT else 0
    results = [0] * len(frames)
    gc.collect()
    a = gc.mem_alloc()
    for i in range(1, len(frames)):
        f = frames[i]
        buf[0:len(f)] = f
        results[i] = auth.check(buf, len(f))
    total = gc.mem_alloc() - a
    gc.collect()
    a = gc.mem_alloc()
    for i in range(1, len(frames)):
        f = frames[i]
        buf[0:len(f)] = f
    check = (total - (gc.mem_alloc() - a)) // m
    for i in range(1, len(frames)):
        if results[i] == ACCEPT:
            accepted += 1
    import hashlib

    pad = bytes(64)
    data = frames[1]
    gc.collect()
    a = gc.mem_alloc()
    for _ in range(1, len(frames)):  # the same hashing, hashlib alone
        h = hashlib.sha256(pad)
        h.update(data)
        o = hashlib.sha256(pad)
        o.update(h.digest())
        o.digest()
    base = (gc.mem_alloc() - a) // (len(frames) - 1)
    print(json.dumps({"check": check, "hashlib": base, "accepted": accepted}))


main()
