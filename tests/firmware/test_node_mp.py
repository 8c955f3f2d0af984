"""Node behaviour inside one MicroPython process (in-memory board): error paths that the
link cannot trigger. A handler that raises fails the command with EXECUTION_ERROR and an
event; a task that raises becomes a task_crashed event, SAFE, and a restart."""

import ast
import re

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


def _open_signed(raw: bytes, signers):
    """(operator, counter, message) of an authenticated answer, (None, None, message) of a
    plain one."""
    from ground.auth import AuthError
    from protocol.messages import decode_message

    if raw[:1] != b"\xd1":
        return None, None, decode_message(raw)
    for s in signers:
        try:
            payload, counter = s.open(raw)
        except AuthError:
            continue
        return s.operator, counter, decode_message(payload)
    raise AssertionError(f"an authenticated answer under no key of ours: {raw.hex()}")


def test_signed_commands_are_answered_under_their_own_key(run_mp, tmp_path):
    # SPEC §10: a frame that starts with tag 17 is a COSE_Mac0 object. One that checks out is
    # executed and every answer is authenticated under its key and counter, whichever slot
    # of the key table the key is in (slot 1 here, and slot 0); a forged one gets no answer
    # and no dispatcher count; a plain command to this keyed node is rejected
    # UNAUTHENTICATED; a repeat of a signed command is answered from the ring under the
    # repeat's own (newest) counter, not executed again, and the same seq and id from another
    # key is not a repeat. A pending signed command completed by report() with its defaults
    # is answered under the key and counter its ring entry holds.
    import hashlib

    from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, Signer, node_key_table

    other = hashlib.sha256(b"second operator").digest()
    state = tmp_path / "state"
    state.mkdir()
    (state / "keys.bin").write_bytes(node_key_table([(DEV_OPERATOR, DEV_MASTER, DEV_GENERATION),
                                                     (7, other, 0)]))
    signers = [Signer(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION), Signer(other, 7, 0)]
    lines = run(run_mp, tmp_path, f"""
from binascii import hexlify, unhexlify
from protocol import cose, cose_sign
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import encode_message
keys = []
for op, master in ((0, unhexlify({DEV_MASTER.hex()!r})), (7, unhexlify({other.hex()!r}))):
    kid = bytes((op, 0))
    keys.append(cose.MacKey(kid, cose.derive_key(master, kid)))
def send_signed(k, counter, seq, cmd_id, forge=False, args=()):
    msg = encode_message(0, seq, 0, cmd_id, list(args), app.boot_count)
    obj = bytearray(cose_sign.encode_mac0(keys[k], cose.LABEL_COUNTER, counter, msg,
                                          cose_sign.AAD_COMMAND))
    if forge:
        obj[-1] ^= 1
    f = bytearray(encode_frame(obj))
    app.link.receive(f, len(f))
def out():
    d = app.dispatcher
    print(d.cmds_accepted, d.cmds_rejected,
          [hexlify(bytes(raw)).decode() for raw in Deframer().feed(board.take_tx())])
print(app.auth.state)
from node.dispatcher import PENDING
app.dispatcher.register(15, lambda d: PENDING)  # status, finished later by report()
send_signed(0, 250, 4, 15)  # ring slot 0
out()
app.dispatcher.report(4, 15, 0, [1])
out()
send_signed(0, 251, 4, 15)  # a repeat: the outcome report() recorded in the ring
out()
send_signed(1, 257, 5, 1)
out()
send_signed(0, 257, 6, 1)
out()
send_signed(1, 258, 9, 1, forge=True)
out()
f = frame(0, 8, 1, [])
app.link.receive(f, len(f))
out()
send_signed(1, 259, 5, 1)
out()
send_signed(0, 258, 6, 1)
out()
send_signed(1, 260, 6, 1)
out()
send_signed(0, 259, 5, 1)
out()
app.dispatcher.register(1, lambda d: PENDING)
send_signed(1, 261, 9, 1)  # ring slot 5
out()
send_signed(0, 260, 9, 1)  # op 0's own (9, 1), while op 7's is pending: a new command
out()
send_signed(0, 264, 9, 1)  # its repeat: later answers go to this newest counter
out()
app.dispatcher.report(9, 1, 0, [3])  # the defaults: the ring entry says how to sign
out()
app.dispatcher.report(9, 1, 0, [4])  # the other pending (9, 1): op 0's
out()
# a hazardous command with arguments, armed by every byte of them: key_revoke [1, 255]
send_signed(1, 262, 10, 23, args=(25, b"\\x82\\x01\\x18\\xff"))
send_signed(1, 263, 11, 25, args=(1, 255))
out()
""")
    assert lines[0] == "2"  # ENFORCED: a key is provisioned
    got = []
    for line in lines[1:]:
        accepted, rejected, frames = line.split(" ", 2)
        answers = []
        for h in ast.literal_eval(frames):
            op, counter, m = _open_signed(bytes.fromhex(h), signers)
            if m.kind == 1:
                answers.append((op, counter, m.id, m.body))
        got.append((int(accepted), int(rejected), answers))
    assert got == [
        (1, 0, [(0, 250, 15, [4, 0, 0, None])]),  # pending
        (1, 0, [(0, 250, 15, [4, 2, 0, [1]])]),  # completed by report(), signed as it came
        (1, 0, [(0, 251, 15, [4, 0, 0, None]), (0, 251, 15, [4, 2, 0, [1]])]),
        (2, 0, [(7, 257, 1, [5, 0, 0, None]), (7, 257, 1, [5, 2, 0, None])]),
        (3, 0, [(0, 257, 1, [6, 0, 0, None]), (0, 257, 1, [6, 2, 0, None])]),
        (3, 0, []),  # forged: counted by node.auth only
        (3, 1, [(None, None, 1, [8, 1, 9, None])]),
        (3, 1, [(7, 259, 1, [5, 0, 0, None]), (7, 259, 1, [5, 2, 0, None])]),
        (3, 1, [(0, 258, 1, [6, 0, 0, None]), (0, 258, 1, [6, 2, 0, None])]),
        # another operator's seq 6: its own command (operators choose seqs independently)
        (4, 1, [(7, 260, 1, [6, 0, 0, None]), (7, 260, 1, [6, 2, 0, None])]),
        (5, 1, [(0, 259, 1, [5, 0, 0, None]), (0, 259, 1, [5, 2, 0, None])]),
        (6, 1, [(7, 261, 1, [9, 0, 0, None])]),  # pending
        (7, 1, [(0, 260, 1, [9, 0, 0, None])]),  # pending too
        (7, 1, [(0, 264, 1, [9, 0, 0, None])]),
        (7, 1, [(7, 261, 1, [9, 2, 0, [3]])]),  # completed by report(), signed as it came
        (7, 1, [(0, 264, 1, [9, 2, 0, [4]])]),
        # armed: it runs, and fails NOT_FOUND (no operator 1 on this node)
        (9, 1, [(7, 262, 23, [10, 0, 0, None]), (7, 262, 23, [10, 2, 0, None]),
                (7, 263, 25, [11, 0, 0, None]), (7, 263, 25, [11, 3, 19, None])]),
    ]


