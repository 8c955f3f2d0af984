"""The Makefile's set-up: interpreter checked first, base and dev installs apart, a .venv its
interpreter cannot run rebuilt; the licence declared the way setuptools wants it.

Each test runs make on a copy of the Makefile in a scratch folder, with fake interpreters
(small shell scripts) where an old or broken Python is needed: nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ground.micropython import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

FAKE_310 = """#!/bin/sh
# an interpreter that is Python 3.10: fails the 3.11 check, says its version when asked
case "$*" in
  *version_info*) exit 1 ;;
  *sys.version*) echo "3.10.12 $0" ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)


def fake(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def good_venv(project: Path, *stamps: str) -> None:
    """A .venv whose python is this interpreter, with the given stamps, newer than pyproject."""
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to(sys.executable)
    for stamp in stamps:
        (project / ".venv" / stamp).touch()
    past = (project / "pyproject.toml").stat().st_mtime - 100
    os.utime(project / "pyproject.toml", (past, past))


def test_an_old_interpreter_is_refused_first_in_one_line(project: Path) -> None:
    python = fake(project / "bin" / "python3", FAKE_310)
    done = make(project, "run", f"PYTHON={python}")
    assert done.returncode == 2
    ours, *make_says = done.stderr.splitlines()
    assert ours == (
        f"make: this project needs Python 3.11 or newer; {python} is 3.10.12 {python}: "
        "run make PYTHON=python3.12 run"
    )
    assert len(make_says) == 1 and make_says[0].endswith("Error 2")  # make's own line
    assert not (project / ".venv").exists()  # nothing half-made for the next run to trip on


def test_a_venv_made_by_the_wrong_interpreter_is_rebuilt(project: Path) -> None:
    fake(project / ".venv" / "bin" / "python", FAKE_310)  # what a 3.10 left behind
    for stamp in (".installed-base", ".installed-dev"):
        (project / ".venv" / stamp).touch()
    done = make(project, "-n", "run", f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr
    assert "made by an interpreter that cannot run it now: rebuilding it" in done.stdout
    assert "rm -rf .venv" in done.stdout and "-m pip install --quiet -e ." in done.stdout
    assert not (project / ".venv" / ".installed-base").exists()


def test_run_needs_only_the_base_install_and_test_adds_the_dev_tools(project: Path) -> None:
    good_venv(project, ".installed-base")
    run = make(project, "-n", "run")
    assert run.returncode == 0 and run.stdout.splitlines() == [".venv/bin/python -m ground.run "]
    test = make(project, "-n", "test")
    assert test.returncode == 0, test.stderr
    lines = test.stdout.splitlines()
    assert ".venv/bin/python -m pip install --quiet -e '.[dev]'" in lines
    assert ".venv/bin/python -m pip install --quiet -e ." not in lines  # the base is there
    assert "touch .venv/.installed-dev" in lines


def test_everything_installed_means_nothing_to_install(project: Path) -> None:
    good_venv(project, ".installed-base", ".installed-dev")
    test = make(project, "-n", "test")
    assert not [line for line in test.stdout.splitlines() if "pip install" in line]


def test_license_is_an_spdx_string_with_its_file() -> None:
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in meta["build-system"]["requires"]  # what reads an SPDX string
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License\n")
    run_deps = " ".join(meta["project"]["dependencies"])
    for tool in ("pytest", "hypothesis", "mypy", "pyright", "ruff"):
        assert tool not in run_deps  # dev tools stay out of what `make run` installs
