"""The example ground scripts (examples/scripts/) run to their end on the simulated node, every
step logged where the script says; a failing one stops at its check with exit 8; Ctrl-C in a
wait stops a real `ground run` process cleanly, its simulated node and folder with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ground import cli
from ground.log import LogReader
from ground.micropython import REPO_ROOT
from ground.simnode import TEMP_PREFIX

pytestmark = pytest.mark.slow

SCRIPTS = REPO_ROOT / "examples" / "scripts"
GROUND = [sys.executable, "-m", "ground"]
_WAIT_S = 120.0


def steps_of(log: Path) -> list[dict[str, Any]]:
    return [r.fields["step"] for r in LogReader(log) if r.type == "note" and "step" in r.fields]


def line_of(script: str, text: str, nth: int = 1) -> str:
    """``script:N`` for the nth line of the script that contains ``text``."""
    lines = (SCRIPTS / script).read_text().splitlines()
    found = [i + 1 for i, line in enumerate(lines) if text in line]
    assert len(found) >= nth, f"{text!r} is not in {script}"
    return f"{script}:{found[nth - 1]}"


def run(capsys: pytest.CaptureFixture[str], script: str, port: str, log: Path,
        *script_args: str, options: tuple[str, ...] = ()) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(SCRIPTS)
    try:
        code = cli.main(["run", script, "--port", port, "--log", str(log), *options, "--",
                         *script_args])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


def expect_passed(log: Path, expected: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every step began and ended passed, in order, at these (file:line, verb)."""
    steps = steps_of(log)
    begins = [s for s in steps if s["phase"] == "begin"]
    ends = [s for s in steps if s["phase"] == "end"]
    assert [(s["at"], s["verb"]) for s in begins] == expected
    assert [(s["n"], s["at"], s["outcome"]) for s in ends] == [
        (n, at, "passed") for n, (at, _verb) in enumerate(expected, 1)]
    assert [s["phase"] for s in steps] == ["begin", "end"] * len(expected)  # one at a time
    return ends


def test_power_checkout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "checkout.jsonl"
    code, out, err = run(capsys, "power_checkout.py", "sim://?time_factor=600", log,
                         "--loads", "seismometer,rover_charger")
    assert (code, err) == (0, "")
    s = "power_checkout.py"

    def at(text: str) -> str:
        return line_of(s, text)

    per_load = [(at('check(latest("loads_on")'), "check"),
                (at('base = wait_telemetry("bus_current")'), "wait_telemetry"),
                (at("on=True)"), "command"),
                (at("bit_set(channel), timeout"), "wait_telemetry"),
                (at('current = wait_telemetry(f"current_'), "wait_telemetry"),
                (at("check(current,"), "check"),
                (at('bus = wait_telemetry("bus_current"'), "wait_telemetry"),
                (at("check(bus.value - base"), "check"),
                (at('check(latest("loads_tripped")'), "check"),
                (at("on=False)"), "command"),
                (at("bit_clear(channel), timeout"), "wait_telemetry"),
                (at("at_most(0.01)"), "wait_telemetry")]
    ends = expect_passed(log, [
        (at('mode="NOMINAL"'), "command"), (at('"mode", "NOMINAL"'), "wait_telemetry"),
        (at("rate=5.0"), "command"), *per_load, *per_load,
        (at("rate=LOADS_RATE_HZ"), "command"), (at('mode="SAFE"'), "command"),
        (at('"mode", "SAFE"'), "wait_telemetry")])
    currents = [e for e in ends if e["what"].startswith(("seismometer current",
                                                         "rover_charger current"))]
    assert [c["what"] for c in currents] == ["seismometer current within 0.12..0.18",
                                             "rover_charger current within 2..3"]
    assert all(c["detail"].endswith(" A") for c in currents)
    assert out.splitlines()[-1].startswith("power_checkout.py: passed after 30 steps (")


