"""node.ttqueue on MicroPython (SPEC §11): arrival checks with their exact codes, execution in
tag order at the node time the correlation gives, the drift formula, and a power cut at every
flash step of an entry's life (queueing and running): never half an entry, never run twice,
every accepted entry ends with exactly one tt_executed or tt_unknown record in the event log.

The node runs in-process on an in-memory board (tests/firmware/mp/memboard.py) whose clock the
script advances; the power cut is tests/firmware/mp/cutfs.py over node.storage and
node.ttqueue and the event log's open file (one flash for all: every byte written, every
rename and remove is a step)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import ids
from protocol import messages as M

pytestmark = pytest.mark.micropython

U0 = 1767225600000  # 2026-01-01T00:00:00Z

PRELUDE = """
import os, json, gc
import cutfs
from hotpath import build, decode_all
from memboard import MemBoard
from node.app import App
from node import storage, ttqueue
from protocol.frame_writer import encode_frame
from protocol.messages import encode_message

U0 = {u0}

def send(app, board, seq, cid, args, tag=0):
    data = encode_frame(encode_message(0, seq, tag, cid, args, app.boot_count))
    buf = bytearray(len(data))
    buf[:] = data
    app.link.receive(buf, len(buf))
    return msgs(board)

def msgs(board):
    return [[m.kind, m.id, m.time, m.body] for m in decode_all(board)]

def verifs(out):
    return [[m[3][0], m[3][1], m[3][2], m[2]] for m in out if m[0] == 1]

def drain(app):
    # every entry due now, as the queue's task runs them: one per pass
    while app.timetag.step() == 0:
        pass

def tt_records(app, seq):
    return [[r[2], r[4]] for r in app.log.records(0) if r[2] in (37, 38, 39) and r[4][0] == seq]
"""


def run(run_mp, tmp_path: Path, body: str) -> list:
    script = PRELUDE.format(u0=U0) + body
    out = run_mp(script, heap="2M", timeout=180.0)  # the cut test builds a node per step
    return [json.loads(line) for line in out.splitlines() if line.startswith(("[", "{"))]


def test_arrival_checks_give_the_spec_codes(run_mp, tmp_path: Path) -> None:
    lines = run(run_mp, tmp_path, f"""
app, board = build({str(tmp_path / "s")!r})
board.now = 5000
# not correlated yet
print(json.dumps(verifs(send(app, board, 1, 1, [], U0 + 10000))))
send(app, board, 2, 14, [U0])  # correlate: node 5000 = U0
print(json.dumps(verifs(send(app, board, 3, 1, [], U0 - 2001))))   # beyond tolerance 2000
print(json.dumps(verifs(send(app, board, 4, 1, [], U0 - 2000))))   # at the tolerance: runs now
print(json.dumps(verifs(send(app, board, 5, 20, [], U0 + 1000))))  # dict_downlink: immediate
print(json.dumps(verifs(send(app, board, 6, 3, [99, True], U0 + 1000))))  # argument range
print(json.dumps(verifs(send(app, board, 7, 250, [], U0 + 1000))))  # unknown command
print(json.dumps(verifs(send(app, board, 8, 8, [14, 5000], U0 + 1000))))  # param_set check
print(json.dumps(verifs(send(app, board, 9, 8, [14, 5000], U0 - 9000))))  # the time first
drain(app)
print(json.dumps(verifs(msgs(board))))
for s in range(100, 164):
    send(app, board, s, 1, [], U0 + 100000 + s)
