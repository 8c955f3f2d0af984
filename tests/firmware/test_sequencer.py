"""Stored sequences on the node (SPEC §12), in-process on the Unix port: upload, validation,
execution, on_fail, triggers, reboots. The node runs on a MemBoard (tests/firmware/mp) with
its clock and the sequencer's ticks driven by the test; every verification and event that
comes out is compared exactly.

Lines: ``V <command> <stage> <code> <result>`` for verifications, ``E <event> <args>`` for
events (tests/firmware/mp/seqrig.py).
"""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from protocol import ids
from protocol.node_dictionary import DICT_HASH

pytestmark = pytest.mark.micropython

PRELUDE = """
from seqrig import start, cmd, tick, image, upload, show
from protocol.node_dictionary import DICT_HASH
app, board = start({root!r})
seq = app.sequencer
"""

A, R, C, F = 0, 1, 2, 3  # verification stages
SAFE, NOMINAL = 1, 2
EV_STORED, EV_STARTED, EV_STEP, EV_FAILED, EV_ENDED = 48, 43, 44, 45, 46
EV_TRIGGERED, EV_INVALID, EV_INTERRUPTED = 47, 49, 50
DONE, FAILED, STOPPED = 3, 4, 5


def run(run_mp, root, body: str) -> list[str]:
    out = run_mp(PRELUDE.format(root=str(root)) + body + "\nprint('errors', board.errors)\n")
    lines = [line for line in out.splitlines() if line]
    assert lines[-1] == "errors []"
    return lines[:-1]


def noop_image(noops: int) -> tuple[bytes, bytes, str]:
    """An image of ``noops`` noop steps, its SHA-256, and the script lines that name them
    ``img`` and ``d`` on the node."""
    img = cbor2.dumps([1, DICT_HASH, "t", [NOOP] * noops], canonical=True)
    digest = hashlib.sha256(img).digest()
    return img, digest, f"img = {img!r}\nd = {digest!r}\n"


def img_hash(steps: list, name: str = "t", dict_hash: int = DICT_HASH) -> int:
    img = cbor2.dumps([1, dict_hash, name, steps], canonical=True)
    return int.from_bytes(hashlib.sha256(img).digest()[:4], "big")


def cmd_lines(cmd_id: int, code: int = 0, result: object = None) -> list[str]:
    """The verifications of a command that is accepted then completes (code 0) or fails."""
    return [f"V {cmd_id} {A} 0 None", f"V {cmd_id} {C if code == 0 else F} {code} {result}"]


# Steps that run in SAFE: heater_mode(heater 0, ON), noop, param_set(test_value, n)
HEATER_ON = [0, 0, ids.CMD_HEATER_MODE, [0, 2], 0]
NOOP = [0, 0, ids.CMD_NOOP, [], 0]


def test_upload_start_and_run_to_the_end_with_exact_events(run_mp, tmp_path):
    steps = [HEATER_ON, [0, 300, ids.CMD_PARAM_SET, [14, 7], 0], NOOP]
    h = img_hash(steps)
    lines = run(run_mp, tmp_path / "s", f"""
show(upload(2, image(DICT_HASH, "t", {steps!r})))
print(app.tlm[56], app.tlm[60], app.tlm[62])
show(cmd(35, [2]))
print(app.tlm[56])
show(tick(100))   # step 0 (delay 0) runs at the first tick; step 1 is due 300 ms later
show(tick(200))
print(app.params.get(14))
show(tick(100))   # step 1 and then step 2 (delay 0) in the same tick
print(app.params.get(14), app.tlm[56], app.tlm[57])
""")
    assert lines == [
        f"V 34 {A} 0 None", f"E {EV_STORED} [2, {h}, 3]", f"V 34 {C} 0 {h}",
        f"{1 << 8} {h} 0",  # slot 2 IDLE, its hash, no upload in progress
        f"V 35 {A} 0 None", f"E {EV_STARTED} [2, 0, {h}]", f"V 35 {C} 0 None",
        f"{2 << 8}",
        "E 8 [0, True, 10.0]", f"E {EV_STEP} [2, 0]",  # heater 0 on (heater_switched)
        "0",
        "E 12 [14]", f"E {EV_STEP} [2, 1]", f"E {EV_STEP} [2, 2]", f"E {EV_ENDED} [2, {DONE}, 2]",
        f"7 {3 << 8} {2 << 16}",
    ]


