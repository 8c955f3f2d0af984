"""The plant model: the power and thermal control unit of a lunar station module, and its site.

The parts, in two modules (one module costs about 400 bytes of a Pico-sized heap): site (the
sun's clock, day/night and elevation; the solar array and its dust; the surface and radiation
environment; the seeded noise) and unit (the battery; the load bus's switches and trips; the
box and battery thermal nodes and the heaters; the injected faults' state). inject (the fault
injection itself) is imported per call. This module wires them into `Plant`.

Contract with the node (node.app wires it):

    plant = Plant(tlm, emit, seed)
        tlm: the telemetry store, a preallocated list indexed by channel id (len >= 50); the
             plant writes channels 7-22 and 40-49 (at construction, and on every step).
        emit(event_id, a=None, b=None, c=None): raises an event. The plant raises sunrise,
             sunset, spe_start(rate uGy/h), spe_end, load_tripped(channel, current A),
             heater_switched(heater, on, temp degC), and loads_shed(mask, soc) only when the
             battery is empty and its under-voltage cut-off opens every channel.
        seed: plant_seed, read once: the model is deterministic for a seed and a sequence of
             calls (same seed, same steps: the same telemetry and events).
    plant.step(dt_s)               advance dt_s MODEL seconds (any length: sub-stepped
                                   internally, at most _MAX_SUBSTEPS sub-steps of up to
                                   _MAX_SUBSTEP_S each, beyond which the sub-steps lengthen;
                                   under _MIN_STEP_S it is accumulated, and only the sensors
                                   are read again)
    plant.switch(ch, on) -> bool   False (no change) when switching on a tripped channel, or
                                   when ch is not a load channel
    plant.reset_trip(ch)           clear a trip; the channel stays off
    plant.loads_on, plant.loads_tripped   bit masks (bit n: load channel n), read-only
    plant.nonessential_mask        loads FDIR may shed
    plant.shed(mask) -> int        switch off the non-essential loads of mask; returns those
    plant.set_heater_mode(h, mode) -> bool   0 OFF, 1 AUTO (thermostat), 2 ON; False if h or
                                   mode is out of range. plant.heater_mode(h) -> mode
    plant.set_setpoint(h, c) -> bool   thermostat setpoint, degC
    plant.force_heater(h, on)      FDIR override: element on whatever the mode; False releases
    plant.hysteresis_c             thermostat hysteresis (param heater_hysteresis), degC
    plant.dust_rate                param dust_rate, 1/lunar day
    plant.inject(fault, target, value) -> bool ; plant.clear_faults()   see inject.py
    plant.mcu_temp_source          None, or a callable returning the RP2040 die temperature
    plant.set_spike_interval(s)    mean model time between transient over-current spikes on
                                   the bus (default 360 days; 0 disables them): a spike hits a
                                   random channel and trips it if it is on

Heaters: load channels 8 and 9 power the heater circuits (essential, on at boot); a heater's
element draws current only when its circuit is on and its mode, thermostat or FDIR force says
so. heaters_on (channel 21) shows the elements drawing.

Boot state: 24 model hours after sunrise (sun elevation 11 deg), battery 80 % at +10 degC,
electronics box +15 degC, clean array, only the essential loads on (comms relay, both heater
circuits), heaters AUTO at 5 / -10 degC with 2 degC hysteresis (the parameter defaults: the
node should apply its parameters after construction).

Telemetry is what sensors read: voltage, temperatures, currents and dose rate carry small
seeded noise, and injected sensor faults show there (and mislead the thermostats); battery_soc
is the unit's own charge estimate, exact here.

Cost: floats are boxed on MicroPython, so a step allocates about 60 of them to publish plus
about 65 per sub-step (measured: 4 KB per one-sub-step call on the 64-bit Unix port, about
half that on a Pico; 34 us here). Nothing else is allocated in steady state.
"""

