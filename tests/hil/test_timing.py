"""The time scale: how it is measured and combined, and that every wait of the vocabulary
follows it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hil import timing
from hil.vocabulary import HilTimeout, History, NodeApi


def test_clock_ratio_takes_each_probe_at_its_midpoint() -> None:
    # sent at 10.0, answered 10.2 (uptime 1000 ms); sent 13.0, answered 13.2 (uptime 1100 ms)
    assert timing.clock_ratio((10.0, 10.2, 1000), (13.0, 13.2, 1100)) == pytest.approx(30.0)
    with pytest.raises(ValueError, match="did not advance"):
        timing.clock_ratio((1.0, 1.1, 500), (2.0, 2.1, 500))


@pytest.mark.parametrize(("clock", "rtt_s", "bps", "factor"), [
    (1.0, 0.002, 300_000.0, 1.0),  # the sim: never below 1
    (0.97, 0.001, 0.0, 1.0),  # a clock measured a little fast is still 1
    (33.61, 0.045, 7_800.0, 33.7),  # the virtual Pico: its clock, rounded up
    (1.0, 0.35, 0.0, 3.5),  # a slow round trip
    (1.0, 0.01, 5_000.0, 4.0),  # a slow link: 20 kB/s / 5 kB/s
])
def test_combine_takes_the_largest_ratio(clock: float, rtt_s: float, bps: float,
                                         factor: float) -> None:
    assert timing.combine(clock, rtt_s, bps) == factor


def test_a_given_scale_is_at_least_one() -> None:
    assert timing.given(34).factor == 34 and timing.given(34).source == "option"
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            timing.given(bad)


class _Status:
    def __init__(self, uptime_ms: int) -> None:
        self.uptime_ms = uptime_ms


class _SlowNodeClient:
    """A node whose clock runs ``ratio`` times slower than wall time; a 40 ms round trip."""

    def __init__(self, ratio: float, dict_bytes: int = 4000) -> None:
        self.ratio = ratio
        self.start = time.monotonic()
        self.dict_bytes = dict_bytes
        self.timeouts: list[float] = []

    def refresh_status(self, timeout: float) -> _Status:
        self.timeouts.append(timeout)
        time.sleep(0.02)
        uptime = (time.monotonic() - self.start) / self.ratio * 1000
        time.sleep(0.02)
        return _Status(int(uptime))

    def fetch_dictionary(self, timeout: float) -> Any:
        time.sleep(0.1)
        return type("D", (), {"size": self.dict_bytes})()


def test_measure_a_slow_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "CLOCK_WINDOW_S", 0.3)
    scale = timing.measure(_SlowNodeClient(ratio=0.2), prior=2.0)
    # 0.6 s of wall between the probes is 3 s of a clock running 5x fast: ratio 0.2 → 1
    assert scale.factor == 1.0 and scale.clock_ratio == pytest.approx(0.2, rel=0.1)
    client = _SlowNodeClient(ratio=8.0)
    scale = timing.measure(client, prior=2.0)
    assert scale.clock_ratio == pytest.approx(8.0, rel=0.15)
    assert 7.0 <= scale.factor <= 9.5 and scale.source == "measured"
    assert 0.04 <= scale.rtt_s < 0.5
    assert client.timeouts == [10.0, 10.0, 10.0]  # the probes' patience follows the prior
    assert "node clock" in scale.describe() and "round trip" in scale.describe()


def test_every_vocabulary_wait_follows_the_scale() -> None:
    history = History(time_scale=3.0)
    started = time.monotonic()
    assert history.wait(lambda: None, 0.1) is None
    assert time.monotonic() - started >= 0.3


def test_a_timeout_reports_the_wall_seconds_it_waited(tmp_path: Any) -> None:
    from ground.client import Client

    client = Client("loop://", log=tmp_path / "s.jsonl", check_dictionary=False)
    client.transport.open()
    api = NodeApi(client, None, time_scale=2.5)
    try:
        assert api.seconds(4) == 10.0
        with pytest.raises(HilTimeout) as err:
            api.await_telemetry("battery_soc", timeout=0.1)
        assert err.value.timeout_s == pytest.approx(0.25)
        assert "timed out after 0.25 s" in str(err.value)
    finally:
        api.detach()
        client.close()
