"""Mutation testing: how many one-line bugs in a module its tests catch (``make mutate``).

    .venv/bin/python tools/mutate.py                      # every module of MODULES
    .venv/bin/python tools/mutate.py protocol/crc.py      # some of them
    .venv/bin/python tools/mutate.py --list               # the modules and their tests
    .venv/bin/python tools/mutate.py --report             # summarise the last sessions again
    .venv/bin/python tools/mutate.py protocol/crc.py --lines 75,81-87   # only those lines

Cosmic Ray (PyPI ``cosmic-ray``, the ``mutate`` extra) makes each mutant by rewriting the
module's file ON DISK and puts it back after the test run, so the tests that run the code on
the MicroPython Unix port (tests/protocol's vectors, tests/firmware's node runners, the
simulated node's .mpy build, which recompiles a source newer than its .mpy) load the mutant
too, not only CPython imports. (mutmut 3 copies the tree to ``mutants/`` and switches mutants
with a trampoline inside CPython: MicroPython never sees them.) Do not edit the checkout while
a run is going; an interrupted run leaves the file restored by Cosmic Ray's context manager,
but check ``git status`` after a hard kill.

Each module is tested only by the tests that exercise it (MODULES), with ``-x`` and a time
limit per mutant (a mutant that makes the tests hang counts as killed), one mutant at a time:
a 2-core machine shared with other work stays usable. Sessions are kept in build/mutate/
(a SQLite file per module); a second run of the same module resumes where the first
stopped unless ``--fresh``. Prints the share of mutants killed per module and every
survivor (line, operator, diff); EQUIVALENT lists survivors judged equivalent (no test can
tell them apart from the original), which count neither way in the adjusted rate.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD = REPO_ROOT / "build" / "mutate"
PYTEST = f"{shlex.quote(sys.executable)} -m pytest -x -q -p no:cacheprovider --no-header"

# module -> (pytest arguments: the tests that exercise it, seconds allowed per mutant)
MODULES: dict[str, tuple[tuple[str, ...], int]] = {
    "protocol/crc.py": (("tests/protocol/test_crc.py", "tests/protocol/test_framing.py"), 60),
    "protocol/cobs.py": (("tests/protocol/test_cobs.py", "tests/protocol/test_framing.py"), 60),
    "protocol/framing.py": (("tests/protocol/test_framing.py",), 60),
    "protocol/cbor.py": (("tests/protocol/test_cbor.py", "tests/protocol/test_cbor_rfc8949.py",
                          "tests/protocol/test_float32.py"), 120),
    "protocol/cbor_encoder.py": (("tests/protocol/test_cbor.py",
                                  "tests/protocol/test_cbor_rfc8949.py",
                                  "tests/protocol/test_float32.py"), 120),
    "protocol/cbor_decoder.py": (("tests/protocol/test_cbor.py",
                                  "tests/protocol/test_cbor_rfc8949.py"), 120),
    "protocol/messages.py": (("tests/protocol/test_messages.py",
                              "tests/protocol/test_spec_examples.py"), 120),
    # the node-facing readers: test_messages.py's node tests (-k) and the spec's examples
    "protocol/envelope.py": (("tests/protocol/test_messages.py", "-k",
                              "node or malformed or check_arg or writers",
                              "tests/protocol/test_spec_examples.py"), 120),
    # test_node_mp.py's runners carry the check order, the ring, STALE_BOOT and the address
    # rule; test_commands.py, test_robustness.py and test_consts.py would add the services'
    # checks at 4x the time per mutant
    "firmware/node/dispatcher.py": (("tests/firmware/test_node_mp.py",), 120),
    "firmware/node/storage.py": (("tests/firmware/test_storage.py",), 120),
    "firmware/node/params.py": (("tests/firmware/test_persistence.py",
                                 "tests/firmware/test_commands.py"), 180),
    "firmware/node/eventlog.py": (("tests/firmware/test_persistence.py",), 120),
    "firmware/node/fdir.py": (("tests/firmware/test_consts.py", "tests/firmware/test_fdir.py",
                               "-m", "not slow"), 120),
    "firmware/node/modes.py": (("tests/firmware/test_modes.py",), 120),
    "firmware/node/housekeeping.py": (("tests/firmware/test_housekeeping.py",), 120),
    "firmware/node/link.py": (("tests/firmware/test_robustness.py",
                               "tests/firmware/test_node_mp.py"), 180),
    "ground/validate.py": (("tests/ground/test_validate.py",), 60),
    "hil/impair.py": (("tests/hil/test_impair.py",), 60),
}


@dataclass
class Summary:
    module: str
    killed: int = 0
    survived: int = 0
    incompetent: int = 0  # the mutant does not even import: not counted
    pending: int = 0
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return self.killed + self.survived

    def rate(self, adjusted: bool = False) -> float:
        eq = self.equivalent if adjusted else 0
        total = self.counted - eq
        return (self.killed / total) if total > 0 else 1.0


def _session(module: str, lines: set[int] | None = None) -> Path:
    """The module's session; a run limited to some lines keeps its own, fresh each time."""
    suffix = ".lines.sqlite" if lines else ".sqlite"
    return BUILD / (module.replace("/", "__").removesuffix(".py") + suffix)


