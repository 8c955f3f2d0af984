"""Housekeeping rates: the dictionary's defaults, a commanded rate, a disabled packet.

Rates are judged from the node's time tags, never from the ground's clock, and from many
samples. The node schedules a packet on the multiples of its period on its own clock and a
packet more than a period late skips to the next multiple (firmware/node/housekeeping.py),
so on a loaded host a packet may be late or skipped but never early: at most one packet per
period slot holds whatever the scheduler's latency, and the median gap of many samples is
the period unless most of them are late.
"""

from __future__ import annotations

import itertools
import statistics
import threading

from hil.vocabulary import NodeApi
from protocol import dictionary

COLLECT_TIMEOUT_S = 120.0  # wall time, generous: the node's time tags are what is judged


def _collect(node: NodeApi, wanted: dict[str, int], timeout_s: float) -> dict[str, list[int]]:
    """Node time tags of each packet in ``wanted`` until each has its number of samples."""
    times: dict[str, list[int]] = {name: [] for name in wanted}
    done = threading.Event()

    def on_hk(hk: object) -> None:
        packet = getattr(hk, "packet", None)
        if packet in times:
            times[packet].append(getattr(hk, "node_time_ms", -1))
            if all(len(times[n]) >= k for n, k in wanted.items()):
                done.set()

    timeout_s = node.seconds(timeout_s)  # a slower target (vpico) takes longer to send them
    unsubscribe = node.client.on_telemetry(on_hk)
    try:
        done.wait(timeout_s)
    finally:
        unsubscribe()
    short = {n: len(times[n]) for n, k in wanted.items() if len(times[n]) < k}
    assert not short, f"too few packets in {timeout_s:g} s: {short}; log {node.log_path}"
    return times


def _check_rate(name: str, tags: list[int], period_ms: int) -> None:
    slots = [t // period_ms for t in tags]
    # never two packets in one period slot: too fast is a bug whatever the host's load
    assert all(b > a for a, b in itertools.pairwise(slots)), (name, period_ms, tags)
    gaps = [b - a for a, b in itertools.pairwise(tags)]
    median = statistics.median(gaps)
    assert 0.8 * period_ms <= median <= 1.3 * period_ms, (name, period_ms, gaps)


def test_default_rates(node: NodeApi) -> None:
    """Every packet at its dictionary rate, all measured at once: five samples of each
    (three of the 0.1 Hz packet), the median gap within -20 % / +30 % of the period."""
    period = {p.name: round(1000.0 / p.rate_hz) for p in dictionary.PACKETS}
    wanted = {p.name: 5 if p.rate_hz >= 0.2 else 3 for p in dictionary.PACKETS}
    times = _collect(node, wanted, COLLECT_TIMEOUT_S)
    for name, tags in times.items():
        _check_rate(name, tags, period[name])


def test_commanded_rate(node: NodeApi) -> None:
    node.send_and_assert_command("hk_rate", packet=1, rate=20.0)
    times = _collect(node, {"power": 41}, COLLECT_TIMEOUT_S)
    _check_rate("power", times["power"][1:], 50)  # the first may precede the new rate


def test_disabled_packet_stops(node: NodeApi) -> None:
    node.send_and_assert_command("hk_rate", packet=1, rate=20.0)
    node.send_and_assert_command("hk_rate", packet=6, rate=20.0)  # a clock to watch
    node.send_and_assert_command("hk_enable", packet=1, enabled=False)
    disabled_at = node.status().uptime_ms  # node time after the command completed
    since = node.mark()
    # a full second of node time later (20 power packets had it still been enabled)
    node.await_housekeeping("battery", newer_than_ms=disabled_at + 1000, since=since,
                            timeout=COLLECT_TIMEOUT_S)
    late = [hk.node_time_ms for _, hk in node.history.housekeeping
            if hk.packet == "power" and hk.node_time_ms > disabled_at]
    assert late == [], f"power packets after disabling at {disabled_at} ms: {late}"
    node.send_and_assert_command("hk_enable", packet=1, enabled=True)
    node.await_housekeeping("power", newer_than_ms=node.status().uptime_ms,
                            timeout=COLLECT_TIMEOUT_S)
