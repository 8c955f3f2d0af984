"""``python -m bench [SECTION ...] [--quick] [--list] [--json PATH] [--port PORT]``: run the
benchmark sections (all, or those whose module or title contains a given word), print a table
per section and write the rows to bench/results/bench.json. ``--port``: sections that measure
a node (``node``) measure the board at that serial port instead of the simulated node. Exit
status 1 when a target is missed or a section fails."""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.table import Table

from bench import RESULTS, Row, row, sections


def _selected(modules: list[ModuleType], words: list[str]) -> list[ModuleType]:
    if not words:
        return modules
    return [
        m for m in modules
        if any(w.lower() in (m.__name__ + " " + m.SECTION).lower() for w in words)
    ]


def _run(module: ModuleType, quick: bool, port: str | None) -> list[Row]:
    accepts = inspect.signature(module.run).parameters
    kwargs: dict[str, object] = {"quick": quick} if "quick" in accepts else {}
    if port and "port" in accepts:
        kwargs["port"] = port
    try:
        return list(module.run(**kwargs))
    except Exception as e:  # a failing section is reported, the others still run
        traceback.print_exc()
        return [row(f"section failed: {type(e).__name__}: {e}", 0, "", "runs", False)]


def _table(title: str, rows: list[Row], seconds: float) -> Table:
    table = Table(title=f"{title}  ({seconds:.1f} s)", title_justify="left")
    table.add_column("benchmark")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("target")
    table.add_column("ok", justify="center")
    for r in rows:
        value = r["value"]
        shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
        ok = "" if not r["target"] else "[green]yes[/]" if r["ok"] else "[red]MISSED[/]"
        table.add_row(r["name"], shown, r["unit"], r["target"], ok)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("sections", nargs="*", help="run only sections matching these words")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument("--port", help="a board's serial port: the node section measures the "
                        "node on that board instead of the simulated node")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"output (default {RESULTS})")
    args = parser.parse_args(argv)

    console = Console()
    modules = _selected(sections(), args.sections)
    if args.list or not modules:
        for m in sections():
            console.print(f"{m.__name__.split('.')[-1]:<20} {m.SECTION}")
        return 0 if modules else 2

    results: dict[str, list[Row]] = {}
    for module in modules:
        start = time.perf_counter()
        rows = _run(module, args.quick, args.port)
        results[module.SECTION] = rows
        console.print(_table(module.SECTION, rows, time.perf_counter() - start))

    ok = all(r["ok"] for rows in results.values() for r in rows)
    report = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "quick": args.quick,
        "port": args.port,
        "ok": ok,
        "sections": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"wrote {args.json}" + ("" if ok else "  [red]targets missed[/]"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
