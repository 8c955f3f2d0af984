"""NodeApi.await_housekeeping across a reboot: node time starts again at 0 at every boot, so a
packet of an earlier boot is never "after" a time of this boot (the cause of test_fdir's
battery_drain failing through a broker: the boot before the fresh node's reboot ran in NOMINAL
past the time of the new boot's safe_mode event, and its packet was taken as newer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ground import values
from hil.session import HilLink
from hil.vocabulary import HilTimeout, NodeApi, values_of
from protocol import dictionary


class _Downlink:
    def listen(self, _kind: str, _fn: Callable[..., None]) -> Callable[[], None]:
        return lambda: None


class _Client:
    log = None
    log_path = None

    def __init__(self) -> None:
        self.downlink = _Downlink()
        self.on_hk: Callable[[Any], None] = lambda _hk: None

    def on_telemetry(self, fn: Callable[[Any], None]) -> Callable[[], None]:
        self.on_hk = fn
        return lambda: None

    def on_event(self, _fn: Callable[..., None]) -> Callable[[], None]:
        return lambda: None


def _power(boot: int, mode: int, t_ms: int) -> values.Housekeeping:
    packet = next(p for p in dictionary.PACKETS if p.name == "power")
    body: list[Any] = [0] * len(packet.channels)
    body[0], body[1], body[2] = mode, boot, 0x12345678
    return values.housekeeping(packet.id, t_ms // 100, t_ms, 0, body)


@pytest.fixture
def api() -> tuple[NodeApi, _Client]:
    client = _Client()
    return NodeApi(client, time_scale=0.05), client  # type: ignore[arg-type]


def test_a_packet_of_the_boot_before_is_not_newer(api: tuple[NodeApi, _Client]) -> None:
    node, client = api
    client.on_hk(_power(boot=1, mode=2, t_ms=6000))  # NOMINAL until 6 s, then a reboot
    client.on_hk(_power(boot=2, mode=1, t_ms=1000))
    with pytest.raises(HilTimeout):  # nothing of boot 2 after 5067 ms yet
        node.await_housekeeping("power", newer_than_ms=5067, timeout=1)
    client.on_hk(_power(boot=2, mode=1, t_ms=6000))
    hk = node.await_housekeeping("power", newer_than_ms=5067, timeout=1)
    assert values_of(hk)["boot_count"] == 2 and values_of(hk)["mode"] == 1


def test_a_late_packet_of_the_boot_before_does_not_match(api: tuple[NodeApi, _Client]) -> None:
    node, client = api
    client.on_hk(_power(boot=2, mode=1, t_ms=1000))
    client.on_hk(_power(boot=1, mode=2, t_ms=6000))  # reordered through a broker
    client.on_hk(_power(boot=2, mode=1, t_ms=5100))
    hk = node.await_housekeeping("power", newer_than_ms=5067, timeout=1)
    assert (hk.body[1], hk.node_time_ms) == (2, 5100)


def test_forget_drops_what_came_before(api: tuple[NodeApi, _Client]) -> None:
    node, client = api
    client.on_hk(_power(boot=1, mode=2, t_ms=6000))
    before = node.mark()
    node.history.forget()
    assert not node.history.housekeeping and not node.history.channel_since("mode", 0)
    assert node.mark() == before  # positions keep counting
    client.on_hk(_power(boot=2, mode=1, t_ms=200))
    assert [v.value for v in node.history.channel_since("mode", 0)] == [1]


def test_fresh_on_a_board_forgets_the_boot_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """HilLink.fresh on a target that is neither sim nor vpico: reset, reboot, then forget."""
    calls: list[str] = []
    client = _Client()
    node = NodeApi(client, time_scale=0.05)  # type: ignore[arg-type]

    class _Target:
        is_sim = is_vpico = False

    link = HilLink.__new__(HilLink)
    link.target = _Target()  # type: ignore[assignment]
    monkeypatch.setattr(link, "open", lambda _p: node, raising=False)
    monkeypatch.setattr(link, "reset", lambda _a: calls.append("reset"), raising=False)

    def reboot(_a: NodeApi) -> None:
        calls.append("reboot")
        client.on_hk(_power(boot=1, mode=2, t_ms=6000))  # heard before the reboot's answer

    monkeypatch.setattr(link, "power_cycle", reboot, raising=False)
    monkeypatch.setattr(link, "release", lambda _a: calls.append("release"), raising=False)
    with link.fresh(None) as got:  # type: ignore[arg-type]
        assert got is node and calls == ["reset", "reboot"]
        assert not node.history.housekeeping
    # and the shared node is left rebooted for the next tests, whatever the test did to it
    assert calls == ["reset", "reboot", "reset", "reboot", "release"]
