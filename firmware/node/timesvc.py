"""Node time: milliseconds since boot, and the ground-supplied UTC correlation (SPEC §5.6, §11.1).

time.ticks_ms() wraps (2**30 ms on MicroPython), so now_ms() accumulates ticks_diff into a
count that does not. now_ms() allocates nothing while the count is a small int (below 2**30
ms, about 12 days, on a Pico; then it becomes a heap int).

Correlation (SPEC §11.1): ``time_correlate(utc_ms)`` pairs the node time it arrives at with
the ground's UTC (node.admin takes it, with the command: the fields below are its result).
The first correlation of a boot is the *base*; each later one at least 10 s of node time
after the base measures the drift over the whole span:

    drift_ppb = (dn - du) * 10**9 // du      (floor; dn, du: node and UTC ms since the base)

positive when the node clock runs fast. A measurement beyond ±990,000,000 ppb (a ground clock
that jumped) is not taken: the drift is reset to 0 and the base restarts there. The newest
correlation (n0, u0) is the reference of the conversions:

    utc(n)  = u0 + (n - n0) - (n - n0) * drift_ppb // (10**9 + drift_ppb)
    node(u) = n0 + (u - u0) + (u - u0) * drift_ppb // 10**9

(floor divisions; a heap int on a Pico: correlations and time-tagged commands only). The
correlation lives in RAM: after a reset the node is uncorrelated until the ground correlates
it again (it does so on connect and when it sees a new boot). The command itself is in
node.admin (imported per command); its argument check is ``check_utc`` here.
"""

import time

from micropython import const

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BAD_ARGUMENTS = const(2)
_CH_CLOCK_AGE_S = const(51)
_CH_CLOCK_CORRELATED = const(50)
_CH_CLOCK_DRIFT_PPM = const(52)
_OK = const(0)

_PPB = const(1000000000)


class TimeService:
    def __init__(self, board):
        self._ticks = board.ticks_ms
        self._last = board.ticks_ms()
        self._ms = 0
        self.node_ms = 0  # correlation: at node time node_ms, ground UTC read utc_ms
        self.utc_ms = 0
        self.correlated = False
        self.base_node_ms = 0  # the first correlation of this boot (or since a time jump)
        self.base_utc_ms = 0
        self.drift_ppb = 0
        self.correlations = 0  # since boot
        self.on_correlate = None  # called after each correlation (node.ttqueue re-plans)
        self._tlm = None

    def now_ms(self):
        t = self._ticks()
        self._ms += time.ticks_diff(t, self._last)
        self._last = t
        return self._ms

    def uptime_s(self):
        return self.now_ms() // 1000

    def attach(self, tlm):
        """Keep the clock channels of the telemetry store up to date from now on."""
        self._tlm = tlm
        self.update_tlm()

    # --- correlation (taken by node.admin's time_correlate) ------------------------------

    def utc_of(self, node_ms):
        """UTC ms at node time node_ms (only meaningful when correlated)."""
        dn = node_ms - self.node_ms
        return self.utc_ms + dn - dn * self.drift_ppb // (_PPB + self.drift_ppb)

    def node_of(self, utc_ms):
        """Node time at UTC utc_ms (only meaningful when correlated)."""
        du = utc_ms - self.utc_ms
        return self.node_ms + du + du * self.drift_ppb // _PPB

    def utc_now(self):
        return self.utc_of(self.now_ms())

    def update_tlm(self):
        tlm = self._tlm
        if tlm is None:
            return
        tlm[_CH_CLOCK_CORRELATED] = self.correlated
        tlm[_CH_CLOCK_AGE_S] = (self.now_ms() - self.node_ms) // 1000 if self.correlated else 0
        tlm[_CH_CLOCK_DRIFT_PPM] = self.drift_ppb / 1000


def check_utc(d):
    # The argument is typed `any` in the dictionary: this command checks it (a uint).
    utc_ms = d.args[0]
    if type(utc_ms) is not int or utc_ms < 0:
        return _BAD_ARGUMENTS
    return _OK
