"""`ground run SCRIPT.py`: steps, their session log records, exit codes, Ctrl-C.

Against the fake node (tests/ground/fakenode.py), which makes every verification and value
deterministic, so each step's log record is compared whole; Ctrl-C with a real SIGINT to a
`ground run` subprocess, with a command in flight (the fake node holds its final stage).
The example scripts run on the simulated node: tests/ground/test_example_scripts.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakenode import FakeNode

from ground import cli, codec
from ground.errors import EXIT_CHECK, EXIT_INTERRUPTED, EXIT_SCRIPT
from ground.link import decode_wire
from ground.log import LogReader

GROUND = [sys.executable, "-m", "ground"]
_WAIT_S = 60.0


def write(tmp_path: Path, text: str, name: str = "s.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def noop_then_set_mode(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    """A script of two steps, noop then set_mode MODE, and the session log its run writes."""
    script = write(tmp_path, f"""
        command("noop")
        command("set_mode", mode="{mode}")
    """)
    return script, tmp_path / "run.jsonl"


def notes(log: Path, key: str) -> list[dict[str, Any]]:
    """The ``key`` objects (``step`` or ``script``) of a session log's note records."""
    return [r.fields[key] for r in LogReader(log) if r.type == "note" and key in r.fields]


def texts(log: Path) -> list[str]:
    return [r.fields["text"] for r in LogReader(log)
            if r.type == "note" and ("step" in r.fields or "script" in r.fields)]


def uplink_seqs(log: Path, cmd_id: int) -> list[int]:
    """Sequence numbers of the commands ``cmd_id`` sent, in order, once each."""
    seqs: list[int] = []
    for r in LogReader(log):
        if r.type == "up":
            msg = codec.decode(decode_wire(r.data).message)  # type: ignore[union-attr]
            if msg.id == cmd_id and msg.seq not in seqs:
                seqs.append(msg.seq)
    return seqs


