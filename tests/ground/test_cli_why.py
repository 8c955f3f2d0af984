"""Errors that say why, results with labels, streams that end, usage caught before the link.

One simulated node for the module, on a state directory no parameters were ever saved in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakenode import FakeNode

from ground import cli, validate
from protocol.node_dictionary import DICT_HASH

GROUND = [sys.executable, "-m", "ground"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_param_load_says_no_parameters_were_ever_saved(
    capsys: pytest.CaptureFixture[str], sim_port: str
) -> None:
    code, _, err = run(capsys, "cmd", "param_load", "--port", sim_port)
    assert code == 1
    assert re.fullmatch(
        r"ground: error: param_load \(seq \d+\) failed: NOT_FOUND \(19\): no parameters were "
        r"ever saved on this node: `param_save` first\n",
        err,
    ), err


def test_wrong_mode_and_inhibited_say_why(
    capsys: pytest.CaptureFixture[str], sim_port: str
) -> None:
    assert run(capsys, "cmd", "set_mode", "mode=SAFE", "--port", sim_port)[0] == 0
    code, _, err = run(
        capsys, "cmd", "load_switch", "channel=seismometer", "on=true", "--port", sim_port
    )
    assert code == 1
    assert re.fullmatch(
        r"ground: error: load_switch \(seq \d+\) rejected: WRONG_MODE \(4\): the node is in "
        r"SAFE; load_switch is allowed only in NOMINAL or SCIENCE: `set_mode mode=NOMINAL` "
        r"first\n",
        err,
    ), err
    assert run(capsys, "cmd", "set_mode", "mode=NOMINAL", "--port", sim_port)[0] == 0
    code, out, err = run(
        capsys, "cmd", "load_switch", "channel=payload_a", "on=true", "--port", sim_port, "--json"
    )
    assert code == 1 and err.count("\n") == 1
    assert err.endswith(
        "failed: INHIBITED (20): payloads switch on only in SCIENCE (the node is in NOMINAL)\n"
    )
    outcome = json.loads(out)  # --json: an object on stdout, also when the node says no
    assert outcome == {
        "command": "load_switch",
        "seq": outcome["seq"],
        "outcome": "failed",
        "code": 20,
        "reason": "INHIBITED",
        "why": "payloads switch on only in SCIENCE (the node is in NOMINAL)",
        "error": err.removeprefix("ground: error: ").rstrip("\n"),
    }
    assert run(capsys, "cmd", "set_mode", "mode=SAFE", "--port", sim_port)[0] == 0


def test_cmd_status_prints_labelled_fields(
    capsys: pytest.CaptureFixture[str], sim_port: str
) -> None:
    code, out, _ = run(capsys, "cmd", "status", "--port", sim_port)
    lines = out.splitlines()
    assert code == 0 and re.fullmatch(r"status seq \d+: accepted, completed \(\d+ ms\)", lines[0])
    labels = [line.split(":")[0].strip() for line in lines[1:]]
    assert labels == [
        "mode", "boot_count", "reset_cause", "uptime_ms", "dict_hash", "event_seq", "fw_version",
        "node_id",
    ]
    fields = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert fields["mode"] in ("SAFE", "NOMINAL") and fields["reset_cause"] == "POWER_ON"
    assert fields["dict_hash"] == f"0x{DICT_HASH:08X}" and fields["boot_count"] == "1"
    assert re.fullmatch(r"\d+ \(\d+\.\d s\)", fields["uptime_ms"])
    code, out, _ = run(capsys, "cmd", "status", "--port", sim_port, "--json")
    data = json.loads(out)
    assert code == 0 and data["fields"]["dict_hash"] == f"0x{DICT_HASH:08X}"
    assert data["result"][4] == DICT_HASH and data["outcome"] == "completed"


def test_events_count_includes_the_history(tmp_path: Path, sim_port: str) -> None:
    """--count 3 with --history: three events in all, then exit, however quiet the node."""
    proc = subprocess.run(
        [*GROUND, "events", "--port", sim_port, "--history", "0", "--count", "3",
         "--format", "jsonl"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ILRS_LOG_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event_seq"] for e in events] == [0, 1, 2] and events[0]["event"] == "boot"


def test_events_duration_shows_the_boot_of_the_node_it_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "events", "--duration", "1", "--format", "jsonl",
        "--port", f"sim://?time_factor=600&state_dir={tmp_path / 'state'}",
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and events and events[0]["event"] == "boot", out
    assert events[0]["event_seq"] == 0 and "mode_changed" in [e["event"] for e in events]


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["events", "--count", "0"], "argument --count: must be at least 1, got 0"),
        (["events", "--count", "-1"], "argument --count: must be at least 1, got -1"),
        (["tlm", "--count", "0"], "argument --count: must be at least 1, got 0"),
        (["record", "--count", "0"], "argument --count: must be at least 1, got 0"),
        (["tlm", "--duration", "0"], "argument --duration: must be a number above 0, got 0"),
        (["cmd", "noop", "--timeout", "0"], "argument --timeout: must be a number above 0, got 0"),
        (["cmd", "noop", "--timeout", "nan"], "argument --timeout: must be a number above 0"),
        (["sim", "--time-factor", "0"], "argument --time-factor: must be a number above 0, got 0"),
        (
            ["cmd", "noop", "--port", "sim://?time_factor=0"],
            "sim://?time_factor=0: time_factor=0 must be above 0 (model seconds per real second)",
        ),
    ],
)
def test_zero_and_negative_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], text: str
) -> None:
    try:
        code = cli.main([*argv, "--port", "/dev/ttyNOPE"] if "--port" not in argv else argv)
    except SystemExit as exc:  # argparse's own exit, with the usage code
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and text in err and err.count("\n") == 1, err


def test_replay_into_head_exits_0(
    capsys: pytest.CaptureFixture[str], sim_port: str, tmp_path: Path
) -> None:
    log = tmp_path / "rec.jsonl"
    assert run(capsys, "record", "--port", sim_port, "--log", str(log), "--count", "40")[0] == 0
    for fmt in ("text", "jsonl", "table"):
        shell = f"{' '.join(GROUND)} replay {log} --format {fmt} --speed 4 | head -n 1"
        proc = subprocess.run(
            ["bash", "-c", shell + "; exit ${PIPESTATUS[0]}"],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0 and proc.stderr == "", (fmt, proc.stderr)
        assert len(proc.stdout.splitlines()) == 1


def test_markdown_dictionary_names_enums_and_masks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dict")
    assert code == 0
    assert "| 2 | `set_mode` | mode: u8 SAFE\\|NOMINAL\\|SCIENCE |" in out
    assert "| 1 | `mode` | u8 BOOT\\|SAFE\\|NOMINAL\\|SCIENCE |" in out
    assert "| 12 | `hk_rate` | packet: u8 power\\|environment\\|link\\|loads\\|thermal\\|" in out
    assert "rate: f32 0.1…50 |" in out
    assert "| 19 | `loads_on` | u16 mask of comms_relay, seismometer," in out


def test_hk_rate_takes_packet_names(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    assert validate.prepare("hk_rate", {"packet": "battery", "rate": "2"})[1] == [6, 2.0]
    assert validate.prepare("hk_enable", {"packet": "time", "enabled": "true"})[1] == [10, True]
    code, out, _ = run(capsys, "cmd", "hk_rate", "packet=battery", "rate=10", "--port", sim_port)
    assert code == 0 and "hk_rate seq" in out
    code, _, err = run(capsys, "cmd", "hk_rate", "packet=batery", "rate=1", "--port", sim_port)
    assert code == 2 and "unknown name 'batery': one of battery" in err



class _DeafToNoop(FakeNode):
    """A node whose verifications of noop never come back (status still answers)."""

    def _emit(self, seq: int, cmd_id: int, stage: int, code: int, result: Any) -> None:
        if cmd_id != 1:
            super()._emit(seq, cmd_id, stage, code, result)


def test_json_on_a_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with _DeafToNoop() as node:
        code, out, err = run(
            capsys, "cmd", "noop", "--port", node.port, "--json", "--timeout", "0.6"
        )
    assert code == 5 and err.startswith("ground: error: noop (seq ") and err.count("\n") == 1
    outcome = json.loads(out)
    assert outcome == {
        "command": "noop",
        "seq": outcome["seq"],
        "outcome": "timeout",
        "stages": [],
        "error": err.removeprefix("ground: error: ").rstrip("\n"),
    }
