"""Injected faults (the fault_inject command's plant faults) and the sensors they act on.

Sensors are numbered as protocol.dictionary.SENSORS; SENSOR_CHANNELS gives each one's
telemetry channel. Faults:
- SENSOR_FAIL (1), target sensor: the sensor reads FAILED_VALUE, -999.0, outside every
  sensor's physical range (a fill value, not a temperature: it is not NaN and it fails voltage,
  current and dose-rate plausibility checks too).
- SENSOR_STUCK (2), target sensor: the sensor reads `value`, frozen, whatever the truth.
- BATTERY_DRAIN (3): an extra `value` A (>= 0; 0 removes it) drawn from the battery, seen in
  battery_current and SoC but not in bus_current (a leak upstream of the bus).
- TRIP_CHANNEL (4), target load channel: at the next step the channel trips on over-current
  (at `value` A, or twice its trip current if `value` is below the trip), whether or not it
  was on. One-shot: reset_trip and switch-on then work.
Thermostats read the sensors, so a failed or stuck temperature sensor misleads its heater.
"""

from protocol.compat import const
from protocol.ids import (
    CH_BATTERY_TEMP,
    CH_BATTERY_VOLTAGE,
    CH_ELECTRONICS_TEMP,
    CH_RADIATION,
    CH_SOLAR_CURRENT,
    CH_SURFACE_TEMP,
    FAULT_BATTERY_DRAIN,
    FAULT_CLEAR,
    FAULT_SENSOR_FAIL,
    FAULT_SENSOR_STUCK,
    FAULT_TRIP_CHANNEL,
)

# Sensor index (protocol.ids.SENSOR_*) -> telemetry channel.
SENSOR_CHANNELS = (CH_BATTERY_VOLTAGE, CH_BATTERY_TEMP, CH_ELECTRONICS_TEMP, CH_SOLAR_CURRENT,
                   CH_RADIATION, CH_SURFACE_TEMP)
N_SENSORS = const(6)
FAILED_VALUE = -999.0


class Faults:
    def __init__(self, n_loads):
        self._n_loads = n_loads
        self.failed = 0  # sensor bit masks
        self.stuck = 0
        self.stuck_values = [0.0] * N_SENSORS
        self.drain_a = 0.0
        self.trips = 0  # load channels to trip at the next step
        self.trip_a = [0.0] * n_loads

    def read(self, sensor, value):
        """What sensor reads when the truth is value."""
        bit = 1 << sensor
        if self.failed & bit:
            return FAILED_VALUE
        if self.stuck & bit:
            return self.stuck_values[sensor]
        return value

    def inject(self, fault, target, value, trip_a):
        """Apply a fault; False if fault, target or value is not one this model takes.

        trip_a: the target channel's trip current (for TRIP_CHANNEL)."""
        if fault == FAULT_CLEAR:
            self.clear()
        elif fault == FAULT_SENSOR_FAIL or fault == FAULT_SENSOR_STUCK:
            if not 0 <= target < N_SENSORS:
                return False
            bit = 1 << target
            if fault == FAULT_SENSOR_FAIL:
                self.failed |= bit
            else:
                self.stuck_values[target] = float(value)
                self.stuck |= bit
        elif fault == FAULT_BATTERY_DRAIN:
            if value < 0:
                return False
            self.drain_a = float(value)
        elif fault == FAULT_TRIP_CHANNEL:
            if not 0 <= target < self._n_loads:
                return False
            self.trip_a[target] = float(value) if value > trip_a else 2.0 * trip_a
            self.trips |= 1 << target
        else:
            return False
        return True

    def clear(self):
        self.failed = 0
        self.stuck = 0
        self.drain_a = 0.0
        self.trips = 0
