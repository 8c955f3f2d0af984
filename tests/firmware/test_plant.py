"""The plant model, run on the real MicroPython interpreter with a Pico-sized heap.

Each scenario of plant_runner.py runs once (cached) and prints what happened; the assertions
here are about behaviour: day and night, the night's energy budget, thermostats, trips, faults.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ground.micropython import (
    PICO_HEAP,
    REPO_ROOT,
    find_micropython,
    micropython_path_env,
)
from protocol import dictionary as D
from protocol import ids

pytestmark = pytest.mark.micropython

RUNNER = Path(__file__).with_name("plant_runner.py")
DAY_S = 86400
SYNODIC_S = 29.530589 * DAY_S

# Channel ids by name, from the dictionary.
CH = {c.name: c.id for c in D.CHANNELS}


@dataclass
class Run:
    samples: list[tuple[str, int, dict[int, Any]]] = field(default_factory=list)
    events: list[tuple[int, int, Any, Any, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""

    def series(self, name: str, tag: str | None = None) -> list[Any]:
        ch = CH[name]
        return [s[ch] for t, _, s in self.samples if tag is None or t == tag]

    def tagged(self, tag: str) -> list[dict[int, Any]]:
        return [s for t, _, s in self.samples if t == tag]

    def of(self, event_id: int) -> list[tuple[int, int, Any, Any, Any]]:
        return [e for e in self.events if e[1] == event_id]


def run_raw(scenario: str, seed: int = 1) -> str:
    exe = find_micropython()  # a dependency: missing, the test fails with how to get it
    proc = subprocess.run(
        [exe, "-X", f"heapsize={PICO_HEAP}", str(RUNNER), scenario, str(seed)],
        env=micropython_path_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{scenario} failed:\n{proc.stderr}"
    return proc.stdout


@functools.cache
def run(scenario: str, seed: int = 1) -> Run:
    out = run_raw(scenario, seed)
    result = Run(stdout=out)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1] == ["end"], f"{scenario} did not finish"
    for line in lines[:-1]:
        if line[0] == "s":
            result.samples.append((line[1], line[2], {int(k): v for k, v in line[3].items()}))
        elif line[0] == "e":
            result.events.append(tuple(line[1:]))
        else:
            result.facts[line[1]] = line[2]
    return result


# --- the tables the plant uses -------------------------------------------------------------

def test_sensor_channels_follow_the_dictionary() -> None:
    expected = [CH[name] for _, name in sorted(D.SENSORS.items())]
    assert run("sensors").facts["sensor_channels"] == expected


# --- determinism ---------------------------------------------------------------------------

def test_same_seed_and_steps_give_identical_telemetry_and_events() -> None:
    first = run_raw("trace", 7)
    assert run_raw("trace", 7) == first
    assert first.count('"s"') > 500


def test_another_seed_changes_the_noise_but_not_the_sun() -> None:
    a, b = run("trace", 1), run("trace", 2)
    assert a.series("sun_elevation") == b.series("sun_elevation")
    assert a.series("lunar_day") == b.series("lunar_day")
    assert a.series("battery_temp") != b.series("battery_temp")
    assert a.series("radiation") != b.series("radiation")


# --- the sun, the array and the surface ----------------------------------------------------

def test_boot_state_is_early_morning_with_the_battery_at_80_percent() -> None:
    (boot,) = run("cycle").tagged("boot")
    assert boot[CH["lunar_day"]] is True
    assert 5 < boot[CH["sun_elevation"]] < 20
    assert boot[CH["battery_soc"]] == pytest.approx(80.0)
    assert boot[CH["loads_on"]] == ids.LOADS_ESSENTIAL_MASK
    assert 0 < boot[CH["battery_temp"]] < 20


def test_solar_current_follows_the_sun_and_is_zero_at_night() -> None:
    r = run("cycle")
    for _, _, s in r.samples:
        elevation, solar = s[CH["sun_elevation"]], s[CH["solar_current"]]
        assert s[CH["lunar_day"]] == (elevation > 0)
        if elevation < 0:
            assert solar == 0.0
        elif elevation > 0.5:
            assert solar > 0.0
    peak = max(r.series("sun_elevation"))
    assert peak == pytest.approx(90 - 20.19, abs=0.1)  # noon at the 20.2 deg N site
    assert 17.0 < max(r.series("solar_current")) < 20.5


def test_sunrise_and_sunset_events_mark_the_day_night_transitions() -> None:
    r = run("cycle")
    transitions = []
    previous = None
    for _, t, s in r.samples:
        day = s[CH["lunar_day"]]
        if previous is not None and day != previous:
            transitions.append((t, ids.EV_SUNRISE if day else ids.EV_SUNSET))
        previous = day
    events = [(e[0], e[1]) for e in r.events if e[1] in (ids.EV_SUNRISE, ids.EV_SUNSET)]
    assert events == transitions
    assert [e for _, e in events] == [ids.EV_SUNSET, ids.EV_SUNRISE, ids.EV_SUNSET]
    night_s = events[1][0] - events[0][0]
    day_s = events[2][0] - events[1][0]
    assert night_s == pytest.approx(SYNODIC_S / 2, abs=600)
    assert day_s == pytest.approx(SYNODIC_S / 2, abs=600)


def test_surface_swings_from_noon_heat_to_night_cold() -> None:
    surface = run("cycle").series("surface_temp")
    assert 105 < max(surface) < 125
    assert -180 < min(surface) < -165


# --- the night's energy budget --------------------------------------------------------------

def _night(r: Run) -> list[dict[int, Any]]:
    sunset = r.of(ids.EV_SUNSET)[0][0]
    sunrise = r.of(ids.EV_SUNRISE)[0][0]
    return [s for _, t, s in r.samples if sunset < t <= sunrise]


def test_essential_loads_survive_the_night_on_battery_and_heaters() -> None:
    r = run("cycle")
    night = _night(r)
    soc = [s[CH["battery_soc"]] for s in night]
    assert soc[0] > 99  # charged by the day
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(soc))  # only drains
    assert 25 < soc[-1] < 60  # survives, with a margin over shed_soc_pct (15)
    assert all(s[CH["battery_current"]] < 0 for s in night)


def test_the_day_recharges_the_battery() -> None:
    r = run("cycle")
    sunrise = r.of(ids.EV_SUNRISE)[0][0]
    day = [s for _, t, s in r.samples if sunrise < t <= sunrise + 5 * DAY_S]
    assert any(s[CH["battery_current"]] > 3 for s in day)
    assert day[-1][CH["battery_soc"]] > 99
    assert day[-1][CH["battery_voltage"]] < 33.4  # full, below the yellow limit


def test_every_load_on_drains_the_battery_before_dawn() -> None:
    r = run("all_on")
    sunrise = r.of(ids.EV_SUNRISE)[0][0]
    empty = [t for _, t, s in r.samples if s[CH["battery_soc"]] == 0.0]
    assert empty and empty[0] < sunrise
    (cutoff,) = r.of(ids.EV_LOADS_SHED)  # the battery's under-voltage cut-off
    assert cutoff[2] == 0x3FF and cutoff[3] == 0.0
    assert cutoff[0] < sunrise


def test_science_loads_at_night_cost_most_of_the_margin() -> None:
    essential = min(s[CH["battery_soc"]] for s in _night(run("cycle")))
    science = min(s[CH["battery_soc"]] for s in _night(run("science_night")))
    assert 0 < science < essential - 15


# --- heaters -------------------------------------------------------------------------------

def test_thermostat_holds_the_battery_near_its_setpoint_at_night() -> None:
    r = run("cycle")
    night = _night(r)[288:]  # from two days after sunset
    temps = [s[CH["battery_temp"]] for s in night]
    assert 5.0 - 1.5 < min(temps) and max(temps) < 5.0 + 1.5  # setpoint 5, hysteresis 2
    heating = {s[CH["heaters_on"]] & 1 for s in night}
    assert heating == {0, 1}
    switched = [e for e in r.of(ids.EV_HEATER_SWITCHED) if e[2] == 0]
    assert len(switched) > 20
    assert all(a[3] != b[3] for a, b in itertools.pairwise(switched))  # on, off...
    box = [s[CH["electronics_temp"]] for s in night]
    assert -10.0 - 1.5 < min(box) and max(box) < -10.0 + 1.5


def test_heater_modes_force_and_setpoint() -> None:
    r = run("heater_modes")
    off = r.series("battery_temp", "off")
    assert off[-1] < off[0] - 3 and all(s[CH["heaters_on"]] & 1 == 0 for s in r.tagged("off"))
    forced = r.tagged("forced")
    assert all(s[CH["heaters_on"]] & 1 for s in forced)  # forced on although OFF
    assert forced[-1][CH["battery_temp"]] > off[-1] + 8
    assert all(s[CH["current_heater_battery"]] > 1.3 for s in forced)
    on = r.series("battery_temp", "on")
    assert on[-1] > on[0]
    auto15 = r.series("battery_temp", "auto15")[-144:]
    assert 15 - 1.5 < min(auto15) and max(auto15) < 15 + 1.5
    wide = r.series("battery_temp", "auto15h6")[-144:]
    assert max(wide) - min(wide) > 4.0
    assert r.facts["mode_off"] == 0
    assert r.facts["bad_mode"] is False


# --- trips ---------------------------------------------------------------------------------

def test_injected_trip_opens_the_channel_until_reset() -> None:
    r = run("trip")
    bit = 1 << ids.LOAD_PAYLOAD_A
    (on,) = r.tagged("on")
    assert on[CH["loads_on"]] & bit and on[CH["current_payload_a"]] > 1.0
    assert r.facts["inject"] is True
    (tripped,) = r.tagged("tripped")
    assert not tripped[CH["loads_on"]] & bit
    assert tripped[CH["loads_tripped"]] & bit
    assert tripped[CH["current_payload_a"]] == 0.0
    first = r.of(ids.EV_LOAD_TRIPPED)[0]
    assert first[2] == ids.LOAD_PAYLOAD_A and first[3] > D.LOADS[ids.LOAD_PAYLOAD_A][2]
    assert r.facts["switch_tripped"] is False
    assert r.facts["masks_tripped"][1] & bit
    assert r.facts["masks_reset"][0] & bit == 0 and r.facts["masks_reset"][1] & bit == 0
    assert r.facts["switch_reset"] is True
    (again,) = r.tagged("again")
    assert again[CH["loads_on"]] & bit and not again[CH["loads_tripped"]] & bit


def test_an_off_channel_trips_too_at_the_injected_current() -> None:
    r = run("trip")
    assert r.facts["inject_off"] is True
    event = [e for e in r.of(ids.EV_LOAD_TRIPPED) if e[2] == ids.LOAD_DUST_CAMERA]
    assert event and event[0][3] == pytest.approx(9.5)
    (s,) = r.tagged("off_tripped")
    assert s[CH["loads_tripped"]] & (1 << ids.LOAD_DUST_CAMERA)


def test_a_tripped_heater_circuit_stops_its_heater() -> None:
    r = run("trip")
    (before,) = r.tagged("heater_on")
    (after,) = r.tagged("heater_tripped")
    assert before[CH["heaters_on"]] & 1 and before[CH["current_heater_battery"]] > 1.3
    assert not after[CH["heaters_on"]] & 1 and after[CH["current_heater_battery"]] == 0.0
    (when,) = [t for tag, t, _ in r.samples if tag == "heater_tripped"]
    trip = [e for e in r.of(ids.EV_LOAD_TRIPPED) if e[2] == ids.LOAD_HEATER_BATTERY]
    off = [e for e in r.of(ids.EV_HEATER_SWITCHED) if e[2] == 0 and e[3] is False]
    assert [e[0] for e in trip] == [when] and off[-1][0] == when


def test_bad_fault_arguments_are_refused() -> None:
    assert run("trip").facts["bad_targets"] == [False, False, False, False]


def test_random_spikes_trip_loads_that_are_on() -> None:
    r = run("spikes")
    trips = r.of(ids.EV_LOAD_TRIPPED)
    assert trips
    mask = 0
    for _, _, ch, current, _ in trips:
        assert current > D.LOADS[ch][2]
        mask |= 1 << ch
    on, tripped = r.facts["masks"]
    assert tripped == mask and on & tripped == 0


def test_load_currents_stay_near_nominal_and_sum_to_the_bus() -> None:
    r = run("trace")
    for _, _, s in r.samples:
        currents = [s[40 + ch] for ch in range(len(D.LOADS))]
        assert s[CH["bus_current"]] == pytest.approx(sum(currents))
        for ch, current in enumerate(currents):
            if s[CH["loads_on"]] >> ch & 1 and current:
                assert current == pytest.approx(D.LOADS[ch][1], rel=0.021)


# --- faults and sensors --------------------------------------------------------------------

def test_stuck_sensor_reads_its_value_and_misleads_the_thermostat() -> None:
    r = run("sensors")
    assert r.facts["stuck"] is True
    faulty = r.tagged("faulty")
    assert all(s[CH["battery_temp"]] == 20.0 for s in faulty)
    assert all(s[CH["heaters_on"]] & 1 == 0 for s in faulty)  # it believes 20 degC
    after = r.series("battery_temp", "after")
    assert after[0] < 10.0  # the truth had cooled meanwhile
    assert any(s[CH["heaters_on"]] & 1 for s in r.tagged("after"))  # and it heats again


def test_failed_sensor_reads_the_fill_value_until_cleared() -> None:
    r = run("sensors")
    assert r.facts["fail"] is True
    assert all(s[CH["radiation"]] == -999.0 for s in r.tagged("faulty"))
    assert all(5 < s[CH["radiation"]] < 5000 for s in r.tagged("cleared"))


def test_battery_drain_shows_in_the_battery_not_the_bus() -> None:
    r = run("drain")
    base, drained = r.tagged("base"), r.tagged("drain")
    assert len(base) == len(drained)
    for b, d in zip(base, drained, strict=True):
        assert d[CH["battery_current"]] - b[CH["battery_current"]] == pytest.approx(-3.0)
        assert d[CH["bus_current"]] == b[CH["bus_current"]]
    lost = base[-1][CH["battery_soc"]] - drained[-1][CH["battery_soc"]]
    assert lost > 3.0 * 48 / 600 * 100 * 0.9  # 3 A for two days from a 600 Ah battery


def test_mcu_temperature_is_modelled_or_read_from_the_board() -> None:
    r = run("mcu")
    (model,) = r.tagged("model")
    assert model[CH["mcu_temp"]] == pytest.approx(model[CH["electronics_temp"]] + 6, abs=1.5)
    (board,) = r.tagged("board")
    assert board[CH["mcu_temp"]] == 42.5


# --- integration ---------------------------------------------------------------------------

def test_many_small_steps_match_one_large_step() -> None:
    r = run("step_sizes")
    (small,) = r.tagged("small")
    (large,) = r.tagged("large")
    assert small[CH["sun_elevation"]] == pytest.approx(large[CH["sun_elevation"]], abs=1e-3)
    assert small[CH["battery_soc"]] == pytest.approx(large[CH["battery_soc"]], abs=0.05)
    assert small[CH["battery_temp"]] == pytest.approx(large[CH["battery_temp"]], abs=0.2)


def test_tenth_second_steps_still_move_the_model() -> None:
    r = run("step_sizes")
    (tiny,) = r.tagged("tiny")
    (ref,) = r.tagged("tiny_ref")
    (boot,) = run("cycle").tagged("boot")
    assert tiny[CH["sun_elevation"]] > boot[CH["sun_elevation"]] + 0.03  # 300 s of sun
    assert tiny[CH["sun_elevation"]] == pytest.approx(ref[CH["sun_elevation"]], abs=3e-3)
    assert tiny[CH["battery_soc"]] == pytest.approx(ref[CH["battery_soc"]], rel=1e-3)
    (following,) = r.tagged("tiny_next")
    assert following[CH["battery_temp"]] != tiny[CH["battery_temp"]]  # fresh sensor noise


def test_bad_control_arguments_are_refused() -> None:
    assert run("step_sizes").facts["bad_controls"] == [False, False, False, False]


def test_huge_steps_stay_stable_and_physical() -> None:
    r = run("step_sizes")
    huge = r.tagged("huge")
    assert len(huge) == 11
    for s in huge:
        for v in s.values():
            assert v is not None and math.isfinite(v)
        assert 0.0 <= s[CH["battery_soc"]] <= 100.0
        for name in ("battery_temp", "electronics_temp", "surface_temp"):
            assert -200 < s[CH[name]] < 200
    assert r.of(ids.EV_SUNSET) and r.of(ids.EV_SUNRISE)


# --- environment ---------------------------------------------------------------------------

def test_dust_settles_at_its_rate_and_dims_the_array() -> None:
    r = run("dust")
    dust = r.series("dust_factor")
    assert all(b <= a for a, b in itertools.pairwise(dust))
    assert dust[-1] == pytest.approx(1.0 - 0.5 * 30 * DAY_S / SYNODIC_S, abs=0.01)
    sin_noon = math.cos(math.radians(20.19))
    checked = 0
    for _, _, s in r.samples:
        elevation = s[CH["sun_elevation"]]
        if elevation > 5:
            clean = 20.0 * math.sin(math.radians(elevation)) / sin_noon
            assert s[CH["solar_current"]] == pytest.approx(clean * s[CH["dust_factor"]], abs=0.03)
            checked += 1
    assert checked > 40


def test_solar_particle_events_come_and_go() -> None:
    r = run("spe")
    spe = [e for e in r.events if e[1] in (ids.EV_SPE_START, ids.EV_SPE_END)]
    kinds = [e[1] for e in spe]
    assert len(kinds) >= 4
    assert kinds[::2] == [ids.EV_SPE_START] * len(kinds[::2])
    assert kinds[1::2] == [ids.EV_SPE_END] * len(kinds[1::2])
    for start, end in zip(spe[::2], spe[1::2], strict=False):
        assert 200 < start[2] < 5100
        during = [s[CH["radiation"]] for _, t, s in r.samples if start[0] <= t < end[0]]
        assert during and max(during) > 100  # a yellow limit's worth
    rad = r.series("radiation")
    assert 10 < sorted(rad)[len(rad) // 2] < 16  # mostly the ~13 uGy/h background
