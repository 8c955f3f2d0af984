"""The site's environment: surface temperature and the radiation dose rate.

Surface: by day it relaxes (time constant 2 h) towards radiative equilibrium with the sun,
SUBSOLAR_K * sin(elevation)**(1/4), about +116 degC at this site's noon; by night it cools
slowly (time constant 36 h) towards SURFACE_NIGHT_C, about -175 degC, reaching about -170 degC
before dawn: close to the Apollo 15 and 17 heat-flow measurements at mid-latitude mare sites.

Radiation: a galactic cosmic ray background of BACKGROUND_UGY_H (Chang'e 4's LND measured about
13 uGy/h at the surface) plus solar particle events: Poisson onsets (mean interval 25 days),
peaks log-uniform in 200..5000 uGy/h reached at onset, exponential decay with a time constant
of 3 to 12 hours, ended when the excess falls below 2 uGy/h. All drawn from the plant's seed.
"""

from math import exp, sqrt

from node.plant.sun import SIN_NOON
from protocol.compat import const

SUBSOLAR_K = 395.0
SURFACE_NIGHT_C = -175.0
SURFACE_NOON_C = SUBSOLAR_K * sqrt(sqrt(SIN_NOON)) - 273.15
_DAY_TAU_S = 7200.0
_NIGHT_TAU_S = 129600.0

BACKGROUND_UGY_H = 13.0
_SPE_MEAN_INTERVAL_S = 2160000.0  # 25 days
_SPE_PEAK_MIN_UGY_H = 200.0
_SPE_PEAK_RANGE = 25.0  # peak = min * range**u, u uniform: 200..5000
_SPE_TAU_MIN_S = 10800.0
_SPE_TAU_SPAN_S = 32400.0
_SPE_END_UGY_H = 2.0

SPE_NONE = const(0)
SPE_STARTED = const(1)
SPE_ENDED = const(2)


def _equilibrium_c(sin_elev):
    if sin_elev <= 0.0:
        return SURFACE_NIGHT_C
    t = SUBSOLAR_K * sqrt(sqrt(sin_elev)) - 273.15
    return t if t > SURFACE_NIGHT_C else SURFACE_NIGHT_C


class Surface:
    def __init__(self, sin_elev):
        self.temp_c = _equilibrium_c(sin_elev)

    def step(self, sin_elev, dt_s):
        a = dt_s / (_DAY_TAU_S if sin_elev > 0.0 else _NIGHT_TAU_S)
        t = self.temp_c
        self.temp_c = t + a * (_equilibrium_c(sin_elev) - t) / (1.0 + a)


class Radiation:
    def __init__(self, rng):
        self.excess_ugy_h = 0.0  # solar particle event dose rate above the background
        self.active = False
        self._tau_s = _SPE_TAU_MIN_S
        self._wait_s = rng.interval(_SPE_MEAN_INTERVAL_S)

    def rate_ugy_h(self):
        """True dose rate (allocates)."""
        return BACKGROUND_UGY_H + self.excess_ugy_h

    def advance(self, dt_s, rng):
        """Advance dt_s; return SPE_STARTED, SPE_ENDED or SPE_NONE."""
        if self.active:
            e = self.excess_ugy_h * exp(-dt_s / self._tau_s)
            if e >= _SPE_END_UGY_H:
                self.excess_ugy_h = e
                return SPE_NONE
            self.excess_ugy_h = 0.0
            self.active = False
            self._wait_s = rng.interval(_SPE_MEAN_INTERVAL_S)
            return SPE_ENDED
        self._wait_s -= dt_s
        if self._wait_s > 0.0:
            return SPE_NONE
        self.excess_ugy_h = _SPE_PEAK_MIN_UGY_H * _SPE_PEAK_RANGE ** rng.uniform()
        self._tau_s = _SPE_TAU_MIN_S + _SPE_TAU_SPAN_S * rng.uniform()
        self.active = True
        return SPE_STARTED
