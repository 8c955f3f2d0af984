"""FDIR: node.fdir on the real MicroPython interpreter (tests/firmware/fdir_runner.py), then
scenarios through the link with fault injection and an accelerated plant.

Runner scenarios (exact): limit persistence (_PERSIST checks), hysteresis, yellow/red/nominal
events named and numbered exactly; every limit event's value lies in the zone the event names;
sensor faults; battery drain sheds and forces SAFE; a cold battery forces its heater; check()
allocates nothing.
Link scenarios: battery drain sheds loads and forces SAFE; over-current trips the channel until
reset; cold battery forces the heater on; a failed sensor raises sensor_fault.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nodelink import field

from ground.micropython import PICO_HEAP, REPO_ROOT, find_micropython, micropython_path_env
from protocol import ids
from protocol import messages as M
from protocol.node_dictionary import LIMIT_CHANNELS, limit

RUNNER = Path(__file__).with_name("fdir_runner.py")
LOADS_ON = field(ids.PKT_POWER, "loads_on")
TRIPPED = field(ids.PKT_POWER, "loads_tripped")
HEATERS_ON = field(ids.PKT_POWER, "heaters_on")
SOC = field(ids.PKT_POWER, "battery_soc")
MODE = field(ids.PKT_POWER, "mode")
NONESSENTIAL = 0x03FF & ~ids.LOADS_ESSENTIAL_MASK


def bit(ch):
    return 1 << ch


# --- node.fdir on MicroPython (fdir_runner.py) ----------------------------------------------


@functools.cache
def run(scenario: str) -> dict[str, Any]:
    """The runner's output: events (check, id, a, b, c), safe calls (check, reason), facts."""
    proc = subprocess.run(
        [find_micropython(), "-X", f"heapsize={PICO_HEAP}", str(RUNNER), scenario],
        env=micropython_path_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 0, f"{scenario} failed:\n{proc.stderr}"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[-1] == ["end"], f"{scenario} did not finish"
    out: dict[str, Any] = {"events": [], "safe": [], "facts": {}, "samples": 0}
    for line in lines[:-1]:
        if line[0] == "e":
            out["events"].append(tuple(line[1:]))
        elif line[0] == "safe":
            out["safe"].append(tuple(line[1:]))
        elif line[0] == "s":
            out["samples"] += 1
        else:
            out["facts"][line[1]] = line[2]
    return out


LIMIT_EVENTS = (ids.EV_LIMIT_NOMINAL, ids.EV_LIMIT_YELLOW, ids.EV_LIMIT_RED)
LIMITS = {limit(i)[0]: limit(i)[1:] for i in range(len(LIMIT_CHANNELS))}


def zone(ch: int, v: float) -> int:
    """0 nominal, 1 yellow, 2 red: where v lies against the dictionary's limits of ch."""
    ylo, yhi, rlo, rhi = LIMITS[ch]
    if (rlo is not None and v < rlo) or (rhi is not None and v > rhi):
        return 2
    if (ylo is not None and v < ylo) or (yhi is not None and v > yhi):
        return 1
    return 0


@pytest.mark.micropython
def test_limit_events_after_exactly_three_checks_with_hysteresis() -> None:
    # fdir_runner.limits drives electronics_temp (yellow -20..50, red -30..60) and the tripped
    # mask (yellow above 0) by hand: a new state is reported on the 3rd consecutive check
    # (PUS repetition), once; easing needs 1 % of the limit beyond it (49.9, 49.8 stay yellow,
    # -19.5 clears -19.8); alternating 50.1 / 49.9 never persists; 55-55-65 back in red does
    # not report yellow; a direct jump nominal -> red is one limit_red; -35 while red is still red.
    ch_t, ch_trip = ids.CH_ELECTRONICS_TEMP, ids.CH_LOADS_TRIPPED
    y, r, n = ids.EV_LIMIT_YELLOW, ids.EV_LIMIT_RED, ids.EV_LIMIT_NOMINAL
    assert run("limits")["events"] == [
        (8, y, ch_t, 55.0, None), (23, r, ch_t, 65.0, None), (32, y, ch_t, 55.0, None),
        (42, n, ch_t, 20.0, None), (47, r, ch_t, 61.0, None), (57, n, ch_t, 20.0, None),
        (82, y, ch_t, -25.0, None), (87, n, ch_t, -19.5, None),
        (100, y, ch_trip, 4, None), (104, n, ch_trip, 0, None),
    ]
    assert run("limits")["safe"] == []
    assert run("limits")["facts"] == {"electronics_done": 94, "state_16": 0}


@pytest.mark.micropython
def test_limit_and_sensor_edges() -> None:
    # fdir_runner.edges, electronics_temp (yellow -20..50, red -30..60, plausible -150..150):
    # a value on a limit is inside it (50, -20, 60, -30 change nothing), easing needs exactly
    # 1 % (49.6 and -19.9 stay yellow, 49.5 and -19.7 clear); 150 and -150 are plausible,
    # 150.5 and -150.5 not; a reading repeated 30 times after its first is stuck on exactly
    # the 30th repeat, raised once however long it stays; one stuck at 0 is not, one below 0
    # is; with battery voltage (sensor 0) and surface temperature (5) faulty, electronics
    # still gets its limit events and its own sensor_fault.
    ch_t = ids.CH_ELECTRONICS_TEMP
    y, r, n, f = ids.EV_LIMIT_YELLOW, ids.EV_LIMIT_RED, ids.EV_LIMIT_NOMINAL, ids.EV_SENSOR_FAULT
    s_t = ids.SENSOR_ELECTRONICS_TEMP
    s_v, s_s = ids.SENSOR_BATTERY_VOLTAGE, ids.SENSOR_SURFACE_TEMP
    assert run("edges")["events"] == [
        (9, y, ch_t, 55.0, None), (18, n, ch_t, 49.5, None), (21, y, ch_t, -25.0, None),
        (30, n, ch_t, -19.7, None),
        (33, r, ch_t, 150.0, None), (34, f, s_t, None, None), (37, f, s_t, None, None),
        (40, n, ch_t, 21.0, None),
        (42 + 30, f, s_t, None, None),
        (645, r, ch_t, -33.0, None), (643 + 30, f, s_t, None, None),
        (684, f, s_v, None, None), (684, f, s_s, None, None),
        (687, y, ch_t, 55.0, None), (688, f, s_t, None, None),
    ]
    assert run("edges")["facts"] == {
        "limits_done": 30, "plausible_done": 41, "faulty_stuck": 1 << s_t,
        "faulty_moving": 0, "faulty_zero": 0, "faulty_negative_cleared": 0,
        "faulty_others": (1 << s_v) | (1 << s_s),
        "faulty_all": (1 << s_v) | (1 << s_s) | (1 << s_t)}


@pytest.mark.micropython
@pytest.mark.parametrize("scenario", ["limits", "edges", "drain", "drain_disabled", "cold",
                                      "cold_disabled"])
def test_each_limit_event_names_the_zone_its_value_is_in(scenario: str) -> None:
    seen = 0
    for _check, event_id, ch, v, _c in run(scenario)["events"]:
        if event_id in LIMIT_EVENTS:
            seen += 1
            assert LIMIT_EVENTS[zone(ch, v)] == event_id, (event_id, ch, v)
    assert seen >= 2


@pytest.mark.micropython
def test_drain_sheds_once_forces_safe_and_releases_at_sunrise() -> None:
    out = run("drain")
    shed = [e for e in out["events"] if e[1] == ids.EV_LOADS_SHED]
    # shed when the charge fell below shed_soc_pct (15 %): payload A and the seismometer
    first = shed[0]
    assert first[2] == bit(ids.LOAD_PAYLOAD_A) | bit(ids.LOAD_SEISMOMETER) and first[3] < 15.0
    assert out["safe"][0] == (first[0], ids.SAFE_LOW_CHARGE)
    # switched on again while latched: shed again, SAFE forced again, same check
    assert shed[-1][2] == bit(ids.LOAD_PAYLOAD_A) and (shed[-1][0], 1) in out["safe"]
    assert out["facts"]["mode_after_drain"] == ids.MODE_SAFE
    assert out["facts"]["mode_after_retry"] == ids.MODE_SAFE
    released, soc = out["facts"]["released"]
    assert released and soc >= 20.0  # shed_soc_pct + 5
    assert out["samples"] == 62


@pytest.mark.micropython
def test_drain_with_fdir_disabled_sheds_nothing() -> None:
    out = run("drain_disabled")
    # only the plant's own brown-out at an empty battery (soc 0) sheds; FDIR does not
    shed = [e for e in out["events"] if e[1] == ids.EV_LOADS_SHED]
    assert [e[3] for e in shed] == [0.0]
    assert [e for e in run("drain")["events"] if e[1] == ids.EV_LOADS_SHED and e[3] == 0.0]
    assert out["safe"] == []
    assert out["facts"]["mode_after_drain"] == ids.MODE_NOMINAL


@pytest.mark.micropython
def test_cold_battery_forces_its_heater_and_releases_it() -> None:
    out = run("cold")
    cold = [e for e in out["events"] if e[1] == ids.EV_HEATER_ON_COLD]
    assert len(cold) == 3 and all(e[2] < -5.0 for e in cold)
    for check, *_ in cold:  # forced on in the same check (battery heater 0 switched on)
        assert (check, ids.EV_HEATER_SWITCHED, ids.HEATER_BATTERY, True) in [
            e[:4] for e in out["events"]]
    assert [e for e in run("cold_disabled")["events"] if e[1] == ids.EV_HEATER_ON_COLD] == []


@pytest.mark.micropython
def test_sensor_faults_flag_once_and_clear() -> None:
    out = run("sensors")
    assert [e for e in out["events"] if e[1] == ids.EV_SENSOR_FAULT] == [
        (6, ids.EV_SENSOR_FAULT, ids.SENSOR_BATTERY_VOLTAGE, None, None),  # the first check
        (51, ids.EV_SENSOR_FAULT, ids.SENSOR_ELECTRONICS_TEMP, None, None),  # 30 frozen checks
        (62, ids.EV_SENSOR_FAULT, ids.SENSOR_BATTERY_TEMP, None, None),
    ]
    assert out["facts"] == {
        "fail": True, "faulty_after_fail": 1, "faulty_after_clear": 0, "stuck": True,
        "faulty_after_stuck": 4, "faulty_after_clear2": 0, "cold_with_failed_sensor": False}


@pytest.mark.micropython
def test_charge_and_cold_responses_on_the_edges_of_their_params() -> None:
    # fdir_runner.responses, by hand (shed_soc_pct 15, battery_cold_c -5): shed below 15, not
    # at it, once and SAFE (reason SAFE_LOW_CHARGE); while latched a load switched on is shed
    # again and a mode other than SAFE forced back; released at 20 (15 + 5), not at 19.9; a
    # charge in red (below 15) sheds even above shed_soc_pct (10 now) and holds until out of
    # red, though above 10 + 5; the battery heater forced below -5, not at it, released at
    # 5 (-5 + 10), not at 4.9 (with battery_cold_c -12: at -2), released when FDIR is
    # disabled, and a faulty battery sensor neither forces nor releases it.
    # Facts: [check, shedding, cold, mode, force_heater calls].
    out = run("responses")
    shed, cold, fault = ids.EV_LOADS_SHED, ids.EV_HEATER_ON_COLD, ids.EV_SENSOR_FAULT
    y, r = ids.EV_LIMIT_YELLOW, ids.EV_LIMIT_RED
    soc, temp, heater = ids.CH_BATTERY_SOC, ids.CH_BATTERY_TEMP, ids.HEATER_BATTERY
    assert out["events"] == [
        (3, shed, 0, 14.9, None), (5, shed, 0x002, 19.9, None), (8, y, soc, 20.0, None),
        (12, r, soc, 14.0, None), (12, shed, 0x004, 14.0, None), (16, y, soc, 16.0, None),
        (17, fault, ids.SENSOR_ELECTRONICS_TEMP, None, None),  # another sensor: no matter
        (18, cold, -5.5, None, None), (21, cold, -6.0, None, None),
        (23, y, temp, -7.0, None), (24, fault, ids.SENSOR_BATTERY_TEMP, None, None),
        (25, cold, -7.5, None, None), (26, fault, ids.SENSOR_BATTERY_TEMP, None, None),
        (28, cold, -12.5, None, None),
    ]
    low = ids.SAFE_LOW_CHARGE
    assert out["safe"] == [(3, low), (6, low), (12, low)]
    nominal, safe = ids.MODE_NOMINAL, ids.MODE_SAFE
    on, off = [[heater, True]], [[heater, False]]
    facts = dict(out["facts"])
    facts.pop("force_heater")
    # state(): battery_soc (yellow, not the first limit row), electronics_temp (nominal),
    # heap_free (never written), loads_on (no limits)
    assert facts.pop("states") == [1, 0, 0, 0]
    assert facts.pop("states_cold") == [1, 0]  # battery_temp yellow; channel 13 has no limits
    assert facts == {
        "soc_at_shed_pct": [2, False, False, nominal, []],
        "soc_below": [3, True, False, safe, []],
        "soc_below_again": [4, True, False, safe, []],
        "load_on_latched": [5, True, False, safe, []],
        "nominal_latched": [6, True, False, safe, []],
        "soc_none": [7, True, nominal],
        "released": [8, False, False, nominal, []],
        "above_shed_pct": [9, False, False, nominal, []],
        "red_pending": [11, False, False, nominal, []],
        "red": [12, True, False, safe, []],
        "red_above_release": [13, True, False, safe, []],
        "yellow_pending": [15, True, False, safe, []],
        "yellow": [16, False, False, safe, []],
        "cold_at": [17, False, False, safe, []],
        "cold_below": [18, False, True, safe, on],
        "cold_held": [19, False, True, safe, []],
        "cold_released": [20, False, False, safe, off],
        "cold_again": [21, False, True, safe, on],
        "disabled_releases": [22, False, False, safe, off],
        "disabled_never_forces": [23, False, False, safe, []],
        "faulty_never_forces": [24, False, False, safe, []],
        "moving_forces": [25, False, True, safe, on],
        "faulty_never_releases": [26, False, True, safe, []],
        "moving_releases": [27, False, False, safe, off],
        "cold_12": [28, False, True, safe, on],
        "cold_12_held": [29, False, True, safe, []],
        "cold_12_released": [30, False, False, safe, off],
    }


@pytest.mark.micropython
def test_each_sensor_is_plausible_up_to_its_bounds_and_no_further() -> None:
    # fdir_runner.plausible: each of the six sensors at the low and the high bound of its
    # physical range (plausible), 0.5 below and above (sensor_fault, once each), and back
    # inside, moving (the flag clears): the faulty mask after each of the six checks.
    out = run("plausible")
    faults = [e[2] for e in out["events"] if e[1] == ids.EV_SENSOR_FAULT]
    assert faults == [s for s in range(6) for _ in range(2)]
    facts = {k: v for k, v in out["facts"].items() if k != "force_heater"}  # (-150 is cold)
    assert facts == {f"sensor_{s}": [0, 0, 1 << s, 0, 1 << s, 0] for s in range(6)}


@pytest.mark.micropython
def test_sensors_frozen_from_the_first_check_are_stuck_on_the_30th_repeat() -> None:
    # fdir_runner.first: battery temperature at 1.0, solar current at -1.0 and electronics
    # temperature at 20.0 from the very first check: each read 1 + 30 times, stuck at check 31;
    # battery voltage below 0 from the first check: faulty at once.
    assert run("first")["events"] == [(1, ids.EV_SENSOR_FAULT, ids.SENSOR_BATTERY_VOLTAGE,
                                       None, None)] + [
        (31, ids.EV_SENSOR_FAULT, s, None, None)
        for s in (ids.SENSOR_BATTERY_TEMP, ids.SENSOR_ELECTRONICS_TEMP,
                  ids.SENSOR_SOLAR_CURRENT)]
    # then battery temperature moves again: its flag alone clears, no event repeats
    assert run("first")["facts"] == {"faulty_after_one_cleared": (
        (1 << ids.SENSOR_BATTERY_VOLTAGE) | (1 << ids.SENSOR_ELECTRONICS_TEMP)
        | (1 << ids.SENSOR_SOLAR_CURRENT))}


@pytest.mark.micropython
def test_leaving_red_needs_the_hysteresis_too() -> None:
    # fdir_runner.red_edges, electronics_temp (red above 60 and below -30): from red, 59.41
    # and -29.71 stay red, 59.39 and -29.69 (1 % inside) ease to yellow; a load current
    # below 0 (it has no lower limit) stays nominal.
    ch = ids.CH_ELECTRONICS_TEMP
    y, r, n = ids.EV_LIMIT_YELLOW, ids.EV_LIMIT_RED, ids.EV_LIMIT_NOMINAL
    out = run("red_edges")
    assert out["events"] == [
        (3, r, ch, 61.0, None), (9, y, ch, 59.39, None), (12, n, ch, 20.0, None),
        (15, r, ch, -31.0, None), (21, y, ch, -29.69, None), (24, n, ch, 20.0, None)]
    assert out["facts"] == {"load_current_state": 0}


@pytest.mark.micropython
def test_check_allocates_nothing_in_steady_state() -> None:
    assert run("heap")["facts"] == {"alloc_free_plant": True, "alloc_free_fake": True}


@pytest.mark.slow
def test_battery_drain_sheds_loads_and_forces_safe(fresh_node):
    _node, link = fresh_node
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)
    for ch in (ids.LOAD_SEISMOMETER, ids.LOAD_DUST_CAMERA):
        link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ch, True)
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_POWER, 10.0)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TIME_FACTOR, 2000.0)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_BATTERY_DRAIN, 0, 1000.0)
    shed = link.assert_event(ids.EV_LOADS_SHED, mark, timeout=20)
    mask, soc = shed.body[2]
    assert mask & bit(ids.LOAD_SEISMOMETER) and mask & bit(ids.LOAD_DUST_CAMERA)
    assert soc < 20.0
    link.assert_event(ids.EV_SAFE_MODE, mark)
    link.assert_event(ids.EV_MODE_CHANGED, mark, lambda a: a == [ids.MODE_NOMINAL, ids.MODE_SAFE])
    p = link.await_telemetry(ids.PKT_POWER, lambda b: b[MODE] == ids.MODE_SAFE)
    assert p.body[LOADS_ON] & NONESSENTIAL == 0
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)


