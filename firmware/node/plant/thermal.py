"""Thermal nodes (electronics box, battery) and the two heaters' control.

Each node is one lumped mass C (J/K) coupled by a conductance G (W/K) to a sink whose
temperature follows the surface's (linearly, between the node's night and noon sink values:
insulation and the module's structure keep the sinks far milder than the regolith):

    C dT/dt = Q - G (T - T_sink)

integrated by backward Euler, which cannot overshoot or go unstable at any step length. The
electronics box has a louvered radiator: G rises from g_closed below open_c to g_open above
full_c, so the box keeps warm at night and sheds its dissipation by day.
"""

from node.plant.environment import SURFACE_NIGHT_C, SURFACE_NOON_C
from protocol.ids import HEATER_MODE_AUTO, HEATER_MODE_OFF, HEATER_MODE_ON


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

    def conductance(self):
        """Present conductance to the sink, W/K (louver opening by temperature)."""
        x = (self.temp_c - self._open_c) / self._span_c
        if x <= 0.0:
            return self._g_closed
        if x >= 1.0:
            x = 1.0
        return self._g_closed + self._g_span * x

    def step(self, heat_w, surface_c, dt_s):
        """Advance dt_s with heat_w dissipated in the node."""
        g = self.conductance()
        a = g * dt_s / self._capacity
        t = self.temp_c
        t_eq = self._sink_0 + self._sink_slope * surface_c + heat_w / g
        self.temp_c = t + a * (t_eq - t) / (1.0 + a)  # the change, for float32 precision


class Heaters:
    """Heater 0 (battery) and 1 (electronics): mode, thermostat setpoint, FDIR override.

    `demand` bit h: the element should draw (mode ON, FDIR forced, or AUTO thermostat calling).
    The AUTO thermostat switches on at or below setpoint - hysteresis/2 and off at or above
    setpoint + hysteresis/2, on the temperature its sensor reads (a failed or stuck sensor
    misleads it, as on a real unit). FDIR's force overrides every mode, OFF included.
    """

    def __init__(self):
        self.modes = [HEATER_MODE_AUTO, HEATER_MODE_AUTO]
        self.setpoints_c = [5.0, -10.0]  # defaults of the battery/electronics_setpoint params
        self.forced = 0
        self.demand = 0

    def update(self, h, measured_c, hysteresis_c):
        bit = 1 << h
        mode = self.modes[h]
        if self.forced & bit or mode == HEATER_MODE_ON:
            want = True
        elif mode == HEATER_MODE_OFF:
            want = False
        elif self.demand & bit:
            want = measured_c < self.setpoints_c[h] + hysteresis_c * 0.5
        else:
            want = measured_c <= self.setpoints_c[h] - hysteresis_c * 0.5
        if want:
            self.demand |= bit
        else:
            self.demand &= ~bit