print(json.dumps([app.timetag.count, app.tlm[{ids.CH_TT_QUEUED}]]))
print(json.dumps(verifs(send(app, board, 200, 1, [], U0 + 100000))))  # the 65th
# a repeat of a queued one (same seq and id, same bytes): accepted again, not queued twice
print(json.dumps(verifs(send(app, board, 100, 1, [], U0 + 100100))))
print(json.dumps([app.timetag.count]))
""")
    assert lines[0] == [[1, 1, M.CLOCK_UNCORRELATED, 5000]]
    assert lines[1] == [[3, 1, M.TIME_PAST, 5000]]
    assert lines[2] == [[4, 0, 0, 5000]]
    assert lines[3] == [[5, 1, M.BAD_ARGUMENTS, 5000]]
    assert lines[4] == [[6, 1, M.OUT_OF_RANGE, 5000]]
    assert lines[5] == [[7, 1, M.UNKNOWN_COMMAND, 5000]]
    assert lines[6] == [[8, 1, M.OUT_OF_RANGE, 5000]]  # test_value is -1000..1000
    assert lines[7] == [[9, 1, M.TIME_PAST, 5000]]  # SPEC §11.2: the time before the check
    assert lines[8] == [[4, 2, 0, 5000]]  # the one within the tolerance ran at once
    assert lines[9] == [64, 64]
    assert lines[10] == [[200, 1, M.QUEUE_FULL, 5000]]
    assert lines[11] == [[100, 0, 0, 5000]]
    assert lines[12] == [64]



def test_a_time_tagged_hazardous_command_is_armed_as_it_arrives(run_mp, tmp_path: Path) -> None:
    # SPEC §10.8, §11: a time-tagged hazardous command (param_reset, dictionary flag
    # hazardous, not immediate) is judged against the arming on arrival: NOT_ARMED without
    # one; right after an arm naming it, queued (accepted); run when due, not armed again.
    pr = ids.CMD_PARAM_RESET
    lines = run(run_mp, tmp_path, f"""
app, board = build({str(tmp_path / "s")!r})
board.now = 5000
send(app, board, 2, 14, [U0])
print(json.dumps(verifs(send(app, board, 3, {pr}, [], U0 + 10000))))
send(app, board, 4, {ids.CMD_ARM}, [{pr}, b"\\x80"])
print(json.dumps(verifs(send(app, board, 5, {pr}, [], U0 + 10000))))
print(json.dumps([app.timetag.count, app.dispatcher.cmds_accepted]))
board.now = 15000
drain(app)
print(json.dumps(verifs(msgs(board))))
""")
    assert lines == [
        [[3, 1, M.NOT_ARMED, 5000]],
        [[5, 0, 0, 5000]],
        [1, 3],  # queued; accepted: time_correlate, arm, the queued one
        [[5, 2, 0, 15000]],
    ]


def test_a_repeat_of_another_command_disarms_a_queued_arm(run_mp, tmp_path: Path) -> None:
    # SPEC §10.8: only a repeat of the arm itself keeps an arming. An arm the queue runs has
    # no arrival of its own: a repeat of the command handled last before it (time_correlate,
    # seq 2) disarms like any other command, and param_reset after it is NOT_ARMED; so does a
    # repeat of an earlier queued arm after a later one armed.
    pr = ids.CMD_PARAM_RESET
    lines = run(run_mp, tmp_path, f"""
app, board = build({str(tmp_path / "s")!r})
board.now = 5000
send(app, board, 2, 14, [U0])
print(json.dumps(verifs(send(app, board, 3, {ids.CMD_ARM}, [{pr}, b"\\x80"], U0 + 1000))))
board.now = 6000
drain(app)
print(json.dumps(verifs(msgs(board))))
print(json.dumps([app.tlm[{ids.CH_ARMED_COMMAND}]]))
print(json.dumps(verifs(send(app, board, 2, 14, [U0]))))
print(json.dumps(verifs(send(app, board, 6, {pr}, []))))
# again with another queued arm (seq 7, ring slot 2), and a repeat of the first (ring slot 1)
send(app, board, 7, {ids.CMD_ARM}, [{pr}, b"\\x80"], U0 + 2000)
board.now = 7000
drain(app)
print(json.dumps(verifs(msgs(board))))
print(json.dumps(verifs(send(app, board, 3, {ids.CMD_ARM}, [{pr}, b"\\x80"], U0 + 1000))))
print(json.dumps(verifs(send(app, board, 8, {pr}, []))))
""")
    assert lines == [
        [[3, 0, 0, 5000]],
        [[3, 2, 0, 6000]],
        [pr],  # armed by the queue
        [[2, 0, 0, 6000], [2, 2, 0, 6000]],  # answered from the ring
        [[6, 1, M.NOT_ARMED, 6000]],
        [[7, 2, 0, 7000]],
        [[3, 0, 0, 7000], [3, 2, 0, 7000]],  # the first arm's record, not the arming's
        [[8, 1, M.NOT_ARMED, 7000]],
    ]

def test_entries_run_in_tag_order_at_their_node_times(run_mp, tmp_path: Path) -> None:
    lines = run(run_mp, tmp_path, f"""
