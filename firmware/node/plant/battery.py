"""The battery: state of charge, terminal voltage, charge acceptance.

An 8S Li-ion (NMC) pack, 28.8 V nominal, 24.0 V empty, 33.2 V full (charge terminated at
4.15 V per cell, below the 4.2 V maximum, for cycle life), CAPACITY_AH = 600 Ah (17 kWh, e.g.
8S12P of 50 Ah cells). Sized by the night: 354 hours of darkness with the comms relay and the
heaters on thermostat take roughly 60 % of it; every load on takes it all in two days.

- SoC integrates the current, charge counted at CHARGE_EFFICIENCY, over a capacity that falls
  when cold (capacity_factor: 1 at 20 degC and above, -0.8 %/degC below, at least 0.5), so the
  same current drains a cold battery's SoC faster.
- Charging is inhibited below 0 degC (lithium plating) and tapers over the last 5 % of charge;
  the regulator shunts whatever the battery cannot take.
- Terminal voltage = OCV(SoC) + I * R(T), I positive when charging; R rises when cold.
"""

from protocol.compat import const

CAPACITY_AH = 600.0
CHARGE_EFFICIENCY = 0.98
_MAX_CHARGE_A = 60.0  # C/10
_TAPER_PCT = 5.0
_R_25_OHM = 0.02
# Pack open-circuit voltage at SoC 0, 10, ... 100 % (8 NMC cells in series).
_OCV_V = (24.0, 27.2, 28.16, 28.8, 29.28, 29.76, 30.32, 30.88, 31.52, 32.32, 33.2)
_OCV_LAST = const(10)
_PCT_PER_AS = 100.0 / 3600.0  # % SoC per ampere-second per ampere-hour of capacity


def capacity_factor(temp_c):
    """Fraction of the rated capacity available at temp_c."""
    if temp_c >= 20.0:
        return 1.0
    f = 1.0 - 0.008 * (20.0 - temp_c)
    return f if f > 0.5 else 0.5


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
            current_a *= CHARGE_EFFICIENCY
        soc = self.soc_pct + current_a * dt_s * _PCT_PER_AS / (
            CAPACITY_AH * capacity_factor(temp_c))
        if soc > 100.0:
            soc = 100.0
        elif soc < 0.0:
            soc = 0.0
        self.soc_pct = soc

    def ocv_v(self):
        """Open-circuit voltage, interpolated in the 10 % steps of the OCV table."""
        x = self.soc_pct / 10.0
        i = int(x)
        if i >= _OCV_LAST:
            return _OCV_V[_OCV_LAST]
        lo = _OCV_V[i]
        return lo + (_OCV_V[i + 1] - lo) * (x - i)

    def voltage_v(self, temp_c):
        """Terminal voltage with the present current through the internal resistance."""
        r = _R_25_OHM
        if temp_c < 25.0:
            r *= 1.0 + 0.02 * (25.0 - temp_c)
        return self.ocv_v() + self.current_a * r
