"""Seeded pseudo-random numbers for the plant model, small-int safe.

Marsaglia's xorshift on two 16-bit words (shift triple 5, 3, 1; period 2**32 - 1, checked
exhaustively). Every intermediate stays below 2**21, so on a Pico (31-bit small ints) a draw
never creates a big int, which a 32-bit xorshift would. The plant does not use `random`: its
model must be reproducible from its own seed whatever else draws numbers.
"""

from math import log

from protocol.compat import const

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