def test_arming_edges_on_the_dispatcher(run_mp, tmp_path):
    # SPEC §10.8 at its edges, on a fresh dispatcher (its ring empty, slot 0 next): an arm's
    # argument bytes may be 64 long, not 65 (BAD_ARGUMENTS); an arm for bytes one above or
    # below what the command carries (0x80, param_reset's empty array) does not arm it; the
    # exact bytes do. A repeat of another command disarms even when that command's ring slot
    # is past the arm's (the ring wrapped: the arm in slot 0, noop 32 in slot 31). Only the
    # hazardous flag makes a command armable: other flags and ids past the table are
    # NOT_ARMED.
    from protocol.node_dictionary import COMMAND_FLAGS

    pr = ids.CMD_PARAM_RESET
    past = len(COMMAND_FLAGS)
    lines = _verifications(run_mp, tmp_path, f"""
for seq in range(1, 33):
    send(seq, {ids.CMD_NOOP}, [])
board.take_tx()
send(40, {ids.CMD_ARM}, [{pr}, b"\\x80"])  # ring slot 0
send(32, {ids.CMD_NOOP}, [])  # a repeat (ring slot 31), not of the arm: disarms
send(41, {pr}, [])
answers()
send(42, {ids.CMD_ARM}, [{pr}, bytes(64)])
send(43, {ids.CMD_ARM}, [{pr}, bytes(65)])
answers()
send(44, {ids.CMD_ARM}, [{pr}, b"\\x81"])
send(45, {pr}, [])
send(46, {ids.CMD_ARM}, [{pr}, b"\\x7f"])
send(47, {pr}, [])
answers()
send(48, {ids.CMD_ARM}, [{pr}, b"\\x80"])
send(49, {pr}, [])
answers()
send(50, {ids.CMD_ARM}, [{ids.CMD_FAULT_INJECT}, b"\\x80"])  # flags: test-only, not hazardous
send(51, {ids.CMD_ARM}, [{ids.CMD_TIME_CORRELATE}, b"\\x80"])  # flags: immediate
send(52, {ids.CMD_ARM}, [{past}, b"\\x80"])  # the first id past the table
answers()
""")
    assert lines == [
        "[[40, 0, 0], [40, 2, 0], [32, 0, 0], [32, 2, 0], [41, 1, 11]] 33",
        "[[42, 0, 0], [42, 2, 0], [43, 1, 2]] 34",
        "[[44, 0, 0], [44, 2, 0], [45, 1, 11], [46, 0, 0], [46, 2, 0], [47, 1, 11]] 36",
        "[[48, 0, 0], [48, 2, 0], [49, 0, 0], [49, 2, 0]] 38",
        "[[50, 1, 11], [51, 1, 11], [52, 1, 11]] 38",
    ]