app, board = build({str(tmp_path / "s")!r})
board.now = 1000
send(app, board, 1, 14, [U0])
tags = [U0 + 5000 - 37 * k for k in range(64)]  # queued latest first
for k in range(64):
    send(app, board, 10 + k, 8, [14, k], tags[k])
print(json.dumps([app.timetag.count]))
ran = []
while board.now < 8000:
    board.now += 1
    app.timetag.step()
    ran += [v for v in verifs(msgs(board)) if v[1] != 0]
print(json.dumps(ran))
print(json.dumps([app.timetag.count, app.timetag.executed, app.params.get(14)]))
""")
    assert lines[0] == [64]
    ran = lines[1]
    expected = sorted(range(64), key=lambda k: 5000 - 37 * k)
    assert [seq - 10 for seq, *_ in ran] == expected
    for seq, stage, code, node_ms in ran:
        k = seq - 10
        assert (stage, code) == (M.STAGE_COMPLETED, 0)
        assert node_ms == 1000 + 5000 - 37 * k  # exactly its due time (drift 0)
    assert lines[2] == [0, 64, 0]  # the last to run set k = 0


def test_drift_measured_and_applied_exactly(run_mp, tmp_path: Path) -> None:
    # node 20000 ms for 19996 UTC ms: floor((20000 - 19996) * 1e9 / 19996) ppb
    lines = run(run_mp, tmp_path, f"""
app, board = build({str(tmp_path / "s")!r})
board.now = 1000
send(app, board, 1, 14, [U0])
board.now = 21000
send(app, board, 2, 14, [U0 + 19996])
c = app.clock
print(json.dumps([c.drift_ppb, c.node_of(U0 + 19996 + 100000), c.utc_of(21000 + 100000)]))
app.check_fdir()
print(json.dumps([app.tlm[{ids.CH_CLOCK_DRIFT_PPM}]]))
""")
    ppb = (20000 - 19996) * 10**9 // 19996
    assert lines[0][0] == ppb == 200040
    assert lines[0][1] == 21000 + 100000 + 100000 * ppb // 10**9
    assert lines[0][2] == U0 + 19996 + 100000 - 100000 * ppb // (10**9 + ppb)
    assert lines[1] == [pytest.approx(M.f32(ppb / 1000))]


CUT = """
root = {root!r}
# how many flash steps the whole life of one entry takes: queue it, run it
app, board = build(root + "/probe")
board.now = 1000
send(app, board, 1, 14, [U0])
flash = cutfs.install(storage, None)
ttqueue.os = storage.os
app.log._f = cutfs._File(flash, app.log._f)  # the event log's open file: the same flash
send(app, board, 77, 8, [14, 7], U0 + 500)
board.now = 1500
drain(app)
steps = flash.used
cutfs.uninstall(storage)
ttqueue.os = os
print(json.dumps([steps]))
for k in range(steps + 1):
    d = root + "/k%d" % k
    app = board = None
    gc.collect()
    app, board = build(d)
    board.now = 1000
    send(app, board, 1, 14, [U0])
    flash = cutfs.install(storage, k)
    ttqueue.os = storage.os
    app.log._f = cutfs._File(flash, app.log._f)
    out = []
    cut = False
    try:
        out += send(app, board, 77, 8, [14, 7], U0 + 500)
        board.now = 1500
        drain(app)
        out += msgs(board)
    except cutfs.PowerCut:
        cut = True
        out += msgs(board)  # what left before the power went
    cutfs.uninstall(storage)
    ttqueue.os = os
    accepted1 = [v for v in verifs(out) if v[0] == 77 and v[1] == 0]
    ran1 = [m for m in out if m[0] == 4 and m[1] == 14]  # param_set's parameter message
    # power back: a new boot on the same flash, correlated again, the clock past the tag
    app, board = build(d)
    board.now = 1000
    send(app, board, 1, 14, [U0 + 1000])
    drain(app)
    out2 = msgs(board)
    ran2 = [m for m in out2 if m[0] == 4 and m[1] == 14]
    recs = tt_records(app, 77)
    left = [n for n in os.listdir(d) if n.startswith("tt") and not n.endswith(".tmp")]
    print(json.dumps([k, cut, len(accepted1), len(ran1), len(ran2), recs, left]))
