"""Station: simulated nodes at 10 housekeeping packets/s each, through one gateway process and
one broker on loopback, to 5 subscribers.

Latency is one-way, node time tag to subscriber: node time (ms since the node's boot) and the
subscriber's wall clock share no epoch, so for each node and subscriber the smallest
(arrival - node time) seen is taken as the path's floor and latency is what each message took
above it (the usual relative one-way delay; the floor itself, pty + gateway + broker at their
quietest, is under a millisecond on loopback). Messages lost: gaps in each node's downlink
counter (SPEC §4) as each subscriber saw it. Gateway CPU: user + system time of the gateway
process (not its simulated nodes) over the measured window, per node.

50 nodes by default (3 with --quick; ``ILRS_STATION_NODES`` to change it). On a 2-core machine
shared with other work, 50 MicroPython nodes and the gateway did run: with Mosquitto 50,010
packets of 50,000, none lost, median 1.0 ms, p99 9.9 ms; with amqtt 50,023, none lost, median
8.4 ms, p99 674 ms (a pure-Python broker competing for the cores); gateway about 0.6 % of a core
per node with either.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from itertools import pairwise
from typing import Any, Final

import cbor2

from bench import Row, row
from ground.broker import Broker
from ground.client import Client
from ground.gateway import BrokerAddress
from protocol import dictionary

SECTION: Final = "station (gateway + broker)"
STATION: Final = "bench"
SUBSCRIBERS: Final = 5
RATE_HZ: Final = 10.0


class _Subscriber:
    def __init__(self, broker_url: str, n: int) -> None:
        self.lat_ms: dict[str, list[float]] = defaultdict(list)
        self.seqs: dict[str, list[int]] = defaultdict(list)
        self.count = 0
        self.recording = False
        address = BrokerAddress(broker_url)
        self.client = address.client(f"bench-sub-{n}-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"ilrs/v1/{STATION}/+/+", 1)
        self.client.on_message = self._on_message
        address.connect(self.client)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        now_ms = time.time_ns() / 1e6
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[4] in ("status", "dict", "refused", "cmd"):
            return
        try:
            m = cbor2.loads(msg.payload)
        except Exception:
            return
        if not self.recording:
            return
        node = parts[3]
        self.seqs[node].append(m[2])
        if parts[4] == "tm" and m[4] == 1:
            self.count += 1
            self.lat_ms[node].append(now_ms - m[3])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lost(seqs: list[int]) -> int:
    return sum((b - a - 1) & 0xFFFF for a, b in pairwise(seqs))


def run(quick: bool = False) -> list[Row]:
    nodes = int(os.environ.get("ILRS_STATION_NODES", "3" if quick else "50"))
    window_s = 8.0 if quick else 20.0
    with Broker() as broker:
        gw = subprocess.Popen(
            [sys.executable, "-m", "ground", "gateway", "--broker", broker.url,
             "--station", STATION, "--sims", str(nodes)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        subs: list[_Subscriber] = []
        try:
            assert gw.stdout is not None
            urls = [gw.stdout.readline().strip() for _ in range(nodes)]
            if not all(u.startswith("mqtt://") for u in urls):
                raise RuntimeError(f"the gateway did not start: {urls}")
            for url in urls:  # packet 1 at 10 Hz, the rest at the slowest rate (0.1 Hz)
                with Client(url, write_log=False) as client:
                    for packet in dictionary.PACKETS:
                        rate = RATE_HZ if packet.id == 1 else 0.1
                        client.command("hk_rate", packet=packet.id, rate=rate, timeout=20)
            subs = [_Subscriber(broker.url, n) for n in range(SUBSCRIBERS)]
            time.sleep(2.0)
            for s in subs:
                s.recording = True
            cpu0, t0 = _cpu_s(gw.pid), time.monotonic()
            time.sleep(window_s)
            cpu1, t1 = _cpu_s(gw.pid), time.monotonic()
            for s in subs:
                s.recording = False
            threading.Event().wait(0.5)
        finally:
            for s in subs:
                s.close()
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(30)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
    lat: list[float] = []
    lost = 0
    received = 0
    for s in subs:
        received += s.count
        for node, values in s.lat_ms.items():
            floor = min(values)
            lat += [v - floor for v in values]
            lost += _lost(s.seqs[node])
    expected = nodes * RATE_HZ * window_s * SUBSCRIBERS
    lat.sort()
    p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
    cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    return [
        row(f"{nodes} nodes x {RATE_HZ:g} hk/s -> {SUBSCRIBERS} subscribers: received",
            received, "msgs", f"~{expected:.0f}", received >= 0.9 * expected),
        row("latency median (node time tag to subscriber, above floor)",
            round(statistics.median(lat), 2) if lat else float("nan"), "ms"),
        row("latency p99", round(p99, 2), "ms"),
        row("messages lost (downlink counter gaps)", lost, "msgs", "0", lost == 0),
        row("gateway CPU per node", round(cpu_pct / nodes, 2), "% of a core"),
        row(f"nodes measured (issue asks 50; {broker.kind} broker)", nodes, "nodes"),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
