"""A per-user daemon found by its lock: the part ``ground.background`` (the single simulated
node) and ``ground.station`` (a local station) share.

A daemon named NAME holds an exclusive ``flock`` on ``NAME.lock`` in ``runtime_dir()`` for its
whole life and describes itself in ``NAME.json`` beside it. The lock is the truth: a
description whose lock is free was left by a daemon that was killed, and ``lock_is_held``
removes it. The starter reads the daemon's first line on its stdout (``first_line``); ``stop``
sends SIGTERM by the daemon's pid and SIGKILL if the lock is still held after a grace period.

Files: ``$XDG_RUNTIME_DIR/ilrs/`` (else ``$XDG_STATE_HOME/ilrs/run/``, else
``~/.local/state/ilrs/run/``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

if os.name == "posix":  # simulated nodes need a pty: POSIX only
    import fcntl

POLL_S: Final = 0.05
T = TypeVar("T")


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "ilrs"
    return state_home() / "ilrs" / "run"


def lock_path(name: str) -> Path:
    return runtime_dir() / f"{name}.lock"


def info_path(name: str) -> Path:
    return runtime_dir() / f"{name}.json"


def lock_is_held(name: str) -> bool:
    """True while a daemon holds ``NAME.lock``; a stale ``NAME.json`` is removed."""
    try:
        fd = os.open(lock_path(name), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:  # nobody holds it: whatever the description says is stale
        info_path(name).unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)


def find(name: str, make: Callable[..., T], wait_s: float) -> T | None:
    """``make(**description)`` of the running daemon, or None. Waits up to wait_s for one that
    holds the lock but has not described itself yet (still starting)."""
    if os.name != "posix":
        return None
    deadline = time.monotonic() + wait_s
    while lock_is_held(name):
        try:
            return make(**json.loads(info_path(name).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)
    return None


def first_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The first line the daemon writes on its stdout (then closed), stripped; "" if none came
    in time or it ended first."""
    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + timeout_s
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], POLL_S * 4)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    proc.stdout.close()
    return line.decode(errors="replace").strip()


def stop(name: str, pid: int, timeout_s: float) -> None:
    """SIGTERM by pid; SIGKILL while the lock is still held every ``timeout_s`` after; then
    wait (up to ``timeout_s``) for the process itself to end: it lets the lock go just before
    it exits, and "stopped" means no process of it is left."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while lock_is_held(name):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # what it started dies with it
            deadline = time.monotonic() + timeout_s
        time.sleep(POLL_S)
    deadline = time.monotonic() + timeout_s
    while not _ended(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)


def _ended(pid: int) -> bool:
    """The process is gone, or a zombie (ended; its parent, init, has yet to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process took the pid
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS): running until the kill above says otherwise
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


# --- the daemon's side -----------------------------------------------------------------------


def begin(name: str, race: str) -> tuple[threading.Event, int] | None:
    """The daemon's start: an event that SIGTERM, SIGINT and SIGHUP set (its cue to stop
    cleanly) and the open, locked ``NAME.lock`` (kept open for its whole life); None, after
    printing ``race`` for the starter, when another daemon holds the lock."""
    stop_now = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda _s, _f: stop_now.set())
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = os.open(lock_path(name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        print(f"{race} holds the lock", flush=True)
        return None
    return stop_now, lock


def announce(name: str, description: dict[str, Any], line: str) -> None:
    """Write ``NAME.json`` atomically (a reader never sees half of it), then give the starter
    its first line; the starter then goes, and later writes to stdout go nowhere."""
    tmp = info_path(name).with_suffix(".json.new")
    tmp.write_text(json.dumps(description))
    os.replace(tmp, info_path(name))
    print(line, flush=True)
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


def release(name: str, lock: int) -> None:
    """The daemon's end: its description removed, then its lock let go."""
    info_path(name).unlink(missing_ok=True)
    os.close(lock)
