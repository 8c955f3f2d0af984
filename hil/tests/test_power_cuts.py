"""Power cuts at random moments (issue 10): during parameter saves, event bursts and command
floods, the node's power is cut at a random instant, not after its state is stored (the
simulated node SIGKILLed; the virtual Pico's emulator stopped and powered on again from its
flash as it was: real littlefs on the real firmware).

After every cut the node boots and answers; the saved parameters are all of the last save that
reached the flash or all of the one in flight (never a mix); no event number ever names two
different events, and the first event of a boot is numbered above every event seen live
before the cut; the stored event log holds only events that were sent live, each exactly as
sent (a prefix-with-gaps: what the cut lost is missing, nothing is altered or invented).

``--power-cuts N`` sets the number of cuts (default 20; the acceptance run is 500). The
figures (cuts, outcomes, events, numbers skipped, duration) go to ``power_cuts.json`` in the
HIL log directory and are printed. Every delay and wait is in node time (``node.sleep``,
``node.seconds``), so the same cuts land at the same moments of the node's work on a target
whose clock runs 34 times slower than the wall.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ground.values import EventRecord
from hil.vocabulary import NodeApi

pytestmark = pytest.mark.power_cut(reason="power cuts at random instants")

SCENARIOS = ("save", "burst", "flood")
MAX_DELAY_S = 0.08  # the cut comes 0-80 ms after the first command of the scenario
LOG_CHECK_EVERY = 5  # cuts between reads of the stored event log (it keeps the newest 256)


def generation(g: int) -> dict[str, Any]:
    """Three persisted parameters that identify save number g (exact in single precision)."""
    return {"test_value": g % 1000, "science_min_soc_pct": 10.0 + g % 80,
            "dust_rate": (g % 64) / 64}


class LiveEvents:
    """Every event received live, by number; a number seen twice with different content is a
    reuse (the link, a pty or USB, duplicates nothing, so a second arrival is a second
    event)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_seq: dict[int, tuple[str, tuple[Any, ...]]] = {}
        self.order: list[EventRecord] = []
        self.reused: list[str] = []

    def on_event(self, ev: EventRecord) -> None:
        with self.lock:
            if ev.event_seq in self.by_seq:
                self.reused.append(f"event_seq {ev.event_seq}: {self.by_seq[ev.event_seq]} "
                                   f"and {(ev.name, ev.args)}")
            self.by_seq[ev.event_seq] = (ev.name, ev.args)
            self.order.append(ev)

    def count(self) -> int:
        with self.lock:
            return len(self.order)

    def since(self, index: int) -> list[EventRecord]:
        with self.lock:
            return self.order[index:]

    def max_seq(self) -> int:
        with self.lock:
            return max(self.by_seq, default=-1)


def check_stored_log(node: NodeApi, live: LiveEvents, first: int) -> list[int]:
    """The stored log from number `first` on (the events before were sent before the test
    listened) is a subset of what was sent live, record by record; returns its numbers."""
    stored = node.client.event_log(first, timeout=node.seconds(20.0))
    seqs = [r.event_seq for r in stored]
    assert seqs == sorted(set(seqs)), "stored log out of order or with a repeated number"
    with live.lock:
        for r in stored:
            assert r.event_seq in live.by_seq, (
                f"stored event #{r.event_seq} {r.name} was never sent live; log {node.log_path}")
            assert live.by_seq[r.event_seq] == (r.name, r.args), (
                f"stored event #{r.event_seq} is {(r.name, r.args)}, sent live as "
                f"{live.by_seq[r.event_seq]}")
    return seqs


def read_generation(node: NodeApi) -> dict[str, Any]:
    return {name: node.client.param_get(name, timeout=node.seconds(5.0))
            for name in generation(0)}


