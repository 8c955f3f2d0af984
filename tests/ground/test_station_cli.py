"""``ground sim start --nodes N``: a local station in the background (ground.station), and the
README's two commands that start one and watch a node in the console, run as written (the
broker port moved to a free one, as ``$ILRS_BROKER_PORT`` allows, so a broker already on 1883
does not matter)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground.broker import free_port
from ground.client import Client
from ground.micropython import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.micropython]

MARKER = "<!-- tests/ground/test_station_cli.py runs the next block -->"


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    assert MARKER in text, "the README lost the marker before its station block"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block is not None
    return [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()
            if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "ILRS_PORT"}
    env.update(XDG_RUNTIME_DIR=str(tmp_path / "run"), XDG_STATE_HOME=str(tmp_path / "state"),
               ILRS_LOG_DIR=str(tmp_path / "logs"), ILRS_BROKER_PORT=str(free_port()))
    yield env
    subprocess.run([sys.executable, "-m", "ground", "sim", "stop"], env=env, timeout=120,
                   check=False, capture_output=True)


def _ground(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ground", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


def test_readme_two_commands_start_a_station_and_watch_a_node(env: dict[str, str]) -> None:
    start, console = readme_commands()
    assert start == ".venv/bin/ground sim start --nodes 3"
    assert console == ".venv/bin/ground console --port mqtt://127.0.0.1:1883/lab/node2"
    port = env["ILRS_BROKER_PORT"]
    run = _ground(env, *shlex.split(start)[1:])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [f"mqtt://127.0.0.1:{port}/lab/node{i}" for i in (1, 2, 3)]
    argv = shlex.split(console.replace(":1883/", f":{port}/"))[1:]
    watch = _ground(env, *argv, stdin="status\ntlm node_id\nquit\n")
    assert watch.returncode == 0, watch.stderr
    assert "node id 0x00000002" in watch.stdout, watch.stdout


def test_station_status_identities_and_stop_by_pids(env: dict[str, str], tmp_path: Path) -> None:
    run = _ground(env, "sim", "start", "--nodes", "2", "--station", "moon")
    assert run.returncode == 0, run.stderr
    info = json.loads((tmp_path / "run" / "ilrs" / "station.json").read_text())
    status = _ground(env, "sim", "status")
    assert status.returncode == 0
    assert "station moon: " in status.stdout and status.stdout.count("node id ") == 2
    again = _ground(env, "sim", "start", "--nodes", "2")
    assert again.returncode == 2 and "a station is already running (moon on" in again.stderr
    for node in info["nodes"]:
        assert node["state_dir"].startswith(str(tmp_path / "state" / "ilrs" / "station-moon"))
        with Client(node["url"], write_log=False) as client:
            assert client.status is not None and client.status.node_id == node["node_id"]
            assert client.await_telemetry("node_id", timeout=20).value == node["node_id"]
    family = _descendants(info["pid"])
    names = [_name(p) for p in family]
    assert info["broker_pid"] in family and names.count("micropython") >= 2, names
    stop = _ground(env, "sim", "stop")
    assert stop.returncode == 0 and "stopped station moon" in stop.stderr
    left = [(p, _name(p)) for p in [info["pid"], *family] if _alive(p)]
    assert not left, f"still running after `sim stop` returned: {left}"
    assert _ground(env, "sim", "status").returncode == 3
    # the nodes' flash stays for the next start
    assert all(any(Path(n["state_dir"]).iterdir()) for n in info["nodes"])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def test_station_options_are_checked(env: dict[str, str]) -> None:
    bad = _ground(env, "sim", "start", "--nodes", "0")
    assert bad.returncode == 2 and "--nodes 0: 1 to 50 simulated nodes" in bad.stderr
    for argv in (("sim", "stop", "--nodes", "2"), ("sim", "--nodes", "2")):
        bad = _ground(env, *argv)
        assert bad.returncode == 2 and "go with `ground sim start --nodes N`" in bad.stderr
    bad = _ground(env, "sim", "start", "--nodes", "2", "--seed", "3")
    assert bad.returncode == 2 and "--seed, --state-dir and --verbose are for the single" \
        in bad.stderr
