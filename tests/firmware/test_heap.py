"""Hot paths allocate nothing: run on the real MicroPython with micropython.heap_lock().

The node is built in-process on an in-memory board (tests/firmware/mp/memboard.py); any
allocation inside heap_lock raises MemoryError, which the script reports.
"""

import pytest

from protocol import ids
from protocol.dictionary import PACKETS

pytestmark = pytest.mark.micropython

PRELUDE = """
import os, gc
from hotpath import build, frame, locked, decode_all
app, board = build({root!r})
link = app.link
"""


def run_checks(run_mp, tmp_path, body):
    out = run_mp(PRELUDE.format(root=str(tmp_path / "state")) + body
                 + "\nprint('errors', board.errors)\n")
    lines = [line for line in out.splitlines() if line]
    assert lines[-1] == "errors []"  # nothing swallowed by the node's own error handling
    return lines[:-1]


def test_ping_receive_decode_dispatch_allocates_nothing(run_mp, tmp_path):
    lines = run_checks(run_mp, tmp_path, """
ping = frame(0, 1234, 1, [])
print(locked(link.receive, ping, len(ping)))
for m in decode_all(board):
    print(m.kind, m.id, m.body)
# a repeat is answered again from the history, also without allocating
print(locked(link.receive, ping, len(ping)))
for m in decode_all(board):
    print(m.kind, m.id, m.body)
# many pings in one chunk
many = bytearray()
for s in range(20):
    many += frame(0, 2000 + s, 1, [])
print(locked(link.receive, many, len(many)))
print(len(decode_all(board)))
""")
    assert lines == [
        "None",
        "1 1 [1234, 0, 0, None]",
        "1 1 [1234, 2, 0, None]",
        "None",
        "1 1 [1234, 0, 0, None]",
        "1 1 [1234, 2, 0, None]",
        "None",
        "40",
    ]


def test_housekeeping_encode_allocates_nothing(run_mp, tmp_path):
    pids = [p.id for p in PACKETS]
    lines = run_checks(run_mp, tmp_path, f"""
app.step_plant()
board.now += 1000
app.step_plant()
for pid in {pids!r}:
    print(pid, locked(app.hk.send, pid))
msgs = decode_all(board)
print([m.id for m in msgs], [len(m.body) for m in msgs])
# One tick with every packet due (all are enabled at boot): sent together, in one write.
board.now += 20
writes = board.writes
print(locked(app.hk.tick))
print(board.writes - writes, [m.id for m in decode_all(board)])
""")
    assert lines[:len(pids)] == [f"{pid} None" for pid in pids]
    assert lines[len(pids)] == f"{pids} {[len(p.channels) for p in PACKETS]}"
    # the link packet first (its counters are read at the start of the tick, SPEC §5.8)
    tick_order = [ids.PKT_LINK] + [pid for pid in pids if pid != ids.PKT_LINK]
    assert lines[len(pids) + 1:] == ["None", f"1 {tick_order}"]


def test_rejection_and_event_allocate_nothing(run_mp, tmp_path):
    # An unknown command: rejected verification plus a cmd_rejected event (queued, sent,
    # added to the event log queue).
    lines = run_checks(run_mp, tmp_path, """
bad = frame(0, 77, 99, [])
print(locked(link.receive, bad, len(bad)))
print([(m.kind, m.id) for m in decode_all(board)])
junk = bytearray(b'\\x00\\x05garbage\\x00\\x00noise')
print(locked(link.receive, junk, len(junk)))
""")
    assert lines == ["None", "[(1, 99), (3, 22)]", "None"]
