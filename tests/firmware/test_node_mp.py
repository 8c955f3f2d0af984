"""Node behaviour inside one MicroPython process (in-memory board): error paths that the
link cannot trigger. A handler that raises fails the command with EXECUTION_ERROR and an
event; a task that raises becomes a task_crashed event, SAFE, and a restart."""

import ast

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
        # cmd_failed(command, seq, code); event_seq 4: the boot events include auth_open (a
        # node without a key says so at boot, SPEC §10.6)
        "3 23 [4, 2, [1, 9, 16]]",
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
values = (0, 1, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFF, 0x100000000, 0x100000005)
# every code the spec has (up to 31: past the one-byte CBOR head at 24) and results
answers = ((0, 0, None), (1, 4, None), (1, 15, None), (2, 0, None), (3, 20, None),
           (3, 23, None), (3, 24, None), (3, 31, None), (2, 0, 5), (2, 0, [1, -2]),
           (1, 8, 70000), (2, 0, False))
for seq in values[:7]:
    for now in values:
        for cmd_id in (1, 21, 23, 24, 200, 0xFFFFFFFF, 0x100000000):
            for stage, code, result in answers:
                board.now = now  # node time = board ticks (the clock started at 0)
                app.clock._ms = 0
                app.clock._last = 0
                link.seq = seq
                link.enc.reset()
                link.enc.buf[0] = 0  # nothing left over from the last message may show
                link.end = lambda: None  # keep the message in the encoder
                d._verify(seq, cmd_id, stage, code, result)
                got = bytes(link.enc.buf[:link.enc.pos])
                M.write_verification(ref, seq, now, cmd_id, seq, stage, code, result)
                if got != bytes(ref.buf[:ref.pos]):
                    bad += 1
print('mismatches', bad)
""")
    assert lines == ["mismatches 0"]


# SPEC §5, §5.1 on the node's own interpreter: (message hex with B for the node's boot count,
# the verifications it answers: [id, body] each, the body's result B for the boot count).
ENVELOPE_CASES = [
    # bug 2: any id echoed exactly, in shortest form
    ("870100 1903e9 00 1b0000000200000001 80 B", [[2**33 + 1, [1001, 1, 1, None]]]),
    ("870100 09 00 1bffffffffffffffff 80 B", [[2**64 - 1, [9, 1, 1, None]]]),
    ("870100 09 00 1a00010000 80 B", [[65536, [9, 1, 1, None]]]),
    # bug 4: no seq or id beyond the end of the array: counted only
    ("80 01 00 07 00 01 80", []),
    ("82 01 00 07 00 01", []),
    ("84 01 00 07 00 01", []),
    # bug 3: the whole message is checked first (undefined, a tag, NaN, nesting 17 and 18)
    ("87 01 00 07 00 18c8 81 f7 B", [[200, [7, 1, 6, None]]]),
    ("87 01 00 07 00 08 82 0e f7 B", [[8, [7, 1, 6, None]]]),
    ("87 01 00 07 00 08 82 0e c100 B", [[8, [7, 1, 6, None]]]),
    ("87 01 00 07 00 06 82 00 f97e00 B", [[6, [7, 1, 6, None]]]),
    ("87 01 00 07 00 01 80 f7", [[1, [7, 1, 6, None]]]),
    ("87 01 00 07 00 08 82 0e " + "81" * 15 + "00 B", [[8, [7, 1, 6, None]]]),
    ("87 01 00 07 00 08 82 0e " + "81" * 16 + "00 B", [[8, [7, 1, 6, None]]]),
    ("87 01 00 07 00 08 82 0e " + "81" * 14 + "00 B", [[8, [7, 1, 2, None]]]),
    # the version before the item count; six items are no command any more
    ("81 02", []),
    ("86 02 00 07 00 01 80", [[1, [7, 1, 7, None]]]),
    ("86 01 00 07 00 01 80", [[1, [7, 1, 6, None]]]),
    ("86 02 00 07 00 00 80", [[0, [7, 1, 7, None]]]),  # id 0 is an address too
    # bug 7: bound to another boot (or to none): STALE_BOOT with the node's boot
    ("87 01 00 07 00 01 80 00", [[1, [7, 1, 8, "B"]]]),
    ("87 01 00 07 00 01 80 B+1", [[1, [7, 1, 8, "B"]]]),
    ("87 01 00 07 00 18c8 80 B+1", [[200, [7, 1, 8, "B"]]]),  # before UNKNOWN_COMMAND
    ("87 01 00 07 00 01 80 B", [[1, [7, 0, 0, None]], [1, [7, 2, 0, None]]]),
    # ids on either side of 2**32 (the widest the node writes in its own short form)
    ("870100 09 00 1affffffff 80 B", [[2**32 - 1, [9, 1, 1, None]]]),
    ("870100 09 00 1b0000000100000000 80 B", [[2**32, [9, 1, 1, None]]]),
]


def test_envelope_rules_on_the_node(run_mp, tmp_path):
    cases = repr([c for c, _ in ENVELOPE_CASES])
    lines = run(run_mp, tmp_path, """
