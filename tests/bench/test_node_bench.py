"""bench.node_bench's board mode (``--port``), run against the simulated node's pty: the same
code path a Pico on /dev/ttyACM0 takes, with short runs (the figures are not checked here)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import __main__ as bench_main
from bench import node_bench
from ground.simnode import SimNode
from protocol import dictionary as D
from protocol import messages as M

pytestmark = [pytest.mark.micropython, pytest.mark.slow]


def _rates(port: str, seconds: float) -> Counter[int]:
    """Housekeeping packets per id received at port in `seconds`."""
    link = node_bench.RawLink(port)
    try:
        seen: Counter[int] = Counter()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for m in link.read(0.1):
                if m.kind == M.KIND_HOUSEKEEPING:
                    seen[m.id] += 1
        return seen
    finally:
        link.close()


def test_board_mode_measures_the_node_at_the_port_and_leaves_its_housekeeping_as_at_boot(
        tmp_path: Path) -> None:
    with SimNode(seed=1, state_dir=tmp_path / "state") as node:
        rows = node_bench.run_board(node.port, n_rtt=5, hk_s=1.0, heap_s=2.0)
        after = _rates(node.port, 2.5)

    by_name = {r["name"].split(" (")[0]: r for r in rows}
    heap = by_name["heap free, the running node"]
    assert heap["target"] == ">= 120,000"
    assert heap["ok"] == (heap["value"] >= node_bench.HEAP_TARGET)
    assert 0 < heap["value"] < 192 * 1024
    assert by_name["round trip median, noop → completed"]["value"] > 0
    assert by_name["housekeeping messages lost"] == {**by_name["housekeeping messages lost"],
                                                    "value": 0, "ok": True}
    assert all(node.port in r["name"] for r in rows)
    # Back at the dictionary's rates (0.1..1 Hz; the bench ran them all at 50 Hz), enabled as
    # hk_enabled_mask says (all, by default): the 1 Hz packet flows, nothing comes fast.
    fastest = max(D.PACKETS, key=lambda p: p.rate_hz)
    assert after[fastest.id] >= 2
    assert max(after.values()) <= 2.5 * fastest.rate_hz + 1


def test_the_runner_gives_the_port_only_to_sections_that_take_one() -> None:
    seen: dict[str, object] = {}

    def with_port(quick: bool = False, port: str | None = None) -> list[object]:
        seen["with"] = port
        return []

    def without(quick: bool = False) -> list[object]:
        seen["without"] = quick
        return []

    bench_main._run(SimpleNamespace(run=with_port), True, "/dev/ttyACM0")  # type: ignore[arg-type]
    bench_main._run(SimpleNamespace(run=without), True, "/dev/ttyACM0")  # type: ignore[arg-type]
    assert seen == {"with": "/dev/ttyACM0", "without": True}


def test_a_port_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyACM9")
    with pytest.raises(RuntimeError, match=f"cannot open the board's port {missing}"):
        node_bench.run_board(missing, n_rtt=1, hk_s=0.1, heap_s=0.1)