def _parse_lines(text: str) -> set[int]:
    """``75,81-87`` -> {75, 81, ..., 87}."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise SystemExit(f"mutate: --lines wants numbers and ranges like 75,81-87, not "
                             f"{part!r}") from None
    return out


def _keep_lines(session: Path, lines: set[int]) -> None:
    """Drop every mutant of the session whose mutation does not start on one of ``lines``."""
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.work_items)
        kept = [w for w in items if w.mutations and w.mutations[0].start_pos[0] in lines]
        db.clear()
        db.add_work_items(kept)
    print(f"mutate: {len(kept)} of {len(items)} mutants on lines {sorted(lines)}", flush=True)


def _config(module: str) -> Path:
    tests, limit_s = MODULES[module]
    command = f"{PYTEST} {' '.join(shlex.quote(t) for t in tests)}"
    path = BUILD / (module.replace("/", "__").removesuffix(".py") + ".toml")
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = {module!r}\n"
        f"timeout = {float(limit_s)}\n"
        "excluded-modules = []\n"
        f"test-command = {command!r}\n"
        "\n[cosmic-ray.distributor]\nname = \"local\"\n"
    )
    return path


def _cosmic(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cosmic_ray.cli", *args], cwd=REPO_ROOT,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"mutate: cosmic-ray {args[0]} failed (exit {done.returncode})")


def _baseline(module: str) -> None:
    """The selected tests must pass on the unmutated code, or every mutant looks killed."""
    tests, _ = MODULES[module]
    done = subprocess.run([*shlex.split(PYTEST), *tests], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-15:])
        raise SystemExit(f"mutate: the tests of {module} fail without a mutant:\n{tail}")


def _load_equivalent() -> set[tuple[str, str, str]]:
    """EQUIVALENT: lines ``module | operator | source line, stripped  # why``."""
    out: set[tuple[str, str, str]] = set()
    path = Path(__file__).with_name("mutate_equivalent.txt")
    if not path.exists():
        return out
    for raw in path.read_text().splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            module, operator, source = (part.strip() for part in line.split("|", 2))
            out.add((module, operator, source))
    return out


def _annotation_lines(path: Path) -> set[int]:
    """Lines inside annotations: never evaluated (``from __future__ import annotations`` on
    CPython, ignored by MicroPython), so a mutant there is equivalent."""
    import ast

    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        notes: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            notes.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            notes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                lines.update(range(note.lineno, (note.end_lineno or note.lineno) + 1))
    return lines


