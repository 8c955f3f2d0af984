"""The power and thermal control unit: the battery, the load bus, the thermal nodes and heaters,
and the faults injected into them. One section per part (these were separate modules: one
module costs about 400 bytes of a Pico-sized heap, so the plant keeps three).

Battery: state of charge, terminal voltage, charge acceptance.

An 8S Li-ion (NMC) pack, 28.8 V nominal, 24.0 V empty, 33.2 V full (charge terminated at
4.15 V per cell, below the 4.2 V maximum, for cycle life), _CAPACITY_AH = 600 Ah (17 kWh, e.g.
8S12P of 50 Ah cells). Sized by the night: 354 hours of darkness with the comms relay and the
heaters on thermostat take roughly 60 % of it; every load on takes it all in two days.

- SoC integrates the current, charge counted at _CHARGE_EFFICIENCY, over a capacity that falls
  when cold (the capacity factor: 1 at 20 degC and above, -0.8 %/degC below, at least 0.5), so the
  same current drains a cold battery's SoC faster.
- Charging is inhibited below 0 degC (lithium plating) and tapers over the last 5 % of charge;
  the regulator shunts whatever the battery cannot take.
- Terminal voltage = OCV(SoC) + I * R(T), I positive when charging; R rises when cold.

Bus: the power bus's switched load channels: switching, over-current trips, measured
currents.

Channel numbers, nominal and trip currents and the essential flags come from the generated
protocol.node_dictionary (load()) and protocol.ids. Channels 8 and 9 power the
battery and electronics heaters: for them the switch powers the heater circuit and the heater's
mode or thermostat decides whether the element draws current (see Heaters).

A switched-on load draws its nominal current with +-2 % triangular noise, which never reaches
its trip current; trips come from transients (Plant's rare spikes) and injected faults. A
tripped channel is off and stays off until reset_trip and a new switch-on.

ThermalNode and Heaters: thermal nodes (electronics box, battery) and the two heaters' control.

Each node is one lumped mass C (J/K) coupled by a conductance G (W/K) to a sink whose
temperature follows the surface's (linearly, between the node's night and noon sink values:
insulation and the module's structure keep the sinks far milder than the regolith):

    C dT/dt = Q - G (T - T_sink)

integrated by backward Euler, which cannot overshoot or go unstable at any step length. The
electronics box has a louvered radiator: G rises from g_closed below open_c to g_open above
full_c, so the box keeps warm at night and sheds its dissipation by day.

Faults: the injected faults' state (the fault_inject command's plant faults, set by
node.plant.inject) and the sensors they act on. Sensors are numbered as
protocol.dictionary.SENSORS; SENSOR_CHANNELS gives each one's telemetry channel. A failed
sensor reads _FAILED_VALUE, -999.0, outside every sensor's physical range (a fill value, not a
temperature: it is not NaN and it fails voltage, current and dose-rate plausibility checks
too); a stuck one reads its stuck value, frozen, whatever the truth.
Thermostats read the sensors, so a failed or stuck temperature sensor misleads its heater.
"""

from node.plant.site import SURFACE_NIGHT_C, SURFACE_NOON_C
from protocol.compat import const
from protocol.node_dictionary import load

# --- the battery --------------------------------------------------------------------------

_CAPACITY_AH = const(600.0)
_CHARGE_EFFICIENCY = const(0.98)
_MAX_CHARGE_A = const(60.0)  # C/10
_TAPER_PCT = const(5.0)
_R_25_OHM = const(0.02)
# Pack open-circuit voltage at SoC 0, 10, ... 100 % (8 NMC cells in series).
_OCV_V = const((24.0, 27.2, 28.16, 28.8, 29.28, 29.76, 30.32, 30.88, 31.52, 32.32, 33.2))
_OCV_LAST = const(10)
_PCT_PER_AS = const(100.0 / 3600.0)  # % SoC per ampere-second per ampere-hour of capacity