from binascii import unhexlify
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import decode_message
boot = app.boot_count
for case in """ + cases + """:
    text = case.replace("B+1", "%02x" % (boot + 1)).replace("B", "%02x" % boot)
    f = encode_frame(unhexlify(text.replace(" ", "")))
    buf = bytearray(f)
    app.link.receive(buf, len(buf))
    out = []
    for raw in Deframer().feed(board.take_tx()):
        m = decode_message(raw)
        if m.kind == 1:  # the bytes sent are the canonical encoding (SPEC §4)
            out.append([m.id, m.body, bytes(raw) == m.encode()])
    print(boot, out)
print("rejected", app.dispatcher.cmds_rejected, "accepted", app.dispatcher.cmds_accepted)
""", heap="4M")
    boot = int(lines[0].split(" ", 1)[0])
    for (case, want), line in zip(ENVELOPE_CASES, lines, strict=False):
        want = [[i, [boot if x == "B" else x for x in body]] for i, body in want]
        got = ast.literal_eval(line.split(" ", 1)[1])
        assert [[i, body] for i, body, _ in got] == want, case
        assert all(canonical for _, _, canonical in got), case
    rejected = sum(1 for _, w in ENVELOPE_CASES if w and w[0][1][1] == 1) + 4  # 4 counted only
    assert lines[-1] == f"rejected {rejected} accepted 1"


def _verifications(run_mp, tmp_path, body):
    """Run body (sends with send(seq, cmd_id, args)), then print each verification."""
    return run(run_mp, tmp_path, """
from protocol.framing import Deframer
from protocol.messages import decode_message
def send(seq, cmd_id, args):
    f = frame(0, seq, cmd_id, args)
    app.link.receive(f, len(f))
def answers():
    out = [m.body[:3] for m in map(decode_message, Deframer().feed(board.take_tx()))
           if m.kind == 1]
    print(out, app.dispatcher.cmds_accepted)
""" + body)


def test_idempotency_ring_holds_exactly_32_commands(run_mp, tmp_path):
    # SPEC §5.2: the last 32 accepted (seq, id) pairs. 32 noops, then the first again: from
    # the record (not executed: cmds_accepted stays); a 33rd noop pushes the first out, and
    # the first again then runs (accepted counts it).
    lines = _verifications(run_mp, tmp_path, """
for seq in range(100, 132):
    send(seq, 1, [])
board.take_tx()
send(100, 1, [])
answers()
send(131, 1, [])
answers()
send(132, 1, [])
board.take_tx()
send(100, 1, [])
answers()
send(102, 1, [])
answers()
""")
    assert lines == [
        "[[100, 0, 0], [100, 2, 0]] 32",  # the oldest of 32: still remembered
        "[[131, 0, 0], [131, 2, 0]] 32",
        "[[100, 0, 0], [100, 2, 0]] 34",  # pushed out by the 33rd: runs again
        "[[102, 0, 0], [102, 2, 0]] 34",  # held: 100's run pushed out only 101
    ]


def test_a_repeat_is_the_same_seq_and_the_same_id(run_mp, tmp_path):
    # SPEC §5.2: the ring holds (seq, id) pairs; the same seq for another command (a lower
    # or a higher id) is a new command and runs.
    lines = _verifications(run_mp, tmp_path, """
