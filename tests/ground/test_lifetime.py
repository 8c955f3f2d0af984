"""Processes and folders that never leak, and Ctrl-C: real `ground` processes, real signals.

Each test starts `ground` as a subprocess on a one-shot simulated node, with its own temp
folder (TMPDIR), finds the node by the ground process's children (by pid, never a ps grep)
and the node's flash by path, sends the signal and checks what is left. Linux only: the
children come from /proc, and a SIGKILL of the parent kills the node only with PDEATHSIG.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground import background, lifetime
from ground.simnode import TEMP_PREFIX, SimNode

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PDEATHSIG"),
]

GROUND = [sys.executable, "-m", "ground"]
_WAIT_S = 120.0  # generous: a busy 2-core machine, a first start that precompiles the node


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: object, what: str, timeout_s: float = _WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def node_of(ground_pid: int) -> int:
    """The micropython child of a ground process."""
    nodes = []
    for pid in children(ground_pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if any(arg.endswith(b"sim_main.py") for arg in cmdline):
            nodes.append(pid)
    assert len(nodes) == 1, f"children of {ground_pid}: {children(ground_pid)}"
    return nodes[0]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "tmp").mkdir()
    values = {k: v for k, v in os.environ.items() if k != "ILRS_PORT"}
    values.update(
        TMPDIR=str(tmp_path / "tmp"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        ILRS_LOG_DIR=str(tmp_path / "logs"),
    )
    yield values
    subprocess.run([*GROUND, "sim", "stop"], env=values, timeout=60, check=False)


def temp_flashes(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob(TEMP_PREFIX + "*"))


class Running:
    """A `ground` subprocess with stdout and stderr in files, up once it has written."""

    def __init__(self, argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.out = tmp_path / "stdout.txt"
        self.err = tmp_path / "stderr.txt"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [*GROUND, *argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                cwd=tmp_path,
            )

    def wait_output(self, text: str, path: Path | None = None) -> None:
        where = path or self.out
        wait_for(lambda: text in where.read_text() or self.proc.poll() is not None, repr(text))
        assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.err.read_text()}"

    def finish(self) -> tuple[int, str, str]:
        code = self.proc.wait(_WAIT_S)
        return code, self.out.read_text(), self.err.read_text()


EXPECTED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129,
                 signal.SIGKILL: -signal.SIGKILL}


@pytest.mark.parametrize("signum", list(EXPECTED_EXIT), ids=lambda s: signal.Signals(s).name)
def test_no_node_and_no_folder_outlive_ground(
    signum: int, env: dict[str, str], tmp_path: Path
) -> None:
    run = Running(["tlm", "--port", "sim", "--format", "jsonl", "--channels", "mode"], env,
                  tmp_path)
    run.wait_output('"channel": "mode"')
    node = node_of(run.proc.pid)
    assert len(temp_flashes(tmp_path)) == 1
    run.proc.send_signal(signum)
    code, _out, err = run.finish()
    assert code == EXPECTED_EXIT[signum], err
    wait_for(lambda: not alive(node), f"node {node} to die")
    if signum == signal.SIGKILL:
        # Nobody could remove the folder; the next simulated node does (its owner is gone).
        (left,) = temp_flashes(tmp_path)
        done = subprocess.run([*GROUND, "cmd", "noop", "--port", "sim"], env=env,
                              capture_output=True, text=True, timeout=_WAIT_S)
        assert done.returncode == 0, done.stderr
        assert not left.exists()
    else:
        assert err.count("\n") == 1 and err.startswith("ground: ")
    assert temp_flashes(tmp_path) == []


@pytest.mark.parametrize(
    ("argv", "ready", "summary"),
    [
        (["tlm", "--channels", "mode,battery_soc"], "", "battery_soc"),  # the last table
        (["events", "--history", "0", "--duration", "600", "--format", "jsonl"],
         '"event": "boot"', ""),
        (["record", "--log", "rec.jsonl"], "recording to", " messages recorded in "),
    ],
    ids=["tlm", "events", "record"],
)
def test_ctrl_c_stops_cleanly_summarises_and_exits_130(
    argv: list[str], ready: str, summary: str, env: dict[str, str], tmp_path: Path
) -> None:
    run = Running([*argv, "--port", "sim"], env, tmp_path)
    if ready:
        run.wait_output(ready)
    else:  # the table is printed at the end: wait until housekeeping reached the log
        logs = tmp_path / "logs"
        wait_for(lambda: any(p.stat().st_size > 4000 for p in logs.glob("*.jsonl")), "a log")
    node = node_of(run.proc.pid)
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 130, err
    assert err == "ground: interrupted\n"
    assert summary in out
    assert not alive(node) and temp_flashes(tmp_path) == []


def test_fuzz_ctrl_c_prints_summary_and_how_to_resume(
    env: dict[str, str], tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    log = tmp_path / "fuzz.jsonl"
    total = 1_000_000
    run = Running(["fuzz", "--port", "sim", "--cases", str(total), "--seed", "5", "--batch",
                   "20", "--corpus", str(corpus), "--log", str(log)], env, tmp_path)
    wait_for(lambda: log.exists() and log.stat().st_size > 200_000, "fuzz cases in the log")
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert code == 130, err
    assert "seed 5" in out and "total" in out  # the summary table
    resume = out.split("resume with:", 1)[1].split()
    assert resume[:8] == ["ground", "fuzz", "--port", "sim", "--seed", "5", "--first",
                          resume[7]]
    first = int(resume[7])
    assert first > 0 and first % 20 == 0  # at a batch boundary: nothing skipped
    assert resume[8:] == ["--cases", str(total - first), "--batch", "20", "--corpus",
                          str(corpus)]
    assert f"interrupted before case {first} (seed 5, {total - first:,} cases left)" in out
    assert temp_flashes(tmp_path) == []


# --- the background node: it outlives its starter, and its node dies with it -------------


def test_background_node_dies_with_its_daemon_however_it_ends(
    env: dict[str, str], tmp_path: Path
) -> None:
    start = subprocess.run([*GROUND, "sim", "start"], env=env, capture_output=True, text=True,
                           timeout=_WAIT_S)
    assert start.returncode == 0, start.stderr
    info = json.loads((tmp_path / "run" / "ilrs" / "sim.json").read_text())
    assert start.stdout.strip() == info["port"]
    daemon = info["pid"]
    node = node_of(daemon)  # the starter has exited; the daemon and its node run on
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not alive(node), f"node {node} to die with its daemon")
    status = subprocess.run([*GROUND, "sim", "status"], env=env, capture_output=True, text=True,
                            timeout=_WAIT_S)
    assert status.returncode == 3 and status.stdout.startswith("no background simulated node")
    assert not (tmp_path / "run" / "ilrs" / "sim.json").exists()  # the stale file is gone
    # A new one starts on the same flash; `sim stop` ends it and its node.
    again = subprocess.run([*GROUND, "sim", "start"], env=env, capture_output=True, timeout=60)
    assert again.returncode == 0
    daemon = json.loads((tmp_path / "run" / "ilrs" / "sim.json").read_text())["pid"]
    node = node_of(daemon)
    stop = subprocess.run([*GROUND, "sim", "stop"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0 and f"(pid {daemon})" in stop.stderr
    assert not alive(daemon) and not alive(node)
    boots = (tmp_path / "state" / "ilrs" / "sim-node" / "boot.bin")
    assert boots.exists()


def test_a_second_program_on_the_port_is_refused_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    start = subprocess.run([*GROUND, "sim", "start"], env=env, capture_output=True, text=True,
                           timeout=_WAIT_S)
    port = start.stdout.strip()
    run = Running(["record", "--log", "rec.jsonl"], env, tmp_path)  # finds the background node
    run.wait_output("recording to")
    second = subprocess.run([*GROUND, "cmd", "noop"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 3
    assert second.stderr == (
        f"ground: error: cannot open port {port}: in use by another program, which would get "
        "part of every reply: close it first (one program per port)\n"
    )
    run.proc.send_signal(signal.SIGINT)
    assert run.finish()[0] == 130
    after = subprocess.run([*GROUND, "cmd", "noop"], env=env, capture_output=True, timeout=60)
    assert after.returncode == 0


# --- SimNode and OwnedDir in-process ---------------------------------------------------------


def test_node_started_from_a_short_lived_thread_outlives_the_thread(tmp_path: Path) -> None:
    """PDEATHSIG follows the thread that forked: SimNode forks from its supervisor."""
    node = SimNode(state_dir=tmp_path / "flash", time_factor=600.0)
    try:
        for action in (node.start, node.power_cut):
            worker = threading.Thread(target=action)
            worker.start()
            worker.join()
            pid = node.node_pid
            assert pid is not None
            time.sleep(0.5)  # a PDEATHSIG tied to the worker would have fired by now
            assert node.node_pid == pid and alive(pid)
        assert node.boots == 2
    finally:
        node.stop()


def test_owned_dirs_and_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    prefix = "ilrs-test-"
    mine = lifetime.OwnedDir(prefix)
    orphan = tmp_path / (prefix + "orphan")  # an owner that died: lock file, nobody holds it
    orphan.mkdir()
    (orphan / lifetime.LOCK_NAME).touch()
    (orphan / "params.bin").write_bytes(b"x")
    foreign = tmp_path / (prefix + "foreign")  # no lock file: not made by OwnedDir
    foreign.mkdir()
    assert lifetime.sweep_stale(prefix, tmp_path) == [orphan]
    assert mine.path.is_dir() and foreign.is_dir() and not orphan.exists()
    mine.remove()
    assert not mine.path.exists()
    mine.remove()  # idempotent


def test_simnode_removes_only_the_folder_it_made(tmp_path: Path) -> None:
    given = tmp_path / "given"
    with SimNode(state_dir=given, time_factor=600.0):
        pass
    assert (given / "node.log").exists()  # written by the host at start: kept
    with SimNode(time_factor=600.0) as node:
        made = node.state_dir
        assert made.name.startswith(TEMP_PREFIX) and (made / lifetime.LOCK_NAME).exists()
    assert not made.exists()


def test_find_ignores_a_stale_description(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = background.runtime_dir()
    folder.mkdir(parents=True)
    (folder / "sim.lock").touch()
    (folder / "sim.json").write_text(json.dumps({"pid": 1, "port": "/dev/pts/999"}))
    assert background.find() is None
    assert not (folder / "sim.json").exists()


def test_two_sim_starts_at_once_share_one_node(env: dict[str, str], tmp_path: Path) -> None:
    starters = [
        subprocess.Popen([*GROUND, "sim", "start"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=_WAIT_S) for p in starters]
    assert [p.returncode for p in starters] == [0, 0], results
    ports = {out.strip() for out, _err in results}
    daemon = json.loads((tmp_path / "run" / "ilrs" / "sim.json").read_text())["pid"]
    assert ports == {json.loads((tmp_path / "run" / "ilrs" / "sim.json").read_text())["port"]}
    assert sorted("already running" in err for _out, err in results) == [False, True]
    assert len([c for c in children(daemon) if alive(c)]) == 1  # one node


def test_first_interrupt_held_holds_one_ctrl_c_and_a_second_interrupts() -> None:
    calls: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with lifetime.first_interrupt_held(lambda: calls.append("held")) as held:
        signal.raise_signal(signal.SIGINT)  # held: the block goes on
        assert held == [signal.SIGINT] and calls == ["held"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert calls == ["held"] and signal.getsignal(signal.SIGINT) is before
    with lifetime.first_interrupt_held(lambda: calls.append("again")) as held:
        pass
    assert held == [] and calls == ["held"]