import node
from node.plant.site import SPE_ENDED, SPE_STARTED, Environment, Rng, Sun
from node.plant.unit import (
    HEATER_FIRST,
    N_LOADS,
    NOMINAL_A,
    NONESSENTIAL_MASK,
    Battery,
    Bus,
    Faults,
    ThermalNode,
)
from protocol.compat import const
from protocol.node_dictionary import load

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_BATTERY_CURRENT = const(13)
_CH_BATTERY_SOC = const(11)
_CH_BATTERY_TEMP = const(14)
_CH_BATTERY_VOLTAGE = const(12)
_CH_BUS_CURRENT = const(15)
_CH_DUST_FACTOR = const(10)
_CH_ELECTRONICS_TEMP = const(16)
_CH_HEATERS_ON = const(21)
_CH_LOADS_ON = const(19)
_CH_LOADS_TRIPPED = const(20)
_CH_LUNAR_DAY = const(8)
_CH_MCU_TEMP = const(22)
_CH_RADIATION = const(18)
_CH_SOLAR_CURRENT = const(9)
_CH_SUN_ELEVATION = const(7)
_CH_SURFACE_TEMP = const(17)
_EV_HEATER_SWITCHED = const(8)
_EV_LOADS_SHED = const(6)
_EV_LOAD_TRIPPED = const(7)
_EV_SPE_END = const(17)
_EV_SPE_START = const(16)
_EV_SUNRISE = const(20)
_EV_SUNSET = const(21)
_SENSOR_BATTERY_TEMP = const(1)
_SENSOR_BATTERY_VOLTAGE = const(0)
_SENSOR_ELECTRONICS_TEMP = const(2)
_SENSOR_RADIATION = const(4)
_SENSOR_SOLAR_CURRENT = const(3)
_SENSOR_SURFACE_TEMP = const(5)

__all__ = ("Plant",)

_MIN_STEP_S = const(10.0)
_MAX_SUBSTEP_S = const(150.0)
_DUST_STEP_S = const(3600.0)
_MAX_SUBSTEPS = const(20)  # beyond 3000 s per call the sub-steps lengthen; all stay stable
_BOOT_T_S = const(86400)  # model seconds after sunrise at boot
_BOOT_SOC_PCT = const(80.0)
_BUS_V = const(28.8)  # nominal bus voltage, for heat loads
_DISSIPATED = const(0.3)  # share of non-heater load power dissipated inside the electronics box
_HEATER_W = (NOMINAL_A[HEATER_FIRST] * _BUS_V, NOMINAL_A[HEATER_FIRST + 1] * _BUS_V)
_SPIKE_INTERVAL_S = const(31104000.0)  # 360 model days between bus spikes, on average
_MCU_ABOVE_BOX_C = const(6.0)  # RP2040 die above the box air, when no real sensor is given


