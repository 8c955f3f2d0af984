"""MicroPython side of tests/firmware/test_sequencer.py: a node on a MemBoard, commands in,
messages out, the sequencer ticked by hand with the board's clock.

cmd(seq, id, args) sends one command and returns the messages it produced, each printed by
show(); tick(ms) advances the clock by ms in sequencer ticks and returns what came out.
"""

import hashlib

from hotpath import build, decode_all, frame

from protocol.cbor_encoder import Encoder

_APP = [None, None]
_SEQ = [100]


def start(root):
    app, board = build(root)
    _APP[0] = app
    _APP[1] = board
    app.params.set(10, 100)  # event_rate_limit: tests count every event
    return app, board


def cmd(cmd_id, args):
    """Send a command (next seq); return the messages it produced."""
    app, board = _APP
    _SEQ[0] += 1
    f = frame(0, _SEQ[0], cmd_id, args)
    app.link.receive(f, len(f))
    app.events.pump()
    return decode_all(board)


def tick(ms=100):
    """Advance node time by ms, one sequencer tick per 100 ms; return the messages."""
    app, board = _APP
    out = []
    for _ in range(max(1, ms // 100)):
        board.now += 100
        app.sequencer.tick()
        app.events.pump()
        out += decode_all(board)
    return out


def image(dict_hash, name, steps):
    enc = Encoder(4096)
    enc.item([1, dict_hash, name, steps])
    return bytes(enc.buf[0:enc.pos])


def upload(slot, img, part=128):
    """begin, parts, commit; return the commit's messages."""
    digest = hashlib.sha256(img).digest()
    cmd(32, [slot, len(img), digest])
    for off in range(0, len(img), part):
        cmd(33, [slot, off, img[off:off + part]])
    return cmd(34, [slot])


def show(msgs, kinds=(1, 3)):
    """Verifications as 'V id stage code result', events as 'E id args' (not cmd_rejected:
    its code is in the verification)."""
    for m in msgs:
        if m.kind == 1 and 1 in kinds:
            print("V", m.id, m.body[1], m.body[2], m.body[3])
        elif m.kind == 3 and 3 in kinds and m.id != 22:
            print("E", m.id, m.body[2])