@pytest.mark.parametrize("on_fail", [0, 1, 2])
def test_a_failed_step_does_what_the_sequence_says(run_mp, tmp_path, on_fail):
    # In NOMINAL a payload cannot be switched on (INHIBITED, 20): step 1 fails.
    steps = [NOOP, [0, 0, ids.CMD_LOAD_SWITCH, [4, True], on_fail], [0, 0, ids.CMD_PARAM_SET,
                                                                     [14, 5], 0]]
    h = img_hash(steps)
    lines = run(run_mp, tmp_path / "s", f"""
upload(0, image(DICT_HASH, "t", {steps!r}))
cmd(2, [2])
cmd(35, [0])
show(tick(100))
print(app.modes.current, app.params.get(14), app.tlm[56] & 15, app.tlm[57] & 255)
""")
    head = [f"E {EV_STEP} [0, 0]", f"E {EV_FAILED} [0, 1, 20]"]
    if on_fail == 0:  # STOP
        assert lines == head + [f"E {EV_ENDED} [0, {FAILED}, 1]", f"{NOMINAL} 0 {FAILED} 1"]
    elif on_fail == 1:  # SKIP: the next step runs, the run ends DONE
        assert lines == head + ["E 12 [14]", f"E {EV_STEP} [0, 2]", f"E {EV_ENDED} [0, {DONE}, 2]",
                                f"{NOMINAL} 5 {DONE} 2"]
    else:  # SAFE: safe_mode(SEQUENCE), mode_changed NOMINAL -> SAFE, the run ends FAILED
        assert lines == head + ["E 9 [3]", f"E 2 [{NOMINAL}, {SAFE}]",
                                f"E {EV_ENDED} [0, {FAILED}, 1]", f"{SAFE} 0 {FAILED} 1"]
    assert h


def test_mode_is_checked_when_the_step_runs(run_mp, tmp_path):
    # load_switch needs NOMINAL: the same stored step fails WRONG_MODE (4) in SAFE and runs
    # in NOMINAL.
    steps = [[0, 0, ids.CMD_LOAD_SWITCH, [1, True], 0]]
    lines = run(run_mp, tmp_path / "s", f"""
upload(1, image(DICT_HASH, "t", {steps!r}))
cmd(35, [1])
show(tick(100))
cmd(2, [2])
cmd(35, [1])
show(tick(100))
print(app.plant.loads_on & 2)
""")
    assert lines == [f"E {EV_FAILED} [1, 0, 4]", f"E {EV_ENDED} [1, {FAILED}, 0]",
                     f"E {EV_STEP} [1, 0]", f"E {EV_ENDED} [1, {DONE}, 0]", "2"]


def test_wait_steps_hold_or_time_out(run_mp, tmp_path):
    # wait mode == NOMINAL (5 s), set by a later command? No: by the ground between ticks.
    steps = [[1, ids.CH_MODE, 2, NOMINAL, 5000, 0], [1, ids.CH_MODE, 2, 3, 250, 1], NOOP]
    lines = run(run_mp, tmp_path / "s", f"""
upload(0, image(DICT_HASH, "t", {steps!r}))
cmd(35, [0])
show(tick(1000))
print(app.tlm[57] & 255)
cmd(2, [2])
show(tick(100))
show(tick(200))
show(tick(100))
""")
    assert lines == [
        "0",
        f"E {EV_STEP} [0, 0]",  # the mode is NOMINAL at the next tick
        # step 1 began at that tick: 200 ms later it still waits, at 300 ms it has timed out
        f"E {EV_FAILED} [0, 1, 26]", f"E {EV_STEP} [0, 2]", f"E {EV_ENDED} [0, {DONE}, 2]",
    ]


def test_a_200_step_sequence_runs_to_the_end_eight_steps_a_tick(run_mp, tmp_path):
    steps = [[0, 0, ids.CMD_PARAM_SET, [14, i], 0] for i in range(200)]
    lines = run(run_mp, tmp_path / "s", f"""
print(upload(3, image(DICT_HASH, "long", {steps!r}), part=128)[-1].body[1:3])
app.params.set(10, 100)
cmd(35, [3])
n = 0
while seq.state[3] == 2:
    tick(100)
    n += 1
print(n, seq.steps_run, app.params.get(14), seq.state[3], seq.step[3])
""")
    assert lines == ["[2, 0]", "25 200 199 3 199"]