def summarise(module: str, equivalent: set[tuple[str, str, str]],
              only: set[int] | None = None) -> Summary:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    summary = Summary(module)
    session = _session(module, only)
    if not session.exists():
        return summary
    lines = (REPO_ROOT / module).read_text().splitlines()
    annotations = _annotation_lines(REPO_ROOT / module)
    with use_db(str(session), WorkDB.Mode.open) as db:
        items: list[Any] = list(db.completed_work_items)
        summary.pending = sum(1 for _ in db.pending_work_items)
    for item, result in items:
        outcome = result.test_outcome
        if outcome == TestOutcome.KILLED:
            summary.killed += 1
        elif outcome == TestOutcome.INCOMPETENT or outcome is None:
            summary.incompetent += 1
        else:
            summary.survived += 1
            mutation = item.mutations[0]
            line_no = mutation.start_pos[0]
            source = (lines[line_no - 1].split("  #", 1)[0].strip() if line_no <= len(lines)
                      else "?")
            operator = str(mutation.operator_name).rsplit("/", 1)[-1]
            key = (module, operator, source)
            same = key in equivalent or (line_no in annotations
                                         and operator.startswith("ReplaceBinaryOperator"))
            mark = " (equivalent: annotation)" if same and key not in equivalent else \
                " (equivalent)" if same else ""
            summary.equivalent += same
            diff = " ".join(d for d in (result.diff or "").splitlines()
                            if d.startswith(("+", "-")) and not d.startswith(("+++", "---")))
            summary.survivors.append(f"  {module}:{line_no} {operator}{mark}: {diff[:160]}")
    return summary


def run_module(module: str, fresh: bool, lines: set[int] | None = None) -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    session = _session(module, lines)
    config = _config(module)
    if (fresh or lines) and session.exists():
        session.unlink()
    _baseline(module)
    if not session.exists():
        _cosmic("init", str(config), str(session))
        if lines:
            _keep_lines(session, lines)
    _cosmic("exec", str(config), str(session))


def print_table(summaries: list[Summary]) -> None:
    print(f"{'module':34} {'mutants':>7} {'killed':>7} {'surv.':>6} {'equiv.':>6} "
          f"{'rate':>6} {'adj.':>6} {'incomp.':>7} {'pending':>7}")
    for s in summaries:
        print(f"{s.module:34} {s.counted:7} {s.killed:7} {s.survived:6} {s.equivalent:6} "
              f"{100 * s.rate():5.1f}% {100 * s.rate(True):5.1f}% {s.incompetent:7} "
              f"{s.pending:7}")
    for s in summaries:
        if s.survivors:
            print(f"\nsurvivors in {s.module}:")
            print("\n".join(s.survivors))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="*", help="modules to mutate (default: all of MODULES)")
    p.add_argument("--list", action="store_true", help="list the modules and their tests")
    p.add_argument("--report", action="store_true", help="only summarise the kept sessions")
    p.add_argument("--fresh", action="store_true", help="start the modules' sessions anew")
    p.add_argument("--lines", help="only the mutants on these lines (75,81-87), one module, "
                   "in a session of their own: to check that new tests kill known survivors")
    args = p.parse_args(argv)
    lines = _parse_lines(args.lines) if args.lines else None
    if lines and len(args.modules) != 1:
        p.error("--lines needs exactly one module")
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"not in MODULES: {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    if args.list:
        for module in modules:
            tests, limit_s = MODULES[module]
            print(f"{module}: {' '.join(tests)} ({limit_s} s per mutant)")
        return 0
    if not args.report:
        for module in modules:
            started = time.monotonic()
            print(f"mutate: {module}", flush=True)
            run_module(module, args.fresh, lines)
            print(f"mutate: {module} done in {time.monotonic() - started:.0f} s", flush=True)
    equivalent = _load_equivalent()
    print_table([summarise(m, equivalent, lines) for m in modules])
    return 0


if __name__ == "__main__":
    sys.exit(main())
