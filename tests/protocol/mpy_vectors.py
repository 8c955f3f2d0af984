"""Run the codec layer (cbor, cobs, crc, framing) on vectors: one JSON request per line in, one
JSON answer per line out.

Runs unchanged on MicroPython (the node's interpreter) and CPython. The tests call ``handle``
in-process on CPython and feed the same requests to ``micropython`` running this file, then
compare the answers, which hold only ints, text, hex and tagged values so they compare
exactly. Usage: ``micropython tests/protocol/mpy_vectors.py < requests`` with MICROPYPATH
pointing at the repository root.

Values are tagged so JSON carries them exactly: a float is ``{"f": hex of its binary64}``, a
byte string ``{"b": hex}``, a map ``{"m": [[key, value], ...]}`` (pairs sorted by their JSON),
anything else is itself.

Requests (``op``) and answers:
- ``loads`` ``hex`` -> ``{"ok": value}``
- ``dumps`` ``value``, ``single`` -> ``{"ok": hex}``
- ``float32`` ``value`` -> ``{"ok": hex of Encoder.float32, "back": the value decoded}``
- ``cobs`` ``hex`` -> ``{"ok": encoded hex, "into": encode_into's hex, "back": decoded hex}``
- ``cobs_decode`` ``hex`` -> ``{"ok": hex}``
- ``crc`` ``hex`` -> ``{"ok": crc32, "check": crc32_check of hex || crc}``
- ``crc_check`` ``hex`` -> ``{"check": crc32_check of hex}`` (hex: a message and a trailer)
- ``crc_region`` ``size``, ``start``, ``end``, ``pre``, ``spare`` -> ``{"append": "ok" |
  "ValueError", "check": crc32_check}``: append on a buffer of ``size`` bytes; check on a view
  of ``size`` bytes over a buffer with ``pre`` bytes before it and ``spare`` after, which holds
  a message and its CRC in start..end wherever they fit in the buffer: only the region checks
  refuse a region outside the view
- ``crc_table`` -> ``{"ok": [word, ...]}``: the nibble table the viper CRC reads (the
  module's own on MicroPython, a fresh one from the same function on CPython)
- ``frame`` ``hex`` -> ``{"ok": encode_frame hex, "writer": FrameWriter's hex}``
- ``deframe`` ``hex``, ``chunk`` -> ``{"ok": [message hex, ...], "counters": [...]}``
- ``heap`` -> ``{"ok": {check name: "ok" | "alloc" | "error: ..."}}`` (heap_lock checks;
  CPython answers ``{"ok": null}``)
Errors are answered ``{"error": "<protocol error class>", "reason": args[0]}``; any other
exception ``{"crash": "<type>: <text>"}``.
"""

import json
import struct
import sys
from binascii import hexlify, unhexlify

from protocol import cbor, cobs, crc, frame_writer, framing
from protocol.errors import ProtocolError


def _hex(data) -> str:
    return hexlify(bytes(data)).decode()


def tag(v):
    """A decoded value as exact JSON."""
    t = type(v)
    if t is float:
        return {"f": _hex(struct.pack(">d", v))}
    if t is bytes:
        return {"b": _hex(v)}
    if t is list:
        return [tag(x) for x in v]
    if t is dict:
        pairs = [[tag(k), tag(x)] for k, x in v.items()]
        pairs.sort(key=lambda p: json.dumps(p[0]))
        return {"m": pairs}
    return v


def untag(v):
    """The value a tagged JSON value stands for."""
    if type(v) is list:
        return [untag(x) for x in v]
    if type(v) is dict:
        if "f" in v:
            return struct.unpack(">d", unhexlify(v["f"]))[0]
        if "b" in v:
            return unhexlify(v["b"])
        return {untag(k): untag(x) for k, x in v["m"]}
    return v


def _crc_region(size, start, end, pre, spare):
    buf = bytearray(size)
    try:
        crc.crc32_append(buf, start, end)
        appended = "ok"
    except ValueError:
        appended = "ValueError"
    # the view checked is framed[pre:pre + size]; a message and its CRC lie in start..end (view
    # coordinates) as far as framed reaches
    framed = bytearray(pre + size + spare)
    lo, hi = max(pre + start, 0), min(pre + end, len(framed)) - 4
    if lo <= hi:
        framed[lo:hi] = bytes(range(1, hi - lo + 1))
        crc.crc32_append(framed, lo, hi)
    view = memoryview(framed)[pre : pre + size]
    return {"append": appended, "check": crc.crc32_check(view, start, end)}


def _deframe(data, chunk):
    d = framing.Deframer()
    out = []
    for i in range(0, len(data), chunk):
        out += [_hex(m) for m in d.feed(data[i : i + chunk])]
    counters = [d.frames, d.crc_errors, d.oversize, d.truncated, d.discarded_bytes]
    return {"ok": out, "counters": counters}


