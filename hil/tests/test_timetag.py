"""Time-tagged commands (SPEC §11): 64 run in order at their times, the queue's commands, and
power cuts at random moments while commands are queued and run.

Times are planned in node time and turned into UTC tags with the node's own correlation (the
``time_correlate`` answer and its drift, SPEC §11.1), so the same test holds on a node whose
clock runs 34 times slower than the wall (the virtual Pico). The oracle for "at its time" is
the completed verification's node time: from the node's due time to one scheduler tick
(100 ms, SPEC §11.3) after it.

``HIL_POWER_CUTS`` (environment) sets the number of power cuts (default 3).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ground import codec
from ground.downlink import PARAMETER
from ground.errors import GroundError
from ground.values import EventRecord
from hil.vocabulary import NodeApi
from protocol import ids

TICK_MS = 100  # SPEC §11.3: the queue is checked at least this often
_PPB = 10**9


def node_of(utc_ms: int, node0: int, utc0: int, drift_ppb: int) -> int:
    """SPEC §11.1: the node time the node gives UTC utc_ms."""
    du = utc_ms - utc0
    return node0 + du + du * drift_ppb // _PPB


def utc_for(node_ms: int, node0: int, utc0: int, drift_ppb: int) -> int:
    """The smallest UTC whose node time (SPEC §11.1) is at least node_ms."""
    u = utc0 + (node_ms - node0) * _PPB // (_PPB + drift_ppb)
    while node_of(u, node0, utc0, drift_ppb) < node_ms:
        u += 1
    while node_of(u - 1, node0, utc0, drift_ppb) >= node_ms:
        u -= 1
    return u


def correlate_and_hold(node: NodeApi) -> tuple[int, int, int]:
    """Correlate now and keep the node's correlation unchanged for the test (no periodic
    one): (node_ms, utc_ms, drift_ppb) as the node took them."""
    node.client.set_correlate_period(1e9)
    time.sleep(0.05)
    return correlate_now(node)


def correlate_now(node: NodeApi) -> tuple[int, int, int]:
    """Correlate now: (node_ms, utc_ms, drift_ppb) as the node took them."""
    client = node.client
    drift = client.correlate(timeout=node.seconds(5.0))
    assert drift is not None and client.correlation is not None
    return client.correlation[0], client.correlation[1], drift


def finals(node: NodeApi, name: str, seq: int) -> list[codec.Message]:
    return [m for m in node.verifications(name, seq) if m.body[1] in (2, 3)]


def round_trip_ms(node: NodeApi) -> int:
    """A command's round trip in node ms, as measured at the start of the session (about 100
    ms through a broker and a gateway, 160 ms of node time on the emulated Pico); 0 when not
    measured."""
    scale = getattr(node.target, "scale", None)
    return int(1000 * scale.rtt_s / max(scale.clock_ratio, 1e-3)) if scale is not None else 0


def queueing_margin_ms(node: NodeApi, entries: int) -> int:
    """Node ms to queue ``entries`` commands (each a round trip)."""
    return 1000 + entries * max(50, 2 * round_trip_ms(node))


def queue_at(node: NodeApi, node_ms: dict[int, int], correlation: tuple[int, int, int],
             order: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """param_set volatile_value=k at node time node_ms[k], sent in ``order``: (seqs, tags)."""
    seqs: dict[int, int] = {}
    tags: dict[int, int] = {}
    for k in order:
        tags[k] = utc_for(node_ms[k], *correlation)
        res = node.client.command("param_set", param="volatile_value", value=k, at=tags[k],
                                  timeout=node.seconds(5.0))
        assert res.queued
        seqs[k] = res.seq
    return seqs, tags


def entry_cost_ms(node: NodeApi, correlation: tuple[int, int, int]) -> tuple[int, int]:
    """How long this node takes to run one entry (node ms, measured), and the node time when
    the measurement ended: 8 entries due at the same instant run back to back, so the longest
    gap between two of their completed verifications is the most one entry took. On the
    simulated node a few ms; on a Pico each entry is three flash writes (the entry marked, the
    event log, the entry removed)."""
    node0 = correlation[0]
    due = node0 + queueing_margin_ms(node, 8)
    seqs, _tags = queue_at(node, {k: due for k in range(8)}, correlation, list(range(8)))
    times = []
    for k in range(8):
        node.await_verification("param_set", seqs[k], ("completed", "failed"),
                                timeout=(due - node0) / 1000 + 10)
        (v,) = finals(node, "param_set", seqs[k])
        assert (v.body[1], v.body[2]) == (codec.STAGE_COMPLETED, 0), k
        times.append(v.time)
    assert times == sorted(times)  # due together: in arrival order
    return max(b - a for a, b in itertools.pairwise(times)), times[-1]


def test_64_timetagged_commands_run_in_order_at_their_times(node: NodeApi) -> None:
    correlation = correlate_and_hold(node)
    # Entries spaced wider than this node takes to run one (60 ms on a fast node), so each
    # can run at its own time. "At its time": from its due time to one tick after (to notice
    # it) plus the running of the entry up to its answer. That is about 1 ms on the simulated
    # node; on a Pico, flash writes whose time varies (a littlefs block compacted now and
    # then: the emulated Pico measured 305 ms at most for 8 entries, then one of 64 took 430
    # ms), so twice the longest measured.
    cost_ms, now = entry_cost_ms(node, correlation)
    spacing_ms = max(60, 2 * cost_ms)
    margin_ms = queueing_margin_ms(node, 64)
    plan = [now + margin_ms + spacing_ms * k for k in range(64)]
    order = list(range(64))
    random.Random(14).shuffle(order)  # queued in a shuffled order: they must run in time order
    seqs, tags = queue_at(node, dict(enumerate(plan)), correlation, order)
    for k in range(64):
        node.await_verification("param_set", seqs[k], ("completed", "failed"),
                                timeout=(margin_ms + 64 * spacing_ms) / 1000 + 10)
    ran = []
    for k in range(64):
        (v,) = finals(node, "param_set", seqs[k])
        assert (v.body[1], v.body[2]) == (codec.STAGE_COMPLETED, 0), k
        due = node_of(tags[k], *correlation)
        assert due == plan[k]
        assert due <= v.time <= due + TICK_MS + 2 * cost_ms, (
            f"entry {k}: due {due}, ran at {v.time} (tick {TICK_MS} ms, an entry {cost_ms} ms)")
        ran.append((v.time, k))
    assert [k for _, k in sorted(ran)] == list(range(64))  # in tag order
    assert node.client.param_get("volatile_value") == 63  # the last one ran last


def test_queue_listed_deleted_held_and_cleared(node: NodeApi) -> None:
    client = node.client
    # the events this test waits for must not be throttled by the session's earlier tests
    node.send_and_assert_command("param_set", param="event_rate_limit", value=100)
    node0, utc0, drift = correlate_and_hold(node)
    far = utc_for(node0 + 3_600_000, node0, utc0, drift)  # an hour of node time ahead
    queued = [client.command("noop", at=far + k, timeout=node.seconds(5.0)) for k in range(3)]
    entries = client.tt_list(timeout=node.seconds(10.0))
    assert [(e.seq, e.command, e.time_utc_ms) for e in entries] == [
        (r.seq, "noop", far + k) for k, r in enumerate(queued)]
    mark = node.mark()
    client.command("tt_delete", entry=entries[1].entry, timeout=node.seconds(5.0))
    (v,) = finals(node, "noop", queued[1].seq)
    assert (v.body[1], v.body[2]) == (codec.STAGE_FAILED, 23)  # NOT_RUN
    node.assert_event("tt_not_run", since=mark)
    ev = [e for e in node.history.events_since(mark) if e.name == "tt_not_run"]
    assert ev[-1].args == (queued[1].seq, ids.CMD_NOOP, 1)  # DELETED
    node.assert_command_failed("tt_delete", "NOT_FOUND", entry=entries[1].entry)
    client.command("tt_pause", paused=True, timeout=node.seconds(5.0))
    node.assert_event("tt_paused", since=mark)
    res = client.command("tt_clear", timeout=node.seconds(5.0))
    assert res.result == 2
    assert client.tt_list(timeout=node.seconds(10.0)) == []
    client.command("tt_pause", paused=False, timeout=node.seconds(5.0))


class Witness:
    """What arrived live: parameter messages of volatile_value (one per execution)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: list[Any] = []

    def on_parameter(self, msg: codec.Message) -> None:
        if msg.id == ids.PARAM_VOLATILE_VALUE:
            with self.lock:
                self.values.append(msg.body[0])


