"""The power bus's switched load channels: switching, over-current trips, measured currents.

Channel numbers, nominal and trip currents and the essential flags come from the generated
protocol.node_dictionary.LOADS and protocol.ids. Channels 8 and 9 power the
battery and electronics heaters: for them the switch powers the heater circuit and the heater's
mode or thermostat decides whether the element draws current (see thermal.Heaters).

A switched-on load draws its nominal current with +-2 % triangular noise, which never reaches
its trip current; trips come from transients (Plant's rare spikes) and injected faults. A
tripped channel is off and stays off until reset_trip and a new switch-on.
"""

from protocol.compat import const
from protocol.ids import (
    CH_CURRENT_COMMS_RELAY,
    HEATER_LOAD_BATTERY,
    HEATER_LOAD_ELECTRONICS,
    LOAD_COUNT,
    LOADS_ESSENTIAL_MASK,
)
from protocol.node_dictionary import LOADS

N_LOADS = LOAD_COUNT
NOMINAL_A = tuple(load[0] for load in LOADS)
TRIP_A = tuple(load[1] for load in LOADS)
ESSENTIAL_MASK = LOADS_ESSENTIAL_MASK  # comms relay and both heater circuits
NONESSENTIAL_MASK = ((1 << LOAD_COUNT) - 1) & ~LOADS_ESSENTIAL_MASK
HEATER_FIRST = HEATER_LOAD_BATTERY  # heater h is on load channel HEATER_FIRST + h
_HEATER_MASK = const(0x300)
_NOISE = 0.02

if HEATER_LOAD_ELECTRONICS != HEATER_FIRST + 1 or _HEATER_MASK != 3 << HEATER_FIRST:
    raise ImportError("plant.loads: heater load channels moved")


class Bus:
    """Load switches and trip latches, as bit masks (bit n is load channel n)."""

    def __init__(self):
        self.on = ESSENTIAL_MASK  # at boot: comms relay and both heater circuits
        self.tripped = 0
        self.steady_a = 0.0  # nominal current of the switched-on loads other than heaters
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

    def reset_trip(self, ch):
        """Clear channel ch's trip latch; the channel stays off."""
        self.tripped &= ~(1 << ch)

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
        m = mask & self.on & ~ESSENTIAL_MASK
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

    def heater_power(self):
        """Bit h set when heater h's circuit is powered."""
        return (self.on >> HEATER_FIRST) & 3

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
            tlm[CH_CURRENT_COMMS_RELAY + ch] = a
        return total