def test_parse_reads_a_stored_command_where_it_lies(run_mp, tmp_path):
    # Internal execution's reader (node.dispatcher parse): a command message inside a larger
    # buffer, read as on arrival (envelope, known id, arguments) but not bound to a boot;
    # each field where the API says, and the exact rejection code for an unknown id (a hole
    # in the table, the first id past it) and for arguments out of range.
    from protocol.node_dictionary import COMMAND_MODES

    past = len(COMMAND_MODES)
    lines = run(run_mp, tmp_path, f"""
from protocol.messages import encode_message
d = app.dispatcher
def parse(seq, cid, args, tag=0):
    m = encode_message(0, seq, tag, cid, args, 0)
    buf = bytearray(b"\\x00\\x81" + m + b"\\xff")
    code = d.parse(buf, 2, 2 + len(m))
    print(code, d.cmd_seq, d.cmd_id, d.tag, d.nargs, d.args[:d.nargs] if code == 0 else "")
parse(7, 12, [3, 1.0], 123456789)
parse(9, 1, [])
parse(10, 26, [])
parse(11, {past}, [])
parse(12, 12, [3, 1000.0], 5)
""")
    assert [line.rstrip() for line in lines] == [
        "0 7 12 123456789 2 [3, 1.0]",
        "0 9 1 0 0 []",
        "1 10 26 0 0",  # no command 26: a hole in the dictionary
        f"1 11 {past} 0 0",
        "3 12 12 5 2",
    ]


def test_execute_checks_mode_then_check_then_runs(run_mp, tmp_path):
    # Internal execution (node.dispatcher execute): unknown ids UNKNOWN_COMMAND, the mode
    # (load_switch only in NOMINAL and above: WRONG_MODE in SAFE, runs in NOMINAL), then the
    # command's own check (one that raises: BAD_ARGUMENTS, logged), then the handler (its
    # result; one that raises: EXECUTION_ERROR, logged). Nothing is sent.
    from protocol.node_dictionary import COMMAND_MODES

    past = len(COMMAND_MODES)
    lines = run(run_mp, tmp_path, f"""
d = app.dispatcher
print(d.execute({past}, []), d.execute({past + 1}, []), d.execute(26, []))
app.modes.enter(1)  # SAFE
print(d.execute(3, [0, True]), d.execute(1, []))
app.modes.enter(2)  # NOMINAL
print(d.execute(3, [0, False]))
board.take_tx()
def bad_check(d):
    raise ValueError("check bug")
def result(d):
    d.result = [d.cmd_id, 5]
    return 0
d.register(1, result, bad_check)
print(d.execute(1, []), len(board.errors), type(board.errors[-1]).__name__)
d.register(1, result)
print(d.execute(1, []))
def boom(d):
    raise KeyError(1)
d.register(1, boom)
print(d.execute(1, []), len(board.errors), type(board.errors[-1]).__name__)
print(len(board.take_tx()))
""")
    assert lines == [
        "(1, None) (1, None) (1, None)",
        "(4, None) (0, None)",
        "(0, None)",
        "(2, None) 1 ValueError",
        "(0, [1, 5])",
        "(16, None) 2 KeyError",
        "0",
    ]