def run_script(capsys: pytest.CaptureFixture[str], script: Path, port: str, log: Path,
               *more: str) -> tuple[int, str, str]:
    os.chdir(script.parent)  # locations are shown relative to the working directory
    code = cli.main(["run", script.name, "--port", port, "--log", str(log), *more])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _keep_cwd() -> Any:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_every_step_is_logged_with_its_location_and_outcome(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        command("set_mode", mode="NOMINAL")
        wait_event("mode_changed", new="NOMINAL")
        soc = wait_telemetry("battery_soc", less_than(20), timeout=5)
        check(soc, at_most(12.5), "charge")
        check(telemetry("mode") == 2)
        value = command("param_get", param="battery_setpoint")
        check(value, 5.0)
    """)
    log = tmp_path / "run.jsonl"
    code, out, err = run_script(capsys, script, fake_node.port, log)
    assert (code, err) == (0, "")
    set_mode, param_get = uplink_seqs(log, 2) + uplink_seqs(log, 7)
    steps = notes(log, "step")
    begin = [s for s in steps if s["phase"] == "begin"]
    end = [s for s in steps if s["phase"] == "end"]
    assert begin == [
        {"n": 1, "phase": "begin", "at": "s.py:1", "verb": "command",
         "what": "set_mode mode=NOMINAL"},
        {"n": 2, "phase": "begin", "at": "s.py:2", "verb": "wait_event",
         "what": "mode_changed new=NOMINAL (within 10 s)"},
        {"n": 3, "phase": "begin", "at": "s.py:3", "verb": "wait_telemetry",
         "what": "battery_soc < 20 (within 5 s)"},
        {"n": 4, "phase": "begin", "at": "s.py:4", "verb": "check", "what": "charge <= 12.5"},
        {"n": 5, "phase": "begin", "at": "s.py:5", "verb": "check",
         "what": 'telemetry("mode") == 2 is true'},
        {"n": 6, "phase": "begin", "at": "s.py:6", "verb": "command",
         "what": "param_get param=battery_setpoint"},
        {"n": 7, "phase": "begin", "at": "s.py:7", "verb": "check", "what": "value == 5.0"},
    ]
    details = [(s["n"], s["outcome"], s["detail"], s.get("seq")) for s in end]
    assert details[:2] == [
        (1, "passed", f"accepted, completed (seq {set_mode})", set_mode),
        (2, "passed", "mode_changed: mode SAFE -> NOMINAL (event 1)", None),
    ]
    n, outcome, detail, seq = details[2]
    assert (n, outcome, seq) == (3, "passed", None)
    assert detail.startswith("battery_soc = 12.5 % (red) after ") and detail.endswith(" s")
    assert details[3:] == [
        (4, "passed", "charge = 12.5 % (red)", None),
        (5, "passed", 'telemetry("mode") == 2 = true', None),
        (6, "passed", f"accepted, completed (seq {param_get}) -> 5", param_get),
        (7, "passed", "value = 5", None),
    ]
    assert [{k: v for k, v in s.items() if k not in ("outcome", "detail", "seq")}
            for s in end] == [{**b, "phase": "end"} for b in begin]
    # each step's records bracket its frames: the command went out between its two records
    records = [r for r in LogReader(log) if r.type in ("note", "up")]
    kinds = [r.fields["step"]["phase"] if "step" in r.fields else r.type for r in records
             if r.type == "up" or "step" in r.fields]
    first = kinds.index("begin")  # after the status that connecting sends
    assert kinds[first:first + 6] == ["begin", "up", "end", "begin", "end", "begin"]
    scripts = notes(log, "script")
    assert scripts[0] == {"phase": "begin", "path": "s.py", "args": []}
    assert {k: v for k, v in scripts[1].items() if k != "seconds"} == {
        "phase": "end", "path": "s.py", "outcome": "passed", "exit": 0, "steps": 7}
    assert texts(log)[0] == "script s.py begin"
    assert texts(log)[1] == "step 1 begin s.py:1 command set_mode mode=NOMINAL"
    assert texts(log)[2] == (f"step 1 passed s.py:1 command set_mode mode=NOMINAL: accepted, "
                             f"completed (seq {set_mode})")
    # `ground replay` shows every step's text, in order
    from ground.replay import Replay

    replayed = [str(i.value) for i in Replay(log).run() if i.topic == "note"]
    assert [t for t in replayed if t.startswith(("step ", "script "))] == texts(log)
    assert len(texts(log)) == 2 + 2 * 7
    # the terminal: one line per step with its location and outcome, then the summary
    lines = out.splitlines()
    assert lines[0].startswith(f"s.py on {fake_node.port} (session log ")
    assert lines[1].split() == ["1", "s.py:1", "command", "set_mode", "mode=NOMINAL", "ok",
                                "accepted,", "completed", "(seq", f"{set_mode})"]
    assert len(lines) == 9 and lines[8].startswith("s.py: passed after 7 steps (")
    assert lines[8].endswith(f"), exit 0; session log {log}")


def test_a_failed_check_stops_the_script_with_exit_8(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        soc = telemetry("battery_soc")
        check(soc, 12.5)
        check(soc, greater_than(50), "battery charge")
        command("noop")
    """)
    log = tmp_path / "run.jsonl"
    fake_node.hk_period_s = None  # telemetry() then reads the last sample before the run
    code, out, err = run_script(capsys, script, fake_node.port, log)
    # no housekeeping at all: the latest value is None, and check() says so
    assert code == EXIT_CHECK == 8
    assert err == ("ground: check failed at s.py:2 (step 1): soc = None, expected == 12.5\n")
    steps = notes(log, "step")
    assert steps == [
        {"n": 1, "phase": "begin", "at": "s.py:2", "verb": "check", "what": "soc == 12.5"},
        {"n": 1, "phase": "end", "at": "s.py:2", "verb": "check", "what": "soc == 12.5",
         "outcome": "failed", "detail": "soc = None, expected == 12.5"},
    ]
    end = notes(log, "script")[-1]
    assert (end["outcome"], end["exit"], end["steps"], end["at"]) == ("failed", 8, 1, "s.py:2")
    assert uplink_seqs(log, 1) == []  # nothing after the failed check was sent
    assert "s.py: failed after 1 steps" in out


