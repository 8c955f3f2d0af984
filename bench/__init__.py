"""Benchmarks: ``python -m bench`` (``make bench``) runs every section, prints a table and
writes ``bench/results/bench.json``.

A section is a module ``bench/<name>_bench.py`` that defines:

- ``SECTION``: its title (``"protocol codec (MicroPython)"``);
- ``run() -> list[dict]``: its rows. It may take a keyword ``quick: bool`` (fewer
  iterations, for a smoke run), and a keyword ``port: str | None`` (a board's serial port, to
  measure that node rather than the simulated one); the runner passes what it takes.

A row is ``{"name": str, "value": number, "unit": str, "target": str, "ok": bool}``; make one
with ``row()``. ``target`` is "" and ``ok`` True for a figure without a target. A section runs
MicroPython code with ``run_micropython_json()``. Adding a section needs nothing else: the
runner finds the module by its name.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from ground.micropython import PICO_HEAP, find_micropython, micropython_path_env

Row = dict[str, Any]

BENCH_DIR: Final = Path(__file__).resolve().parent
RESULTS: Final = BENCH_DIR / "results" / "bench.json"


def row(name: str, value: float, unit: str, target: str = "", ok: bool = True) -> Row:
    """One result line of a section."""
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": bool(ok)}


def print_section(section: str, rows: list[Row], as_json: bool) -> int:
    """What a section's own ``python -m bench.<name>`` prints: its rows as a table, or as
    JSON under its title; the exit status is 1 when a target is missed."""
    if as_json:
        print(json.dumps({section: rows}, indent=1))
    else:
        for r in rows:
            value = f"{r['value']:>12,}" if isinstance(r["value"], int) else f"{r['value']:>12,.3f}"
            print(f"{r['name']:<80} {value} {r['unit']:<10} {r['target']:<20} "
                  f"{'ok' if r['ok'] else 'MISSED' if r['target'] else ''}")
    return 0 if all(r["ok"] for r in rows) else 1


def sections() -> list[ModuleType]:
    """The section modules (``bench/*_bench.py``), by module name."""
    found = []
    for info in sorted(pkgutil.iter_modules([str(BENCH_DIR)]), key=lambda m: m.name):
        if info.name.endswith("_bench"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            if hasattr(module, "SECTION") and hasattr(module, "run"):
                found.append(module)
    return found


def run_micropython_json(
    script: Path, *args: str, heapsize: str | None = PICO_HEAP, timeout: float = 600
) -> Any:
    """Run ``script`` on the MicroPython Unix port (Pico-sized heap by default, MICROPYPATH
    = firmware/ and the repository) and return the JSON its last stdout line holds."""
    cmd = [find_micropython()]
    if heapsize:
        cmd += ["-X", f"heapsize={heapsize}"]
    proc = subprocess.run(
        [*cmd, str(script), *args],
        capture_output=True,
        text=True,
        env=micropython_path_env(),
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{script.name} failed on MicroPython (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return json.loads(lines[-1])
