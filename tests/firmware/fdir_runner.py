"""Runs node.fdir scenarios on the MicroPython Unix port for tests/firmware/test_fdir.py.

    MICROPYPATH=firmware:. micropython tests/firmware/fdir_runner.py SCENARIO

Prints JSON lines: ["e", check, event_id, a, b, c] an event (from FDIR or the plant),
["safe", check, reason] a modes.force_safe call, ["s", check, {name: value}] a sample,
["x", name, value] a fact, ["end"] at the end. Fake modes and params stand in for the node's.
"""

import json
import sys

import micropython
from node.fdir import Fdir
from node.plant import Plant
from node.plant.unit import N_SENSORS, SENSOR_CHANNELS

from protocol.ids import (
    CH_BATTERY_SOC,
    CH_BATTERY_TEMP,
    CH_BATTERY_VOLTAGE,
    CH_CURRENT_COMMS_RELAY,
    CH_ELECTRONICS_TEMP,
    CH_HEAP_FREE,
    CH_HEATERS_ON,
    CH_LOADS_ON,
    CH_LOADS_TRIPPED,
    CH_SOLAR_CURRENT,
    CH_SURFACE_TEMP,
    FAULT_BATTERY_DRAIN,
    FAULT_SENSOR_FAIL,
    FAULT_SENSOR_STUCK,
    HEATER_BATTERY,
    LOAD_PAYLOAD_A,
    LOAD_SEISMOMETER,
    MODE_NOMINAL,
    PARAM_BATTERY_COLD_C,
    PARAM_FDIR_ENABLED,
    PARAM_SHED_SOC_PCT,
    SENSOR_BATTERY_TEMP,
    SENSOR_BATTERY_VOLTAGE,
    SENSOR_ELECTRONICS_TEMP,
)

_DAY_S = 86400
# Nominal readings of the sensor channels (solar, voltage, battery temp, electronics temp,
# surface, radiation) for the hand-driven scenarios.
_NOMINAL = ((9, 5.0), (12, 30.0), (14, 10.0), (16, 20.0), (17, 0.0), (18, 13.0))


class Params:
    def __init__(self, enabled=True):
        self.values = {PARAM_FDIR_ENABLED: enabled, PARAM_SHED_SOC_PCT: 15.0,
                       PARAM_BATTERY_COLD_C: -5.0}

    def get(self, pid):
        return self.values[pid]


class Modes:
    def __init__(self, rig):
        self.rig = rig
        self.current = MODE_NOMINAL

    def force_safe(self, reason):
        print(json.dumps(["safe", self.rig.n, reason]))
        self.current = 1


class FakePlant:
    """What FDIR uses of the plant, for limit scenarios that set telemetry by hand."""

    nonessential_mask = 0x0FE

    def __init__(self):
        self.loads_on = 0x301
        self.forced = []  # force_heater calls, [heater, on]

    def shed(self, mask):
        m = self.loads_on & mask
        self.loads_on &= ~m
        return m

    def force_heater(self, h, on):
        print(json.dumps(["x", "force_heater", [h, on]]))
        self.forced.append([h, on])


class Rig:
    def __init__(self, seed=1, enabled=True, real=True):
        self.n = 0  # checks so far
        self.tlm = [None] * 50
        self.hand = [CH_ELECTRONICS_TEMP]  # channels the scenario sets, not check()
        self.params = Params(enabled)
        self.modes = Modes(self)
        if real:
            self.plant = Plant(self.tlm, self.emit, seed)
            self.plant.spike_interval_s = 0.0
        else:
            self.plant = FakePlant()
            for ch, v in _NOMINAL:
                self.tlm[ch] = v
            self.tlm[CH_BATTERY_SOC] = 80.0
        self.fdir = Fdir(self.tlm, self.plant, self.modes, self.emit, self.params)

    def emit(self, event_id, a=None, b=None, c=None):
        print(json.dumps(["e", self.n, event_id, a, b, c]))

    def check(self, dt=600):
        """One FDIR check after dt model seconds of plant (real plant only)."""
        if isinstance(self.plant, Plant):
            self.plant.step(dt)
        else:  # keep the fake sensors moving, as real ones do
            for ch, v in _NOMINAL:
                if ch not in self.hand:
                    self.tlm[ch] = v + (self.n % 7) * 0.01
        self.n += 1
        self.fdir.check()

    def sample(self, names):
        tlm = self.tlm
        print(json.dumps(["s", self.n, {name: tlm[ch] for name, ch in names}]))