class Battery:
    def __init__(self, soc_pct):
        self.soc_pct = soc_pct
        self.current_a = 0.0  # positive when charging

    def charge_limit_a(self, temp_c):
        """Largest charge current the battery accepts now."""
        if temp_c < 0.0:
            return 0.0
        room = 100.0 - self.soc_pct
        if room >= _TAPER_PCT:
            return _MAX_CHARGE_A
        return _MAX_CHARGE_A * room / _TAPER_PCT

    def integrate(self, current_a, dt_s, temp_c):
        """Pass current_a (positive charging) for dt_s at temp_c; SoC stays within 0..100."""
        self.current_a = current_a
        if current_a > 0.0:
            current_a *= _CHARGE_EFFICIENCY
        f = 1.0  # the capacity factor: the fraction of the rated capacity available
        if temp_c < 20.0:
            f = 1.0 - 0.008 * (20.0 - temp_c)
            if f <= 0.5:
                f = 0.5
        soc = self.soc_pct + current_a * dt_s * _PCT_PER_AS / (_CAPACITY_AH * f)
        if soc > 100.0:
            soc = 100.0
        elif soc < 0.0:
            soc = 0.0
        self.soc_pct = soc

    def voltage_v(self, temp_c):
        """Terminal voltage: the open-circuit voltage (interpolated in the 10 % steps of the
        OCV table) with the present current through the internal resistance."""
        x = self.soc_pct / 10.0
        i = int(x)
        if i >= _OCV_LAST:
            ocv = _OCV_V[_OCV_LAST]
        else:
            ocv = _OCV_V[i]
            ocv += (_OCV_V[i + 1] - ocv) * (x - i)
        r = _R_25_OHM
        if temp_c < 25.0:
            r *= 1.0 + 0.02 * (25.0 - temp_c)
        return ocv + self.current_a * r


# --- the load bus -------------------------------------------------------------------------

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_CURRENT_COMMS_RELAY = const(40)
_HEATER_LOAD_BATTERY = const(8)
_HEATER_LOAD_ELECTRONICS = const(9)
_LOADS_ESSENTIAL_MASK = const(0x301)
_LOAD_COUNT = const(10)

N_LOADS = _LOAD_COUNT
NOMINAL_A = tuple(load(ch)[0] for ch in range(_LOAD_COUNT))
_ESSENTIAL_MASK = const(_LOADS_ESSENTIAL_MASK)  # comms relay and both heater circuits
NONESSENTIAL_MASK = ((1 << _LOAD_COUNT) - 1) & ~_LOADS_ESSENTIAL_MASK
HEATER_FIRST = _HEATER_LOAD_BATTERY  # heater h is on load channel HEATER_FIRST + h
_HEATER_MASK = const(0x300)
_NOISE = const(0.02)

if _HEATER_LOAD_ELECTRONICS != HEATER_FIRST + 1 or _HEATER_MASK != 3 << HEATER_FIRST:
    raise ImportError("plant.unit: heater load channels moved")


# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_HEATER_MODE_AUTO = const(1)
_HEATER_MODE_OFF = const(0)
_HEATER_MODE_ON = const(2)


class Bus:
    """Load switches and trip latches, as bit masks (bit n is load channel n), and the heaters
    the bus's two heater circuits feed (here, not in a class of their own: each costs heap).

    Heater 0 (battery) and 1 (electronics): mode, thermostat setpoint, FDIR override.
    `demand` bit h: the element should draw (mode ON, FDIR forced, or AUTO thermostat calling).
    The AUTO thermostat switches on at or below setpoint - hysteresis/2 and off at or above
    setpoint + hysteresis/2, on the temperature its sensor reads (a failed or stuck sensor
    misleads it, as on a real unit). FDIR's force overrides every mode, OFF included.
    """

    def __init__(self):
        self.on = _ESSENTIAL_MASK  # at boot: comms relay and both heater circuits
        self.tripped = 0
        self.steady_a = 0.0  # nominal current of the switched-on loads other than heaters
        self.modes = [_HEATER_MODE_AUTO, _HEATER_MODE_AUTO]
        self.setpoints_c = [5.0, -10.0]  # defaults of the battery/electronics_setpoint params
        self.forced = 0
        self.demand = 0
        self._update()

    def _update(self):
        a = 0.0
        m = self.on & ~_HEATER_MASK
        for ch in range(N_LOADS):
            if (m >> ch) & 1:
                a += NOMINAL_A[ch]
        self.steady_a = a

    def switch(self, ch, on):
        """Switch channel ch; False (and no change) when switching on a tripped channel."""
        bit = 1 << ch
        if on:
            if self.tripped & bit:
                return False
            self.on |= bit
        else:
            self.on &= ~bit
        self._update()
        return True

    def trip(self, ch):
        """Open channel ch on over-current; False if it was already tripped."""
        bit = 1 << ch
        if self.tripped & bit:
            return False
        self.tripped |= bit
        self.on &= ~bit
        self._update()
        return True

    def shed(self, mask):
        """Switch off the non-essential loads of mask that are on; return those switched off."""
        m = mask & self.on & ~_ESSENTIAL_MASK
        if m:
            self.on &= ~m
            self._update()
        return m

    def cut_all(self):
        """Open every channel (battery under-voltage cut-off); return those that were on."""
        m = self.on
        self.on = 0
        self._update()
        return m

    def sample(self, rng, tlm, heating):
        """Write the measured load currents to tlm[40 + ch] and return their sum (bus current).

        heating: bit h set when heater h's element draws current."""
        total = 0.0
        on = self.on
        for ch in range(N_LOADS):
            a = 0.0
            if (on >> ch) & 1 and (ch < HEATER_FIRST or (heating >> (ch - HEATER_FIRST)) & 1):
                a = NOMINAL_A[ch] * (1.0 + _NOISE * rng.tri())
                total += a
            tlm[_CH_CURRENT_COMMS_RELAY + ch] = a
        return total

    def thermostat(self, h, measured_c, hysteresis_c):
        """Heater h's demand from what its sensor reads (see the class)."""
        bit = 1 << h
        mode = self.modes[h]
        if self.forced & bit or mode == _HEATER_MODE_ON:
            want = True
        elif mode == _HEATER_MODE_OFF:
            want = False
        elif self.demand & bit:
            want = measured_c < self.setpoints_c[h] + hysteresis_c * 0.5
        else:
            want = measured_c <= self.setpoints_c[h] - hysteresis_c * 0.5
        if want:
            self.demand |= bit
        else:
            self.demand &= ~bit


