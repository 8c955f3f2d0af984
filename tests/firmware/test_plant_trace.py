"""The plant model's golden trace: a long, busy run must print exactly what it printed before.

plant_trace.py runs node.plant on the MicroPython Unix port for three seeds x 3,000 steps
(switching, heater modes, faults, trips, shedding, dust) and prints every step's telemetry and
every event, floats as '{:.7g}'. golden/plant_trace.json keeps, per seed, the line count, the
SHA-256 of the whole trace, HASH hex digits of each line's hash and every SAMPLE-th line as
text; a failure names the first line that differs, shows it and the lines before it as they
are now, and the golden line sampled there or next. The behavioural tests are in
test_plant.py; this one catches any change of the model's numbers (a constant, an
interpolation, a threshold).

When the model is meant to change, regenerate the golden file on purpose and review its diff:

    ILRS_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/firmware/test_plant_trace.py
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ground.micropython import PICO_HEAP, REPO_ROOT, find_micropython, micropython_path_env

pytestmark = pytest.mark.micropython

DRIVER = Path(__file__).with_name("plant_trace.py")
GOLDEN = Path(__file__).parent / "golden" / "plant_trace.json"
SEEDS = (1, 7, 12345)
HASH = 4  # hex digits of a line's hash kept (a collision only reports a later line)
SAMPLE = 100  # every SAMPLE-th line (1, 101, 201, ...) is kept as text
REGEN = "ILRS_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/firmware/test_plant_trace.py"


@functools.cache
def trace(seed: int) -> list[str]:
    """The trace's lines for seed (without the closing "end")."""
    proc = subprocess.run(
        [find_micropython(), "-X", f"heapsize={PICO_HEAP}", str(DRIVER), str(seed)],
        env=micropython_path_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 0, f"plant_trace.py {seed} failed:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert lines and lines[-1] == "end", f"plant_trace.py {seed} did not finish:\n{proc.stderr}"
    return lines[:-1]


def line_hashes(lines: list[str]) -> str:
    """HASH hex digits of each line's SHA-256, run together: where a trace first differs."""
    return "".join(hashlib.sha256(line.encode()).hexdigest()[:HASH] for line in lines)


def summary(lines: list[str]) -> dict[str, Any]:
    return {
        "lines": len(lines),
        "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        "samples": {str(n + 1): lines[n] for n in range(0, len(lines), SAMPLE)},
        "line_hashes": line_hashes(lines),
    }


def divergence(seed: int, golden: dict[str, Any], lines: list[str]) -> str:
    """Where lines first leave golden, in words: the first differing line, the lines just
    before it now, and the golden lines sampled around it."""
    old, new = golden["line_hashes"], line_hashes(lines)
    first = next((i // HASH + 1 for i in range(0, min(len(old), len(new)), HASH)
                  if old[i:i + HASH] != new[i:i + HASH]), min(golden["lines"], len(lines)) + 1)
    out = [f"plant trace, seed {seed}: first differs from {GOLDEN.name} at line {first} "
           f"(golden {golden['lines']} lines, now {len(lines)})"]
    out += [f"  now line {n} (same): {lines[n - 1]}" for n in range(max(1, first - 2), first)]
    out.append(f"  now line {first} (differs): "
               + (lines[first - 1] if first <= len(lines) else "(the trace ended)"))
    samples = {int(k): v for k, v in golden["samples"].items()}
    if first in samples:
        out.append(f"  golden line {first}: {samples[first]}")
    else:
        after = min((n for n in samples if n > first), default=None)
        if after is not None:
            now = lines[after - 1] if after <= len(lines) else "(the trace ended)"
            out += [f"  golden line {after} (nearest sample after): {samples[after]}",
                    f"  now    line {after}: {now}"]
    out.append(f"if the model is meant to change: {REGEN}, then review the golden file's diff")
    return "\n".join(out)


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if os.environ.get("ILRS_REGEN_GOLDEN") == "1":
        data = {"format": f"see {Path(__file__).name}; regenerate with: {REGEN}",
                "hash": HASH, "sample": SAMPLE,
                "seeds": {str(s): summary(trace(s)) for s in SEEDS}}
        GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
        pytest.skip(f"regenerated {GOLDEN}: review its diff")
    assert GOLDEN.exists(), f"{GOLDEN} is missing; create it with: {REGEN}"
    data = json.loads(GOLDEN.read_text())
    assert (data["hash"], data["sample"]) == (HASH, SAMPLE), f"stale {GOLDEN.name}: {REGEN}"
    return data


def test_the_trace_is_the_same_text_on_every_run() -> None:
    first = trace(7)
    trace.cache_clear()
    assert trace(7) == first


@pytest.mark.parametrize("seed", SEEDS)
def test_the_plant_prints_its_golden_trace(golden: dict[str, Any], seed: int) -> None:
    lines = trace(seed)
    want = golden["seeds"][str(seed)]
    if summary(lines) != want:
        pytest.fail(divergence(seed, want, lines), pytrace=False)


def test_the_trace_exercises_what_it_is_for() -> None:
    """Events (trips, faults, alarms) and all heater modes appear, so the trace covers them."""
    lines = [line for s in SEEDS for line in trace(s)]
    events = {line.split()[1] for line in lines if line.startswith("e ")}
    modes = {line.split()[-1] for line in lines if line.startswith("s ")}
    tripped = {line.split()[-2] for line in lines if line.startswith("s ")}
    assert len(lines) > 9000
    assert len(events) >= 3, events
    assert modes >= {"1", "2"}, modes
    assert tripped != {"0"}, tripped
