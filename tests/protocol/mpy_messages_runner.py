"""Run protocol.messages on vectors: one JSON request per line in, one JSON answer per line out.

Runs unchanged on MicroPython (the node's interpreter) and CPython; test_messages.py feeds the
same requests to both and compares the answers, which hold only ints and hex so that they
compare exactly. Usage: ``micropython tests/protocol/mpy_messages_runner.py < requests``
with MICROPYPATH pointing at the repository root.

Requests and answers:
- ``{"op": "decode", "hex": h}``: decode_message(h) -> ``{"code": 0, "kind": k, "hex": e}``
  (e: the message re-encoded) or ``{"code": c}`` (the MessageError's code).
- ``{"op": "encode", "hex": h}``: h is the CBOR of ``[kind, seq, time, id, body(, boot)]``;
  encode_message -> ``{"code": 0, "hex": e}`` or ``{"code": c}``.
- ``{"op": "command", "hex": h}``: the node's path (Decoder, read_command_head, read_args
  against node_dictionary) -> ``{"head": [seq, id, boot], "code": c, "args": hex}``.
- ``{"op": "describe"}``: ``{"hex": d, "tables": t}``: d is node_description.DESCRIPTION, t the
  compact form rebuilt from the byte tables through the accessors (``compact()``), encoded.
- ``{"op": "heap"}``: ``{"alloc": [names of node helpers that allocated under heap_lock]}``
  (MicroPython only; CPython answers ``{"alloc": null}``).
Any other exception is answered ``{"crash": "<type>: <text>"}``.
"""

import json
import sys
from binascii import hexlify, unhexlify

from protocol import cbor, ids, messages, node_description, node_dictionary
from protocol.errors import DecodeError, EncodeError, MessageError


def _hex(data):
    return hexlify(data).decode()


def _decode(data):
    try:
        msg = messages.decode_message(data)
    except MessageError as e:
        return {"code": e.code}
    return {"code": 0, "kind": msg.kind, "hex": _hex(msg.encode())}


def _encode(data):
    try:
        fields = cbor.loads(data)
    except DecodeError:
        return {"code": -1}
    try:
        return {"code": 0, "hex": _hex(messages.encode_message(*fields))}
    except MessageError as e:
        return {"code": e.code}
    except EncodeError:
        return {"code": -2}


_DEC = cbor.Decoder()
_HEAD = [-1, -1, -1]
_ARGS = [None] * 8


def _command(data):
    _DEC.reset(data)
    try:
        nargs = messages.read_command_head(_DEC, _HEAD)
    except MessageError as e:
        return {"head": list(_HEAD), "code": e.code, "args": ""}
    modes = node_dictionary.COMMAND_MODES
    cmd_id = _HEAD[1]
    if cmd_id >= len(modes) or not modes[cmd_id]:
        return {"head": list(_HEAD), "code": messages.UNKNOWN_COMMAND, "args": ""}
    code = messages.read_args(_DEC, nargs, node_dictionary.command_args(cmd_id), _ARGS)
    args = _hex(cbor.dumps(_ARGS[:nargs], True)) if code == 0 else ""
    return {"head": list(_HEAD), "code": code, "args": args}


def compact():
    """The compact form (SPEC §7.1) rebuilt from node_dictionary's byte tables, through its
    accessors: encoded canonically, it must be DESCRIPTION byte for byte."""
    nd = node_dictionary

    def by_id(n, record):
        return [None] + [record(i) for i in range(1, n)]

    def command(c):
        if not nd.COMMAND_MODES[c]:
            return None
        return [nd.COMMAND_MODES[c], nd.COMMAND_FLAGS[c], [list(a) for a in nd.command_args(c)]]

    def packet(p):
        rec = nd.packet(p)
        return None if rec is None else [rec[0], list(rec[1])]

    def event(e):
        sev = nd.EVENT_SEVERITY[e]
        return None if sev == nd.NO_RECORD else [sev, nd.EVENT_NARGS[e]]

    def param(p):
        rec = nd.param(p)
        return None if rec is None else list(rec)

    essential = ids.LOADS_ESSENTIAL_MASK
    return [
        nd.FORMAT,
        by_id(len(nd.COMMAND_MODES), command),
        nd.CHANNEL_TYPES,
        [list(nd.limit(i)) for i in range(len(nd.LIMIT_CHANNELS))],
        by_id(len(nd.PACKET_PERIODS) // 2, packet),
        by_id(len(nd.EVENT_SEVERITY), event),
        by_id(len(nd.PARAM_TYPES), param),
        [list(nd.load(ch)) + [bool(essential >> ch & 1)] for ch in range(ids.LOAD_COUNT)],
    ]


def _heap():
    try:
        import micropython
    except ImportError:
        return {"alloc": None}
    enc = cbor.Encoder()
    dec = cbor.Decoder()
    head = [-1, -1, -1]
    out = [None] * 4
    command = unhexlify("87010019010000038209f503")  # load_switch seq 256: [9, true], boot 3
    specs = node_dictionary.command_args(3)
    steps = ("begin", "write_verification", "write_event_head", "read_command_head",
             "read_args")
    allocated = []
    for i, step in enumerate(steps):
        micropython.heap_lock()
        try:
            if i == 0:
                messages.begin(enc, messages.KIND_HOUSEKEEPING, 65535, 123456789, 4)
                enc.array(2)
                enc.uint(1)
                enc.bool(True)
            elif i == 1:
                messages.write_verification(enc, 1, 2, 3, 9, messages.STAGE_REJECTED,
                                            messages.OUT_OF_RANGE)
            elif i == 2:
                messages.write_event_head(enc, 1, 2, 7, 100000, messages.SEV_ERROR, 2)
                enc.uint(3)
                enc.int(-7)
            elif i == 3:
                dec.reset(command)
                messages.read_command_head(dec, head)
            else:
                dec.reset(command)
                n = messages.read_command_head(dec, head)
                messages.read_args(dec, n, specs, out)
        except MemoryError:
            allocated.append(step)
        finally:
            micropython.heap_unlock()
    return {"alloc": allocated, "head": head, "args": [out[0], out[1]]}


def answer(request):
    """The answer to one request (a dict), as a dict of ints, text and lists."""
    op = request["op"]
    try:
        if op == "decode":
            return _decode(unhexlify(request["hex"]))
        if op == "encode":
            return _encode(unhexlify(request["hex"]))
        if op == "command":
            return _command(unhexlify(request["hex"]))
        if op == "describe":
            return {"hex": _hex(node_description.DESCRIPTION),
                    "tables": _hex(cbor.dumps(compact(), True))}
        if op == "heap":
            return _heap()
        return {"crash": "unknown op " + op}
    except Exception as e:  # the test reports it: nothing but MessageError may escape
        return {"crash": type(e).__name__ + ": " + str(e)}


def main():
    for line in sys.stdin:
        line = line.strip()
        if line:
            sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