class Plant:
    def __init__(self, tlm, emit, seed=1):
        self._tlm = tlm
        self._emit = emit
        self._rng = rng = Rng(seed)
        self._sun = sun = Sun(_BOOT_T_S)
        self._day = sun.sin_elev > 0.0
        self._battery = Battery(_BOOT_SOC_PCT)
        self._bus = Bus()
        # Electronics box: 20 kJ/K, louvered radiator 0.15 -> 2.0 W/K between +15 and +35 degC,
        # to a sink between -60 (night) and 0 degC (noon).
        self._box = ThermalNode(15.0, 20000.0, 0.15, 2.0, 15.0, 35.0, -60.0, 0.0)
        # Battery: 80 kJ/K, 0.12 W/K to a sink between -50 (night) and +25 degC (noon).
        self._cell = ThermalNode(10.0, 80000.0, 0.12, 0.12, 0.0, 1.0, -50.0, 25.0)
        self._env = Environment(sun.sin_elev, rng)
        self._faults = Faults()
        self._heating = 0  # bit h: heater h's element draws current
        self._pending_s = 0.0  # model time not yet integrated
        self._dust_s = 0.0  # model time since the dust last settled
        self.hysteresis_c = 2.0
        self.dust_rate = 0.02
        self.mcu_temp_source = None
        self.nonessential_mask = NONESSENTIAL_MASK
        self._spike_wait_s = 0.0
        self.set_spike_interval(_SPIKE_INTERVAL_S)
        self.loads_on = self._bus.on  # the bus's masks, kept by _switched() after each change
        self.loads_tripped = self._bus.tripped
        self._thermostats()
        self._publish()

    # --- the node's controls -------------------------------------------------------------

    def set_spike_interval(self, mean_s):
        """Set the mean model time between spikes (0: none) and draw the wait for the next."""
        self._spike_interval_s = mean_s
        if mean_s > 0:
            self._spike_wait_s = self._rng.interval(mean_s)

    def switch(self, ch, on):
        """Switch load channel ch on or off; False if ch is tripped and on was asked (or ch is
        not a load channel)."""
        if not 0 <= ch < N_LOADS or not self._bus.switch(ch, on):
            return False
        self._switched()
        return True

    def reset_trip(self, ch):
        """Clear channel ch's over-current trip; it stays off until switched on."""
        if 0 <= ch < N_LOADS:
            self._bus.tripped &= ~(1 << ch)  # the channel stays off
            self._switched()

    def shed(self, mask):
        """Switch off the non-essential loads in mask; return the mask actually switched off."""
        m = self._bus.shed(mask)
        if m:
            self._switched()
        return m

    def set_heater_mode(self, h, mode):
        """Heater h (0 battery, 1 electronics) to mode 0 OFF, 1 AUTO, 2 ON; False if invalid."""
        if not (0 <= h <= 1 and 0 <= mode <= 2):
            return False
        self._bus.modes[h] = mode
        self._switched()
        return True

    def heater_mode(self, h):
        return self._bus.modes[h]

    def set_setpoint(self, h, c):
        """Thermostat setpoint of heater h, degC (used in AUTO); False if h is not a heater."""
        if not 0 <= h <= 1:
            return False
        self._bus.setpoints_c[h] = float(c)
        return True

    def force_heater(self, h, on):
        """FDIR override: heater h's element on whatever its mode (True) or released (False)."""
        if not 0 <= h <= 1:
            return
        if on:
            self._bus.forced |= 1 << h
        else:
            self._bus.forced &= ~(1 << h)
        self._switched()

    def inject(self, fault, target, value):
        """Inject a plant fault (node.plant.inject, imported for this call only); False if this
        model does not take it."""
        return node.call("plant.inject", "inject", self._faults, fault, target, value)

    def clear_faults(self):
        """Remove every injected fault. Trips already latched stay until reset_trip."""
        self._faults.clear()

    # --- the model -------------------------------------------------------------------------

    def step(self, dt_s):
        """Advance the model by dt_s model seconds and publish telemetry.

        Model time shorter than _MIN_STEP_S is accumulated, not integrated: on a Pico's
        single-precision floats a SoC change of a fraction of a second would round away.
        The sensors are read (fresh noise) on every call all the same."""
        if dt_s <= 0:
            return
        dt_s += self._pending_s
        if dt_s < _MIN_STEP_S:
            self._pending_s = dt_s
            self._publish()
            return
        self._pending_s = 0.0
        n = int(dt_s / _MAX_SUBSTEP_S) + 1
        if n > _MAX_SUBSTEPS:
            n = _MAX_SUBSTEPS
        h = dt_s / n
        for _ in range(n):
            self._substep(h)
        dust_s = self._dust_s + dt_s
        if dust_s >= _DUST_STEP_S:  # hourly: a per-second loss is below float32 resolution
            self._sun.settle_dust(self.dust_rate, dust_s)
            dust_s = 0.0
        self._dust_s = dust_s
        self._occurrences(dt_s)
        self._publish()

    def _substep(self, h):
        sun = self._sun
        sun.advance(h)
        s = sun.sin_elev
        day = s > 0.0
        if day != self._day:
            self._day = day
            self._emit(_EV_SUNRISE if day else _EV_SUNSET)
        env = self._env
        env.step(s, h)
        heating = self._thermostats()
        bus = self._bus
        battery = self._battery
        cell_c = self._cell.temp_c
        # Power: the array feeds the loads; the battery takes what is left up to what it
        # accepts (the shunt regulator dumps the rest) or makes up the shortfall.
        i_load = bus.steady_a
        q_box = _DISSIPATED * _BUS_V * i_load
        q_cell = 0.0
        if heating & 1:
            i_load += NOMINAL_A[HEATER_FIRST]
            q_cell = _HEATER_W[0]
        if heating & 2:
            i_load += NOMINAL_A[HEATER_FIRST + 1]
            q_box += _HEATER_W[1]
        surplus = sun.current_a(s) - i_load
        limit = battery.charge_limit_a(cell_c)
        if surplus > limit:
            surplus = limit
        i_bat = surplus - self._faults.drain_a
        battery.integrate(i_bat, h, cell_c)
        if i_bat < 0.0 and battery.soc_pct <= 0.0 and bus.on:
            # Empty: the battery's under-voltage cut-off opens every channel.
            self._emit(_EV_LOADS_SHED, bus.cut_all(), 0.0)
            self._switched()
        self._box.step(q_box, env.temp_c, h)
        self._cell.step(q_cell, env.temp_c, h)

    def _thermostats(self):
        """Update heater demand from the sensors; raise heater_switched on element changes."""
        bus = self._bus
        read = self._faults.read
        hyst = self.hysteresis_c
        bus.thermostat(0, read(_SENSOR_BATTERY_TEMP, self._cell.temp_c), hyst)
        bus.thermostat(1, read(_SENSOR_ELECTRONICS_TEMP, self._box.temp_c), hyst)
        heating = bus.demand & (bus.on >> HEATER_FIRST)  # and its circuit powered
        changed = heating ^ self._heating
        if changed:
            self._heating = heating
            if changed & 1:
                self._emit(_EV_HEATER_SWITCHED, 0, bool(heating & 1),
                           read(_SENSOR_BATTERY_TEMP, self._cell.temp_c))
            if changed & 2:
                self._emit(_EV_HEATER_SWITCHED, 1, bool(heating & 2),
                           read(_SENSOR_ELECTRONICS_TEMP, self._box.temp_c))
        return heating

    def _switched(self):
        """After a switch, trip, mode or force change: heaters follow, masks are published."""
        self._thermostats()
        tlm = self._tlm
        tlm[_CH_LOADS_ON] = self.loads_on = self._bus.on
        tlm[_CH_LOADS_TRIPPED] = self.loads_tripped = self._bus.tripped
        tlm[_CH_HEATERS_ON] = self._heating

    def _trip(self, ch, current_a):
        if self._bus.trip(ch):
            self._emit(_EV_LOAD_TRIPPED, ch, current_a)
            self._switched()

    def _occurrences(self, dt_s):
        """Once per step: solar particle events, injected trips and random spikes."""
        rng = self._rng
        spe = self._env.advance(dt_s, rng)
        if spe == SPE_STARTED:
            self._emit(_EV_SPE_START, self._env.rate_ugy_h())
        elif spe == SPE_ENDED:
            self._emit(_EV_SPE_END)
        faults = self._faults
        if faults.trips:
            trips = faults.trips
            faults.trips = 0
            for ch in range(N_LOADS):
                if (trips >> ch) & 1:
                    self._trip(ch, faults.trip_a[ch])
        if self._spike_interval_s > 0.0:
            self._spike_wait_s -= dt_s
            if self._spike_wait_s <= 0.0:
                self._spike_wait_s = rng.interval(self._spike_interval_s)
                ch = rng.next16() % N_LOADS
                if (self._bus.on >> ch) & 1:
                    # above its trip current (read from the dictionary on this rare path)
                    self._trip(ch, load(ch)[1] * (1.05 + 0.5 * rng.uniform()))

    def _publish(self):
        """Write what the sensors read to the telemetry store (allocates its floats)."""
        tlm = self._tlm
        rng = self._rng
        read = self._faults.read
        sun = self._sun
        battery = self._battery
        cell_c = self._cell.temp_c
        box_c = self._box.temp_c
        tlm[_CH_SUN_ELEVATION] = sun.elevation_deg()
        tlm[_CH_LUNAR_DAY] = self._day
        solar = sun.current_a(sun.sin_elev)
        noise = rng.tri()  # drawn whatever the reading, so faults do not shift the sequence
        if solar > 0.0:
            solar += 0.01 * noise
        tlm[_CH_SOLAR_CURRENT] = read(_SENSOR_SOLAR_CURRENT, solar)
        tlm[_CH_DUST_FACTOR] = sun.dust_factor
        tlm[_CH_BATTERY_SOC] = battery.soc_pct
        tlm[_CH_BATTERY_VOLTAGE] = read(_SENSOR_BATTERY_VOLTAGE,
                                       battery.voltage_v(cell_c) + 0.005 * rng.tri())
        tlm[_CH_BATTERY_CURRENT] = battery.current_a + 0.01 * rng.tri()
        tlm[_CH_BATTERY_TEMP] = read(_SENSOR_BATTERY_TEMP, cell_c + 0.05 * rng.tri())
        tlm[_CH_BUS_CURRENT] = self._bus.sample(rng, tlm, self._heating)
        tlm[_CH_ELECTRONICS_TEMP] = read(_SENSOR_ELECTRONICS_TEMP, box_c + 0.05 * rng.tri())
        tlm[_CH_SURFACE_TEMP] = read(_SENSOR_SURFACE_TEMP,
                                    self._env.temp_c + 0.2 * rng.tri())
        tlm[_CH_RADIATION] = read(_SENSOR_RADIATION,
                                 self._env.rate_ugy_h() * (1.0 + 0.04 * rng.tri()))
        tlm[_CH_LOADS_ON] = self._bus.on
        tlm[_CH_LOADS_TRIPPED] = self._bus.tripped
        tlm[_CH_HEATERS_ON] = self._heating
        source = self.mcu_temp_source
        if source is None:
            tlm[_CH_MCU_TEMP] = box_c + _MCU_ABOVE_BOX_C + 0.3 * rng.tri()
        else:
            tlm[_CH_MCU_TEMP] = source()