def test_a_check_with_values_fails_with_both_values(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        soc = wait_telemetry("battery_soc")
        check(soc, greater_than(50), "battery charge")
    """)
    log = tmp_path / "run.jsonl"
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    assert code == 8
    assert err == ("ground: check failed at s.py:2 (step 2): battery charge = 12.5 % (red), "
                   "expected > 50\n")
    assert notes(log, "step")[-1] == {
        "n": 2, "phase": "end", "at": "s.py:2", "verb": "check",
        "what": "battery charge > 50", "outcome": "failed",
        "detail": "battery charge = 12.5 % (red), expected > 50"}


def test_a_rejected_command_is_a_failed_step(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script, log = noop_then_set_mode(tmp_path, "SCIENCE")
    fake_node.reject_next = 0
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    # the fake node fails SAFE -> SCIENCE with code 18
    (seq,) = uplink_seqs(log, 2)
    assert code == 8
    assert err.startswith(f"ground: command failed at s.py:2 (step 2): set_mode was not "
                          f"completed: set_mode (seq {seq}) failed: ")
    end = notes(log, "step")[-1]
    assert (end["n"], end["outcome"], end["seq"], end["at"]) == (2, "failed", seq, "s.py:2")
    assert end["detail"].startswith(f"set_mode was not completed: set_mode (seq {seq}) failed")


def test_wait_timeout_is_a_failed_step_saying_what_arrived(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        wait_event("sunset", timeout=0.3)
    """)
    log = tmp_path / "run.jsonl"
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    assert code == 8
    assert err == (f"ground: wait_event failed at s.py:1 (step 1): timed out after 0.3 s "
                   f"waiting for event sunset; received: no events; session log: {log}\n")