def _heap_checks():
    # Each check runs its operation once to warm up, then again with the heap locked.
    import micropython

    enc = cbor.Encoder()
    body = [2, 7, 0x1A3F12C4, 87.25, 3.712, -12.5, 0.245, True, False, None, 1024, -3]
    packet = [1, 2, 4711, 123456789, 1, body]
    writer = frame_writer.FrameWriter()
    deframer = framing.Deframer()
    wire = bytearray(frame_writer.encode_frame(cbor.dumps(packet, True)))
    dec = cbor.Decoder()
    command = bytearray(cbor.dumps([1, 0, 42, 0, 2, [2, 300]]))
    cobs_out = bytearray(64)
    head = [0, 0, 0, 0, 0]

    def encode():
        enc.reset()
        enc.item(packet)
        enc.array(3)
        enc.uint(70000)
        enc.int(-5)
        enc.float32(3.3)
        enc.bool(True)
        enc.null()
        enc.extend(body)

    def frame():
        writer.frame(enc.buf, enc.pos)

    def deframe():
        n = deframer.push(wire, 0, len(wire))
        if n == 0:
            raise ValueError("no frame")

    def decode():
        dec.reset(command, 0, len(command))
        dec.array()
        for i in range(5):
            head[i] = dec.uint()
        dec.array()
        dec.uint()
        dec.int()
        dec.done()

    def crc_cobs():
        crc.crc32_append(cobs_out, 0, 8)
        crc.crc32_check(cobs_out, 0, 12)
        cobs.encode_into(command, cobs_out, 1)

    checks = (("encoder", encode), ("frame_writer", frame), ("deframer", deframe),
              ("decoder", decode), ("crc_cobs", crc_cobs))
    result = {}
    for name, fn in checks:
        fn()
        micropython.heap_lock()
        try:
            fn()
            outcome = "ok"
        except MemoryError:
            outcome = "alloc"
        except Exception as e:  # reported to the test
            outcome = "error: " + repr(e)
        micropython.heap_unlock()
        result[name] = outcome
    return {"ok": result}


def _answer(req):
    op = req["op"]
    if op == "loads":
        return {"ok": tag(cbor.loads(unhexlify(req["hex"])))}
    if op == "dumps":
        return {"ok": _hex(cbor.dumps(untag(req["value"]), req.get("single", False)))}
    if op == "float32":
        enc = cbor.Encoder(16)
        enc.float32(untag(req["value"]))
        data = enc.getvalue()
        return {"ok": _hex(data), "back": tag(cbor.loads(data))}
    if op == "fit":  # an Encoder of exactly `size` bytes: req["call"](value)
        enc = cbor.Encoder(req["size"], req.get("single", True))
        getattr(enc, req["call"])(untag(req["value"]))
        return {"ok": _hex(enc.getvalue())}
    if op == "cobs":
        data = unhexlify(req["hex"])
        enc = cobs.encode(data)
        into = bytearray(cobs.max_encoded_size(len(data)) + 3)
        end = cobs.encode_into(bytearray(b"xy" + data), into, 2, 2)
        return {"ok": _hex(enc), "into": _hex(into[2:end]), "back": _hex(cobs.decode(enc))}
    if op == "cobs_decode":
        return {"ok": _hex(cobs.decode(unhexlify(req["hex"])))}
    if op == "crc":
        data = unhexlify(req["hex"])
        value = crc.crc32(data)
        buf = bytearray(data + bytes(4))
        crc.crc32_append(buf, 0, len(data))
        return {"ok": value, "check": crc.crc32_check(buf, 0, len(buf)),
                "le": _hex(buf[len(data):])}
    if op == "crc_check":
        data = bytearray(unhexlify(req["hex"]))
        return {"check": crc.crc32_check(data, 0, len(data))}
    if op == "crc_region":
        return _crc_region(req["size"], req["start"], req["end"], req.get("pre", 0),
                           req.get("spare", 0))
    if op == "crc_table":
        table = getattr(crc, "_TABLE", None)
        return {"ok": list(table if table is not None else crc._make_table())}
    if op == "frame":
        data = unhexlify(req["hex"])
        writer = frame_writer.FrameWriter()
        n = writer.frame(bytearray(data + b"pad"), len(data))
        return {"ok": _hex(frame_writer.encode_frame(data)), "writer": _hex(writer.buf[:n])}
    if op == "deframe":
        return _deframe(unhexlify(req["hex"]), req["chunk"])
    if op == "heap":
        if sys.implementation.name != "micropython":
            return {"ok": None}
        return _heap_checks()
    raise ValueError("unknown op " + op)


def handle(req):
    """The answer to one request (a dict)."""
    try:
        return _answer(req)
    except ProtocolError as e:
        return {"error": type(e).__name__, "reason": e.args[0] if e.args else ""}
    except Exception as e:  # a crash is an answer the test reports
        return {"crash": type(e).__name__ + ": " + str(e)}


def main():
    for line in sys.stdin:
        line = line.strip()
        if line:
            print(json.dumps(handle(json.loads(line))))


if __name__ == "__main__":
    main()
