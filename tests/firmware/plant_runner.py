"""Runs node.plant scenarios on the MicroPython Unix port for tests/firmware/test_plant.py.

    MICROPYPATH=firmware:. micropython tests/firmware/plant_runner.py SCENARIO SEED

Prints JSON lines as the scenario runs, so the interpreter holds nothing: ["s", tag, t_s,
{channel: value}] a telemetry sample, ["e", t_s, event_id, a, b, c] an event, ["x", name,
value] a fact the scenario reports, ["end"] at the end. The judging is done by pytest.
"""

import json
import sys

from node.plant import Plant
from node.plant.unit import SENSOR_CHANNELS

from protocol.ids import (
    FAULT_BATTERY_DRAIN,
    FAULT_SENSOR_FAIL,
    FAULT_SENSOR_STUCK,
    FAULT_TRIP_CHANNEL,
    HEATER_BATTERY,
    LOAD_DUST_CAMERA,
    LOAD_HEATER_BATTERY,
    LOAD_PAYLOAD_A,
    LOAD_RADIATION_MONITOR,
    LOAD_SEISMOMETER,
    SENSOR_BATTERY_TEMP,
    SENSOR_RADIATION,
)

_CHANNELS = tuple(range(7, 23)) + tuple(range(40, 50))
_DAY_S = 86400


class Harness:
    def __init__(self, seed, spikes=False):
        self.t = 0
        self.tlm = [None] * 50
        self.plant = Plant(self.tlm, self.emit, seed)
        if not spikes:
            self.plant.set_spike_interval(0.0)

    def emit(self, event_id, a=None, b=None, c=None):
        print(json.dumps(["e", self.t, event_id, a, b, c]))

    def sample(self, tag=""):
        tlm = self.tlm
        print(json.dumps(["s", tag, self.t, {str(ch): tlm[ch] for ch in _CHANNELS}]))

    def run(self, seconds, dt=600, tag="", every=1):
        """Step dt at a time for `seconds`, sampling every `every` steps."""
        n = 0
        while seconds > 0:
            step = dt if dt < seconds else seconds
            self.t += step
            self.plant.step(step)
            seconds -= step
            n += 1
            if every and n % every == 0:
                self.sample(tag)

    def until(self, predicate, limit_s, dt=600, tag=""):
        """Step until predicate(tlm) holds (True) or limit_s passes (False)."""
        while limit_s > 0:
            self.t += dt
            self.plant.step(dt)
            limit_s -= dt
            self.sample(tag)
            if predicate(self.tlm):
                return True
        return False


def fact(name, value):
    print(json.dumps(["x", name, value]))


def trace(seed):
    """Eight model days (across a sunset) sampled every step, spikes on: for determinism."""
    h = Harness(seed, spikes=True)
    h.plant.switch(LOAD_SEISMOMETER, True)
    h.run(8 * _DAY_S, dt=1200)
    h.run(6 * _DAY_S, dt=3000)


def cycle(seed):
    """1.6 lunations with only the essential loads on."""
    h = Harness(seed)
    h.sample("boot")
    h.run(47 * _DAY_S)


def loads_night(seed, mask):
    """From boot to the second sunrise with the loads in mask switched on as well."""
    h = Harness(seed)
    for ch in range(10):
        if (mask >> ch) & 1:
            h.plant.switch(ch, True)
    h.run(30 * _DAY_S, every=6)


def all_on(seed):
    loads_night(seed, 0x3FF)


def science_night(seed):
    """Seismometer and radiation monitor left on through the night."""
    loads_night(seed, (1 << LOAD_SEISMOMETER) | (1 << LOAD_RADIATION_MONITOR))


def trip(seed):
    h = Harness(seed)
    p = h.plant
    fact("switch_on", p.switch(LOAD_PAYLOAD_A, True))
    h.run(600, tag="on")
    fact("inject", p.inject(FAULT_TRIP_CHANNEL, LOAD_PAYLOAD_A, 0.0))
    h.run(600, tag="tripped")
    fact("switch_tripped", p.switch(LOAD_PAYLOAD_A, True))
    fact("masks_tripped", [p.loads_on, p.loads_tripped])
    p.reset_trip(LOAD_PAYLOAD_A)
    fact("masks_reset", [p.loads_on, p.loads_tripped])
    fact("switch_reset", p.switch(LOAD_PAYLOAD_A, True))
    h.run(600, tag="again")
    # An off channel trips too (one-shot), with the injected current.
    fact("inject_off", p.inject(FAULT_TRIP_CHANNEL, LOAD_DUST_CAMERA, 9.5))
    h.run(600, tag="off_tripped")
    # The battery heater's circuit, at night with its heater forced on.
    h.run(16 * _DAY_S, dt=3000, every=0)
    p.force_heater(HEATER_BATTERY, True)
    h.run(600, tag="heater_on")
    p.inject(FAULT_TRIP_CHANNEL, LOAD_HEATER_BATTERY, 0.0)
    h.run(600, tag="heater_tripped")
    fact("bad_targets", [p.inject(FAULT_TRIP_CHANNEL, 10, 0.0), p.inject(FAULT_SENSOR_FAIL, 6, 0.0),
                         p.inject(9, 0, 0.0), p.inject(FAULT_BATTERY_DRAIN, 0, -1.0)])