def problem_cases() -> list[tuple[str, object, int, object]]:
    h = DICT_HASH
    ok = [0, 0, 1, [], 0]
    return [
        ("cbor", b"\x84\x01", 1, None),
        ("format", [2, h, "t", [ok]], 2, None),
        ("dict_hash", [1, h ^ 1, "t", [ok]], 3, None),
        ("name", [1, h, "a" * 17, [ok]], 4, None),
        ("name_type", [1, h, b"t", [ok]], 4, None),
        ("no_steps", [1, h, "t", []], 5, None),
        ("shape", [1, h, "t", [ok, [0, 0, 1, []]]], 6, 1),
        ("kind", [1, h, "t", [[2, 0, 1, [], 0]]], 6, 0),
        ("long_step", [1, h, "t", [[0, 0, 8, [14, b"x" * 250], 0]]], 6, 0),
        ("command", [1, h, "t", [ok, ok, [0, 0, 99, [], 0]]], 7, 2),
        ("hazardous", [1, h, "t", [ok, [0, 0, 18, [], 0]]], 7, 1),
        ("args", [1, h, "t", [[0, 0, 2, [4], 0]]], 8, 0),
        ("arg_count", [1, h, "t", [[0, 0, 2, [], 0]]], 8, 0),
        ("channel", [1, h, "t", [[1, 37, 2, 0, 100, 0]]], 9, 0),  # 37: no such channel
        ("op", [1, h, "t", [[1, 1, 6, 0, 100, 0]]], 10, 0),
        ("value", [1, h, "t", [[1, 1, 2, "x", 100, 0]]], 11, 0),
        ("bool_value", [1, h, "t", [[1, 11, 2, True, 100, 0]]], 11, 0),
        ("on_fail", [1, h, "t", [[0, 0, 1, [], 3]]], 12, 0),
        ("delay", [1, h, "t", [[0, 2**32, 1, [], 0]]], 13, 0),
        ("timeout", [1, h, "t", [[1, 1, 2, 0, -1, 0]]], 13, 0),
    ]


def test_commit_rejects_each_kind_of_invalid_image_with_its_problem(run_mp, tmp_path):
    cases = problem_cases()
    images = [c[1] if isinstance(c[1], bytes) else cbor2.dumps(c[1], canonical=True)
              for c in cases]
    lines = run(run_mp, tmp_path / "s", f"""
for img in {images!r}:
    show(upload(1, img))
    print(seq.up_slot, app.tlm[56])
""")
    expected = []
    seq = 100  # seqrig numbers commands from 101: begin, parts, commit
    for (_name, _img, problem, step), img in zip(cases, images, strict=True):
        seq += 2 + (len(img) + 127) // 128  # the commit's seq
        expected += [f"V 34 {A} 0 None", f"E {EV_INVALID} [1, {step}, {problem}]",
                     f"V 34 {F} 25 None", f"E 23 [34, {seq}, 25]", "-1 0"]
    assert lines == expected


