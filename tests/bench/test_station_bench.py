"""The station bench row runs (quick: 3 simulated nodes) and accounts for every packet."""

from __future__ import annotations

import pytest

from bench import station_bench

pytestmark = [pytest.mark.slow, pytest.mark.micropython]


def test_quick_station_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ILRS_STATION_NODES", raising=False)
    rows = {r["name"]: r for r in station_bench.run(quick=True)}
    received = next(r for n, r in rows.items() if n.startswith("3 nodes x 10 hk/s"))
    assert received["ok"], received  # at least 90 % of 3 x 10/s x 8 s x 5 subscribers
    assert rows["messages lost (downlink counter gaps)"]["value"] == 0
    assert rows["latency median (node time tag to subscriber, above floor)"]["value"] >= 0
    assert rows["gateway CPU per node"]["value"] > 0
