"""A local station in the background: a broker, several simulated nodes and a gateway.

    ground sim start --nodes 3 [--station lab] [--broker-port 1883] [--time-factor X]
                                # prints mqtt://127.0.0.1:1883/lab/node1 .. node3
    ground sim status          # the station (and the single background node, if any)
    ground sim stop            # stops them by their pids

``start()`` launches ``python -m ground.station`` in a session of its own (as
``ground.background`` does for the single node). That daemon holds an exclusive ``flock`` on
``station.lock`` for its whole life, starts a broker on 127.0.0.1 (``ground.broker``:
Mosquitto when installed, else amqtt), then a gateway bridging N simulated nodes named
``node1``..``nodeN``, each with its own state directory, seed and ``node_id`` (1..N, SPEC
§5.3; the gateway holds each topic to its id), writes ``station.json`` (its pid, the broker's,
each node's port URL, pty and state directory) and prints the nodes' ``mqtt://`` URLs.
SIGTERM, SIGINT or SIGHUP stop it cleanly: every node's status is published ``down``, the
nodes and the broker are stopped by their pids. The broker and the nodes die with the daemon
however it ends (``PR_SET_PDEATHSIG``), so a SIGKILL leaves nothing running either.

Files: ``station.lock``, ``station.json`` and ``station.log`` (the daemon's stderr) beside
the single node's (``ground.daemon``: the lock, description and stop both daemons share);
each node's state directory (its flash) is kept across starts in
``$XDG_STATE_HOME/ilrs/station-{station}/nodeI`` (else ``~/.local/state/...``): remove it for
nodes fresh from the factory.
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
from ground.background import BackgroundSimError
from ground.daemon import runtime_dir, state_home
from ground.errors import GroundError, UsageError

MAX_NODES: Final = 50
DEFAULT_BROKER_PORT: Final = 1883
_START_TIMEOUT_S: Final = 300.0  # the first start precompiles the node (mpy-cross, ROMFS)
_STOP_TIMEOUT_S: Final = 30.0
_RACE: Final = "error: another station"
_NAME: Final = "station"  # station.lock, station.json (ground.daemon)


@dataclass(frozen=True)
class Station:
    """What ``station.json`` says about the running daemon."""

    pid: int
    station: str
    broker: str  # mqtt://127.0.0.1:PORT
    broker_kind: str
    broker_pid: int
    nodes: list[dict[str, Any]]  # name, node_id, url, pty, state_dir
    started: float

    def describe(self) -> list[str]:
        up = time.time() - self.started
        lines = [f"station {self.station}: {self.broker_kind} broker on {self.broker} "
                 f"(pid {self.broker_pid}), gateway pid {self.pid}, up {up:.0f} s"]
        lines += [f"  {n['url']}  node id {n['node_id']}, pty {n['pty']}, state {n['state_dir']}"
                  for n in self.nodes]
        return lines


def default_broker_port() -> int:
    """``$ILRS_BROKER_PORT``, else MQTT's 1883."""
    text = os.environ.get("ILRS_BROKER_PORT", "")
    if not text:
        return DEFAULT_BROKER_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"ILRS_BROKER_PORT={text!r}: a TCP port, 1 to 65535")
    return int(text)


def default_state_dir(station: str) -> Path:
    return state_home() / "ilrs" / f"station-{station}"


def find(wait_s: float = 2.0) -> Station | None:
    """The running station, or None. Waits up to wait_s for one that is starting."""
    return daemon.find(_NAME, Station, wait_s)


def start(nodes: int, station: str = "lab", broker_port: int = DEFAULT_BROKER_PORT,
          time_factor: float | None = None) -> Station:
    """Start the station daemon; a UsageError if one runs already."""
    from ground import topics

    if os.name != "posix":
        raise UsageError("simulated nodes need a pty (Linux or macOS): on Windows, use WSL")
    if not 1 <= nodes <= MAX_NODES:
        raise UsageError(f"--nodes {nodes}: 1 to {MAX_NODES} simulated nodes")
    try:
        topics.check_name("station", station)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    running = find()
    if running is not None:
        raise UsageError(f"a station is already running ({running.station} on "
                         f"{running.broker}, pid {running.pid}): `ground sim stop` first")
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [sys.executable, "-m", "ground.station", "--nodes", str(nodes), "--station", station,
            "--broker-port", str(broker_port)]
    if time_factor is not None:
        argv += ["--time-factor", repr(time_factor)]
    with open(folder / "station.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log, start_new_session=True, close_fds=True)
    text = daemon.first_line(proc, _START_TIMEOUT_S)
    if text.startswith(_RACE):
        raise UsageError("another `ground sim start --nodes` started a station at the same "
                         "time: `ground sim status` shows it")
    found = find(wait_s=5.0) if text == "ready" else None
    if found is None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        why = text.removeprefix("error: ") or "it did not say it was ready in time"
        raise BackgroundSimError(f"the station did not start: {why} "
                                 f"(log: {folder / 'station.log'})")
    return found


def stop() -> Station | None:
    """Stop the daemon by its pid (SIGTERM, then SIGKILL); return what it was."""
    running = find()
    if running is None:
        return None
    daemon.stop(_NAME, running.pid, _STOP_TIMEOUT_S)  # broker and nodes die with it
    return running


# --- the daemon ------------------------------------------------------------------------------


def _daemon(argv: list[str] | None = None) -> int:
    from ground.broker import Broker
    from ground.gateway import Gateway

    parser = argparse.ArgumentParser(prog="python -m ground.station")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--station", default="lab")
    parser.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT)
    parser.add_argument("--time-factor", type=float)
    args = parser.parse_args(argv)

    begun = daemon.begin(_NAME, _RACE)
    if begun is None:
        return 1
    stop_now, lock = begun
    states = default_state_dir(args.station)
    nodes: dict[str, str] = {}
    node_ids: dict[str, int] = {}
    for i in range(1, args.nodes + 1):
        name = f"node{i}"
        (states / name).mkdir(parents=True, exist_ok=True)
        query = f"seed={i}&node_id={i}&state_dir={states / name}"
        if args.time_factor is not None:
            query += f"&time_factor={args.time_factor!r}"
        nodes[name], node_ids[name] = f"sim://?{query}", i
    broker = Broker(args.broker_port)
    gateway: Gateway | None = None
    try:
        try:
            broker.start()
            gateway = Gateway(broker.url, args.station, nodes, node_ids=node_ids,
                              name=f"station-{args.station}:{os.getpid()}")
            gateway.start()
        except (GroundError, OSError) as exc:
            print(f"error: {exc}", flush=True)
            return 1
        info = Station(
            pid=os.getpid(), station=args.station, broker=broker.url, broker_kind=broker.kind,
            broker_pid=broker.pid or 0, started=time.time(),
            nodes=[{"name": b.node, "node_id": node_ids[b.node], "pty": b.transport.device,
                    "url": f"{broker.url}/{args.station}/{b.node}",
                    "state_dir": str(states / b.node)} for b in gateway.bridges],
        )
        daemon.announce(_NAME, info.__dict__, "ready")
        while not stop_now.wait(0.2):
            if any(b.transport.sim is not None and b.transport.sim.exited
                   for b in gateway.bridges):
                print("station: a simulated node exited for good: stopping", file=sys.stderr)
                break
    finally:
        if gateway is not None:
            gateway.stop()
        broker.stop()
        daemon.release(_NAME, lock)
    return 0


if __name__ == "__main__":
    sys.exit(_daemon())
