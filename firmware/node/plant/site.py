"""The module's site, outside the unit: the sun, the solar array, the surface and radiation
environment, and the plant's seeded random numbers. One section per part (these were separate
modules: one module costs about 400 bytes of a Pico-sized heap, so the plant keeps three).

Rng: seeded pseudo-random numbers for the plant model, small-int safe.

Marsaglia's xorshift on two 16-bit words (shift triple 5, 3, 1; period 2**32 - 1, checked
exhaustively). Every intermediate stays below 2**21, so on a Pico (31-bit small ints) a draw
never creates a big int, which a 32-bit xorshift would. The plant does not use `random`: its
model must be reproducible from its own seed whatever else draws numbers.

Sun: the Sun over the module's site, lunar day and night and the sun's elevation.

Site: Taurus-Littrow valley (Apollo 17), 20.2 deg N, a mid-latitude site with a clean day/night
cycle (a south-polar site would see the sun graze the horizon instead). The sun's declination
seen from the Moon stays within +-1.54 deg and is taken as 0, so sunrise and sunset are exactly
half a synodic month apart (14.77 Earth days each) and

    sin(elevation) = cos(latitude) * cos(hour angle),  hour angle = 2 pi t / month - pi / 2

with t the model time since sunrise. Noon elevation is 69.8 deg.

Model time is kept as an integer second count plus a float fraction: a single-precision float
alone cannot hold 2.55 million seconds to better than 0.25 s, which would swallow small steps.

The solar array (in Sun): output current from sun elevation, lost progressively to dust.

A fixed array tilted to face the noon sun (tilt = site latitude, facing the equator), so its
incidence cosine is cos(hour angle) = sin(elevation) / sin(noon elevation): the output rises
from zero at sunrise to _PEAK_A at noon and back. _PEAK_A: 20 A into the 28.8 V bus (about
580 W) from a clean array. Dust settles on it at `dust_rate` (fraction of the clean output lost
per lunar day, i.e. per synodic month) for as long as the model runs; nothing cleans it.

Environment: the surface temperature and the radiation dose rate.

Surface: by day it relaxes (time constant 2 h) towards radiative equilibrium with the sun,
_SUBSOLAR_K * sin(elevation)**(1/4), about +116 degC at this site's noon; by night it cools
slowly (time constant 36 h) towards SURFACE_NIGHT_C, about -175 degC, reaching about -170 degC
before dawn: close to the Apollo 15 and 17 heat-flow measurements at mid-latitude mare sites.

Radiation: a galactic cosmic ray background of _BACKGROUND_UGY_H (Chang'e 4's LND measured about
13 uGy/h at the surface) plus solar particle events: Poisson onsets (mean interval 25 days),
peaks log-uniform in 200..5000 uGy/h reached at onset, exponential decay with a time constant
of 3 to 12 hours, ended when the excess falls below 2 uGy/h. All drawn from the plant's seed.
"""

from math import asin, cos, exp, log, radians, sin, sqrt

from protocol.compat import const

# --- random numbers -----------------------------------------------------------------------

_MASK16 = const(0xFFFF)
_WARMUP = const(16)  # draws discarded so that neighbouring seeds diverge at once


class Rng:
    """xorshift16x2 generator. `next16()` allocates nothing; the float draws allocate one float."""

    def __init__(self, seed):
        seed &= 0xFFFFFFFF
        x = (seed & _MASK16) ^ 0xA5A5
        y = ((seed >> 16) & _MASK16) ^ 0x5A5A
        if x == 0 and y == 0:  # the one state xorshift cannot leave
            y = 1
        self._x = x
        self._y = y
        for _ in range(_WARMUP):
            self.next16()

    def next16(self):
        """Next 16-bit value, 0..65535."""
        x = self._x
        t = (x ^ (x << 5)) & _MASK16
        y = self._y
        self._x = y
        y = (y ^ (y >> 1)) ^ (t ^ (t >> 3))
        self._y = y
        return y

    def uniform(self):
        """Uniform in [0, 1)."""
        return self.next16() / 65536.0

    def tri(self):
        """Triangular in (-1, 1), mean 0: cheap bell-shaped noise (sum of two uniforms)."""
        return (self.next16() + self.next16()) / 65536.0 - 1.0

    def interval(self, mean_s):
        """Exponentially distributed wait with the given mean (Poisson arrivals), > 0."""
        return -mean_s * log((self.next16() + 1) / 65536.0) + 1.0


# --- the sun ------------------------------------------------------------------------------

