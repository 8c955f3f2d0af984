"""Node behaviour inside one MicroPython process (in-memory board): error paths that the
link cannot trigger. A handler that raises fails the command with EXECUTION_ERROR and an
event; a task that raises becomes a task_crashed event, SAFE, and a restart."""

import pytest

pytestmark = pytest.mark.micropython

PRELUDE = """
import os, asyncio
from hotpath import build, frame, decode_all
root = {root!r}
try:
    os.mkdir(root)
except OSError:
    pass
app, board = build(root)
def show():
    for m in decode_all(board):
        if m.kind in (1, 3):
            print(m.kind, m.id, m.body)
"""


def run(run_mp, tmp_path, body):
    out = run_mp(PRELUDE.format(root=str(tmp_path / "state")) + body)
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
    assert "9 3, [100]]" in events  # safe_mode(REASON_TASK_CRASH)
    assert "2 1, [2, 1]]" in events  # mode_changed NOMINAL -> SAFE
    assert lines[-1] == "mode 1 calls True"