_POWER = (("soc", CH_BATTERY_SOC), ("loads_on", CH_LOADS_ON), ("batt_temp", CH_BATTERY_TEMP),
          ("heaters_on", CH_HEATERS_ON))


def limits():
    """Electronics temperature and tripped mask driven by hand through every transition."""
    rig = Rig(real=False)
    rig.tlm[CH_HEAP_FREE] = None  # never written: never evaluated
    seq = ([20.0] * 5 + [55.0] * 5 + [49.9, 50.1] * 5 + [65.0] * 5 + [55.0, 55.0, 65.0, 65.0]
           + [55.0] * 5 + [49.8] * 5 + [20.0] * 5 + [61.0] * 5 + [-35.0] * 5 + [20.0] * 5
           + [50.1, 49.9] * 10 + [-25.0] * 5 + [-19.5] * 5 + [0.0] * 5)
    for v in seq:
        rig.tlm[CH_ELECTRONICS_TEMP] = v
        rig.check()
    fact("electronics_done", rig.n)
    for v in [0] * 3 + [4] * 4 + [0] * 4:
        rig.tlm[CH_LOADS_TRIPPED] = v
        rig.check()
    fact("state_16", rig.fdir.state(CH_ELECTRONICS_TEMP))


def edges():
    """Electronics temperature on every limit edge, its plausible range's edges, stuck."""
    rig = Rig(real=False)

    def hold(v, n=3):
        for _ in range(n):
            rig.tlm[CH_ELECTRONICS_TEMP] = v + 0.0  # a new float each time, as a sensor gives
            rig.check()

    # on a limit is inside it (yellow -20..50, red -30..60); easing needs 1 %: 49.5, -19.8
    hold(50.0)
    hold(-20.0)
    hold(55.0)  # yellow
    hold(60.0)
    hold(49.6)
    hold(49.5)  # nominal
    hold(-25.0)  # yellow
    hold(-30.0)
    hold(-19.9)
    hold(-19.7)  # nominal
    fact("limits_done", rig.n)
    # the plausible range -150..150 includes its edges (150 is red, -150 too)
    hold(150.0)  # red
    hold(150.5, 1)  # sensor_fault
    hold(149.0, 1)  # plausible and moving: the flag clears
    hold(-150.0, 1)
    hold(-150.5, 1)  # sensor_fault again
    hold(20.0, 1)
    hold(21.0, 3)  # nominal (the state was held while the sensor was faulty)
    fact("plausible_done", rig.n)
    # stuck: a non-zero reading repeated 30 times after its first is a fault, once
    hold(33.0, 300)
    fact("faulty_stuck", rig.fdir.faulty)
    hold(34.0, 1)
    fact("faulty_moving", rig.fdir.faulty)
    hold(0.0, 300)  # a sensor stuck at exactly 0 is not caught
    fact("faulty_zero", rig.fdir.faulty)
    hold(-33.0, 40)  # one stuck below 0 is
    hold(20.0, 1)
    fact("faulty_negative_cleared", rig.fdir.faulty)
    # other sensors faulty: battery voltage (0, odd masks) and surface temperature (5, above
    # electronics); electronics still gets its own limit events and its own sensor_fault
    rig.hand += [CH_BATTERY_VOLTAGE, CH_SURFACE_TEMP]
    rig.tlm[CH_BATTERY_VOLTAGE] = -1.0
    rig.tlm[CH_SURFACE_TEMP] = 999.0
    hold(20.5, 1)
    fact("faulty_others", rig.fdir.faulty)
    hold(55.0)  # yellow
    hold(200.0, 1)  # sensor_fault for electronics too
    fact("faulty_all", rig.fdir.faulty)
    hold(200.0, 3)  # red, but its sensor is faulty: not evaluated, no limit event