def test_power_checkout_stops_at_its_first_failed_check(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "checkout.jsonl"
    code, _out, err = run(capsys, "power_checkout.py", "sim://?time_factor=600", log,
                          "--loads", "seismometer", "--tolerance", "0.000001")
    where = line_of("power_checkout.py", "check(current,")
    assert code == 8
    last = steps_of(log)[-1]
    assert (last["at"], last["verb"], last["outcome"]) == (where, "check", "failed")
    assert last["what"] == "seismometer current within 0.15..0.15"
    value = last["detail"].split(" = ", 1)[1].split(", expected")[0]
    assert err == (f"ground: check failed at {where} (step {last['n']}): seismometer current = "
                   f"{value}, expected within 0.15..0.15\n")
    # the load stays on: nothing after the failed check was sent
    assert [s["verb"] for s in steps_of(log) if s["phase"] == "end"][-3:] == [
        "wait_telemetry", "wait_telemetry", "check"]


def test_heater_test(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "heater.jsonl"
    code, out, err = run(capsys, "heater_test.py", "sim://?time_factor=600", log,
                         options=("--time-scale", "auto"))
    assert (code, err) == (0, "")
    # the target measured first, as the HIL rig does: said on the terminal and in the log
    (measured,) = [r.fields["text"] for r in LogReader(log)
                   if r.type == "note" and r.fields["text"].startswith("time scale ")]
    assert "(measured: node clock " in measured and out.startswith(measured + "\n")
    s = "heater_test.py"

    def at(text: str, nth: int = 1) -> str:
        return line_of(s, text, nth)

    per_heater = [(at("setpoint = command("), "command"), (at('mode="ON"'), "command"),
                  (at("bit_set(heater)"), "wait_telemetry"),
                  (at("current = wait_telemetry("), "wait_telemetry"),
                  (at("check(current,"), "check"), (at('mode="OFF"'), "command"),
                  (at("bit_clear(heater)"), "wait_telemetry"),
                  (at("at_most(0.01)"), "wait_telemetry"),
                  (at("setpoint=trial)"), "command"), (at('wait_event("param_changed"'),
                                                       "wait_event"),
                  (at('check(command("param_get"', 1), "command"),
                  (at('check(command("param_get"', 1), "check"),
                  (at("setpoint=setpoint)"), "command"), (at('mode="AUTO"'), "command"),
                  (at('check(command("param_get"', 2), "command"),
                  (at('check(command("param_get"', 2), "check")]
    ends = expect_passed(log, per_heater * 2)
    assert [e["detail"] for e in ends if e["verb"] == "wait_event"] == [
        "param_changed: parameter battery_setpoint changed (event "
        + ends[9]["detail"].rsplit("(event ", 1)[1],
        "param_changed: parameter electronics_setpoint changed (event "
        + ends[25]["detail"].rsplit("(event ", 1)[1]]
    assert [e["detail"] for e in ends if e["verb"] == "check" and "setpoint" in e["what"]] == [
        "battery_setpoint read back = 3.5", "battery_setpoint restored = 5",
        "electronics_setpoint read back = -11.5", "electronics_setpoint restored = -10"]


def test_safe_recovery_drill(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "drill.jsonl"
    code, _out, err = run(capsys, "safe_recovery_drill.py", "sim://?time_factor=5000", log)
    assert (code, err) == (0, "")
    s = "safe_recovery_drill.py"

    def at(text: str, nth: int = 1) -> str:
        return line_of(s, text, nth)

    ends = expect_passed(log, [
        (at('check(latest("lunar_day")'), "check"), (at('mode="NOMINAL")', 1), "command"),
        (at('channel="seismometer"'), "command"), (at('channel="dust_camera"'), "command"),
        (at('wait_telemetry("loads_on", bit_set'), "wait_telemetry"),
        (at('fault="BATTERY_DRAIN"'), "command"), (at('wait_event("loads_shed"'), "wait_event"),
        (at("has the seismometer"), "check"), (at("has the dust camera"), "check"),
        (at('wait_event("safe_mode"'), "wait_event"), (at('fault="CLEAR"'), "command"),
        (at('loads = wait_telemetry("loads_on"'), "wait_telemetry"),
        (at("dust camera shed"), "check"), (at("comms relay (essential) kept"), "check"),
        (at('check_telemetry("mode", "SAFE")'), "check_telemetry"),
        (at('mode="NOMINAL")', 2), "command"), (at('new="SAFE"'), "wait_event"),
        (at('param="shed_soc_pct"'), "command"), (at('"battery_soc", at_least'),
                                                  "wait_telemetry"),
        (at('mode="NOMINAL")', 3), "command"), (at('wait_telemetry("mode", "NOMINAL"'),
                                                 "wait_telemetry"),
        (at('no_event("safe_mode"'), "no_event"),
        (at('check_telemetry("mode", "NOMINAL")'), "check_telemetry")])
    assert ends[9]["detail"].startswith("safe_mode: safe mode forced: LOW_CHARGE (event ")
    # the NOMINAL commanded too early is undone after it, not matched by an older event
    forced = int(ends[16]["detail"].rsplit("(event ", 1)[1].rstrip(")"))
    safe = int(ends[9]["detail"].rsplit("(event ", 1)[1].rstrip(")"))
    assert ends[16]["detail"].startswith("mode_changed: mode NOMINAL -> SAFE") and forced > safe + 1


def test_ctrl_c_in_a_wait_stops_cleanly_with_its_node(tmp_path: Path) -> None:
    from test_lifetime import alive, children, node_of, wait_for

    (tmp_path / "tmp").mkdir()
    script = tmp_path / "wait.py"
    script.write_text('command("noop")\nwait_event("sunset", timeout=3600)\ncommand("noop")\n')
    log = tmp_path / "run.jsonl"
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "ILRS_LOG_DIR": str(tmp_path)}
    env.pop("ILRS_PORT", None)
    err_path = tmp_path / "err.txt"
    with open(err_path, "wb") as err_file:
        proc = subprocess.Popen([*GROUND, "run", "wait.py", "--port", "sim", "--log", str(log)],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=err_file, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: log.exists() and "step 2 begin" in log.read_text(), "the wait",
                 _WAIT_S)
        node = node_of(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(_WAIT_S) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert err_path.read_text() == "ground: interrupted at step 2 (wait.py:2 wait_event)\n"
    last = steps_of(log)[-1]
    assert {k: v for k, v in last.items()} == {
        "n": 2, "phase": "end", "at": "wait.py:2", "verb": "wait_event",
        "what": "sunset (within 3600 s)", "outcome": "interrupted", "detail": "Ctrl-C"}
    states = [r.fields["state"] for r in LogReader(log) if r.type == "link"]
    assert states == ["up", "closed"]
    wait_for(lambda: not alive(node), f"node {node} to stop")
    assert not children(proc.pid)
    assert list((tmp_path / "tmp").glob(TEMP_PREFIX + "*")) == []
