"""`make run` without a terminal: the scripted demo against the simulated node, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ground import run
from ground.micropython import REPO_ROOT
from protocol.node_dictionary import DICT_HASH


def test_demo_as_make_run_runs_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ground.run"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO_ROOT,
        env={**os.environ, "ILRS_LOG_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"dictionary hash: node 0x{DICT_HASH:08x}, ground 0x{DICT_HASH:08x}: matches" in out
    for text in (
        "noop",
        "set_mode mode=NOMINAL",
        "load_switch channel=seismometer on=True",
        "param_get param=time_factor",
    ):
        assert text in out
    assert out.count("accepted -> completed") == 4
    assert "battery_soc" in out and "power @" in out  # the telemetry table
    assert "mode_changed: mode SAFE -> NOMINAL" in out


def test_demo_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--demo", "--port", "/dev/ttyNOPE"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("ground: error: cannot open port") and err.count("\n") == 1
