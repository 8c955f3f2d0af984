"""The lunar day and night, end to end: the node survives the night on its own.

The shipped sequences (sequences/night_entry.seq, sequences/morning.seq) are uploaded into
slots 0 and 1 with their triggers (SUNSET, SUNRISE); the module works the lunar day in
SCIENCE with its payloads and instruments on; then the plant runs a whole lunar day and night
(a synodic month, 29.5 Earth days) at time factor ``TIME_FACTOR`` while the ground only
listens: from the end of the day's setup until the morning sequence has ended, not one byte
goes up the link (the ground's periodic clock correlation is put off for the test). The
node's own triggers run both sequences. Checked: the battery charge never falls below its
red limit (from the dictionary) in any power packet; fault protection never acts (no
loads_shed, no safe_mode, no battery_soc red limit); both runs end DONE at their last step;
the night sequence left only the essential loads on; after sunrise the module is back in
NOMINAL with the day's instruments on.

The run's session log is plotted (battery charge, bus current, mode, day and night) to
``lunar-night.png`` beside it; docs/lunar-night.png in the README is one such run.
On a target whose time scale is 10 or more (the virtual Pico) the month would take hours:
skipped there (``slow_target``); on a board it runs as on the sim, given the time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ground import plot, seqcheck, seqimage, sequpload, validate
from ground import sequence as s
from ground.values import EventRecord, Housekeeping
from hil.vocabulary import NodeApi, values_of
from protocol import dictionary as d

pytestmark = [
    pytest.mark.slow,  # about two and a half minutes on the simulated node
    pytest.mark.soak,
    pytest.mark.slow_target(
        reason="a whole synodic month: minutes on the sim, hours at a time scale of 10 or more"),
]

ROOT = Path(__file__).resolve().parents[2]
SEQUENCES = ROOT / "sequences"
TIME_FACTOR = 20000.0  # model seconds per node second: a synodic month in about 128 s
SYNODIC_S = 2551443.0  # sunrise to sunrise, model seconds (firmware/node/plant/site.py)
NIGHT_SLOT, MORNING_SLOT = 0, 1
ESSENTIAL = sum(1 << i for i, load in enumerate(d.LOADS) if load[3])
DAY_LOADS = ("seismometer", "radiation_monitor", "dust_camera")
PAYLOADS = ("payload_a", "payload_b")
PLOT_CHANNELS = ["battery_soc", "bus_current", "mode", "lunar_day"]


def _bit(name: str) -> int:
    return 1 << next(i for i, load in enumerate(d.LOADS) if load[0] == name)


class Recorder:
    """Every power packet and event of the run (the History keeps only the latest)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.power: list[dict[str, Any]] = []
        self.events: list[EventRecord] = []

    def on_housekeeping(self, hk: Housekeeping) -> None:
        if hk.packet == "power":
            with self.lock:
                self.power.append(values_of(hk) | {"t_ms": hk.node_time_ms})

    def on_event(self, event: EventRecord) -> None:
        with self.lock:
            self.events.append(event)

    def named(self, name: str) -> list[EventRecord]:
        with self.lock:
            return [e for e in self.events if e.name == name]


def month_s(node: NodeApi, fraction: float) -> float:
    """Wall seconds for ``fraction`` of a synodic month at TIME_FACTOR, with room for a busy
    machine (the plant steps by elapsed time, so a slow host loses no model time)."""
    return node.seconds(fraction * SYNODIC_S / TIME_FACTOR * 2.0 + 30.0)


def upload(node: NodeApi, slot: int, name: str) -> s.Sequence:
    seq = seqcheck.checked(str(SEQUENCES / f"{name}.seq"))
    image = seqimage.compile(seq)
    report = sequpload.upload(node.client, image, slot,
                              timeout=node.seconds(node.command_timeout_s))
    assert (report.size, report.hash, report.resumes) == (
        len(image), seqimage.hash_prefix(image), 0), report
    assert seq.trigger is not None
    node.send_and_assert_command("seq_trigger", slot=slot, trigger=seq.trigger,
                                 level=seq.level)
    return seq


