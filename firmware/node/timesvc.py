"""Node time: milliseconds since boot, and the ground-supplied UTC correlation (SPEC §5.6).

time.ticks_ms() wraps (2**30 ms on MicroPython), so now_ms() accumulates ticks_diff into a
count that does not. now_ms() allocates nothing while the count is a small int (below 2**30
ms, about 12 days, on a Pico; then it becomes a heap int).
"""

import time

from micropython import const

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BAD_ARGUMENTS = const(2)
_CMD_TIME_CORRELATE = const(14)
_EV_TIME_CORRELATED = const(15)
_KIND_TIME = const(5)
_OK = const(0)


class TimeService:
    def __init__(self, board):
        self._ticks = board.ticks_ms
        self._last = board.ticks_ms()
        self._ms = 0
        self.node_ms = 0  # correlation: at node time node_ms, ground UTC read utc_ms
        self.utc_ms = 0
        self.correlated = False

    def now_ms(self):
        t = self._ticks()
        self._ms += time.ticks_diff(t, self._last)
        self._last = t
        return self._ms

    def uptime_s(self):
        return self.now_ms() // 1000

    def register(self, dispatcher, link, events):
        self._link = link
        self._events = events
        dispatcher.register(_CMD_TIME_CORRELATE, self._cmd_time_correlate, _check_utc)

    def _cmd_time_correlate(self, d):
        # Allocates (a large utc_ms is a heap int): a rare command.
        utc_ms = d.args[0]
        node_ms = self.now_ms()
        self.node_ms = node_ms
        self.utc_ms = utc_ms
        self.correlated = True
        enc = self._link.begin(_KIND_TIME, 0)
        enc.array(2)
        enc.uint(node_ms)
        enc.uint(utc_ms)
        self._link.end()
        self._events.emit(_EV_TIME_CORRELATED, node_ms, utc_ms)
        return _OK


def _check_utc(d):
    # The argument is typed `any` in the dictionary: this command checks it (a uint).
    utc_ms = d.args[0]
    if type(utc_ms) is not int or utc_ms < 0:
        return _BAD_ARGUMENTS
    return _OK
