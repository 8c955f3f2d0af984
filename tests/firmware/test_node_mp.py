"""Node behaviour inside one MicroPython process (in-memory board): error paths that the
link cannot trigger. A handler that raises fails the command with EXECUTION_ERROR and an
event; a task that raises becomes a task_crashed event, SAFE, and a restart."""

import pytest

from protocol import ids

pytestmark = pytest.mark.micropython

PRELUDE = """
import os, asyncio
from hotpath import build, frame, decode_all
app, board = build({root!r})
def show():
    for m in decode_all(board):
        if m.kind in (1, 3):
            print(m.kind, m.id, m.body)
"""


def run(run_mp, tmp_path, body, heap="512K"):
    out = run_mp(PRELUDE.format(root=str(tmp_path / "state")) + body, heap=heap)
    return [line for line in out.splitlines() if line]


def test_handler_exception_becomes_execution_error(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
def boom(d):
    raise ValueError("handler bug")
app.dispatcher.register(1, boom)
f = frame(0, 9, 1, [])
app.link.receive(f, len(f))
show()
print(len(board.errors), type(board.errors[0]).__name__)
""")
    assert lines == [
        "1 1 [9, 0, 0, None]",
        "1 1 [9, 3, 16, None]",
        "3 23 [3, 2, [1, 9, 16]]",  # cmd_failed(command, seq, code)
        "1 ValueError",
    ]


def test_task_crash_is_evented_forces_safe_and_restarts(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
app.modes.enter(2)  # NOMINAL
board.take_tx()
calls = [0]
def flaky():
    calls[0] += 1
    if calls[0] == 1:
        raise KeyError(5)
app.fdir_task.step = flaky
async def main():
    asyncio.create_task(app._supervise(3, app.fdir_task))
    for _ in range(6):
        board.now += 100
        await asyncio.sleep_ms(120)
    board.now += 1200
    await asyncio.sleep_ms(1300)
asyncio.run(main())
show()
print('mode', app.modes.current, 'calls', calls[0] >= 2)
""")
    events = [line.split(" ", 2)[1] + " " + line.split(", ", 1)[1] for line in lines[:-1]]
    assert "13 4, [3, 3]]" in events  # task_crashed(task 3 = fdir, ERROR_LOOKUP), fatal
    assert f"9 3, [{ids.SAFE_TASK_CRASH}]]" in events  # safe_mode(TASK_CRASH)
    assert "2 1, [2, 1]]" in events  # mode_changed NOMINAL -> SAFE
    assert lines[-1] == "mode 1 calls True"


def test_fast_verification_bytes_equal_the_protocol_writer(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
from protocol.cbor import Encoder
from protocol import messages as M
d = app.dispatcher
link = app.link
ref = Encoder()
bad = 0
values = (0, 1, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFF)
for seq in values[:7]:
    for now in values:
        for cmd_id in (1, 21, 23, 24, 200):
            for stage, code in ((0, 0), (1, 4), (2, 0), (3, 20)):
                board.now = now  # node time = board ticks (the clock started at 0)
                app.clock._ms = 0
                app.clock._last = 0
                link.seq = seq
                link.enc.reset()
                link.end = lambda: None  # keep the message in the encoder
                d._verify(seq, cmd_id, stage, code, None)
                got = bytes(link.enc.buf[:link.enc.pos])
                M.write_verification(ref, seq, now, cmd_id, seq, stage, code, None)
                if got != bytes(ref.buf[:ref.pos]):
                    bad += 1
print('mismatches', bad)
""")
    assert lines == ["mismatches 0"]


def test_fast_head_agrees_with_the_protocol_reader(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
import random
from protocol.cbor import Decoder, dumps
from protocol import messages as M
d = app.dispatcher
dec = Decoder()
head = [0, 0]
random.seed(3)
msgs = []
for seq in (0, 5, 23, 24, 255, 256, 65535):
    for cmd_id in (0, 1, 23, 24, 255, 256):
        for body in ([], [1], [True, 2.5], [1, 2, 3]):
            msgs.append(dumps([1, 0, seq, 0, cmd_id, body]))
msgs += [dumps(m) for m in ([2, 0, 1, 0, 1, []], [1, 1, 1, 0, 1, []], [1, 0, 1, 5, 1, []],
                            [1, 0, 70000, 0, 1, []], [1, 0, 1, 0, 1, 7], [1, 0, 1, 0],
                            [1, 0, -1, 0, 1, []])]
# non-shortest forms and random corruption
msgs += [bytes([0x86, 1, 0, 0x18, 5, 0, 1, 0x80]), bytes([0x86, 1, 0, 0x19, 0, 9, 0, 1, 0x80])]
for m in list(msgs):
    for _ in range(20):
        b = bytearray(m)
        b[random.randrange(len(b))] = random.randrange(256)
        msgs.append(bytes(b[:random.randrange(1, len(b) + 1)]))
disagree = 0
fast_used = 0
for m in msgs:
    buf = bytearray(m)
    n = d._fast_head(buf, len(buf))
    if n < 0:
        continue
    fast_used += 1
    fast = (d._head[0], d._head[1], n, d._dec.pos)
    dec.reset(buf, 0, len(buf))
    try:
        slow_n = M.read_command_head(dec, head)
        slow = (head[0], head[1], slow_n, dec.pos)
    except Exception as e:
        slow = repr(e)
    if fast != slow:
        disagree += 1
        print(buf, fast, slow)
print('fast', fast_used > 100, 'disagree', disagree)
""", heap="4M")
    assert lines[-1] == "fast True disagree 0"