def test_an_exception_in_the_script_exits_9_with_its_own_frames(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    write(tmp_path, """
        def ratio(x):
            return 1 / x
    """, "helper.py")
    script = write(tmp_path, """
        from helper import ratio

        def step_two():
            command("lod_switch", channel=1, on=True)

        command("noop")
        ratio(0)
    """)
    log = tmp_path / "run.jsonl"
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    assert code == EXIT_SCRIPT == 9
    assert err.splitlines() == [
        "Traceback (most recent call last; the script's frames):",
        '  File "s.py", line 7, in <module>',
        "    ratio(0)",
        f'  File "{tmp_path / "helper.py"}", line 2, in ratio',
        "    return 1 / x",
        "           ~~^~~",
        "ZeroDivisionError: division by zero",
        "ground: error: the script raised ZeroDivisionError at helper.py:2 (exit 9)",
    ]
    end = notes(log, "script")[-1]
    assert (end["outcome"], end["exit"], end["steps"]) == ("error", 9, 1)
    # a bad name given to a step is the script's error too, shown at the script's line
    script = write(tmp_path, """
        command("lod_switch", channel=1, on=True)
    """)
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    assert code == 9
    assert err.splitlines() == [
        "Traceback (most recent call last; the script's frames):",
        '  File "s.py", line 1, in <module>',
        '    command("lod_switch", channel=1, on=True)',
        "ground.errors.UnknownName: unknown command 'lod_switch': did you mean load_switch?",
        "ground: error: the script raised UnknownName at s.py:1 (exit 9)",
    ]
    assert notes(log, "step")[-1] == {
        "n": 1, "phase": "end", "at": "s.py:1", "verb": "command",
        "what": "lod_switch channel=1 on=true", "outcome": "error",
        "detail": "UnknownName: unknown command 'lod_switch': did you mean load_switch?"}


def test_syntax_error_and_missing_script_cost_no_connection(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    script = write(tmp_path, "command(\n")
    code, _out, err = run_script(capsys, script, "/dev/ttyNOPE", tmp_path / "x.jsonl")
    assert code == 9
    assert err.endswith("ground: error: the script does not compile: '(' was never closed "
                        "(s.py, line 1) (exit 9)\n")
    code, _out, err = run_script(capsys, tmp_path / "none.py", "/dev/ttyNOPE",
                                 tmp_path / "x.jsonl")
    assert (code, err) == (2, "ground: error: cannot read script none.py: No such file or "
                              "directory\n")
    assert not (tmp_path / "x.jsonl").exists()


def test_sys_exit_and_script_arguments(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        import sys
        from ground.script import command, check
        print("argv", sys.argv, __name__)
        command("noop")
        sys.exit(int(sys.argv[-1]))
    """)
    log = tmp_path / "run.jsonl"
    code, out, _err = run_script(capsys, script, fake_node.port, log, "--timeout", "3", "--",
                                 "--count", "6")
    assert code == 6
    assert "argv ['s.py', '--count', '6'] __main__" in out
    end = notes(log, "script")
    assert end[0]["args"] == ["--count", "6"]
    assert (end[1]["outcome"], end[1]["exit"]) == ("exited", 6)
    # options of `ground run` may also follow the script; the first other word ends them
    os.chdir(tmp_path)
    code = cli.main(["run", "s.py", "--port", fake_node.port, "--log", str(log), "x", "0"])
    out, _ = capsys.readouterr()
    assert code == 0 and "argv ['s.py', 'x', '0'] __main__" in out


def test_a_reboot_under_a_command_is_outcome_unknown_exit_7(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script = write(tmp_path, """
        command("set_mode", mode="NOMINAL")
        command("noop")
    """)
    log = tmp_path / "run.jsonl"
    fake_node.hold_final = {2}  # accepted; then the node reboots: it may or may not have run

    def reboot_when_held() -> None:
        deadline = time.monotonic() + _WAIT_S
        while fake_node.holding == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake_node.reboot()  # its housekeeping now says boot 4

    threading.Thread(target=reboot_when_held, daemon=True).start()
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    (seq,) = uplink_seqs(log, 2)
    unknown = (f"set_mode (seq {seq}): outcome UNKNOWN: the node went from boot 3 to boot 4 "
               f"before a final verification (got accepted); it may or may not have run: "
               f"check the node's state before sending it again; log: {log}")
    assert code == 7
    assert err == f"ground: error at s.py:1: {unknown}\n"
    assert notes(log, "step")[-1] == {
        "n": 1, "phase": "end", "at": "s.py:1", "verb": "command",
        "what": "set_mode mode=NOMINAL", "outcome": "unknown", "seq": seq, "detail": unknown}
    end = notes(log, "script")[-1]
    assert (end["outcome"], end["exit"], end["at"]) == ("error", 7, "s.py:1")


def test_a_command_re_bound_after_a_reboot_shows_only_its_own_outcome(
        capsys: pytest.CaptureFixture[str], fake_node: FakeNode, tmp_path: Path) -> None:
    script, log = noop_then_set_mode(tmp_path, "NOMINAL")
    fake_node.hk_period_s = None  # the ground learns the new boot only from STALE_BOOT

    def noop_then_reboot(seq: int, args: list[Any]) -> tuple[int, int, Any]:
        fake_node.reboot()
        return 2, 0, None

    fake_node._cmd_1 = noop_then_reboot  # type: ignore[attr-defined]
    code, _out, err = run_script(capsys, script, fake_node.port, log)
    assert (code, err) == (0, "")
    (seq,) = uplink_seqs(log, 2)
    stages = [codec.stage_name(m.body[1]) for m in downlink(log, 2)]
    assert stages == ["rejected", "accepted", "completed"]  # STALE_BOOT, then re-bound
    assert notes(log, "step")[-1]["detail"] == f"accepted, completed (seq {seq})"


def downlink(log: Path, cmd_id: int) -> list[codec.Message]:
    """The verifications of command ``cmd_id`` received."""
    out = []
    for r in LogReader(log):
        if r.type == "down":
            msg = codec.decode(decode_wire(r.data).message)  # type: ignore[union-attr]
            if msg.kind == 1 and msg.id == cmd_id:
                out.append(msg)
    return out


# --- Ctrl-C: a real SIGINT to a `ground run` process -----------------------------------------


class Running:
    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.err = cwd / "stderr.txt"
        self.out = cwd / "stdout.txt"
        env = {**os.environ, "ILRS_LOG_DIR": str(cwd / "logs")}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([*GROUND, *argv], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=cwd, env=env)

    def wait_for(self, what: str, ready: Any) -> None:
        deadline = time.monotonic() + _WAIT_S
        while not ready():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: " \
                                             f"{self.err.read_text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def finish(self) -> tuple[int, str, str]:
        code = self.proc.wait(_WAIT_S)
        return code, self.out.read_text(), self.err.read_text()


def _in_flight(tmp_path: Path, node: FakeNode, *more: str) -> tuple[Running, Path]:
    """A script whose second command is in flight: accepted, its final stage held."""
    write(tmp_path, """
        command("noop")
        command("set_mode", mode="NOMINAL")
        command("noop")
    """)
    log = tmp_path / "run.jsonl"
    node.hold_final = {2}
    run = Running(["run", "s.py", "--port", node.port, "--log", str(log), *more], tmp_path)
    run.wait_for("set_mode accepted", lambda: node.holding == 1)
    return run, log


def test_ctrl_c_waits_for_the_command_in_flight_then_stops_130(
        fake_node: FakeNode, tmp_path: Path) -> None:
    run, log = _in_flight(tmp_path, fake_node)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("the message", lambda: "Ctrl-C" in run.err.read_text())
    fake_node.release()  # its verification comes: the step is logged with it
    code, out, err = run.finish()
    assert code == EXIT_INTERRUPTED == 130
    (seq,) = uplink_seqs(log, 2)
    assert err == ("ground: Ctrl-C: waiting for the verification of step 2 (set_mode "
                   "mode=NOMINAL); Ctrl-C again stops at once, its outcome unknown\n"
                   "ground: interrupted at step 2 (s.py:2 command)\n")
    assert notes(log, "step")[-1] == {
        "n": 2, "phase": "end", "at": "s.py:2", "verb": "command",
        "what": "set_mode mode=NOMINAL", "outcome": "passed", "seq": seq,
        "detail": f"accepted, completed (seq {seq}), then Ctrl-C"}
    assert fake_node.executed[1] == 1  # the third command was never sent
    end = notes(log, "script")[-1]
    assert (end["outcome"], end["exit"], end["steps"]) == ("interrupted", 130, 2)
    assert [r.fields["state"] for r in LogReader(log) if r.type == "link"] == ["up", "closed"]
    assert "s.py: interrupted after 2 steps" in out


def test_a_second_ctrl_c_stops_at_once_and_the_outcome_is_unknown(
        fake_node: FakeNode, tmp_path: Path) -> None:
    run, log = _in_flight(tmp_path, fake_node, "--timeout", "600")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("the message", lambda: "Ctrl-C" in run.err.read_text())
    run.proc.send_signal(signal.SIGINT)
    code, _out, err = run.finish()
    assert code == 130
    (seq,) = uplink_seqs(log, 2)
    assert err.endswith("ground: interrupted at step 2 (s.py:2 command)\n")
    assert notes(log, "step")[-1] == {
        "n": 2, "phase": "end", "at": "s.py:2", "verb": "command",
        "what": "set_mode mode=NOMINAL", "outcome": "unknown", "seq": seq,
        "detail": f"accepted (seq {seq}), then Ctrl-C"}
    assert [r.fields["state"] for r in LogReader(log) if r.type == "link"] == ["up", "closed"]


def test_ctrl_c_then_no_final_verification_in_time_is_unknown(
        fake_node: FakeNode, tmp_path: Path) -> None:
    run, log = _in_flight(tmp_path, fake_node, "--timeout", "2")
    run.proc.send_signal(signal.SIGINT)
    code, _out, _err = run.finish()  # the command's own timeout ends the wait
    assert code == 130
    (seq,) = uplink_seqs(log, 2)
    assert notes(log, "step")[-1]["outcome"] == "unknown"
    assert notes(log, "step")[-1]["detail"] == f"accepted (seq {seq}), then Ctrl-C"


def test_help_and_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ground run [-h] [--port URL]")
    for text in ("from ground.script import command, wait_telemetry, wait_event, check",
                 "--time-scale X", "Exit codes: 0 the script ran to its end",
                 "8 a step failed", "9 the script raised", "130 Ctrl-C"):
        assert text in out, text
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert "run a Python script against the node" in capsys.readouterr().out
    # a `ground run` option after the script is checked like one before it
    script = write(tmp_path, "command('noop')\n")
    code, _out, err = run_script(capsys, script, "/dev/ttyNOPE", tmp_path / "x.jsonl",
                                 "--timeout", "soon")
    assert code == 2
    assert err == "ground: error: run: argument --timeout: 'soon' is not a number\n"