def drain(enabled=True):
    """Payload and seismometer on, a 60 A drain: FDIR sheds and forces SAFE."""
    rig = Rig(enabled=enabled)
    p = rig.plant
    p.switch(LOAD_PAYLOAD_A, True)
    p.switch(LOAD_SEISMOMETER, True)
    rig.check()
    p.inject(FAULT_BATTERY_DRAIN, 0, 60.0)
    for _ in range(60):
        rig.check()
        rig.sample(_POWER)
    p.clear_faults()
    fact("mode_after_drain", rig.modes.current)
    # The operator goes back to NOMINAL and switches the payload on again, still low.
    rig.modes.current = MODE_NOMINAL
    fact("switch_again", p.switch(LOAD_PAYLOAD_A, True))
    rig.check()
    rig.sample(_POWER)
    fact("mode_after_retry", rig.modes.current)
    # Sunrise recharges the battery; the latch releases once the charge is back.
    for _ in range(400):
        rig.check(3000)
        if not rig.fdir.shedding:
            break
    fact("released", [not rig.fdir.shedding, rig.tlm[CH_BATTERY_SOC]])
    fact("switch_released", p.switch(LOAD_PAYLOAD_A, True))
    rig.check()
    rig.sample(_POWER)


def drain_disabled():
    drain(enabled=False)


def cold(enabled=True):
    """At night with the battery heater OFF: FDIR forces it on below -5 degC, off at 0."""
    rig = Rig(enabled=enabled)
    for _ in range(20):
        rig.plant.step(_DAY_S * 0.8)  # to the night
    rig.plant.set_heater_mode(HEATER_BATTERY, 0)
    for _ in range(6 * 144):
        rig.check()
        rig.sample(_POWER)
    fact("cold_latched", rig.fdir.cold)


def cold_disabled():
    cold(enabled=False)


def sensors():
    rig = Rig()
    p = rig.plant
    for _ in range(5):
        rig.check()
    fact("fail", p.inject(FAULT_SENSOR_FAIL, SENSOR_BATTERY_VOLTAGE, 0.0))
    for _ in range(10):
        rig.check()
    fact("faulty_after_fail", rig.fdir.faulty)
    p.clear_faults()
    for _ in range(5):
        rig.check()
    fact("faulty_after_clear", rig.fdir.faulty)
    fact("stuck", p.inject(FAULT_SENSOR_STUCK, SENSOR_ELECTRONICS_TEMP, 10.0))
    for _ in range(40):
        rig.check()
    fact("faulty_after_stuck", rig.fdir.faulty)
    p.clear_faults()
    rig.check()
    fact("faulty_after_clear2", rig.fdir.faulty)
    # A failed battery sensor reads -999 degC: not a cold battery.
    p.inject(FAULT_SENSOR_FAIL, SENSOR_BATTERY_TEMP, 0.0)
    for _ in range(5):
        rig.check()
    fact("cold_with_failed_sensor", rig.fdir.cold)


def heap():
    """check() in steady state allocates nothing (heap locked). Fewer checks than it takes to
    call the frozen sensors stuck, which would (rightly) raise an event."""
    for real in (True, False):
        rig = Rig(real=real)
        for _ in range(5):
            rig.check()
        micropython.heap_lock()
        try:
            for _ in range(25):
                rig.fdir.check()
            ok = True
        except MemoryError:
            ok = False
        micropython.heap_unlock()
        fact("alloc_free_" + ("plant" if real else "fake"), ok)


