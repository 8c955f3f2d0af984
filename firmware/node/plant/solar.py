"""The solar array: output current from sun elevation, lost progressively to dust.

A fixed array tilted to face the noon sun (tilt = site latitude, facing the equator), so its
incidence cosine is cos(hour angle) = sin(elevation) / sin(noon elevation): the output rises
from zero at sunrise to PEAK_A at noon and back. PEAK_A: 20 A into the 28.8 V bus (about
580 W) from a clean array. Dust settles on it at `dust_rate` (fraction of the clean output lost
per lunar day, i.e. per synodic month) for as long as the model runs; nothing cleans it.
"""

from node.plant.sun import SIN_NOON, SYNODIC_S

PEAK_A = 20.0
_PEAK_PER_SIN = PEAK_A / SIN_NOON


class SolarArray:
    def __init__(self):
        self.dust_factor = 1.0  # output fraction left by dust; 1 is clean

    def current_a(self, sin_elev):
        """Array output current for the sun's elevation sine (0 at night)."""
        if sin_elev <= 0.0:
            return 0.0
        return _PEAK_PER_SIN * self.dust_factor * sin_elev

    def settle_dust(self, dust_rate, dt_s):
        """Lose dust_rate of the clean output per synodic month, pro rata for dt_s."""
        if dust_rate > 0.0:
            d = self.dust_factor - dust_rate * dt_s / SYNODIC_S
            self.dust_factor = d if d > 0.0 else 0.0
