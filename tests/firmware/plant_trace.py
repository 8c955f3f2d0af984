"""Prints a long, busy run of node.plant for tests/firmware/test_plant_trace.py (golden trace).

    MICROPYPATH=firmware:. micropython tests/firmware/plant_trace.py SEED

3,000 steps of mixed sizes (1 s to 5,000 s) with loads switched, heater modes, a forced
heater, a wider hysteresis, injected faults and trips, cleared faults, a reset trip, shedding
and dust: after each step a line of the telemetry channels 7-22 and 40-49 and the bus's masks
and heater mode, and before it a line per event the step raised. Floats are printed as '{:.7g}'
so the trace is the same text on every run of the same interpreter.
"""

import sys

from node.plant import Plant

_DT_S = (1.0, 7.0, 60.0, 600.0, 3600.0, 5000.0)
_CHANNELS = tuple(range(7, 23)) + tuple(range(40, 50))


def fmt(v):
    if isinstance(v, float):
        return f"{v:.7g}"
    return repr(v)


def emit(event_id, a=None, b=None, c=None):
    print("e " + " ".join(fmt(v) for v in (event_id, a, b, c)))


def actions(p, k):
    """The operator's and FDIR's actions after step k."""
    if k == 100:
        p.switch(3, True)
        p.switch(5, True)
    elif k == 300:
        p.set_heater_mode(0, 2)
        p.set_setpoint(1, 20.0)
    elif k == 500:
        p.inject(3, 0, 40.0)
    elif k == 700:
        p.inject(1, 1, 0.0)
        p.inject(4, 3, 0.0)
    elif k == 900:
        p.clear_faults()
        p.reset_trip(3)
        p.set_heater_mode(0, 1)
    elif k == 1100:
        p.force_heater(0, True)
        p.hysteresis_c = 4.0
    elif k == 1300:
        p.force_heater(0, False)
        p.shed(0xFF)
    elif k == 1500:
        p.inject(2, 2, 12.5)
        p.dust_rate = 0.5
    elif k == 1700:
        p.set_heater_mode(0, 0)  # the battery's heater off, loads on: cold and discharging
        p.switch(1, True)
        p.switch(2, True)


def trace(seed, steps=3000):
    tlm = [None] * 50
    p = Plant(tlm, emit, seed)
    p.set_spike_interval(86400.0 * 3)
    for k in range(steps):
        p.step(_DT_S[k % 6])
        actions(p, k)
        row = " ".join(fmt(tlm[ch]) for ch in _CHANNELS)
        print(f"s {row} {p.loads_on} {p.loads_tripped} {p.heater_mode(0)}")


if __name__ == "__main__":
    trace(int(sys.argv[1]))
    print("end")