def responses():
    """The charge and cold responses on the edges of their params, driven by hand: shed below
    shed_soc_pct (not at it), released at shed_soc_pct + 5 (not below); shed for a red charge
    above shed_soc_pct, held while it is red; the battery heater forced below battery_cold_c
    (not at it), released at battery_cold_c + 10, when FDIR is disabled, never by a faulty
    sensor. Each stage's check number is printed as a fact with what FDIR holds after it."""
    rig = Rig(real=False)
    p, f, values = rig.plant, rig.fdir, rig.params.values

    def at(ch, v, name=None):
        rig.tlm[ch] = v + 0.0
        rig.check()
        if name:
            fact(name, [rig.n, f.shedding, f.cold, rig.modes.current, p.forced])
            p.forced = []

    at(CH_BATTERY_SOC, 15.0)
    at(CH_BATTERY_SOC, 15.0, "soc_at_shed_pct")
    at(CH_BATTERY_SOC, 14.9, "soc_below")  # shed (nothing on), SAFE
    at(CH_BATTERY_SOC, 14.9, "soc_below_again")  # nothing on, already SAFE: nothing
    p.loads_on |= 0x002
    at(CH_BATTERY_SOC, 19.9, "load_on_latched")  # shed again; still SAFE
    rig.modes.current = MODE_NOMINAL
    at(CH_BATTERY_SOC, 19.9, "nominal_latched")  # SAFE again
    rig.tlm[CH_BATTERY_SOC] = None
    rig.modes.current = MODE_NOMINAL
    rig.check()
    fact("soc_none", [rig.n, f.shedding, rig.modes.current])
    at(CH_BATTERY_SOC, 20.0, "released")
    p.loads_on |= 0x004
    at(CH_BATTERY_SOC, 19.9, "above_shed_pct")  # not latched, above 15, not red: nothing
    # red (below 15) with shed_soc_pct at 10: shed once red has held for 3 checks
    values[PARAM_SHED_SOC_PCT] = 10.0
    at(CH_BATTERY_SOC, 14.0)
    at(CH_BATTERY_SOC, 14.0, "red_pending")
    at(CH_BATTERY_SOC, 14.0, "red")
    at(CH_BATTERY_SOC, 15.1, "red_above_release")  # above 10 + 5 but still red: held
    at(CH_BATTERY_SOC, 16.0)
    at(CH_BATTERY_SOC, 16.0, "yellow_pending")
    at(CH_BATTERY_SOC, 16.0, "yellow")  # out of red: released
    fact("states", [f.state(CH_BATTERY_SOC), f.state(CH_ELECTRONICS_TEMP), f.state(CH_HEAP_FREE),
                    f.state(CH_LOADS_ON)])
    # cold battery (battery_cold_c -5: forced below it, released at +5)
    # with another sensor (electronics) faulty meanwhile: the battery's own sensor counts
    rig.hand.append(CH_BATTERY_TEMP)
    rig.tlm[CH_ELECTRONICS_TEMP] = 999.0
    at(CH_BATTERY_TEMP, -5.0, "cold_at")
    at(CH_BATTERY_TEMP, -5.5, "cold_below")
    rig.tlm[CH_ELECTRONICS_TEMP] = 20.5
    at(CH_BATTERY_TEMP, 4.9, "cold_held")
    at(CH_BATTERY_TEMP, 5.0, "cold_released")
    at(CH_BATTERY_TEMP, -6.0, "cold_again")
    values[PARAM_FDIR_ENABLED] = False
    at(CH_BATTERY_TEMP, -6.5, "disabled_releases")
    at(CH_BATTERY_TEMP, -7.0, "disabled_never_forces")
    # battery_temp (14) yellow now: a channel without limits below it (13) is nominal
    fact("states_cold", [f.state(CH_BATTERY_TEMP), f.state(CH_BATTERY_TEMP - 1)])
    values[PARAM_FDIR_ENABLED] = True
    at(CH_BATTERY_TEMP, -999.0, "faulty_never_forces")
    at(CH_BATTERY_TEMP, -7.5, "moving_forces")
    at(CH_BATTERY_TEMP, -999.0, "faulty_never_releases")
    at(CH_BATTERY_TEMP, 5.5, "moving_releases")
    values[PARAM_BATTERY_COLD_C] = -12.0  # another setting: released at -2
    at(CH_BATTERY_TEMP, -12.5, "cold_12")
    at(CH_BATTERY_TEMP, -2.1, "cold_12_held")
    at(CH_BATTERY_TEMP, -2.0, "cold_12_released")


