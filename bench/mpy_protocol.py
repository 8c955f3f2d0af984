"""The protocol section's measurements, run on MicroPython (``micropython -X heapsize=192K``
with MICROPYPATH = firmware:repo). Prints one JSON object; bench/protocol_bench.py turns it
into rows. ``--quick`` runs fewer iterations.

Times are the best of many loops, the loops of the things compared interleaved, minus the
empty loop, in microseconds per operation, with the garbage collector enabled (as on the
node). Allocations are
``gc.mem_alloc()`` before and after a loop with the collector disabled, per operation.
MicroPython's own ``json`` (C) is measured on the same content, side by side.
"""

import gc
import json
import sys
import time

from protocol import cbor, frame_writer, framing

QUICK = "--quick" in sys.argv
N = 500 if QUICK else 1000
N_ALLOC = 50
ROUNDS = 5 if QUICK else 25

# A housekeeping packet as the node sends it: [version, kind, seq, time, id, body] with 17
# channels (mode, boot count, the dictionary hash, then telemetry: floats and small ints).
BODY = [2, 7, 0x9A3F12C4, 87.25, 3.712, -12.5, 0.245, 28.125, 1, 0, 1, 1, 0, 13.875, -171.0,
        0.0312, 1024]
HK = [1, 2, 4711, 123456789, 1, BODY]
CMD = [1, 0, 42, 0, 2, [2], 3]  # a command: set_mode(2), bound to boot 3
SEP = (",", ":")

ENC = cbor.Encoder()
DEC = cbor.Decoder()
WRITER = frame_writer.FrameWriter()
HK_CBOR = cbor.dumps(HK, True)
CMD_CBOR = cbor.dumps(CMD)
HK_JSON = json.dumps(HK, separators=SEP)
CMD_JSON = json.dumps(CMD, separators=SEP)
HEAD = [0, 0, 0, 0, 0, 0]


def empty(n):
    for _ in range(n):
        pass


def hk_encode(n):
    enc = ENC
    pkt = HK
    for _ in range(n):
        enc.reset()
        enc.item(pkt)


def hk_dumps(n):
    dumps = cbor.dumps
    pkt = HK
    for _ in range(n):
        dumps(pkt, True)


def hk_json_dumps(n):
    dumps = json.dumps
    pkt = HK
    for _ in range(n):
        dumps(pkt, separators=SEP)


def hk_decode(n):
    loads = cbor.loads
    data = HK_CBOR
    for _ in range(n):
        loads(data)


def hk_json_loads(n):
    loads = json.loads
    data = HK_JSON
    for _ in range(n):
        loads(data)


def cmd_encode(n):
    enc = ENC
    msg = CMD
    for _ in range(n):
        enc.reset()
        enc.item(msg)


def cmd_json_dumps(n):
    dumps = json.dumps
    msg = CMD
    for _ in range(n):
        dumps(msg, separators=SEP)


def cmd_decode(n):
    loads = cbor.loads
    data = CMD_CBOR
    for _ in range(n):
        loads(data)


def cmd_pull(n):
    # The node's way: the pull decoder into a preallocated list.
    dec = DEC
    data = CMD_CBOR
    end = len(data)
    head = HEAD
    for _ in range(n):
        dec.reset(data, 0, end)
        dec.array()
        for i in range(5):
            head[i] = dec.uint()
        dec.array()
        head[5] = dec.uint()
        dec.uint()  # the boot
        dec.done()


def cmd_json_loads(n):
    loads = json.loads
    data = CMD_JSON
    for _ in range(n):
        loads(data)


def frame_hk(n):
    enc = ENC
    writer = WRITER
    enc.reset()
    enc.item(HK)
    for _ in range(n):
        writer.frame(enc.buf, enc.pos)


def _loop_us(fn, n):
    t0 = time.ticks_us()
    fn(n)
    return time.ticks_diff(time.ticks_us(), t0)