def test_upload_resume_gaps_and_mismatches(run_mp, tmp_path):
    img, digest, names = noop_image(60)
    size = len(img)
    lines = run(run_mp, tmp_path / "s", names + f"""
show(cmd(33, [0, 0, img[0:10]]))           # no upload begun: UPLOAD_STATE
show(cmd(32, [0, {size}, d]))              # begin: 0 held
show(cmd(33, [0, 0, img[0:100]]))          # 100 held
show(cmd(33, [0, 200, img[200:300]]))      # a gap: UPLOAD_STATE
show(cmd(33, [0, 50, img[50:150]]))        # overlaps: 150 held
show(cmd(33, [0, 0, img[0:20]]))           # a repeat: still 150
show(cmd(33, [1, 150, img[150:160]]))      # another slot: UPLOAD_STATE
show(cmd(33, [0, {size} - 5, img[-5:] + b'12345678']))  # beyond the size: OUT_OF_RANGE
show(cmd(33, [0, 150, b'']))               # empty: OUT_OF_RANGE
show(cmd(33, [0, 150, 'text']))            # not bytes: BAD_ARGUMENTS
show(cmd(32, [0, {size}, d[0:31]]))        # digest length: OUT_OF_RANGE
show(cmd(34, [0]))                         # incomplete: UPLOAD_MISMATCH, kept
show(cmd(32, [0, {size}, d]))              # resume: 150 held
print(app.tlm[62])
show(cmd(33, [0, 150, img[150:278]]))
show(cmd(33, [0, 278, img[278:]]))
show(cmd(34, [1]))                         # commit of another slot: UPLOAD_STATE
show(cmd(34, [0]))                         # stored
show(cmd(34, [0]))                         # nothing in progress any more
# a wrong digest: all bytes held, SHA-256 differs: UPLOAD_MISMATCH and discarded
show(cmd(32, [2, {size}, bytes(32)]))
show(cmd(33, [2, 0, img[0:128]]))
show(cmd(33, [2, 128, img[128:256]]))
show(cmd(33, [2, 256, img[256:]]))
show(cmd(34, [2]))
show(cmd(33, [2, 0, img[0:1]]))
print(app.tlm[62], app.tlm[56])
""")
    h = int.from_bytes(digest[:4], "big")
    assert lines == [
        "V 33 1 15 None",
        f"V 32 {A} 0 None", f"V 32 {C} 0 0",
        f"V 33 {A} 0 None", f"V 33 {C} 0 100",
        "V 33 1 15 None",
        f"V 33 {A} 0 None", f"V 33 {C} 0 150",
        f"V 33 {A} 0 None", f"V 33 {C} 0 150",
        "V 33 1 15 None",
        "V 33 1 3 None",
        "V 33 1 3 None",
        "V 33 1 2 None",
        "V 32 1 3 None",
        f"V 34 {A} 0 None", f"V 34 {F} 24 None", "E 23 [34, 112, 24]",
        f"V 32 {A} 0 None", f"V 32 {C} 0 150",
        "150",
        f"V 33 {A} 0 None", f"V 33 {C} 0 278",
        f"V 33 {A} 0 None", f"V 33 {C} 0 {size}",
        "V 34 1 15 None",
        f"V 34 {A} 0 None", f"E {EV_STORED} [0, {h}, 60]", f"V 34 {C} 0 {h}",
        "V 34 1 15 None",
        f"V 32 {A} 0 None", f"V 32 {C} 0 0",
        f"V 33 {A} 0 None", f"V 33 {C} 0 128",
        f"V 33 {A} 0 None", f"V 33 {C} 0 256",
        f"V 33 {A} 0 None", f"V 33 {C} 0 {size}",
        f"V 34 {A} 0 None", f"V 34 {F} 24 None", "E 23 [34, 123, 24]",
        "V 33 1 15 None",
        "0 1",
    ]


def test_staging_survives_a_reboot_and_a_new_digest_restarts(run_mp, tmp_path):
    img, digest, _names = noop_image(30)
    root = tmp_path / "s"
    first = run(run_mp, root, f"""
show(cmd(32, [1, {len(img)}, {digest!r}]))
show(cmd(33, [1, 0, {img[:64]!r}]))
""")
    assert first[-1] == f"V 33 {C} 0 64"
    second = run(run_mp, root, f"""
print(app.tlm[62])
show(cmd(32, [1, {len(img)}, {digest!r}]))
show(cmd(33, [1, 64, {img[64:]!r}]))
show(cmd(34, [1]))
show(cmd(32, [1, {len(img)}, bytes(32)]))
""")
    h = int.from_bytes(digest[:4], "big")
    assert second == ["64", f"V 32 {A} 0 None", f"V 32 {C} 0 64",
                      f"V 33 {A} 0 None", f"V 33 {C} 0 {len(img)}",
                      f"V 34 {A} 0 None", f"E {EV_STORED} [1, {h}, 30]", f"V 34 {C} 0 {h}",
                      f"V 32 {A} 0 None", f"V 32 {C} 0 0"]


def test_a_begin_with_another_slot_size_or_digest_restarts_from_nothing(run_mp, tmp_path):
    img, _digest, names = noop_image(30)
    n = len(img)
    lines = run(run_mp, tmp_path / "s", names + f"""
for args in ([0, {n}, d], [0, {n}, bytes(32)], [0, {n}, d], [1, {n}, d], [1, {n} - 1, d],
             [1, {n}, d]):
    cmd(32, [0, {n}, d])
    cmd(33, [0, 0, img[0:100]])
    print(cmd(32, args)[-1].body[3], app.tlm[62])
""")
    # only the same slot, size and digest resume
    assert lines == ["100 100", "0 0", "100 100", "0 0", "0 0", "0 0"]