SYNODIC_S = const(2551443)  # 29.530589 Earth days: sunrise to sunrise
_LATITUDE_DEG = const(20.19)
_COS_LAT = cos(radians(_LATITUDE_DEG))
SIN_NOON = _COS_LAT  # sine of the noon elevation
_OMEGA = 6.283185307179586 / SYNODIC_S  # rad per model second
_DEG = const(57.29577951308232)
_PEAK_A = const(20.0)  # the solar array's, clean, at noon
_PEAK_PER_SIN = _PEAK_A / SIN_NOON


class Sun:
    """Model clock and sun position, and the solar array it lights. `sin_elev` > 0 means day.
    (The array is here, not in a class of its own: each class costs heap.)"""

    def __init__(self, t_s):
        self.t_s = t_s % SYNODIC_S  # whole model seconds since the last sunrise
        self._frac_s = 0.0
        self.sin_elev = _COS_LAT * sin(_OMEGA * self.t_s)
        self.dust_factor = 1.0  # array output fraction left by dust; 1 is clean

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

    def current_a(self, sin_elev):
        """Array output current for the sun's elevation sine (0 at night)."""
        if sin_elev <= 0.0:
            return 0.0
        return _PEAK_PER_SIN * self.dust_factor * sin_elev

    def settle_dust(self, dust_rate, dt_s):
        """Lose dust_rate of the clean array output per synodic month, pro rata for dt_s."""
        if dust_rate > 0.0:
            d = self.dust_factor - dust_rate * dt_s / SYNODIC_S
            self.dust_factor = d if d > 0.0 else 0.0


# --- the environment ----------------------------------------------------------------------

_SUBSOLAR_K = const(395.0)
SURFACE_NIGHT_C = -175.0
SURFACE_NOON_C = _SUBSOLAR_K * sqrt(sqrt(SIN_NOON)) - 273.15
_DAY_TAU_S = const(7200.0)
_NIGHT_TAU_S = const(129600.0)

_BACKGROUND_UGY_H = const(13.0)
_SPE_MEAN_INTERVAL_S = const(2160000.0)  # 25 days
_SPE_PEAK_MIN_UGY_H = const(200.0)
_SPE_PEAK_RANGE = const(25.0)  # peak = min * range**u, u uniform: 200..5000
_SPE_TAU_MIN_S = const(10800.0)
_SPE_TAU_SPAN_S = const(32400.0)
_SPE_END_UGY_H = const(2.0)

_SPE_NONE = const(0)
SPE_STARTED = const(1)
SPE_ENDED = const(2)


def _equilibrium_c(sin_elev):
    if sin_elev <= 0.0:
        return SURFACE_NIGHT_C
    t = _SUBSOLAR_K * sqrt(sqrt(sin_elev)) - 273.15
    return t if t > SURFACE_NIGHT_C else SURFACE_NIGHT_C


class Environment:
    """The surface temperature and the radiation dose rate (one class: each costs heap)."""

    def __init__(self, sin_elev, rng):
        self.temp_c = _equilibrium_c(sin_elev)  # surface temperature
        self.excess_ugy_h = 0.0  # solar particle event dose rate above the background
        self.active = False
        self._tau_s = _SPE_TAU_MIN_S
        self._wait_s = rng.interval(_SPE_MEAN_INTERVAL_S)

    def step(self, sin_elev, dt_s):
        """Move the surface temperature on by dt_s."""
        a = dt_s / (_DAY_TAU_S if sin_elev > 0.0 else _NIGHT_TAU_S)
        t = self.temp_c
        self.temp_c = t + a * (_equilibrium_c(sin_elev) - t) / (1.0 + a)

    def rate_ugy_h(self):
        """True dose rate (allocates)."""
        return _BACKGROUND_UGY_H + self.excess_ugy_h

    def advance(self, dt_s, rng):
        """Advance the radiation by dt_s; return SPE_STARTED, SPE_ENDED or _SPE_NONE."""
        if self.active:
            e = self.excess_ugy_h * exp(-dt_s / self._tau_s)
            if e >= _SPE_END_UGY_H:
                self.excess_ugy_h = e
                return _SPE_NONE
            self.excess_ugy_h = 0.0
            self.active = False
            self._wait_s = rng.interval(_SPE_MEAN_INTERVAL_S)
            return SPE_ENDED
        self._wait_s -= dt_s
        if self._wait_s > 0.0:
            return _SPE_NONE
        self.excess_ugy_h = _SPE_PEAK_MIN_UGY_H * _SPE_PEAK_RANGE ** rng.uniform()
        self._tau_s = _SPE_TAU_MIN_S + _SPE_TAU_SPAN_S * rng.uniform()
        self.active = True
        return SPE_STARTED
