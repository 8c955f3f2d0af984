"""Fault detection, isolation and recovery: limit monitoring, sensor checks, automatic responses.

    fdir = Fdir(tlm, plant, modes, emit, params)
    fdir.check()        # about once a second (real time)

tlm: the telemetry store (list indexed by channel id); plant: node.plant.Plant; modes: has
`current` (int mode) and `force_safe(reason)`; emit(event_id, a=None, b=None, c=None);
params: has `get(param_id)`.

Limit monitoring (always on): every limit row of protocol.node_dictionary (limit()). A channel's
state is nominal, yellow or red; a change is reported once, by limit_yellow, limit_red or
limit_nominal (channel id, value), after the new state has held for _PERSIST consecutive
checks (PUS-style repetition count, so a single noisy sample never raises an event). To fall
back to a milder state the value must also be inside the limit by 1 % of the limit's magnitude
(hysteresis, none for a zero limit). A direct jump (nominal to red) gives one event. A channel
whose value is None, or whose sensor is flagged faulty, is not evaluated and keeps its state.

Sensor checks (always on), on the six sensors of node.plant.unit.SENSOR_CHANNELS: a reading
outside the sensor's physical range (_PLAUSIBLE; NaN included), or a non-zero reading that has
not changed by a single bit for _STUCK_CHECKS consecutive checks (every sensor carries noise,
so only a frozen one repeats exactly; a sensor stuck at exactly 0 is not caught), flags the
sensor faulty and raises sensor_fault (sensor index) once. The flag clears, silently, when the
reading is plausible and moving again.

Responses, only while param fdir_enabled is true:
- Low charge: battery_soc below param shed_soc_pct, or battery_soc in red: shed every
  non-essential load (plant.shed(plant.nonessential_mask)), raise loads_shed (mask shed, soc),
  and force SAFE with reason SAFE_LOW_CHARGE (protocol.ids, the dictionary's
  SAFE_REASONS). Latched until the charge is back at
  shed_soc_pct + 5 % and out of red; while latched, any non-essential load switched on again is
  shed again (another loads_shed) and any mode other than SAFE is forced back to SAFE.
  modes.force_safe raises safe_mode; FDIR does not.
- Cold battery: battery_temp below param battery_cold_c: plant.force_heater(battery, True)
  and heater_on_cold (temp); released (force removed, the heater back to its mode) when the
  battery reads battery_cold_c + 10 degC (5 degC by default, the default thermostat setpoint),
  or when FDIR is disabled; a sensor flagged faulty neither forces nor releases the heater.
- Over-current: the plant itself trips the channel and raises load_tripped.

check() allocates nothing in steady state (no state change): proven by a heap_lock test.
"""

from node.plant.unit import N_SENSORS, SENSOR_CHANNELS
from protocol.compat import const
from protocol.node_dictionary import LIMIT_CHANNELS, limit

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_BATTERY_SOC = const(11)
_CH_BATTERY_TEMP = const(14)
_EV_HEATER_ON_COLD = const(27)
_EV_LIMIT_NOMINAL = const(5)
_EV_LIMIT_RED = const(4)
_EV_LIMIT_YELLOW = const(3)
_EV_LOADS_SHED = const(6)
_EV_SENSOR_FAULT = const(25)
_HEATER_BATTERY = const(0)
_MODE_SAFE = const(1)
_PARAM_BATTERY_COLD_C = const(8)
_PARAM_FDIR_ENABLED = const(5)
_PARAM_SHED_SOC_PCT = const(6)
_SAFE_LOW_CHARGE = const(1)
_SENSOR_BATTERY_TEMP = const(1)

NOMINAL = const(0)
YELLOW = const(1)
RED = const(2)
_EVENTS = const((_EV_LIMIT_NOMINAL, _EV_LIMIT_YELLOW, _EV_LIMIT_RED))
_PERSIST = const(3)  # consecutive checks a new limit state must hold
_HYSTERESIS = const(0.01)  # of the limit's magnitude
_STUCK_CHECKS = const(30)
_NO_SENSOR = const(255)
_SHED_RELEASE_PCT = const(5.0)
_COLD_RELEASE_C = const(10.0)
_INF = float("inf")
_NEG_INF = -_INF
# Physical range of each sensor (in SENSOR_CHANNELS order): outside it, the sensor has failed.
_PLAUSIBLE = const((
    (0.0, 40.0),  # battery_voltage, V
    (-150.0, 150.0),  # battery_temp, degC
    (-150.0, 150.0),  # electronics_temp, degC
    (-1.0, 50.0),  # solar_current, A
    (0.0, 1.0e6),  # radiation, uGy/h
    (-250.0, 200.0),  # surface_temp, degC
))