send(50, 1, [])   # noop
send(50, 15, [])  # status, same seq, higher id
answers()
send(51, 15, [])
send(51, 1, [])   # same seq, lower id
answers()
""")
    assert lines == ["[[50, 0, 0], [50, 2, 0], [50, 0, 0], [50, 2, 0]] 2",
                     "[[51, 0, 0], [51, 2, 0], [51, 0, 0], [51, 2, 0]] 4"]


def test_a_repeat_is_answered_before_its_arguments_and_mode_are_checked(run_mp, tmp_path):
    # SPEC §5.1: a remembered (seq, id) is answered from the record as soon as the id is
    # known: other arguments (out of range) or another mode change nothing.
    lines = _verifications(run_mp, tmp_path, """
app.modes.enter(2)  # NOMINAL
board.take_tx()
send(7, 12, [3, 1.0])   # hk_rate packet 3 at 1 Hz: runs
send(8, 3, [0, True])   # load_switch seismometer on (NOMINAL only): runs
board.take_tx()
app.modes.enter(1)  # SAFE
board.take_tx()
send(7, 12, [3, 1000.0])  # the same (seq, id), out of range now: the record
answers()
send(8, 3, [0, True])  # the same (seq, id), in SAFE: the record
answers()
""")
    assert lines == ["[[7, 0, 0], [7, 2, 0]] 2", "[[8, 0, 0], [8, 2, 0]] 2"]


def test_arguments_are_checked_before_the_mode(run_mp, tmp_path):
    # SPEC §5.1 order: BAD_ARGUMENTS / OUT_OF_RANGE, then WRONG_MODE. load_switch is not
    # allowed in SAFE; with bad arguments it is rejected for them.
    lines = _verifications(run_mp, tmp_path, """
send(9, 3, [99, True])
answers()
send(10, 3, [1, 1])
answers()
send(11, 3, [1])
answers()
send(12, 3, [1, True])
answers()
send(13, 3, [])  # no arguments at all for a command that takes two
answers()
""")
    assert lines == ["[[9, 1, 3]] 0", "[[10, 1, 2]] 0", "[[11, 1, 2]] 0", "[[12, 1, 4]] 0",
                     "[[13, 1, 2]] 0"]


def test_clear_counters_zeroes_the_command_counters(run_mp, tmp_path):
    # SPEC: clear_counters zeroes cmds_accepted and cmds_rejected, in telemetry too; its own
    # acceptance is counted before it runs, so both read 0 after it, and counting goes on.
    lines = _verifications(run_mp, tmp_path, f"""
def counts():
    print(app.tlm[{ids.CH_CMDS_ACCEPTED}], app.tlm[{ids.CH_CMDS_REJECTED}],
          app.dispatcher.cmds_accepted, app.dispatcher.cmds_rejected)
send(1, {ids.CMD_NOOP}, [])
send(2, {ids.CMD_NOOP}, [])
send(3, 200, [])
counts()
send(4, {ids.CMD_CLEAR_COUNTERS}, [])
counts()
send(5, 200, [])
send(6, 200, [])
send(7, {ids.CMD_NOOP}, [])
counts()
""")
    assert lines == ["2 1 2 1", "0 0 0 0", "1 2 1 2"]


def test_a_plain_command_to_a_keyed_node_is_rejected_unauthenticated(run_mp, tmp_path):
    # SPEC §10: a node with a key enforces authentication (the default); a plain command is
    # rejected UNAUTHENTICATED after the checks of §5 and never executed, a repeat of it too.
    from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, node_key_table

    state = tmp_path / "state"
    state.mkdir()
    (state / "keys.bin").write_bytes(node_key_table([(DEV_OPERATOR, DEV_MASTER,
                                                      DEV_GENERATION)]))
    lines = _verifications(run_mp, tmp_path, f"""