def test_control_commands_busy_stop_delete_and_list(run_mp, tmp_path):
    steps = [[0, 10000, 1, [], 0], NOOP]
    h = img_hash(steps, "sleepy")
    lines = run(run_mp, tmp_path / "s", f"""
show(cmd(35, [0]))                          # empty: NOT_FOUND
upload(0, image(DICT_HASH, "sleepy", {steps!r}))
show(cmd(35, [0]))
show(cmd(35, [0]))                          # running: BUSY
show(cmd(39, [0]))                          # running: BUSY
show(cmd(32, [0, 40, bytes(32)]))
show(cmd(34, [0]))                          # commit into the running slot: BUSY
show(tick(500))
show(cmd(36, [0]))                          # stopped at step 0
show(cmd(36, [0]))                          # not running: nothing
show(cmd(37, [0, 4, 30.0]))
show(cmd(38, []))
show(cmd(39, [0]))
show(cmd(38, []))
print(app.tlm[56], app.tlm[58])
""")
    assert lines == [
        f"V 35 {A} 0 None", f"V 35 {F} 19 None", "E 23 [35, 101, 19]",
        f"V 35 {A} 0 None", f"E {EV_STARTED} [0, 0, {h}]", f"V 35 {C} 0 None",
        "V 35 1 5 None", "V 39 1 5 None",
        f"V 32 {A} 0 None", f"V 32 {C} 0 0", "V 34 1 5 None",
        f"V 36 {A} 0 None", f"E {EV_ENDED} [0, {STOPPED}, 0]", f"V 36 {C} 0 None",
        f"V 36 {A} 0 None", f"V 36 {C} 0 None",
        f"V 37 {A} 0 None", f"V 37 {C} 0 None",
        f"V 38 {A} 0 None",
        f"V 38 {C} 0 [[{STOPPED}, 0, {h}, 2, 'sleepy', 4, 30.0], [0, 0, 0, 0, '', 0, 0.0], "
        "[0, 0, 0, 0, '', 0, 0.0], [0, 0, 0, 0, '', 0, 0.0]]",
        f"V 39 {A} 0 None", f"V 39 {C} 0 None",
        f"V 38 {A} 0 None",
        f"V 38 {C} 0 [[0, 0, 0, 0, '', 0, 0.0], [0, 0, 0, 0, '', 0, 0.0], "
        "[0, 0, 0, 0, '', 0, 0.0], [0, 0, 0, 0, '', 0, 0.0]]",
        "0 0",
    ]


def test_a_reset_mid_run_is_reported_at_boot_and_triggers_stand(run_mp, tmp_path):
    steps = [[0, 60000, 1, [], 0]]
    h = img_hash(steps)
    root = tmp_path / "s"
    run(run_mp, root, f"""
upload(3, image(DICT_HASH, "t", {steps!r}))
cmd(37, [3, 2, 0.0])
cmd(35, [3])
tick(100)
""")
    lines = run(run_mp, root, """
print(seq.state[3], seq.trigger[3], app.tlm[56] >> 12)
for r in app.log.records(0):
    if r[2] == 50:
        print(r[2], r[4])
""")
    assert lines == [f"{FAILED} 2 {FAILED}", f"{EV_INTERRUPTED} [3, {h}]"]


def test_triggers_fire_once_per_edge(run_mp, tmp_path):
    steps = [NOOP]
    h = img_hash(steps)
    lines = run(run_mp, tmp_path / "s", f"""
img = image(DICT_HASH, "t", {steps!r})
for slot in range(3):
    upload(slot, img)
cmd(37, [0, 1, 0.0])    # SAFE_ENTRY
cmd(37, [1, 2, 0.0])    # SUNSET
cmd(37, [2, 4, 40.0])   # BATTERY_BELOW 40 %
cmd(37, [3, 3, 0.0])    # SUNRISE on an empty slot
tlm = app.tlm
tlm[8] = True
tlm[11] = 50.0
show(tick(100), (3,))   # the first tick only samples
print('nominal')
cmd(2, [2])
show(tick(100), (3,))
print('safe')
cmd(2, [1])
show(tick(100), (3,))
show(tick(100), (3,))   # still SAFE: no second start
print('sunset')
tlm[8] = False
show(tick(100), (3,))
show(tick(100), (3,))   # still night: nothing more
print('sunrise')
tlm[8] = True
show(tick(100), (3,))
print('low')
tlm[11] = 39.5
show(tick(100), (3,))
tlm[11] = 40.5          # back above the level but not level + 1: not armed again
show(tick(100), (3,))
tlm[11] = 39.0
show(tick(100), (3,))
print('rearm')
tlm[11] = 41.0
show(tick(100), (3,))
tlm[11] = 30.0
show(tick(100), (3,))
""")
    def fired(slot: int, trig: int) -> list[str]:
        return [f"E {EV_TRIGGERED} [{slot}, {trig}, 0]", f"E {EV_STARTED} [{slot}, {trig}, {h}]",
                f"E {EV_STEP} [{slot}, 0]", f"E {EV_ENDED} [{slot}, {DONE}, 0]"]
    assert lines == (
        ["nominal", "safe"]
        + fired(0, 1)
        + ["sunset"] + fired(1, 2)
        + ["sunrise", f"E {EV_TRIGGERED} [3, 3, 19]"]
        + ["low"] + fired(2, 4)
        + ["rearm"] + fired(2, 4)
    )