"""


def test_a_power_cut_at_every_flash_step_never_runs_twice(run_mp, tmp_path: Path) -> None:
    lines = run(run_mp, tmp_path, CUT.format(root=str(tmp_path)))
    steps = lines[0][0]
    rows = lines[1:]
    assert len(rows) == steps + 1
    assert steps > 20  # the entry blob, its rename, the EXECUTING rewrite, the removal
    seen_unknown = seen_cut_before_accept = 0
    for k, cut, accepted, ran1, ran2, recs, left in rows:
        assert cut == (k < steps), k
        assert left == [], (k, left)  # every entry settled: never a half-written one left
        assert ran1 + ran2 <= 1, k  # never twice
        if not accepted:  # cut while queueing: not accepted, so it must never run
            assert (ran1, ran2, recs) == (0, 0, []), k
            seen_cut_before_accept += 1
            continue
        # accepted: exactly one record of its end in the log
        assert len(recs) == 1, (k, recs)
        event_id, args = recs[0]
        if event_id == ids.EV_TT_UNKNOWN:
            assert ran2 == 0 and args == [77, 8], k  # cut mid-execution: reported, not rerun
            seen_unknown += 1
        else:
            assert event_id == ids.EV_TT_EXECUTED and args == [77, 8, 0], k
            assert ran1 + ran2 == 1, k  # it ran, once
    assert seen_cut_before_accept > 0 and seen_unknown > 0


def test_the_execution_code_is_imported_per_use_and_let_go(run_mp, tmp_path: Path) -> None:
    lines = run(run_mp, tmp_path, f"""
import sys
app, board = build({str(tmp_path / "s")!r})
def held():
    return "node.ttrun" in sys.modules
board.now = 5000
send(app, board, 2, 14, [U0])  # correlate: node 5000 = U0
send(app, board, 3, 1, [], U0 + 1000)
print(json.dumps([held(), app.timetag.count]))  # queued: nothing of the execution loaded
board.now = 6000
drain(app)
print(json.dumps([held(), app.timetag.count, verifs(msgs(board))]))
send(app, board, 4, 1, [], U0 + 9000)
print(json.dumps([held()] + verifs(send(app, board, 5, {ids.CMD_TT_CLEAR}, []))))
print(json.dumps([held(), app.timetag.count]))
""")
    assert lines == [[False, 1], [False, 0, [[3, 2, 0, 6000]]],
                     [False, [5, 0, 0, 6000], [4, 3, 23, 6000], [5, 2, 0, 6000]], [False, 0]]


def test_a_burst_of_due_entries_lets_the_other_tasks_run_between_two(run_mp,
                                                                      tmp_path: Path) -> None:
    # 64 entries due at once (a node that was off while they came due, or entries spaced
    # closer than the node runs them): the queue's task runs one per pass, so every other
    # task runs between two of them. On a Pico each entry is flash writes (tens to hundreds
    # of ms); the emulated Pico found the node reset by its watchdog when one pass ran the
    # whole burst and held every other task off for longer than the watchdog's timeout.
    lines = run(run_mp, tmp_path, f"""
import asyncio, sys
app, board = build({str(tmp_path / "s")!r})
board.now = 1000
send(app, board, 1, 14, [U0])
for k in range(64):
    send(app, board, 10 + k, 8, [14, k], U0 + 2000 + k)
msgs(board)
passes = [0]  # another task's passes (any task: housekeeping, the link, the watchdog)
seen = []  # its passes when each entry ran
execute = app.dispatcher.execute
def counted(cmd):
    seen.append(passes[0])
    return execute(cmd)
app.dispatcher.execute = counted
board.now = 9000  # all 64 due
async def other():
    while True:
        passes[0] += 1
        await asyncio.sleep_ms(0)
async def main():
    tasks = [asyncio.create_task(app.timetag.run()), asyncio.create_task(other())]
    while app.timetag.count:
        await asyncio.sleep_ms(1)
    await asyncio.sleep_ms(5)
    for t in tasks:
        t.cancel()
asyncio.run(main())
print(json.dumps([b - a for a, b in zip(seen, seen[1:])]))
held = "node.ttrun" in sys.modules
print(json.dumps([len(seen), app.timetag.executed, app.params.get(14), held]))
print(json.dumps([v[0] - 10 for v in verifs(msgs(board)) if v[1] == 2]))
""")
    assert lines[0] == [1] * 63  # exactly one pass of the other task between two entries
    assert lines[1] == [64, 64, 63, False]  # all ran, the last last; the execution let go
    assert lines[2] == list(range(64))  # in tag order
