"""A sustained flood with a slow reader, every frame accounted for (issue 10, bug 5).

The ground sends ``n`` noops as fast as the link takes them while it reads the downlink at
``read_bytes_per_s`` (a loaded host, a 115200-baud UART), so the node's output backs up and
the node must drop frames. Then, on a quiet link, between two link housekeeping packets A and
B (downlink seqs sA < sB, counters cA, cB):

- uplink: ``frames_in`` and ``cmds_accepted`` grew by exactly the commands sent;
- every message numbered in [sA, sB) was either received or dropped and counted once:
  ``frames_out`` grew by the messages received with a seq in [sA, sB), ``tx_dropped`` by the
  numbers skipped there (a dropped frame still uses its number, so the ground sees a gap);
- no partial frame reached the wire: the ground's deframer discarded nothing;
- every message received is canonical (the port checks each one).

Housekeeping may be dropped first when the link is congested; which messages were lost is
reported (by kind) with the findings.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from ground.fuzz import cases as fc
from ground.fuzz.port import NodePort

KIND_NAMES: Final = {0: "command", 1: "verification", 2: "housekeeping", 3: "event",
                     4: "parameter", 5: "time", 6: "bulk"}


@dataclass
class FloodResult:
    commands: int
    problems: list[str] = field(default_factory=list)
    deltas: dict[str, int] = field(default_factory=dict)
    received: int = 0
    gaps: int = 0
    received_by_kind: Counter[str] = field(default_factory=Counter)
    lost_verifications: int = 0


def _quiet_link(port: NodePort, quiet_s: float, timeout_s: float) -> None:
    """Wait until nothing but housekeeping has arrived for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    last = port.verifications_seen + port.events_seen
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = port.verifications_seen + port.events_seen
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            return


def _settled_link(port: NodePort, node_time_ms: int,
                  timeout_s: float = 10.0) -> tuple[int, dict[str, Any]] | None:
    """The second link packet after ``node_time_ms``: on a quiet link everything made before
    the first one has been written (or dropped) when the second reads the counters, so the
    queue is empty then (SPEC §5.8). The link packet reads its counters just before it takes
    its seq, ahead of every other packet of its tick, so they account for exactly the
    messages numbered before it, and two such packets bound the seq range [sA, sB)."""
    first = port.link_after(node_time_ms, timeout_s)
    if first is None:
        return None
    return port.link_after(port.link_time_ms, timeout_s)


def flood(port: NodePort, n: int, *, read_bytes_per_s: float = 20_000.0,
          chunk: int = 50, timeout_s: float = 60.0) -> FloodResult:
    """Send ``n`` noops with a slow reader and account for every frame (module doc)."""
    result = FloodResult(n)
    noop = fc.COMMAND_IDS["noop"]
    log: list[tuple[int, int, int]] = []
    port.downlink_log = log  # from before A: what arrives with A in one read is kept too
    status = port.ping(5.0)
    if status is None:
        port.downlink_log = []
        result.problems.append("no answer to status before the flood")
        return result
    first = _settled_link(port, status.node_time_ms)
    if first is None:
        port.downlink_log = []
        result.problems.append("no link housekeeping packet before the flood")
        return result
    seq_a, counters_a = first
    discards_before = port.downlink_discards
    port.clear_verifications()
    keys: list[tuple[int, int]] = []
    port.read_bytes_per_s = read_bytes_per_s
    try:
        for start in range(0, n, chunk):
            wire = b""
            for _ in range(min(chunk, n - start)):
                seq = port.fresh_seq(noop)
                keys.append((noop, seq))
                wire += port.own_command(noop, [], seq)
            port.write(wire)
    finally:
        port.read_bytes_per_s = 0.0
    _quiet_link(port, 0.5, timeout_s)
    # a status, each attempt with a new seq (every attempt is one more command in)
    status_id = fc.COMMAND_IDS["status"]
    attempts = 0
    final = None
    while final is None and attempts < 3:
        attempts += 1
        ping_seq = port.send_command(status_id, [])
        final = port.wait_final(status_id, ping_seq, 10.0)
    last = _settled_link(port, final[3], 20.0) if final is not None else None
    port.downlink_log = []
    if last is None:
        result.problems.append("no answer to status after the flood" if final is None
                               else "no link housekeeping packet after the flood")
        return result
    seq_b, counters_b = last
    span = (seq_b - seq_a) & 0xFFFF
    # A itself arrived (its counters are the start); the log holds what came after it
    inside = [(s, k, i) for s, k, i in log if 0 < (s - seq_a) & 0xFFFF < span]
    result.received = len(inside) + 1
    result.gaps = span - result.received
    result.received_by_kind.update(KIND_NAMES.get(k, str(k)) for _, k, _ in inside)
    result.received_by_kind["housekeeping"] += 1  # A
    d = {k: int(counters_b.get(k, 0) or 0) - int(counters_a.get(k, 0) or 0)
         for k in ("frames_in", "frames_out", "cmds_accepted", "cmds_rejected", "tx_dropped")}
    result.deltas = d
    # Commands the node read between A and B: the flood's noops and the status attempts that
    # asked for B (the ping before the flood was answered before A was stamped).
    expected_in = n + attempts
    if d["frames_in"] != expected_in:
        result.problems.append(f"frames_in +{d['frames_in']}, expected +{expected_in}")
    if d["cmds_accepted"] != expected_in:
        result.problems.append(f"cmds_accepted +{d['cmds_accepted']}, expected +{expected_in}")
    if d["frames_out"] != result.received:
        result.problems.append(f"frames_out +{d['frames_out']} but {result.received} messages "
                               f"arrived numbered {seq_a}..{seq_b - 1}")
    if d["tx_dropped"] != result.gaps:
        result.problems.append(f"tx_dropped +{d['tx_dropped']} but {result.gaps} downlink "
                               f"numbers were skipped in {seq_a}..{seq_b - 1}")
    discards = port.downlink_discards - discards_before
    if discards:
        result.problems.append(f"{discards} damaged or cut-short frame(s) on the downlink")
    result.lost_verifications = sum(2 - min(2, len(port.stages(*k))) for k in keys)
    return result