class Fdir:
    def __init__(self, tlm, plant, modes, emit, params):
        self._tlm = tlm
        self._plant = plant
        self._modes = modes
        self._emit = emit
        self._params = params
        n = len(LIMIT_CHANNELS)  # row i is channel LIMIT_CHANNELS[i]'s
        self._n = n
        self._sensor = bytearray(n)  # sensor index of the row's channel, or _NO_SENSOR
        # Per row: yellow lo, yellow hi, red lo, red hi; to enter, and (with hysteresis) to
        # leave a state. +-inf where the dictionary has no limit. Floats are boxed, on the
        # heap: equal limits share one object (shared, for the construction only).
        self._enter = [0.0] * (4 * n)
        self._leave = [0.0] * (4 * n)
        shared = {_INF: _INF, _NEG_INF: _NEG_INF}
        self._state = bytearray(n)
        self._pending = bytearray(n)
        self._count = bytearray(n)
        self._soc_row = -1
        for i in range(n):
            ch, ylo, yhi, rlo, rhi = limit(i)
            self._sensor[i] = _NO_SENSOR
            for s in range(N_SENSORS):
                if SENSOR_CHANNELS[s] == ch:
                    self._sensor[i] = s
            if ch == _CH_BATTERY_SOC:
                self._soc_row = i
            for k, (lim, side) in enumerate(((ylo, -1), (yhi, 1), (rlo, -1), (rhi, 1))):
                if lim is None:
                    lim = leave = _INF if side > 0 else _NEG_INF
                else:
                    leave = lim - side * _HYSTERESIS * abs(lim)
                self._enter[4 * i + k] = shared.setdefault(lim, lim)
                self._leave[4 * i + k] = shared.setdefault(leave, leave)
        self.faulty = 0  # bit s: sensor s flagged faulty
        self._last = [0.0] * N_SENSORS  # previous reading of each sensor
        self._same = bytearray(N_SENSORS)
        self.shedding = False  # low-charge response latched
        self._shed_release = 0.0
        self.cold = False  # battery heater forced on
        self._cold_release = 0.0

    def state(self, ch):
        """Limit state of channel ch (NOMINAL, YELLOW, RED); NOMINAL if it has no limits."""
        for i in range(self._n):
            if LIMIT_CHANNELS[i] == ch:
                return self._state[i]
        return NOMINAL

    def check(self):
        """One monitoring cycle: sensors, limits, then responses."""
        self._check_sensors()
        for i in range(self._n):
            self._check_limit(i)
        enabled = self._params.get(_PARAM_FDIR_ENABLED)
        self._check_charge(enabled)
        self._check_cold(enabled)

    # --- detection -------------------------------------------------------------------------

    def _check_sensors(self):
        tlm = self._tlm
        last = self._last
        same = self._same
        for s in range(N_SENSORS):
            v = tlm[SENSOR_CHANNELS[s]]
            if v is None:
                continue
            lo, hi = _PLAUSIBLE[s]
            if v == last[s] and v != 0:
                if same[s] < _STUCK_CHECKS:
                    same[s] += 1
            else:
                same[s] = 0
                last[s] = v
            bad = not (lo <= v <= hi) or same[s] >= _STUCK_CHECKS  # NaN fails lo <= v
            bit = 1 << s
            if bad:
                if not self.faulty & bit:
                    self.faulty |= bit
                    self._emit(_EV_SENSOR_FAULT, s)
            elif self.faulty & bit:
                self.faulty &= ~bit

    def _severity(self, v, t, b):
        if v < t[b + 2] or v > t[b + 3]:
            return RED
        if v < t[b] or v > t[b + 1]:
            return YELLOW
        return NOMINAL

    def _check_limit(self, i):
        ch = LIMIT_CHANNELS[i]
        v = self._tlm[ch]
        if v is None:
            return
        s = self._sensor[i]
        if s != _NO_SENSOR and (self.faulty >> s) & 1:
            return
        b = 4 * i
        state = self._state[i]
        new = self._severity(v, self._enter, b)
        if new < state:  # easing: the value must clear the limit by the hysteresis too
            new = self._severity(v, self._leave, b)
            if new > state:
                new = state
        if new == state:
            self._count[i] = 0
            return
        if new != self._pending[i]:
            self._pending[i] = new
            self._count[i] = 1
        else:
            self._count[i] += 1
        if self._count[i] >= _PERSIST:  # (the count needs no reset: pending is the new
            self._state[i] = new  # state now, so the next check sets it before reading it)
            self._emit(_EVENTS[new], ch, v)

    # --- responses -------------------------------------------------------------------------

    def _check_charge(self, enabled):
        soc = self._tlm[_CH_BATTERY_SOC]
        if soc is None:
            return
        red = self._soc_row >= 0 and self._state[self._soc_row] == RED
        if self.shedding:
            if soc >= self._shed_release and not red:
                self.shedding = False
            elif enabled:
                self._hold_shed(soc, False)
        elif enabled:
            shed_pct = self._params.get(_PARAM_SHED_SOC_PCT)
            if soc < shed_pct or red:
                self.shedding = True
                self._shed_release = shed_pct + _SHED_RELEASE_PCT
                self._hold_shed(soc, True)

    def _hold_shed(self, soc, first):
        plant = self._plant
        if first or plant.loads_on & plant.nonessential_mask:
            shed = plant.shed(plant.nonessential_mask)
            self._emit(_EV_LOADS_SHED, shed, soc)
        if self._modes.current != _MODE_SAFE:
            self._modes.force_safe(_SAFE_LOW_CHARGE)

    def _check_cold(self, enabled):
        if self.cold and not enabled:
            self._release_cold()
            return
        if (self.faulty >> _SENSOR_BATTERY_TEMP) & 1:
            return
        t = self._tlm[_CH_BATTERY_TEMP]
        if t is None:
            return
        if self.cold:
            if t >= self._cold_release:
                self._release_cold()
        elif enabled:
            cold_c = self._params.get(_PARAM_BATTERY_COLD_C)
            if t < cold_c:
                self.cold = True
                self._cold_release = cold_c + _COLD_RELEASE_C
                self._plant.force_heater(_HEATER_BATTERY, True)
                self._emit(_EV_HEATER_ON_COLD, t)

    def _release_cold(self):
        self.cold = False
        self._plant.force_heater(_HEATER_BATTERY, False)
