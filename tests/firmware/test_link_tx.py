"""The link's tx queue under congestion (SPEC §5.8), on MicroPython with an in-memory board
whose reader stalls (memboard.tx_room): whole frames only on the wire, housekeeping dropped
before verifications and events, every drop counted once in tx_dropped and seen as a gap of
one in the downlink seq, frames_out + tx_dropped = messages made; all without allocating."""

from __future__ import annotations

import json

import pytest

from protocol import messages as M

pytestmark = pytest.mark.micropython

PRELUDE = """
import json
from hotpath import build, frame, locked
from protocol.framing import Deframer
from protocol.messages import decode_message
app, board = build({root!r})
link = app.link
wire = Deframer()
got = []

def take():
    # what the ground receives: frames decoded, partial frames and CRC errors counted
    for raw in wire.feed(board.take_tx()):
        m = decode_message(raw)
        got.append([m.seq, m.kind, m.id])

def counters():
    return [link.seq, link.frames_out, link.tx_dropped, link.queued()]

take()
got.clear()
start = counters()
"""

EPILOGUE = """
board.tx_room = -1  # the reader catches up
link.flush()
take()
print(json.dumps({"start": start, "end": counters(), "got": got,
                  "discarded": wire.discarded_bytes, "crc": wire.crc_errors,
                  "truncated": wire.truncated, "errors": board.errors}))
"""


def run_tx(run_mp, tmp_path, body: str) -> dict:
    out = run_mp(PRELUDE.format(root=str(tmp_path / "state")) + body + EPILOGUE)
    res = json.loads(out.splitlines()[-1])
    assert res["errors"] == []
    # nothing but whole frames on the wire
    assert (res["discarded"], res["crc"], res["truncated"]) == (0, 0, 0)
    seq0, out0, drop0, queued0 = res["start"]
    seq1, out1, drop1, queued1 = res["end"]
    assert queued0 == queued1 == 0
    made, sent, dropped = seq1 - seq0, out1 - out0, drop1 - drop0
    assert sent + dropped == made  # every message: written whole, or dropped and counted
    seqs = [g[0] for g in res["got"]]
    assert len(seqs) == sent
    expected = list(range(seq0, seq1))
    assert seqs == [s for s in expected if s in set(seqs)]  # in order
    assert len(expected) - len(seqs) == dropped  # each drop is a gap of exactly one
    res["dropped_seqs"] = sorted(set(expected) - set(seqs))
    res["made"], res["sent"], res["dropped"] = made, sent, dropped
    return res


def test_housekeeping_goes_first_and_every_drop_is_one_gap(run_mp, tmp_path) -> None:
    res = run_tx(run_mp, tmp_path, """
board.tx_room = 5  # the reader takes 5 bytes, then stalls mid-frame
for r in range(12):  # housekeeping floods the queue; commands come in between
    for pid in range(1, 11):
        app.hk.send(pid)
    if r in (4, 8, 11):
        cmd = frame(0, 3000 + r, 1, [])  # noop: accepted + completed
        link.receive(cmd, len(cmd))
""")
    got_kinds = [g[1] for g in res["got"]]
    # all six verifications (and whatever events) arrived; only housekeeping was dropped
    assert got_kinds.count(M.KIND_VERIFICATION) == 6
    assert res["dropped"] > 50
    assert not set(res["dropped_seqs"]) & {g[0] for g in res["got"]}
    sent_hk = {g[0] for g in res["got"] if g[1] == M.KIND_HOUSEKEEPING}
    non_hk = {g[0] for g in res["got"] if g[1] != M.KIND_HOUSEKEEPING}
    assert non_hk and sent_hk  # the begun frame was finished, newer housekeeping kept
    assert len(res["got"]) == res["sent"]


def test_without_housekeeping_to_drop_the_newest_goes_and_is_counted(run_mp, tmp_path) -> None:
    res = run_tx(run_mp, tmp_path, """
board.tx_room = 3
for s in range(200):  # 400 verifications, nothing read
    cmd = frame(0, 4000 + s, 1, [])
    link.receive(cmd, len(cmd))
print(locked(link.flush))
""")
    assert res["dropped"] > 0 and res["sent"] > 0
    assert all(g[1] == M.KIND_VERIFICATION for g in res["got"])


def test_congested_queue_allocates_nothing(run_mp, tmp_path) -> None:
    out = run_mp(PRELUDE.format(root=str(tmp_path / "state")) + """
board.tx_room = 11
res = []
for r in range(12):
    for pid in range(1, 11):
        res.append(locked(app.hk.send, pid))
    cmd = frame(0, 5000 + r, 1, [])
    res.append(locked(link.receive, cmd, len(cmd)))
    board.tx_room = 100  # a little read now and then: compaction and eviction both happen
    res.append(locked(link.flush))
print(json.dumps([[x for x in res if x is not None], link.tx_dropped > 0]))
""")
    assert out.splitlines()[-1] == "[[], true]"