def test_the_module_survives_a_lunar_night_on_its_own(fresh_node: NodeApi,
                                                      hil_log_path: Path) -> None:
    node = fresh_node
    client = node.client
    red_low = validate.CHANNELS["battery_soc"].red[0]
    rec = Recorder()
    client.on_telemetry(rec.on_housekeeping)
    client.on_event(rec.on_event)
    # The ground's clock correlation is a command every minute (ground.client): in the night
    # the ground is silent, so it correlates once now and not again during the test.
    client.set_correlate_period(1e9)
    # The time factor first, so that the plot's model-time axis (node time x factor) is true
    # from the start: the setup below takes a few model hours of the 330-hour day.
    node.send_and_assert_command("param_set", param="time_factor", value=TIME_FACTOR)

    night = upload(node, NIGHT_SLOT, "night_entry")
    morning = upload(node, MORNING_SLOT, "morning")
    listing = client.command("seq_list", timeout=node.seconds(5)).result
    for slot, seq in ((NIGHT_SLOT, night), (MORNING_SLOT, morning)):
        state, _step, hash_, steps, name, trigger, _level = listing[slot]
        assert (d.SEQ_STATES[state], hash_, steps, name, trigger) == (
            "IDLE", seqimage.hash_prefix(seqimage.compile(seq)), len(seq.steps), seq.name,
            seq.trigger), listing

    # The lunar day's work: SCIENCE, payloads and instruments on (about 3.5 A on the bus).
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    for load in DAY_LOADS:
        node.send_and_assert_command("load_switch", channel=load, on=True)
    node.send_and_assert_command("set_mode", mode="SCIENCE")
    for load in PAYLOADS:
        node.send_and_assert_command("load_switch", channel=load, on=True)
    node.await_telemetry("lunar_day", True, timeout=5)

    # From here on the ground only listens.
    node.note("lunar night: from now on the ground sends nothing")
    quiet_from = client.transport.bytes_out
    start = node.mark()

    sunset = node.assert_event("sunset", since=start, timeout=month_s(node, 0.55))
    night_end = node.assert_event("seq_ended", since=start, slot=NIGHT_SLOT,
                                  timeout=month_s(node, 0.05))
    sunrise = node.assert_event("sunrise", since=start, timeout=month_s(node, 0.55))
    morning_end = node.assert_event("seq_ended", since=start, slot=MORNING_SLOT,
                                    timeout=month_s(node, 0.2))
    after = values_of(node.await_housekeeping("power", newer_than_ms=morning_end.node_time_ms,
                                              timeout=10))
    assert client.transport.bytes_out == quiet_from, "the ground sent something in the night"
    node.note("lunar night: over; the ground may speak again")

    # Both sequences ran from their trigger to their last step.
    started = {e.args[0]: e for e in rec.named("seq_started")}
    assert d.SEQ_CAUSES[started[NIGHT_SLOT].args[1]] == "SUNSET"
    assert d.SEQ_CAUSES[started[MORNING_SLOT].args[1]] == "SUNRISE"
    assert sunset.node_time_ms <= started[NIGHT_SLOT].node_time_ms <= night_end.node_time_ms
    assert sunrise.node_time_ms <= started[MORNING_SLOT].node_time_ms
    assert d.SEQ_STATES[night_end.args[1]] == "DONE" and night_end.args[2] == \
        len(night.steps) - 1, night_end
    assert d.SEQ_STATES[morning_end.args[1]] == "DONE" and morning_end.args[2] == \
        len(morning.steps) - 1, morning_end

    # The night: only the essential loads on, in NOMINAL, all night long.
    with rec.lock:
        power = list(rec.power)
    dark = [p for p in power
            if night_end.node_time_ms < p["t_ms"] < sunrise.node_time_ms]
    assert len(dark) > 20, f"only {len(dark)} power packets in the night"
    assert {p["loads_on"] for p in dark} == {ESSENTIAL}, {hex(p["loads_on"]) for p in dark}
    assert {p["mode"] for p in dark} == {2}  # NOMINAL (the sequence left SCIENCE)

    # The battery never reached its red limit, and fault protection never had to act.
    lowest = min(power, key=lambda p: p["battery_soc"])
    assert lowest["battery_soc"] > red_low, lowest
    assert rec.named("loads_shed") == [] and rec.named("safe_mode") == []
    red = [e for e in rec.named("limit_red")
           if e.args[0] == validate.CHANNELS["battery_soc"].id]
    assert red == []

    # After sunrise: NOMINAL, the day's instruments back on, the payloads left to the ground.
    assert after["mode"] == 2, after
    assert after["loads_on"] == ESSENTIAL | sum(_bit(n) for n in DAY_LOADS), hex(
        after["loads_on"])
    assert after["battery_soc"] >= 50.0, after

    out = hil_log_path.with_name("lunar-night.png")
    result = plot.plot_log(hil_log_path, PLOT_CHANNELS, out, axis="model",
                           time_factor=TIME_FACTOR)
    assert out.stat().st_size > 0 and set(result.series) == set(PLOT_CHANNELS)
    node.note(f"lunar night: lowest charge {lowest['battery_soc']:.1f} % "
              f"(red limit {red_low:g} %); plot: {out}")