def test_a_trigger_on_a_running_slot_reports_busy(run_mp, tmp_path):
    steps = [[0, 60000, 1, [], 0]]
    lines = run(run_mp, tmp_path / "s", f"""
upload(0, image(DICT_HASH, "t", {steps!r}))
cmd(37, [0, 2, 0.0])
app.tlm[8] = True
tick(100)
cmd(35, [0])
app.tlm[8] = False
show(tick(100), (3,))
print(seq.state[0])
""")
    assert lines == [f"E {EV_TRIGGERED} [0, 2, 5]", "2"]


def test_waiting_and_idle_ticks_allocate_nothing(run_mp, tmp_path):
    steps = [[1, ids.CH_BATTERY_SOC, 0, -5.0, 600000, 0]]
    lines = run(run_mp, tmp_path / "s", f"""
from hotpath import locked
upload(0, image(DICT_HASH, "t", {steps!r}))
cmd(37, [1, 4, 20.0])
cmd(37, [2, 2, 0.0])
cmd(35, [0])
tick(100)               # the wait step is loaded (reads the flash)
board.now += 100
print(locked(seq.tick))
app.tlm[11] = 10.0       # below the level: fires on an empty slot (an event: allocates
tick(100)                # nothing either, but is checked apart)
app.tlm[11] = 15.0
board.now += 100
print(locked(seq.tick))
print(seq.state[0], seq.step[0])
""")
    assert lines == ["None", "None", "2 0"]


def test_the_writing_commands_code_is_loaded_only_while_it_works(run_mp, tmp_path):
    img = cbor2.dumps([1, DICT_HASH, "t", [NOOP] * 30], canonical=True)
    lines = run(run_mp, tmp_path / "s", f"""
import sys, hashlib
def loaded():
    return [m for m in ('node.seqcmds', 'node.seqcheck') if m in sys.modules]
img = {img!r}
print(loaded())                       # after boot
cmd(38, [])
print(loaded())                       # seq_list done, no upload: dropped
cmd(32, [0, len(img), hashlib.sha256(img).digest()])
print(loaded())                       # an upload in progress: kept
cmd(33, [0, 0, img[0:128]])
cmd(33, [0, 128, img[128:]])
print(cmd(34, [0])[-1].body[1:3])
print(loaded())                       # committed: dropped
""")
    assert lines == ["[]", "[]", "['node.seqcmds', 'node.seqcheck']", "[2, 0]", "[]"]


def test_the_executor_is_loaded_only_while_a_slot_runs_or_has_a_trigger(run_mp, tmp_path):
    steps = [NOOP, [0, 300, ids.CMD_NOOP, [], 0]]
    lines = run(run_mp, tmp_path / "s", f"""
import sys
def loaded():
    return ['node.seqrun' in sys.modules, seq.buf is not None]
tick()
print(loaded())                       # after boot: nothing stored
print(upload(0, image(DICT_HASH, "t", {steps!r}))[-1].body[1:3])
tick()
print(loaded())                       # stored, idle, no trigger
cmd(35, [0])
print(loaded())                       # started: the next tick loads it
tick()
print(loaded(), seq.state[0], seq.step[0])  # step 1 waits for its 300 ms
tick(500)
print(loaded(), seq.state[0])         # ended: dropped at that tick
cmd(37, [0, 2, 0.0])                  # trigger at sunset
tick()
print(loaded())
cmd(37, [0, 0, 0.0])                  # no trigger
tick()
print(loaded())
""")
    assert lines == ["[False, False]", "[2, 0]", "[False, False]", "[False, False]",
                     "[True, True] 2 1", "[False, False] 3",
                     "[True, True]", "[False, False]"]