def timed(*fns, n=N):
    # Microseconds per call of each fn: the best of ROUNDS loops, the loops of the functions
    # interleaved round by round (so a busy machine slows both sides of a ratio alike),
    # minus the best empty loop.
    best = [None] * (len(fns) + 1)
    for _ in range(ROUNDS):
        for i, fn in enumerate((empty,) + fns):
            t = _loop_us(fn, n)
            if best[i] is None or t < best[i]:
                best[i] = t
    base = best[0]
    return [(t - base) / n for t in best[1:]]


def allocated(fn, n=N_ALLOC):
    fn(1)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    fn(n)
    after = gc.mem_alloc()
    gc.enable()
    return (after - before) / n


def stream(message, frames):
    wire = frame_writer.encode_frame(message)
    n = len(wire)
    data = bytearray(n * frames)
    for i in range(frames):
        data[i * n : (i + 1) * n] = wire
    return data, frames


def deframe_rate(data, frames, chunk=256):
    # Bytes per second through Deframer.push, fed chunk by chunk as a UART read delivers.
    passes = 2 if QUICK else 10
    d = framing.Deframer()
    size = len(data)
    best = None
    for _ in range(3):
        got = 0
        t0 = time.ticks_us()
        for _ in range(passes):
            start = 0
            while start < size:
                end = start + chunk if start + chunk < size else size
                n = d.push(data, start, end)
                while n:
                    got += 1
                    n = d.push(data, d.pos, end)
                start = end
        dt = time.ticks_diff(time.ticks_us(), t0)
        if got != frames * passes:
            raise RuntimeError("deframer lost frames")
        best = dt if best is None or dt < best else best
    return size * passes * 1e6 / best


def main():
    gc.collect()
    hk_enc, hk_json, hk_dump = timed(hk_encode, hk_json_dumps, hk_dumps)
    hk_dec, hk_jload = timed(hk_decode, hk_json_loads)
    cmd_enc, cmd_jdump = timed(cmd_encode, cmd_json_dumps)
    cmd_dec, cmd_jload, cmd_pl = timed(cmd_decode, cmd_json_loads, cmd_pull)
    out = {
        "version": sys.version,
        "hk_cbor_bytes": len(HK_CBOR),
        "hk_json_bytes": len(HK_JSON),
        "hk_channels": len(BODY),
        "cmd_cbor_bytes": len(CMD_CBOR),
        "cmd_json_bytes": len(CMD_JSON),
        "hk_encode_us": hk_enc,
        "hk_dumps_us": hk_dump,
        "hk_json_dumps_us": hk_json,
        "hk_decode_us": hk_dec,
        "hk_json_loads_us": hk_jload,
        "cmd_encode_us": cmd_enc,
        "cmd_json_dumps_us": cmd_jdump,
        "cmd_decode_us": cmd_dec,
        "cmd_pull_us": cmd_pl,
        "cmd_json_loads_us": cmd_jload,
        "hk_frame_us": timed(frame_hk)[0],
        "hk_encode_alloc": allocated(hk_encode),
        "hk_json_dumps_alloc": allocated(hk_json_dumps),
        "hk_decode_alloc": allocated(hk_decode),
        "cmd_decode_alloc": allocated(cmd_decode),
        "cmd_pull_alloc": allocated(cmd_pull),
        "cmd_json_loads_alloc": allocated(cmd_json_loads),
        "hk_frame_alloc": allocated(frame_hk),
    }
    gc.collect()
    out["deframe_hk_bps"] = deframe_rate(*stream(HK_CBOR, 300))
    gc.collect()
    big = bytes(range(256)) * 3 + bytes(range(252))  # a message of MAX_MESSAGE bytes
    out["deframe_max_bps"] = deframe_rate(*stream(big, 16))
    gc.collect()
    out["mem_free"] = gc.mem_free()
    print(json.dumps(out))


main()
