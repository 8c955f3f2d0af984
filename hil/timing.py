"""How fast the target is: the factor every wait of the rig is multiplied by.

The suite's waits are written for the simulated node (a pty answering in about a millisecond,
a node clock that is the wall clock). A slower target stretches them all by one factor, the
*time scale*, measured once per session on the first connection (`measure`) or given with
``--time-scale`` (ini ``hil_time_scale``, env ``HIL_TIME_SCALE``):

- node clock against wall clock: two ``status`` answers a second apart; the node's
  ``uptime_ms`` advances that much less on a target whose clock runs slow (the virtual Pico's
  emulated clock runs about 34x slower than wall time);
- round trip: the slowest of the ``status`` requests, against ``REFERENCE_RTT_S``;
- link throughput: the node's dictionary downlink (a few kilobytes in bulk blocks), bytes per
  wall second, against ``REFERENCE_BYTES_PER_S``.

The factor is the largest of the three ratios, never below 1: the sim runs at 1, a Pico on USB
at about 1, a Pico behind a 115200-baud UART a few times 1, the virtual Pico about 34. Timeouts
are wall time after scaling; the node's own periods (housekeeping rates, watchdog) are node
time and are judged from its time tags, never from a wall clock.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final, NamedTuple

REFERENCE_RTT_S: Final = 0.1  # what the suite's waits leave for one round trip
REFERENCE_BYTES_PER_S: Final = 20_000.0  # link speed the suite's bulk waits assume
CLOCK_WINDOW_S: Final = 1.0  # wall time between the two clock probes (times the prior scale)
_PROBES: Final = 3


class TimeScale(NamedTuple):
    factor: float  # every wait is multiplied by this
    source: str  # "measured" or "option"
    clock_ratio: float  # wall seconds per node second (1 on the sim)
    rtt_s: float  # slowest status round trip
    bytes_per_s: float  # dictionary downlink throughput (0: not measured)

    def describe(self) -> str:
        if self.source != "measured":
            return f"time scale {self.factor:g} ({self.source})"
        return (f"time scale {self.factor:g} (measured: node clock {self.clock_ratio:.2f}x "
                f"slower than wall, round trip {self.rtt_s * 1000:.1f} ms, link "
                f"{self.bytes_per_s / 1000:.1f} kB/s)")


def given(factor: float) -> TimeScale:
    if not (factor >= 1.0 and math.isfinite(factor)):
        raise ValueError(f"time scale {factor!r}: a number of at least 1")
    return TimeScale(factor, "option", 0.0, 0.0, 0.0)


def combine(clock_ratio: float, rtt_s: float, bytes_per_s: float) -> float:
    """The factor from the three measurements, rounded up to one decimal, at least 1."""
    ratios = [1.0, clock_ratio, rtt_s / REFERENCE_RTT_S]
    if bytes_per_s > 0:
        ratios.append(REFERENCE_BYTES_PER_S / bytes_per_s)
    return math.ceil(max(ratios) * 10) / 10


def clock_ratio(probe_a: tuple[float, float, int], probe_b: tuple[float, float, int]) -> float:
    """Wall seconds per node second from two probes (sent, answered, node uptime_ms): the
    node read its clock between sending and answering, so each probe's wall time is taken
    at its midpoint."""
    wall = (probe_b[0] + probe_b[1]) / 2 - (probe_a[0] + probe_a[1]) / 2
    node = (probe_b[2] - probe_a[2]) / 1000.0
    if node <= 0:
        raise ValueError(f"the node clock did not advance ({probe_a[2]} → {probe_b[2]} ms)")
    return wall / node


def measure(client: Any, prior: float = 1.0) -> TimeScale:
    """Measure the target through a connected ``ground.client.Client``. ``prior`` is what the
    target is expected to be (it stretches the probes' own timeouts)."""
    timeout_s = 5.0 * prior
    probes: list[tuple[float, float, int]] = []
    for i in range(_PROBES):
        if i == _PROBES - 1:
            time.sleep(CLOCK_WINDOW_S * prior)
        sent = time.monotonic()
        status = client.refresh_status(timeout_s)
        probes.append((sent, time.monotonic(), int(status.uptime_ms)))
    rtt_s = max(b - a for a, b, _ in probes)
    ratio = clock_ratio(probes[1], probes[2])
    bytes_per_s = 0.0
    started = time.monotonic()
    try:
        size = int(client.fetch_dictionary(timeout_s * 4).size)
    except Exception:  # a lossy link or a bulk that timed out: the other two ratios hold
        size = 0
    if size:
        bytes_per_s = size / max(time.monotonic() - started, 1e-6)
    return TimeScale(combine(ratio, rtt_s, bytes_per_s), "measured", ratio, rtt_s, bytes_per_s)