@pytest.mark.slow
def test_over_current_trip(link):
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_TRIP_CHANNEL,
                                 ids.LOAD_SEISMOMETER, 0.0)
    trip = link.assert_event(ids.EV_LOAD_TRIPPED, mark)
    assert trip.body[2][0] == ids.LOAD_SEISMOMETER and trip.body[2][1] > 0.5
    link.await_telemetry(ids.PKT_POWER, lambda b: b[TRIPPED] & bit(ids.LOAD_SEISMOMETER)
                         and not b[LOADS_ON] & bit(ids.LOAD_SEISMOMETER))
    link.assert_failed(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True, code=M.INHIBITED)
    link.send_and_assert_command(ids.CMD_LOAD_RESET_TRIP, ids.LOAD_SEISMOMETER)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True)
    link.await_telemetry(ids.PKT_POWER, lambda b: not b[TRIPPED]
                         and b[LOADS_ON] & bit(ids.LOAD_SEISMOMETER))
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, False)
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_SAFE)


@pytest.mark.slow
def test_cold_battery_forces_heater(link):
    link.send_and_assert_command(ids.CMD_HEATER_MODE, ids.HEATER_BATTERY, 0)  # OFF
    link.await_telemetry(ids.PKT_POWER, lambda b: not b[HEATERS_ON] & 1, timeout=8)
    mark = link.mark()
    # The battery sits near +10 degC: a "cold" threshold of +20 makes it cold now.
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_BATTERY_COLD_C, 20.0)
    cold = link.assert_event(ids.EV_HEATER_ON_COLD, mark, timeout=8)
    assert cold.body[2][0] < 20.0
    link.await_telemetry(ids.PKT_POWER, lambda b: b[HEATERS_ON] & 1, timeout=8)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_BATTERY_COLD_C, -5.0)
    link.send_and_assert_command(ids.CMD_HEATER_MODE, ids.HEATER_BATTERY, 1)  # AUTO


@pytest.mark.slow
def test_failed_sensor_detected(link):
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_SENSOR_FAIL,
                                 ids.SENSOR_ELECTRONICS_TEMP, 0.0)
    link.assert_event(ids.EV_SENSOR_FAULT, mark, lambda a: a == [ids.SENSOR_ELECTRONICS_TEMP],
                      timeout=8)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)
