"""The Sun over the module's site: lunar day and night and the sun's elevation.

Site: Taurus-Littrow valley (Apollo 17), 20.2 deg N, a mid-latitude site with a clean day/night
cycle (a south-polar site would see the sun graze the horizon instead). The sun's declination
seen from the Moon stays within +-1.54 deg and is taken as 0, so sunrise and sunset are exactly
half a synodic month apart (14.77 Earth days each) and

    sin(elevation) = cos(latitude) * cos(hour angle),  hour angle = 2 pi t / month - pi / 2

with t the model time since sunrise. Noon elevation is 69.8 deg.

Model time is kept as an integer second count plus a float fraction: a single-precision float
alone cannot hold 2.55 million seconds to better than 0.25 s, which would swallow small steps.
"""

from math import asin, cos, radians, sin

from protocol.compat import const

SYNODIC_S = const(2551443)  # 29.530589 Earth days: sunrise to sunrise
LATITUDE_DEG = 20.19
_COS_LAT = cos(radians(LATITUDE_DEG))
SIN_NOON = _COS_LAT  # sine of the noon elevation
_OMEGA = 6.283185307179586 / SYNODIC_S  # rad per model second
_DEG = 57.29577951308232


class Sun:
    """Model clock and sun position. `sin_elev` > 0 means day."""

    def __init__(self, t_s):
        self.t_s = t_s % SYNODIC_S  # whole model seconds since the last sunrise
        self._frac_s = 0.0
        self.sin_elev = _COS_LAT * sin(_OMEGA * self.t_s)

    def advance(self, dt_s):
        """Move the clock on by dt_s model seconds and update `sin_elev`."""
        acc = self._frac_s + dt_s
        whole = int(acc)
        self._frac_s = acc - whole
        t = self.t_s + whole
        if t >= SYNODIC_S:
            t %= SYNODIC_S
        self.t_s = t
        self.sin_elev = _COS_LAT * sin(_OMEGA * (t + self._frac_s))

    def elevation_deg(self):
        """Sun elevation in degrees, negative below the horizon (allocates)."""
        return asin(self.sin_elev) * _DEG
