"""The node measures its clock drift from successive correlations and corrects time-tagged
commands with it (SPEC §11.1), on a simulated node whose clock runs 2 % fast
(``sim://?clock_ppm=20000``: large enough that link jitter, a few ms, does not hide it over a
10 s span).

Exact oracle: the drift the node reports is the SPEC's formula applied to the two correlations
it answered. Wall oracle: a command tagged 5 s ahead completes at that UTC within a scheduler
tick (100 ms) and the link's delay; uncorrected, a 2 % fast clock would run it 100 ms early."""

from __future__ import annotations

import time

import pytest

from ground.client import Client

pytestmark = pytest.mark.micropython  # needs the MicroPython Unix port (the simulated node)

PPM = 20000
SPAN_S = 10.5  # node time between the correlations: SPEC §11.1 needs 10 s


def test_drift_is_measured_and_corrects_time_tagged_commands(tmp_path) -> None:
    with Client(f"sim://?clock_ppm={PPM}&state_dir={tmp_path / 's'}", write_log=False) as c:
        assert c.correlation is not None  # connect correlated: the base of this boot
        n1, u1 = c.correlation
        c.set_correlate_period(1e9)  # one more now (too soon to measure), then only ours
        time.sleep(0.2)
        assert c.correlate() == 0  # under 10 s of node time from the base: no drift yet
        time.sleep(SPAN_S / (1 + PPM / 1e6))
        ppb = c.correlate()
        n2, u2 = c.correlation
        assert ppb == ((n2 - n1) - (u2 - u1)) * 10**9 // (u2 - u1)  # SPEC §11.1, exactly
        assert abs(ppb - PPM * 1000) < 1_000_000  # 20000 ppm measured within 1000 ppm
        tag = time.time_ns() // 1_000_000 + 5000
        res = c.command("noop", at=tag)
        done = c.wait_timetagged(res, 15.0)
        arrived = time.time_ns() // 1_000_000
        ran_node = done.verifications[-1].node_time_ms
        due = n2 + (tag - u2) + (tag - u2) * ppb // 10**9
        assert due <= ran_node <= due + 100
        assert tag - 20 <= arrived <= tag + 100 + 100  # on time in UTC: the drift corrected