# --- thermal nodes ------------------------------------------------------------------------


class ThermalNode:
    def __init__(self, temp_c, capacity_j_k, g_closed, g_open, open_c, full_c, sink_night_c,
                 sink_noon_c):
        self.temp_c = temp_c
        self._capacity = capacity_j_k
        self._g_closed = g_closed
        self._g_span = g_open - g_closed
        self._open_c = open_c
        self._span_c = full_c - open_c
        slope = (sink_noon_c - sink_night_c) / (SURFACE_NOON_C - SURFACE_NIGHT_C)
        self._sink_slope = slope
        self._sink_0 = sink_night_c - slope * SURFACE_NIGHT_C

    def step(self, heat_w, surface_c, dt_s):
        """Advance dt_s with heat_w dissipated in the node."""
        t = self.temp_c
        x = (t - self._open_c) / self._span_c  # the conductance to the sink, W/K, follows
        if x <= 0.0:  # the louver's opening by temperature
            g = self._g_closed
        else:
            if x >= 1.0:
                x = 1.0
            g = self._g_closed + self._g_span * x
        a = g * dt_s / self._capacity
        t_eq = self._sink_0 + self._sink_slope * surface_c + heat_w / g
        self.temp_c = t + a * (t_eq - t) / (1.0 + a)  # the change, for float32 precision


# --- injected faults ----------------------------------------------------------------------

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_BATTERY_TEMP = const(14)
_CH_BATTERY_VOLTAGE = const(12)
_CH_ELECTRONICS_TEMP = const(16)
_CH_RADIATION = const(18)
_CH_SOLAR_CURRENT = const(9)
_CH_SURFACE_TEMP = const(17)

# Sensor index (protocol.ids.SENSOR_*) -> telemetry channel.
SENSOR_CHANNELS = (_CH_BATTERY_VOLTAGE, _CH_BATTERY_TEMP, _CH_ELECTRONICS_TEMP, _CH_SOLAR_CURRENT,
                   _CH_RADIATION, _CH_SURFACE_TEMP)
N_SENSORS = const(6)
_FAILED_VALUE = const(-999.0)


class Faults:
    def __init__(self):
        self.failed = 0  # sensor bit masks
        self.stuck = 0
        self.drain_a = 0.0
        self.trips = 0  # load channels to trip at the next step
        # Per sensor / load channel, made by the first stuck sensor / trip injected (a test
        # feature: a node never tested holds neither)
        self.stuck_values: list = None  # type: ignore[assignment]
        self.trip_a: list = None  # type: ignore[assignment]

    def read(self, sensor, value):
        """What sensor reads when the truth is value."""
        bit = 1 << sensor
        if self.failed & bit:
            return _FAILED_VALUE
        if self.stuck & bit:
            return self.stuck_values[sensor]
        return value

    def clear(self):
        self.failed = 0
        self.stuck = 0
        self.drain_a = 0.0
        self.trips = 0
