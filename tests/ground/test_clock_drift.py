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


def timed_correlate(c: Client) -> tuple[int | None, float]:
    """(the drift the node answers, the correlation's round trip in ms)."""
    start = time.monotonic()
    ppb = c.correlate()
    return ppb, 1000 * (time.monotonic() - start)


def test_drift_is_measured_and_corrects_time_tagged_commands(tmp_path) -> None:
    url = f"sim://?clock_ppm={PPM}&state_dir={tmp_path / 's'}"
    with Client(url, write_log=False, correlate=False) as c:  # every correlation ours
        ppb, rtt1 = timed_correlate(c)
        assert ppb == 0 and c.correlation is not None  # the base of this boot
        n1, u1 = c.correlation
        time.sleep(0.2)
        assert c.correlate() == 0  # under 10 s of node time from the base: no drift yet
        time.sleep(SPAN_S / (1 + PPM / 1e6))
        ppb, rtt2 = timed_correlate(c)
        assert ppb is not None and c.correlation is not None
        n2, u2 = c.correlation
        assert ppb == ((n2 - n1) - (u2 - u1)) * 10**9 // (u2 - u1)  # SPEC §11.1, exactly
        # The node stamps each correlation when it arrives, between 0 and a round trip after
        # the UTC it carries was read, and both times are whole ms: the measured drift is the
        # clock's within (1 + drift) x (the longer round trip + 3 ms) / the span. About 400
        # ppm on a quiet machine; more when the machine is busy and the link slow.
        slack_ppb = (1 + PPM / 1e6) * (max(rtt1, rtt2) + 3) / (u2 - u1) * 1e9
        assert abs(ppb - PPM * 1000) <= slack_ppb, (ppb, rtt1, rtt2, u2 - u1)
        tag = time.time_ns() // 1_000_000 + 5000
        res = c.command("noop", at=tag)
        done = c.wait_timetagged(res, 15.0)
        arrived = time.time_ns() // 1_000_000
        ran_node = done.verifications[-1].node_time_ms
        due = n2 + (tag - u2) + (tag - u2) * ppb // 10**9
        assert due <= ran_node <= due + 100
        assert tag - 20 <= arrived <= tag + 100 + 100  # on time in UTC: the drift corrected
