"""The README's session without a board runs top to bottom, as written, as real processes.

The block is taken from README.md (the fenced block after the marker comment), so the test
breaks when the README drifts. Each line runs as ``python -m ground …`` in a scratch folder,
with the background node's files and the session logs kept in the test's own folders.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ground.micropython import REPO_ROOT

MARKER = "<!-- tests/ground/test_readme.py runs the next block, line by line -->"

pytestmark = pytest.mark.slow


def readme_session() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    assert MARKER in text, "the README lost the marker before its session block"
    block = re.search(r"```\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block is not None
    lines = []
    for line in block.group(1).splitlines():
        command = line.split("  #", 1)[0].strip()  # the comments start after two spaces
        if command:
            lines.append(command)
    return lines


def test_the_block_is_the_readme_session() -> None:
    lines = readme_session()
    assert lines[0] == "ground --help" and all(line.startswith("ground ") for line in lines)
    assert "ground sim start --time-factor 600" in lines and lines[-1] == "ground sim stop"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ILRS_PORT"}
    env.update(
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        ILRS_LOG_DIR=str(tmp_path / "logs"),
        TMPDIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir()
    return env


def test_readme_session_runs_in_order(tmp_path: Path) -> None:
    env = _env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    outputs: dict[str, str] = {}
    try:
        for line in readme_session():
            argv = [sys.executable, "-m", "ground", *shlex.split(line)[1:]]
            proc = subprocess.run(
                argv, cwd=work, env=env, capture_output=True, text=True, timeout=180
            )
            assert proc.returncode == 0, f"{line!r} exited {proc.returncode}: {proc.stderr}"
            outputs[line] = proc.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "ground", "sim", "stop"], env=env, timeout=60, check=False
        )
    # The commands talked to one node: the mode and the parameter carried over.
    assert "load_switch seq" in outputs["ground cmd load_switch channel=seismometer on=true"]
    assert "accepted, completed" in outputs["ground cmd load_switch channel=seismometer on=true"]
    assert outputs["ground params get battery_setpoint"].strip() == "battery_setpoint = 4.5 degC"
    assert (work / "pass.jsonl").stat().st_size > 0 and (work / "soc.png").stat().st_size > 0
    # The node's flash is where the README says, kept after `ground sim stop`.
    flash = tmp_path / "state" / "ilrs" / "sim-node"
    assert (flash / "params.bin").exists() and (flash / "boot.bin").exists()
    assert not (tmp_path / "run" / "ilrs" / "sim.json").exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary node was made
