"""node.eventlog on MicroPython: event numbers are reserved on the flash ahead of use, so a
power cut at any moment skips numbers and never reuses one (SPEC §5.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.micropython

BURST = """
import os
from node.eventlog import EventLog
root = {root!r}
os.mkdir(root)
log = EventLog(root, False, 1)
first = log.open()
used = first
for n in {bursts!r}:
    for _ in range(n):  # numbered (sent live); the power cut comes before any flush
        log.claim(used)
        used += 1
    log = EventLog(root, False, 1)  # power cut: a new boot reads the flash
    nxt = log.open()
    print(used, nxt)
    used = nxt
"""


def test_numbers_used_before_a_power_cut_are_never_given_again(run_mp, tmp_path: Path) -> None:
    bursts = [0, 1, 31, 32, 33, 200, 3]  # around and well past one reservation (32)
    out = run_mp(BURST.format(root=str(tmp_path / "flash"), bursts=bursts))
    rows = [tuple(map(int, line.split())) for line in out.splitlines()]
    assert len(rows) == len(bursts)
    for used, nxt in rows:
        assert used <= nxt <= used + 32, (used, nxt)  # skipped at most one reservation


CLEAN = """
import os
from node.eventlog import EventLog
root = {root!r}
os.mkdir(root)
log = EventLog(root, False, 1)
first = log.open()
for s in range(first, first + 5):
    log.claim(s)
log.close()  # a commanded reset
print(first, EventLog(root, False, 2).open())
"""


def test_a_clean_reset_skips_no_number(run_mp, tmp_path: Path) -> None:
    first, nxt = map(int, run_mp(CLEAN.format(root=str(tmp_path / "flash"))).split())
    assert nxt == first + 5