def spikes(seed):
    """Frequent random spikes with every load on: they trip channels now and then."""
    h = Harness(seed, spikes=True)
    h.plant.set_spike_interval(20000.0)
    for ch in range(10):
        h.plant.switch(ch, True)
    h.run(3 * _DAY_S, every=0)
    fact("masks", [h.plant.loads_on, h.plant.loads_tripped])


def sensors(seed):
    h = Harness(seed)
    p = h.plant
    fact("sensor_channels", list(SENSOR_CHANNELS))
    h.run(13 * _DAY_S, dt=3000, every=0)  # to dusk
    fact("stuck", p.inject(FAULT_SENSOR_STUCK, SENSOR_BATTERY_TEMP, 20.0))
    fact("fail", p.inject(FAULT_SENSOR_FAIL, SENSOR_RADIATION, 0.0))
    h.run(5 * _DAY_S, tag="faulty")
    p.clear_faults()
    h.run(1200, tag="cleared")
    h.run(2 * _DAY_S, tag="after")


def drain(seed):
    """The same night twice, the second with a 3 A drain injected."""
    for amps in (0.0, 3.0):
        h = Harness(seed)
        h.run(15 * _DAY_S, dt=3000, every=0)
        if amps:
            h.plant.inject(FAULT_BATTERY_DRAIN, 0, amps)
        h.sample("start")
        h.run(2 * _DAY_S, tag="drain" if amps else "base")


def heater_modes(seed):
    """At night: OFF lets the battery cool, ON heats it, FDIR force overrides OFF."""
    h = Harness(seed)
    p = h.plant
    h.run(16 * _DAY_S, dt=3000, every=0)
    p.set_heater_mode(HEATER_BATTERY, 0)
    fact("mode_off", p.heater_mode(HEATER_BATTERY))
    h.run(3 * _DAY_S, tag="off")
    p.force_heater(HEATER_BATTERY, True)
    h.run(6 * 3600, tag="forced")
    p.force_heater(HEATER_BATTERY, False)
    p.set_heater_mode(HEATER_BATTERY, 2)
    h.run(3 * 3600, tag="on")
    p.set_heater_mode(HEATER_BATTERY, 1)
    p.set_setpoint(HEATER_BATTERY, 15.0)
    h.run(3 * _DAY_S, tag="auto15")
    p.hysteresis_c = 6.0
    h.run(3 * _DAY_S, tag="auto15h6")
    fact("bad_mode", p.set_heater_mode(HEATER_BATTERY, 3))


def step_sizes(seed):
    """One hour as 7200 steps of 0.5 s, 1 step of 3600 s; then huge steps."""
    a = Harness(seed)
    for _ in range(7200):
        a.plant.step(0.5)
    a.t = 3600
    a.sample("small")
    b = Harness(seed)
    b.run(3600, dt=3600, tag="large")
    c = Harness(seed)
    c.run(120 * _DAY_S, dt=1000000, tag="huge")
    d = Harness(seed)  # tenth-second steps accumulate; the sensors are read every time
    d.run(300, dt=0.1, tag="tiny", every=0)
    d.sample("tiny")
    d.plant.step(0.1)
    d.sample("tiny_next")
    fact("bad_controls", [d.plant.switch(10, True), d.plant.set_setpoint(2, 5.0),
                          d.plant.set_heater_mode(2, 1), d.plant.switch(-1, False)])
    e = Harness(seed)
    e.run(300, dt=300, tag="tiny_ref")


def dust(seed):
    h = Harness(seed)
    h.plant.dust_rate = 0.5
    h.run(30 * _DAY_S, every=6)


def spe(seed):
    """Eight lunations of radiation, hourly steps sampled every two hours."""
    h = Harness(seed)
    h.run(240 * _DAY_S, dt=3600, every=2)


def mcu(seed):
    h = Harness(seed)
    h.run(600, tag="model")
    h.plant.mcu_temp_source = lambda: 42.5
    h.run(600, tag="board")


SCENARIOS = {f.__name__: f for f in (trace, cycle, all_on, science_night, trip, spikes, sensors,
                                      drain, heater_modes, step_sizes, dust, spe, mcu)}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](int(sys.argv[2]))
    print(json.dumps(["end"]))