# The physical range of each sensor, in SENSOR_CHANNELS order (node.fdir's design): battery
# voltage V, battery, electronics temperature degC, solar current A, radiation uGy/h, surface
# temperature degC.
_RANGES = ((0.0, 40.0), (-150.0, 150.0), (-150.0, 150.0), (-1.0, 50.0), (0.0, 1.0e6),
           (-250.0, 200.0))


def plausible():
    """Each sensor on the edges of its physical range: at either bound it is plausible, 0.5
    beyond it faulty, and back inside (moving) the flag clears."""
    rig = Rig(real=False)
    for s in range(N_SENSORS):
        ch = SENSOR_CHANNELS[s]
        rig.hand.append(ch)
        lo, hi = _RANGES[s]
        mid = (lo + hi) / 2
        faulty = []
        for v in (lo, hi, lo - 0.5, mid, hi + 0.5, mid + 0.25):
            rig.tlm[ch] = v
            rig.check()
            faulty.append(rig.fdir.faulty)
        fact("sensor_" + str(s), faulty)
        rig.hand.remove(ch)  # moving again


def first():
    """From the very first check: sensors reading exactly 1.0 and -1.0 (both plausible) are
    stuck on the 30th repeat after their first reading, not before; one implausible from
    the start (battery voltage, moving) is faulty at once."""
    rig = Rig(real=False)
    rig.hand += [CH_BATTERY_TEMP, CH_SOLAR_CURRENT, CH_BATTERY_VOLTAGE]
    rig.tlm[CH_BATTERY_TEMP] = 1.0
    rig.tlm[CH_SOLAR_CURRENT] = -1.0
    for n in range(35):
        rig.tlm[CH_BATTERY_VOLTAGE] = -1.0 - n
        rig.check()
    # battery temperature moves again: only its own flag clears, the others stay (no event)
    for n in range(2):
        rig.tlm[CH_BATTERY_VOLTAGE] = -40.0 - n
        rig.tlm[CH_BATTERY_TEMP] = 2.0 + n
        rig.check()
    fact("faulty_after_one_cleared", rig.fdir.faulty)


def red_edges():
    """Leaving red needs 1 % of the red limit too: electronics_temp red above 60 eases at
    59.39 (below 59.4), not at 59.41; red below -30 eases at -29.69, not at -29.71. A load
    current (no lower limit) reading below 0 stays nominal."""
    rig = Rig(real=False)

    def hold(v, n=3):
        for _ in range(n):
            rig.tlm[CH_ELECTRONICS_TEMP] = v + 0.0
            rig.check()

    hold(61.0)  # red
    hold(59.41)  # still red
    hold(59.39)  # yellow
    hold(20.0)  # nominal
    hold(-31.0)  # red
    hold(-29.71)  # still red
    hold(-29.69)  # yellow
    hold(20.0)
    rig.tlm[CH_CURRENT_COMMS_RELAY] = -0.5
    hold(20.1)
    fact("load_current_state", rig.fdir.state(CH_CURRENT_COMMS_RELAY))


def fact(name, value):
    print(json.dumps(["x", name, value]))


SCENARIOS = {f.__name__: f for f in (limits, edges, drain, drain_disabled, cold, cold_disabled,
                                      sensors, heap, responses, plausible, first, red_edges)}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
    print(json.dumps(["end"]))
