"""Fault injection into the plant (the fault_inject command's plant faults, a test feature):
imported by Plant.inject for the call only, so the node does not hold this code.

Sensors are numbered as protocol.dictionary.SENSORS (node.plant.unit.SENSOR_CHANNELS gives
each one's telemetry channel). Faults:
- SENSOR_FAIL (1), target sensor: the sensor reads -999.0 (node.plant.unit's _FAILED_VALUE),
  outside every sensor's physical range.
- SENSOR_STUCK (2), target sensor: the sensor reads `value`, frozen, whatever the truth.
- BATTERY_DRAIN (3): an extra `value` A (>= 0; 0 removes it) drawn from the battery, seen in
  battery_current and SoC but not in bus_current (a leak upstream of the bus).
- TRIP_CHANNEL (4), target load channel: at the next step the channel trips on over-current
  (at `value` A, or twice its trip current if `value` is below the trip), whether or not it
  was on. One-shot: reset_trip and switch-on then work.
- CLEAR (0): every fault removed (Plant.clear_faults); trips already latched stay.
"""

from node.plant.unit import N_LOADS, N_SENSORS
from protocol.compat import const
from protocol.node_dictionary import load

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_FAULT_BATTERY_DRAIN = const(3)
_FAULT_CLEAR = const(0)
_FAULT_SENSOR_FAIL = const(1)
_FAULT_SENSOR_STUCK = const(2)
_FAULT_TRIP_CHANNEL = const(4)


def inject(faults, fault, target, value):
    """Apply a fault to faults (node.plant.unit.Faults); False if fault, target or value is
    not one this model takes."""
    if fault == _FAULT_CLEAR:
        faults.clear()
    elif fault == _FAULT_SENSOR_FAIL or fault == _FAULT_SENSOR_STUCK:
        if not 0 <= target < N_SENSORS:
            return False
        bit = 1 << target
        if fault == _FAULT_SENSOR_FAIL:
            faults.failed |= bit
        else:
            if faults.stuck_values is None:
                faults.stuck_values = [0.0] * N_SENSORS
            faults.stuck_values[target] = float(value)
            faults.stuck |= bit
    elif fault == _FAULT_BATTERY_DRAIN:
        if value < 0:
            return False
        faults.drain_a = float(value)
    elif fault == _FAULT_TRIP_CHANNEL:
        if not 0 <= target < N_LOADS:
            return False
        trip_a = load(target)[1]  # the channel's trip current
        if faults.trip_a is None:
            faults.trip_a = [0.0] * N_LOADS
        faults.trip_a[target] = float(value) if value > trip_a else 2.0 * trip_a
        faults.trips |= 1 << target
    else:
        return False
    return True
