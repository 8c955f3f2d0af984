"""Every `ground` subcommand, in-process through cli.main and a few as real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakenode import FakeNode

from ground import cli, codec
from ground.link import decode_wire
from ground.log import LogReader
from ground.micropython import REPO_ROOT
from protocol.node_dictionary import DICT_HASH

GROUND = [sys.executable, "-m", "ground"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", [*cli.SUBCOMMANDS, None])
def test_help_everywhere(capsys: pytest.CaptureFixture[str], name: str | None) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([name, "--help"] if name else ["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ground" in out and ("--port URL" in out or name is None)


def test_no_subcommand_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 2 and "SUBCOMMAND" in out


def test_bad_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["tlm", "--format", "xml"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_cmd_noop_and_set_mode(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    code, out, _ = run(capsys, "cmd", "noop", "--port", sim_port)
    assert code == 0 and "noop seq" in out and "accepted, completed" in out
    code, out, _ = run(capsys, "cmd", "set_mode", "mode=NOMINAL", "--port", sim_port, "--json")
    assert code == 0 and json.loads(out)["stages"] == ["accepted", "completed"]
    code, out, _ = run(
        capsys, "cmd", "load_switch", "channel=seismometer", "on=true", "--port", sim_port
    )
    assert code == 0


def test_rejected_and_failed_exit_1(
    capsys: pytest.CaptureFixture[str], sim_port: str, tmp_path: Path
) -> None:
    assert run(capsys, "cmd", "set_mode", "mode=SAFE", "--port", sim_port)[0] == 0
    log = tmp_path / "rejected.jsonl"
    code, _, err = run(
        capsys, "cmd", "load_switch", "channel=1", "on=1", "--port", sim_port, "--log", str(log)
    )
    assert code == 1 and "rejected: WRONG_MODE (4)" in err and err.count("\n") == 1
    # Nothing is lost from the log: the command and its rejection are both there.
    from ground.replay import Replay

    lines = [str(i.value) for i in Replay(log).run() if i.topic == "command"]
    assert any(line.startswith("command load_switch") for line in lines)
    downlink = [
        codec.decode(decode_wire(r.data).message)  # type: ignore[union-attr]
        for r in LogReader(log)
        if r.type == "down"
    ]
    assert any(m.kind == 1 and m.body[1:3] == [1, 4] for m in downlink)  # rejected, WRONG_MODE


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["cmd", "set_mod"],
         "unknown command 'set_mod': did you mean set_mode, heater_mode, seq_stop?"),
        (["cmd", "set_mode", "mode=FAST"], "unknown name 'FAST'"),
        (["cmd", "set_mode"], "argument mode: missing"),
        (["cmd", "hk_rate", "packet=1", "rate=99"], "allowed 0.1 to 50 Hz"),
        (["cmd", "heater_setpoint", "heater=0", "setpoint=-80"], "allowed -40 to 40 degC"),
        (["cmd", "reboot"], "reboot is hazardous"),
        (["cmd", "noop", "oops"], "key=value"),
        (["tlm", "--channels", "battery_sco"], "did you mean battery_soc"),
        (["params", "get", "time_factr"], "did you mean time_factor"),
        (["params", "set", "battery_setpoint", "99"], "allowed -40 to 40 degC"),
        (["params", "set", "battery_setpoint"], "params set takes NAME VALUE"),
        (["plot", "x.jsonl", "--channels", "nope", "--out", "x.png"], "unknown channel 'nope'"),
        (["cmd", "noop", "--port", "sim://?speed=2"], "unknown sim option 'speed'"),
    ],
)
def test_bad_input_is_usage_error_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], argv: list[str], text: str
) -> None:
    extra = [] if "--port" in argv else ["--port", "/dev/ttyNOPE"]  # never reached
    code, _, err = run(capsys, *argv, *extra)
    assert code == 2, err
    assert text in err and err.startswith("ground: error: ") and err.count("\n") == 1


def test_unreachable_port_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cmd", "noop", "--port", "/dev/ttyNOPE")
    assert code == 3 and "cannot open port /dev/ttyNOPE: No such file" in err
    assert err.count("\n") == 1


def test_dictionary_mismatch_exit_4(
    capsys: pytest.CaptureFixture[str], sim_port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ground.client

    monkeypatch.setattr(ground.client, "DICT_HASH", 0x12345678)
    code, _, err = run(capsys, "cmd", "noop", "--port", sim_port)
    assert code == 4 and f"node has 0x{DICT_HASH:08x}, ground has 0x12345678" in err


def test_timeout_exit_5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with FakeNode() as node:
        node.lose_verifications = 2  # status gets through, noop's answers never do
        node.lose_verifications = 0
        log = tmp_path / "t.jsonl"
        cli_args = ["cmd", "noop", "--port", node.port, "--log", str(log), "--timeout", "0.5"]
        node_lose = node
        # Lose everything once connected: patch after status by losing all later answers.
        import ground.client

        real = ground.client.Client.refresh_status

        def then_lose(self: ground.client.Client, timeout: float = 5.0) -> object:
            status = real(self, timeout)
            node_lose.lose_verifications = 1000
            return status

        ground.client.Client.refresh_status = then_lose  # type: ignore[method-assign]
        try:
            code, _, err = run(capsys, *cli_args)
        finally:
            ground.client.Client.refresh_status = real  # type: ignore[method-assign]
    assert code == 5 and "no final verification" in err and str(log) in err


def test_tlm_formats(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    code, out, _ = run(
        capsys,
        "tlm",
        "--port",
        sim_port,
        "--format",
        "jsonl",
        "--count",
        "3",
        "--channels",
        "battery_soc,mode",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["channel"] for r in rows} <= {"battery_soc", "mode"}
    soc = next(r for r in rows if r["channel"] == "battery_soc")
    assert soc["unit"] == "%" and soc["state"] in ("nominal", "yellow", "red")
    code, out, _ = run(capsys, "tlm", "--port", sim_port, "--format", "csv", "--count", "2")
    table = list(csv.reader(io.StringIO(out)))
    assert code == 0 and table[0][:4] == ["ground_ns", "node_time_ms", "packet", "channel"]
    assert len(table) > 10
    code, out, _ = run(capsys, "tlm", "--port", sim_port, "--duration", "0.5")
    assert code == 0 and "battery_soc" in out and "dict_hash" in out


def test_events_history(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    code, out, _ = run(
        capsys, "events", "--port", sim_port, "--history", "0", "--format", "jsonl"
    )  # the stored log only
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and events[0]["event"] == "boot"
    code, out, _ = run(capsys, "events", "--port", sim_port, "--duration", "0.3")
    assert code == 0


def test_params(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    code, out, _ = run(capsys, "params", "set", "battery_setpoint", "4.5", "--port", sim_port)
    assert code == 0
    code, out, _ = run(capsys, "params", "get", "battery_setpoint", "--port", sim_port)
    assert code == 0 and out.strip() == "battery_setpoint = 4.5 degC"
    code, _out, err = run(capsys, "params", "reset", "--port", sim_port)
    assert code == 2 and "hazardous" in err  # param_reset is hazardous: --yes
    for action in ("save", "reset", "load"):
        code, out, _ = run(capsys, "params", action, "--port", sim_port, "--yes")
        assert code == 0 and f"param_{action}: completed" in out
    code, out, _ = run(capsys, "params", "get", "--port", sim_port)
    assert code == 0 and "battery_setpoint = 4.5 degC" in out and "time_factor =" in out


def test_dict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dict", "--format", "json")
    data = json.loads(out)
    assert code == 0 and {c["name"] for c in data["commands"]} >= {"noop", "set_mode"}
    code, out, _ = run(capsys, "dict")
    assert code == 0 and out.startswith("# Dictionary") and "| `battery_soc` |" in out
    code, _, err = run(capsys, "dict", "--node", "--port", "sim")  # a fresh node
    assert code == 0 and f"matches the ground's 0x{DICT_HASH:08x}" in err, err


def test_record_then_replay(
    capsys: pytest.CaptureFixture[str], sim_port: str, tmp_path: Path
) -> None:
    log = tmp_path / "rec.jsonl"
    code, out, _ = run(capsys, "record", "--port", sim_port, "--log", str(log), "--count", "5")
    assert code == 0 and "5 housekeeping packets" in out and log.exists()
    code, out, _ = run(capsys, "replay", str(log), "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and any(r.get("channel") == "battery_soc" for r in rows)
    code, out, _ = run(capsys, "replay", str(log))
    assert code == 0 and "last values" in out and "battery_soc" in out


def test_corrupt_log_exit_6(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text(
        '{"type": "header", "format": "ilrs-ground-log", "version": 1}\n'
        '{"t_ns": 1, "type": "down", "hex": "nothex"}\n'
    )
    for argv in (
        ["replay", str(log)],
        ["plot", str(log), "--channels", "battery_soc", "--out", str(tmp_path / "p.png")],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 6 and f"{log}:2: corrupt session log" in err and err.count("\n") == 1
    code, _, err = run(capsys, "replay", str(tmp_path / "missing.jsonl"))
    assert code == 6 and "cannot read session log" in err


def test_flash_without_board(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "flash", "--port", "sim")
    assert code == 2 and "give a board port" in err


# --- as real processes ---------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ILRS_LOG_DIR": str(tmp_path / "logs")}


def test_entry_point_against_a_fresh_sim(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ground"
    argv = [str(exe)] if exe.exists() else GROUND
    proc = subprocess.run(
        [*argv, "cmd", "noop"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "noop seq" in proc.stdout
    assert list((tmp_path / "logs").glob("ground-*.jsonl"))


def test_python_m_ground_exit_codes(tmp_path: Path, sim_port: str) -> None:
    proc = subprocess.run(
        [*GROUND, "cmd", "set_mod"], capture_output=True, text=True, timeout=60, env=_env(tmp_path)
    )
    assert proc.returncode == 2 and "did you mean set_mode" in proc.stderr
    proc = subprocess.run(
        [*GROUND, "tlm", "--port", sim_port, "--format", "jsonl", "--count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
    )
    assert proc.returncode == 0 and json.loads(proc.stdout.splitlines()[0])["channel"]


def test_ground_sim_prints_the_pty_first(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*GROUND, "sim", "--time-factor", "600", "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/")
        out = subprocess.run(
            [*GROUND, "cmd", "noop", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
            env=_env(tmp_path),
        )
        assert out.returncode == 0, out.stderr
    finally:
        proc.terminate()
        proc.wait(10)
