"""The HIL suite with ``--target mqtt://...``: a simulated node behind a gateway and a real
broker on loopback. Commanding and modes run unchanged above the transport (the whole suite was run
by hand too: see README, Station); the byte-link tests (fuzz, impaired link) and the Pico's
hardware tests are skipped with their reason."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground.broker import Broker
from ground.gateway import Gateway

pytestmark = [pytest.mark.slow, pytest.mark.micropython]

REPO = Path(__file__).resolve().parents[2]
# test_fdir's battery drain once failed here on amqtt: the fresh node's previous boot ran in
# NOMINAL past the new boot's safe_mode time, and that packet was taken as newer
# (hil.vocabulary: node times compare within one boot). The whole suite was run by hand too.
SUITES = ["hil/tests/test_commands.py", "hil/tests/test_modes.py", "hil/tests/test_fuzz.py",
          "hil/tests/test_hardware.py", "hil/tests/test_fdir.py", "hil/tests/test_boot.py"]
QUICK = ["hil/tests/test_modes.py", "hil/tests/test_boot.py", "hil/tests/test_fuzz.py"]


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with Broker() as broker, Gateway(broker.url, "hil", {"n1": "sim://?seed=1"}):
        yield f"{broker.url}/hil/n1"


@pytest.mark.timeout(1300)
@pytest.mark.parametrize("suites", [QUICK, pytest.param(SUITES, marks=pytest.mark.soak)],
                         ids=["quick", "whole"])
def test_hil_suite_through_the_broker(target: str, suites: list[str], tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *suites, "--target", target, "-q", "-rs",
         "-p", "no:cacheprovider", "--hil-log", str(tmp_path / "hil")],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )
    tail = run.stdout[-3000:]
    assert run.returncode == 0, tail
    assert " failed" not in tail and " passed" in tail, tail
    # the byte-link tests are skipped through the broker, saying why; other skips say theirs
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert any("needs the node's byte link" in s for s in skipped), skipped
    assert all(len(s.split(": ", 1)) == 2 and s.split(": ", 1)[1] for s in skipped), skipped
