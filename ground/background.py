"""The background simulated node: one per user, started once, found by every later command.

    ground sim start [--seed N] [--time-factor X] [--state-dir DIR]   # prints its pty
    ground cmd set_mode mode=NOMINAL                                  # uses it (no --port)
    ground sim status                                                 # exit 0 running, 3 not
    ground sim stop

``start()`` launches ``python -m ground.background`` in a session of its own (Ctrl-C at the
terminal and the end of the terminal do not reach it). That daemon (``ground.daemon``) takes
an exclusive ``flock`` on ``sim.lock`` for its whole life, starts a ``SimNode`` on the
state directory, writes ``sim.json`` (pid, pty, state directory, options) and prints the pty
on its stdout;
SIGTERM, SIGINT or SIGHUP stop it cleanly. The lock is the truth: a ``sim.json`` whose lock is
free was left by a daemon that was killed, and is removed by the next ``find()``. The node
dies with the daemon, however the daemon ends (``ground.simnode``).

The node holds the development key, as a ``sim`` port's does (SPEC §10.6: provisioned into a
state directory without a key table; it boots ENFORCED). ``sim.json`` says so (``key``:
``dev``; ``none`` for a description written before nodes were keyed), and a command that finds
the node (``ground.subcommands.signer_of``) signs with that key, continuing its counters from
``ground.keys.dev_store()``: the node's replay window outlives every command.

Files: ``$XDG_RUNTIME_DIR/ilrs/`` (else ``$XDG_STATE_HOME/ilrs/run/``, else
``~/.local/state/ilrs/run/``) holds ``sim.lock``, ``sim.json`` and ``sim.log`` (the daemon's
stderr). The node's state directory (its flash: parameters, boot count, event log) is kept
across starts: by default ``$XDG_STATE_HOME/ilrs/sim-node/`` (else
``~/.local/state/ilrs/sim-node/``); remove it for a node fresh from the factory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ground import daemon
from ground.daemon import runtime_dir, state_home
from ground.errors import EXIT_LINK, GroundError, UsageError

_START_TIMEOUT_S: Final = 120.0  # the first start precompiles the node (mpy-cross, ROMFS)
_STOP_TIMEOUT_S: Final = 15.0
_RACE: Final = "error: another background simulated node"
_NAME: Final = "sim"  # sim.lock, sim.json (ground.daemon)


class BackgroundSimError(GroundError, RuntimeError):
    """The background simulated node could not be started or stopped."""

    exit_code = EXIT_LINK


def default_state_dir() -> Path:
    return state_home() / "ilrs" / "sim-node"


@dataclass(frozen=True)
class BackgroundSim:
    """What ``sim.json`` says about the running daemon."""

    pid: int
    port: str
    state_dir: str
    node_log: str
    started: float
    options: dict[str, Any]
    key: str = "none"  # "dev": the node holds the development key

    def describe(self) -> str:
        up = time.time() - self.started
        opts = "".join(f", {k.replace('_', ' ')} {v}" for k, v in self.options.items())
        keyed = "development key" if self.key == "dev" else "open: no key"
        return (f"background simulated node on {self.port} (pid {self.pid}, up {up:.0f} s"
                f"{opts}, {keyed}); state {self.state_dir}, node log {self.node_log}")


def find(wait_s: float = 2.0) -> BackgroundSim | None:
    """The running background node, or None. Waits up to wait_s for one that is starting."""
    return daemon.find(_NAME, BackgroundSim, wait_s)


def start(seed: int | None = None, time_factor: float | None = None,
          state_dir: str | None = None) -> tuple[BackgroundSim, bool]:
    """Start the daemon unless one runs; return (it, started_now)."""
    if os.name != "posix":
        raise UsageError("the simulated node needs a pty (Linux or macOS): on Windows, use WSL")
    running = find()
    if running is not None:
        if seed is not None or time_factor is not None or state_dir is not None:
            raise UsageError(f"a background simulated node is already running ({running.port}, "
                             f"pid {running.pid}): `ground sim stop` first to change its options")
        return running, False
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [sys.executable, "-m", "ground.background"]
    for flag, value in (("--seed", seed), ("--time-factor", time_factor),
                        ("--state-dir", state_dir)):
        if value is not None:
            argv += [flag, str(value)]
    with open(folder / "sim.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log, start_new_session=True, close_fds=True)
    text = daemon.first_line(proc, _START_TIMEOUT_S)
    if text.startswith(_RACE):  # another `sim start` won the race: use its node
        found = find(wait_s=_START_TIMEOUT_S)
        if found is not None:
            return found, False
    if not text.startswith("/"):
        if proc.poll() is None and not text:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        why = text.removeprefix("error: ") or "it did not say which pty it opened in time"
        raise BackgroundSimError(f"the background simulated node did not start: {why} "
                                 f"(log: {folder / 'sim.log'})")
    found = find(wait_s=5.0)
    if found is None:
        raise BackgroundSimError(f"the background simulated node on {text} stopped at once "
                                 f"(log: {folder / 'sim.log'})")
    return found, True


def stop() -> BackgroundSim | None:
    """Stop the daemon (SIGTERM, then SIGKILL if it does not end); return what it was."""
    running = find()
    if running is None:
        return None
    daemon.stop(_NAME, running.pid, _STOP_TIMEOUT_S)  # its node dies with it
    return running


# --- the daemon ------------------------------------------------------------------------------


def _daemon(argv: list[str] | None = None) -> int:
    from ground.simnode import SimNode, SimNodeError

    parser = argparse.ArgumentParser(prog="python -m ground.background")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--time-factor", type=float)
    parser.add_argument("--state-dir")
    args = parser.parse_args(argv)

    begun = daemon.begin(_NAME, _RACE)
    if begun is None:
        return 1
    stop_now, lock = begun
    state_dir = Path(args.state_dir or default_state_dir()).absolute()
    node = SimNode(seed=args.seed, time_factor=args.time_factor, state_dir=state_dir,
                   dev_key=True)
    try:
        node.start()
    except (SimNodeError, OSError) as exc:
        print(f"error: {exc}", flush=True)
        node.stop()
        return 1
    try:
        options = {k: v for k, v in (("seed", args.seed), ("time_factor", args.time_factor))
                   if v is not None}
        info = BackgroundSim(pid=os.getpid(), port=node.port, state_dir=str(state_dir),
                             node_log=str(node.log_path), started=time.time(), options=options,
                             key="dev")
        daemon.announce(_NAME, info.__dict__, node.port)
        while not stop_now.is_set() and not node.exited:
            stop_now.wait(0.2)
    finally:
        node.stop()
        daemon.release(_NAME, lock)
    return 0


if __name__ == "__main__":
    sys.exit(_daemon())