def test_report_of_a_command_the_ring_does_not_hold_leaves_the_ring_as_it_was(run_mp,
                                                                               tmp_path):
    # With the ring full (32 commands, every slot holding one), report() for a command the
    # ring does not hold (of another boot, or not found) answers it alone: no slot is
    # overwritten (-1, "another boot's", must not be taken for the ring's last slot), so a
    # repeat of each of the 32 still answers its recorded outcome without executing again.
    lines = run(run_mp, tmp_path, """
d = app.dispatcher
def send(seq):
    f = frame(0, seq, 1, [])
    app.link.receive(f, len(f))
for seq in range(1, 33):
    send(seq)
board.take_tx()
before = d.cmds_accepted
d.report(100, 1, 0, [5], -1, 0, app.boot_count + 1)  # another boot's command
d.report(101, 1, 0, [6])  # this boot's, never accepted
show()
for seq in range(1, 33):
    send(seq)
show()
print(d.cmds_accepted - before)
send(100)  # never in the ring: a new command
print(d.cmds_accepted - before)
""")
    # a repeat re-sends what the ring recorded: the noop's accepted and completed (no result)
    repeats = [f"1 1 [{seq}, {stage}, 0, None]" for seq in range(1, 33) for stage in (0, 2)]
    assert lines == ["1 1 [100, 2, 0, [5]]", "1 1 [101, 2, 0, [6]]", *repeats, "0", "1"]


def test_report_with_its_defaults(run_mp, tmp_path):
    # report(cmd_seq, cmd_id, code, result=None, key_slot=-1, counter=0, boot=0): by default
    # plain (not signed: this node has no key) and for this boot. A command still pending in
    # the ring (slot 1 here: not the first) is completed there, so a repeat answers its
    # outcome; one the ring does not hold is answered alone; a failure raises cmd_failed.
    lines = run(run_mp, tmp_path, """
import gc
del app, board
gc.collect()
app, board = build(""" + repr(str(tmp_path / "state")) + """)  # a second boot: count 2
from node.dispatcher import PENDING
d = app.dispatcher
print(app.boot_count, app.auth is not None)
def send(seq):
    f = frame(0, seq, 1, [])
    app.link.receive(f, len(f))
send(1)
d.register(1, lambda d: PENDING)
send(2)
board.take_tx()
d.report(2, 1, 0, [7])
show()
send(2)
show()
d.report(3, 1, 19)
show()
d.report(4, 1, 0)
show()
send(5)
send(6)
board.take_tx()
d.report(5, 1, 0, [8], -1, 0, app.boot_count)  # this boot, named: completed in the ring
d.report(6, 1, 0, [9], -1, 0, app.boot_count + 1)  # another boot's (6, 1): not this one's
show()
send(5)
send(6)
send(2)  # untouched by the other boot's report
show()
print(d.cmds_accepted, d.cmds_rejected)
""", heap="1M")
    lines = [re.sub(r"^3 23 \[\d+,", "3 23 [EV,", line) for line in lines]
    assert lines == [
        "2 True",
        "1 1 [2, 2, 0, [7]]",
        "1 1 [2, 0, 0, None]",
        "1 1 [2, 2, 0, [7]]",
        "1 1 [3, 3, 19, None]",
        "3 23 [EV, 2, [1, 3, 19]]",  # cmd_failed (command, seq, code), error
        "1 1 [4, 2, 0, None]",
        "1 1 [5, 2, 0, [8]]",
        "1 1 [6, 2, 0, [9]]",
        "1 1 [5, 0, 0, None]",
        "1 1 [5, 2, 0, [8]]",
        "1 1 [6, 0, 0, None]",  # still pending here
        "1 1 [2, 0, 0, None]",
        "1 1 [2, 2, 0, [7]]",
        "4 0",
    ]