def test_power_cuts_at_random_moments(fresh_node: NodeApi, power_cycle: Callable[..., None],
                                      power_cuts: int, request: pytest.FixtureRequest) -> None:
    node = fresh_node
    rng = random.Random(request.config.getoption("hil_seed") or 1)
    live = LiveEvents()
    unsubscribe = node.client.on_event(live.on_event)
    wait_s = node.seconds(5.0)
    first = node.client.refresh_status(wait_s)
    first_live = first.event_seq + 1  # the next event is heard
    started = time.monotonic()
    stored: set[int] = set()
    stats: dict[str, Any] = {"cuts": 0, "scenarios": dict.fromkeys(SCENARIOS, 0),
                             "save_outcome": {"old": 0, "new": 0}, "stored_checked": 0,
                             "live_not_stored": 0, "numbers_skipped_at_boot": 0}
    try:
        client = node.client
        client.command("param_set", param="event_rate_limit", value=100, timeout=wait_s)
        flash_gen = 1
        for name, value in generation(flash_gen).items():
            client.command("param_set", param=name, value=value, timeout=wait_s)
        client.command("param_save", timeout=wait_s)
        for cut in range(power_cuts):
            scenario = rng.choice(SCENARIOS)
            node.sleep(rng.uniform(0.0, 0.3))  # the event log reaches the flash at 10 Hz
            stats["scenarios"][scenario] += 1
            new_gen = flash_gen + 1 + cut
            before = client.refresh_status(wait_s)
            assert before.boot_count == first.boot_count + cut, (
                f"cut {cut}: boot {before.boot_count}, but {cut} cuts since boot "
                f"{first.boot_count}: a reboot nobody asked for; log {node.log_path}")
            max_before = live.max_seq()
            index = live.count()
            if scenario == "save":
                for name, value in generation(new_gen).items():
                    client.send("param_set", param=name, value=value)
                client.send("param_save")
            elif scenario == "burst":  # each param_set raises param_changed
                for k in range(12):
                    client.send("param_set", param="volatile_value", value=k + 1)
            else:
                for _ in range(40):
                    client.send("noop")
            # a third of the cuts at once, a third in the first 5 ms (the node is busy with
            # the commands), a third later
            node.sleep(rng.choice((0.0, rng.uniform(0.0, 0.005), rng.uniform(0.0, MAX_DELAY_S))))
            power_cycle(node)  # now; it waits for the node to answer with a new boot
            after = client.refresh_status(wait_s)
            assert after.boot_count == before.boot_count + 1, f"cut {cut}: boot count"
            got = read_generation(node)
            old, new = generation(flash_gen), generation(new_gen)
            if got == new and scenario == "save":
                flash_gen = new_gen
                stats["save_outcome"]["new"] += 1
            else:
                assert got == old, (f"cut {cut} ({scenario}): parameters {got}, expected all of "
                                    f"{old}" + (f" or all of {new}" if scenario == "save" else ""))
                if scenario == "save":
                    stats["save_outcome"]["old"] += 1
            boots = [e for e in live.since(index) if e.name == "boot"
                     and e.args[0] == after.boot_count]
            assert boots, f"cut {cut}: no live boot event of boot {after.boot_count}"
            assert boots[0].event_seq > max_before, (
                f"cut {cut}: boot event #{boots[0].event_seq}, but #{max_before} was seen "
                "live before the cut")
            stats["numbers_skipped_at_boot"] += boots[0].event_seq - max_before - 1
            assert not live.reused, live.reused
            if (cut + 1) % LOG_CHECK_EVERY == 0 or cut == power_cuts - 1:
                stored.update(check_stored_log(node, live, first_live))
            stats["cuts"] += 1
        assert client.refresh_status(wait_s).boot_count == first.boot_count + power_cuts
    finally:
        unsubscribe()
        stats["events_live"] = live.count()
        stats["stored_checked"] = len(stored)
        stats["live_not_stored"] = len([n for n in live.by_seq
                                        if n <= max(stored, default=-1) and n not in stored])
        stats["duration_s"] = round(time.monotonic() - started, 1)
        stats["reused"] = live.reused
        out = node.target.log_dir / "power_cuts.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(stats, indent=1))
        print(f"\npower cuts: {json.dumps(stats)}")
