"""Housekeeping rates: the dictionary's defaults, a commanded rate, a disabled packet."""

from __future__ import annotations

import itertools
import time

import pytest

from hil.vocabulary import NodeApi
from protocol import dictionary
from protocol.dictionary_types import Packet


def _count_packets(node: NodeApi, packet: str, seconds: float) -> tuple[int, list[int]]:
    times: list[int] = []
    unsubscribe = node.client.on_telemetry(
        lambda hk: times.append(hk.node_time_ms) if hk.packet == packet else None)
    time.sleep(seconds)
    unsubscribe()
    return len(times), times


@pytest.mark.parametrize("packet", dictionary.PACKETS, ids=lambda p: p.name)
def test_default_rate(node: NodeApi, packet: Packet) -> None:
    # measure from node time tags: two packets at least, at the dictionary's period
    node.send_and_assert_command("hk_rate", packet=packet.id, rate=packet.rate_hz)
    period_ms = 1000.0 / packet.rate_hz
    wait_s = 2 * period_ms / 1000 + 1
    first = node.await_housekeeping(packet.name, timeout=wait_s, since=node.mark())
    second = node.await_housekeeping(packet.name, newer_than_ms=first.node_time_ms,
                                     timeout=wait_s)
    gap = second.node_time_ms - first.node_time_ms
    assert 0.8 * period_ms <= gap <= 1.3 * period_ms, (packet.name, gap)


def test_commanded_rate(node: NodeApi) -> None:
    node.send_and_assert_command("hk_rate", packet=1, rate=20.0)
    count, times = _count_packets(node, "power", 1.0)
    assert 15 <= count <= 24, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert sum(gaps) / len(gaps) == pytest.approx(50, abs=8)


def test_disabled_packet_stops(node: NodeApi) -> None:
    node.send_and_assert_command("hk_rate", packet=1, rate=20.0)
    node.send_and_assert_command("hk_enable", packet=1, enabled=False)
    time.sleep(0.1)  # one in flight may still arrive
    count, _ = _count_packets(node, "power", 0.5)
    assert count == 0
    node.send_and_assert_command("hk_enable", packet=1, enabled=True)
    node.await_telemetry("battery_soc", timeout=1)