@pytest.mark.power_cut(reason="power cuts at random instants while commands are queued and run")
def test_power_cuts_while_queueing_and_running(fresh_node: NodeApi,
                                               power_cycle: Callable[..., None],
                                               request: pytest.FixtureRequest) -> None:
    """Ten commands due 40 ms apart, the power cut at a random instant while they are queued or
    while they run; every accepted one ends exactly once (executed, outcome unknown or not
    run), none runs twice, and no end names a command never sent. Planned in node time."""
    node = fresh_node
    client = node.client
    client.hold_correlation(False)  # the client correlates each new boot by itself
    cuts = int(os.environ.get("HIL_POWER_CUTS", "3"))
    rng = random.Random(request.config.getoption("hil_seed") or 14)
    witness = Witness()
    unsubscribe = client.downlink.listen(PARAMETER, witness.on_parameter)
    value = -1000
    totals = {"accepted": 0, "executed": 0, "unknown": 0, "not_run": 0}
    wait_s = node.seconds(5.0)
    margin_ms = queueing_margin_ms(node, 10)
    queueing_ms = 10 * round_trip_ms(node)  # about how long the ten take to queue
    try:
        client.command("param_set", param="event_rate_limit", value=100, timeout=wait_s)
        for cut in range(cuts):
            before = client.refresh_status(wait_s)
            correlation = correlate_now(node)  # this boot's, as the node took it
            due = [correlation[0] + margin_ms + 40 * k for k in range(10)]
            accepted: dict[int, int] = {}  # seq -> value
            sent: set[int] = set()

            def queue(first: int, correlation: tuple[int, int, int] = correlation,
                      due: list[int] = due, accepted: dict[int, int] = accepted,
                      sent: set[int] = sent) -> None:
                for k in range(10):
                    try:
                        res = client.command("param_set", param="volatile_value",
                                             value=first + k, at=utc_for(due[k], *correlation),
                                             timeout=wait_s)
                        accepted[res.seq] = first + k
                        sent.add(res.seq)
                    except GroundError as exc:  # cut: rejected, timed out, outcome unknown
                        seq = getattr(exc, "seq", None)
                        if isinstance(seq, int):
                            sent.add(seq)

            t = threading.Thread(target=queue, args=(value,), name=f"tt-queue-{cut}")
            t.start()
            # a third while they are queued, the rest while they run (node time from now)
            running = (margin_ms + rng.uniform(-50.0, 450.0)) / 1000
            node.sleep(rng.choice((rng.uniform(0.0, queueing_ms / 1000), running, running)))
            power_cycle(node)  # it waits for the node to answer with a new boot
            t.join(timeout=node.seconds(60.0))
            assert not t.is_alive(), f"cut {cut}: the commands were still being queued"
            # the client correlates the new boot by itself; then every entry ends
            deadline = time.monotonic() + node.seconds(30.0)
            while client.tt_list(timeout=wait_s) and time.monotonic() < deadline:
                node.sleep(0.2)
            assert client.tt_list(timeout=wait_s) == []
            value += 10
            records = [r for r in client.event_log(before.event_seq + 1,
                                                   timeout=node.seconds(20.0))
                       if r.name in ("tt_executed", "tt_unknown", "tt_not_run")]
            ends: dict[int, list[EventRecord]] = {}
            for r in records:
                ends.setdefault(r.args[0], []).append(r)
            for seq in ends:
                assert seq in sent, f"cut {cut}: an end record for seq {seq}, never sent"
            for seq in accepted:
                assert len(ends.get(seq, [])) == 1, (
                    f"cut {cut}: seq {seq} accepted, ends {ends.get(seq)}; log {node.log_path}")
                name = ends[seq][0].name
                totals["executed" if name == "tt_executed" else
                       "unknown" if name == "tt_unknown" else "not_run"] += 1
            totals["accepted"] += len(accepted)
            with witness.lock:
                seen = list(witness.values)
            twice = {v for v in seen if seen.count(v) > 1}
            assert not twice, f"cut {cut}: ran twice: values {sorted(twice)}"
        print(f"\ntime-tagged power cuts: {cuts} cuts, {totals}")
    finally:
        unsubscribe()