print(app.auth.state)
send(1, {ids.CMD_NOOP}, [])
send(1, {ids.CMD_NOOP}, [])
send(2, {ids.CMD_STATUS}, [])
answers()
""")
    assert lines == ["2", "[[1, 1, 9], [1, 1, 9], [2, 1, 9]] 0"]


def test_a_pending_command_completes_when_its_service_finishes_it(run_mp, tmp_path):
    # The handler API (node.dispatcher): PENDING accepts now and completes later through
    # finish(); until then a repeat is answered accepted only, after it with the outcome, and
    # a finish() for a command not pending changes nothing.
    lines = _verifications(run_mp, tmp_path, """
from node.dispatcher import PENDING
app.dispatcher.register(1, lambda d: PENDING)
send(5, 1, [])
answers()
send(5, 1, [])
answers()
app.dispatcher.finish(5, 1, 0, [7, 8])
answers()
app.dispatcher.finish(5, 1, 0, [9])
app.dispatcher.finish(6, 1, 0, None)
answers()
send(5, 1, [])
answers()
send(6, 1, [])
app.dispatcher.finish(6, 1, 19, [1])
answers()
send(7, 15, [])  # after a finish, plain commands are remembered as before
send(7, 15, [])
answers()
""")
    assert lines == ["[[5, 0, 0]] 1", "[[5, 0, 0]] 1", "[[5, 2, 0]] 1", "[] 1",
                     "[[5, 0, 0], [5, 2, 0]] 1", "[[6, 0, 0], [6, 3, 19]] 2",
                     "[[7, 0, 0], [7, 2, 0], [7, 0, 0], [7, 2, 0]] 3"]


def test_arguments_the_heap_cannot_hold_are_bad_arguments(run_mp, tmp_path):
    # A MemoryError while the arguments are read (one too big for the heap left) rejects
    # the command BAD_ARGUMENTS; the node goes on, and the next command runs.
    lines = _verifications(run_mp, tmp_path, """
import node.dispatcher as D
real = D.read_args
def full(*a):
    raise MemoryError("heap full")
D.read_args = full
send(3, 12, [3, 1.0])
D.read_args = real
send(4, 12, [3, 1.0])
answers()
""")
    assert lines == ["[[3, 1, 2], [4, 0, 0], [4, 2, 0]] 1"]


def test_a_bug_in_the_dispatch_path_is_counted_once_and_logged(run_mp, tmp_path):
    # A command whose dispatch raises (a bug past the envelope checks) is counted rejected
    # once, its exception logged, and nothing is answered; the next command runs.
    lines = _verifications(run_mp, tmp_path, """
d = app.dispatcher
real = d._command
def bug(*a):
    raise KeyError("dispatch bug")
d._command = bug
send(3, 1, [])
del d._command
answers()
print(d.cmds_rejected, app.tlm[28], len(board.errors), type(board.errors[-1]).__name__)
send(4, 1, [])
answers()
""")
    assert lines == ["[] 0", "1 1 1 KeyError", "[[4, 0, 0], [4, 2, 0]] 1"]


def test_ids_past_the_last_command_are_unknown(run_mp, tmp_path):
    # SPEC §5.1: the id just past the node's last command, and far past it, is
    # UNKNOWN_COMMAND (answered, counted), as is id 0.
    from protocol.node_dictionary import COMMAND_MODES

    past = len(COMMAND_MODES)
    lines = _verifications(run_mp, tmp_path, f"""
send(1, {past}, [])
send(2, {past + 1}, [])
send(3, 0, [])
answers()
print(app.dispatcher.cmds_rejected)
""")
    assert lines == ["[[1, 1, 1], [2, 1, 1], [3, 1, 1]] 0", "3"]
