"""Mutation testing: how many one-line bugs in a module its tests catch (``make mutate``).

    .venv/bin/python tools/mutate.py                      # every module of MODULES
    .venv/bin/python tools/mutate.py protocol/crc.py      # some of them
    .venv/bin/python tools/mutate.py --list               # the modules and their tests
    .venv/bin/python tools/mutate.py --report             # summarise the last sessions again
    .venv/bin/python tools/mutate.py protocol/crc.py --lines 75,81-87   # those lines again
    .venv/bin/python tools/mutate.py protocol/crc.py --survivors        # its survivors again

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
(a SQLite file per module, with the source it was made from); a second run of the same
module resumes where the first stopped unless ``--fresh``, and ``--lines``/``--survivors``
runs write their results into it, so the table always covers the whole module (``pending``:
mutants not run yet). When the module has changed since (an edit, a merge), the results of
mutants on unchanged lines are kept and the changed lines' mutants become pending.
Prints the share of mutants killed per module and every
survivor (line, operator, diff); EQUIVALENT lists survivors judged equivalent (no test can
tell them apart from the original), which count neither way in the adjusted rate.
"""

from __future__ import annotations

import argparse
import os
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
    # each rule's edges and the spec's examples first (fast, exact); the two robustness
    # properties (only MessageError escapes: a third of the time) check no one rule
    "protocol/messages.py": (("tests/protocol/test_messages_rules.py",
                              "tests/protocol/test_spec_examples.py",
                              "tests/protocol/test_messages.py", "-k",
                              "not arbitrary_bytes and not arbitrary_cbor"), 120),
    # the node-facing readers: test_messages.py's node tests (-k) and the spec's examples
    # and the node's own reading of them on MicroPython (the envelope's one module it runs)
    "protocol/envelope.py": (("tests/protocol/test_messages.py", "-k",
                              "node or malformed or check_arg or writers",
                              "tests/protocol/test_spec_examples.py",
                              "tests/firmware/test_node_mp.py::test_envelope_rules_on_the_node"),
                             120),
    # test_node_mp.py's runners carry the check order, the ring, STALE_BOOT and the address
    # rule; test_ttqueue.py the time-tag path (admission, immediate commands refused, the
    # queued command's completion) and test_arming.py the arm/execute pair, both added to
    # the dispatcher since: without them its time-tag and arm lines' mutants all survive.
    # test_commands.py, test_robustness.py and test_auth.py would add the services' checks
    # at several times the time per mutant
    "firmware/node/dispatcher.py": (
        ("tests/firmware/test_consts.py::test_inlined_constants_match_protocol"
         "[node/dispatcher.py]",
         "tests/firmware/test_consts.py::test_shared_firmware_constants_agree",
         "tests/firmware/test_node_mp.py",
         "tests/firmware/test_ttqueue.py", "tests/firmware/test_arming.py"), 180),
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
    ran: bool = True  # False: no session

    @property
    def counted(self) -> int:
        return self.killed + self.survived

    def rate(self, adjusted: bool = False) -> float:
        eq = self.equivalent if adjusted else 0
        total = self.counted - eq
        return (self.killed / total) if total > 0 else 1.0


def _session(module: str) -> Path:
    """The module's session: every mutant of the module and the latest result of each."""
    return BUILD / (module.replace("/", "__").removesuffix(".py") + ".sqlite")


def _snapshot(module: str) -> Path:
    """The module's source as the session's mutants were made from it."""
    return BUILD / (module.replace("/", "__").removesuffix(".py") + ".src.py")


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


def _keys(items: list[Any]) -> dict[tuple[Any, ...], Any]:
    """Each work item by (operator, start, end, rank among the same operator and place)."""
    out: dict[tuple[Any, ...], Any] = {}
    for item in sorted(items, key=lambda w: w.mutations[0].occurrence):
        m = item.mutations[0]
        key = (m.operator_name, tuple(m.start_pos), tuple(m.end_pos))
        rank = sum(1 for k in out if k[:3] == key)
        out[(*key, rank)] = item
    return out


def _carry_over(module: str, session: Path, old_source: str) -> None:
    """The module changed since its session was made (an edit, a merge): make the mutants of
    the new source and keep the results of those on lines that did not change, moved to
    where the lines are now; the rest are pending."""
    import difflib

    from cosmic_ray.work_db import WorkDB, use_db

    new_source = (REPO_ROOT / module).read_text()
    old_lines, new_lines = old_source.splitlines(), new_source.splitlines()
    moved: dict[int, int] = {}  # new line number -> old line number, unchanged lines only
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            moved.update({j1 + k + 1: i1 + k + 1 for k in range(i2 - i1)})
    with use_db(str(session), WorkDB.Mode.open) as db:
        old_results = {w.job_id: r for w, r in db.completed_work_items}
        old_keys = _keys(list(db.work_items))
    stale = session.with_suffix(".stale.sqlite")
    session.replace(stale)
    _cosmic("init", str(_config(module)), str(session))
    kept = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for (op, start, end, rank), item in _keys(list(db.work_items)).items():
            if start[0] not in moved or end[0] not in moved:
                continue
            shift = moved[start[0]] - start[0]
            if moved[end[0]] - end[0] != shift:
                continue
            old = old_keys.get((op, (start[0] + shift, start[1]), (end[0] + shift, end[1]),
                                rank))
            if old is not None and old.job_id in old_results:
                db.set_result(item.job_id, old_results[old.job_id])
                kept += 1
        total = db.num_work_items
    stale.unlink()
    _snapshot(module).write_text(new_source)
    print(f"mutate: {module} changed since its session: {kept} results kept from unchanged "
          f"lines, {total - kept} mutants pending", flush=True)


def _open_session(module: str, fresh: bool) -> Path:
    """The module's session, made if missing or ``fresh``, carried over if the module moved."""
    session, snapshot = _session(module), _snapshot(module)
    source = (REPO_ROOT / module).read_text()
    if fresh and session.exists():
        session.unlink()
    if not session.exists():
        _cosmic("init", str(_config(module)), str(session))
        snapshot.write_text(source)
    elif not snapshot.exists():
        raise SystemExit(f"mutate: {session} has no source snapshot {snapshot.name}: "
                         "run with --fresh")
    elif snapshot.read_text() != source:
        _carry_over(module, session, snapshot.read_text())
    return session


def _run_some(module: str, session: Path, chosen: list[Any]) -> None:
    """Run (again) only the chosen mutants of the session, in a session of their own whose
    results then replace theirs in the module's session."""
    from cosmic_ray.work_db import WorkDB, use_db

    part = session.with_suffix(".part.sqlite")
    part.unlink(missing_ok=True)
    with use_db(str(part), WorkDB.Mode.create) as db:
        db.add_work_items(chosen)
    _cosmic("exec", str(_config(module)), str(part))
    with use_db(str(part), WorkDB.Mode.open) as db:
        results = [(w.job_id, r) for w, r in db.completed_work_items]
    with use_db(str(session), WorkDB.Mode.open) as db:
        for job_id, result in results:
            db.set_result(job_id, result)
    part.unlink()


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


Equivalent = set[tuple[str, str, str, str]]


def _load_equivalent() -> Equivalent:
    """EQUIVALENT: lines ``module | operator | source line, stripped  # why``, or
    ``module | operator | source line | mutated line  # why`` when only one of the mutants
    the operator makes on that line is equivalent (NumberReplacer's +1 and -1, say)."""
    out: Equivalent = set()
    path = Path(__file__).with_name("mutate_equivalent.txt")
    if not path.exists():
        return out
    for raw in path.read_text().splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            module, operator, rest = (part.strip() for part in line.split("|", 2))
            source, _, mutated = rest.partition(" | ")
            out.add((module, operator, source.strip(), mutated.strip()))
    return out


def _mutated_line(diff: str | None) -> str:
    """The mutant's version of the line, stripped of indentation and comment."""
    for d in (diff or "").splitlines():
        if d.startswith("+") and not d.startswith("+++"):
            return d[1:].split("  #", 1)[0].strip()
    return ""


def _annotation_lines(source: str) -> set[int]:
    """Lines inside annotations: never evaluated (``from __future__ import annotations`` on
    CPython, ignored by MicroPython), so a mutant there is equivalent."""
    import ast

    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
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


def _equivalent_mark(module: str, item: Any, diff: str | None, lines: list[str],
                     annotations: set[int], equivalent: Equivalent) -> str:
    """'' if the surviving mutant counts, else why it is judged equivalent."""
    mutation = item.mutations[0]
    line_no = mutation.start_pos[0]
    source = lines[line_no - 1].split("  #", 1)[0].strip() if line_no <= len(lines) else "?"
    operator = str(mutation.operator_name).rsplit("/", 1)[-1]
    if ((module, operator, source, "") in equivalent
            or (module, operator, source, _mutated_line(diff)) in equivalent):
        return " (equivalent)"
    if line_no in annotations and operator.startswith("ReplaceBinaryOperator"):
        return " (equivalent: annotation)"
    return ""


def summarise(module: str, equivalent: Equivalent,
              only: set[int] | None = None) -> Summary:
    """The module's session counted (only the mutants on lines ``only``, if given)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    summary = Summary(module)
    session = _session(module)
    if not session.exists():
        summary.ran = False
        return summary
    source = (REPO_ROOT / module).read_text()
    snapshot = _snapshot(module).read_text() if _snapshot(module).exists() else source
    if _running(module):  # the file on disk is a mutant now: count against the snapshot
        source = snapshot
    elif snapshot != source:
        _carry_over(module, session, snapshot)
    lines = source.splitlines()
    annotations = _annotation_lines(source)

    def wanted(item: Any) -> bool:
        return only is None or item.mutations[0].start_pos[0] in only

    with use_db(str(session), WorkDB.Mode.open) as db:
        items: list[Any] = [(w, r) for w, r in db.completed_work_items if wanted(w)]
        summary.pending = sum(1 for w in db.pending_work_items if wanted(w))
    for item, result in sorted(items, key=lambda x: tuple(x[0].mutations[0].start_pos)):
        outcome = result.test_outcome
        if outcome == TestOutcome.KILLED:
            summary.killed += 1
        elif outcome == TestOutcome.INCOMPETENT or outcome is None:
            summary.incompetent += 1
        else:
            summary.survived += 1
            mark = _equivalent_mark(module, item, result.diff, lines, annotations, equivalent)
            summary.equivalent += bool(mark)
            mutation = item.mutations[0]
            operator = str(mutation.operator_name).rsplit("/", 1)[-1]
            diff = " ".join(d for d in (result.diff or "").splitlines()
                            if d.startswith(("+", "-")) and not d.startswith(("+++", "---")))
            summary.survivors.append(f"  {module}:{mutation.start_pos[0]} {operator}{mark}: "
                                     f"{diff[:160]}")
    return summary


def _survivors(module: str, session: Path) -> list[Any]:
    """The session's surviving mutants not judged equivalent: what new tests should kill."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    source = (REPO_ROOT / module).read_text()
    lines = source.splitlines()
    annotations = _annotation_lines(source)
    equivalent = _load_equivalent()
    with use_db(str(session), WorkDB.Mode.open) as db:
        done = list(db.completed_work_items)
    return [w for w, r in done if r.test_outcome == TestOutcome.SURVIVED
            and not _equivalent_mark(module, w, r.diff, lines, annotations, equivalent)]


def _run_pending(module: str, session: Path, budget_s: float | None) -> None:
    """Run the session's pending mutants (in random order, as Cosmic Ray picks them), all of
    them or as many as ``budget_s`` seconds allow: then the results are a random sample of
    the module's mutants and the rest stay pending for the next run."""
    from cosmic_ray.work_db import WorkDB, use_db

    if budget_s is None:
        _cosmic("exec", str(_config(module)), str(session))
        return
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        with use_db(str(session), WorkDB.Mode.open) as db:
            pending = list(db.pending_work_items)  # random order
        if not pending:
            return
        _run_some(module, session, pending[:_CHUNK])


_CHUNK = 10  # mutants per Cosmic Ray run when a time budget is set


def _lock(module: str) -> Path:
    return BUILD / (module.replace("/", "__").removesuffix(".py") + ".lock")


def _running(module: str) -> bool:
    """A run of module is going on (its lock names a live process)."""
    try:
        pid = int(_lock(module).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def run_module(module: str, fresh: bool, lines: set[int] | None = None,
               survivors: bool = False, budget_s: float | None = None) -> None:
    """Run the module's pending mutants (within ``budget_s`` if given), or (again) only those
    on ``lines``, or only its survivors; results go into the module's session. While it runs,
    the module's file on disk is a mutant most of the time: a lock file says so."""
    BUILD.mkdir(parents=True, exist_ok=True)
    if _running(module):
        raise SystemExit(f"mutate: a run of {module} is going on already (pid "
                         f"{_lock(module).read_text().strip()})")
    _lock(module).write_text(str(os.getpid()))
    try:
        _run_module(module, fresh, lines, survivors, budget_s)
    finally:
        _lock(module).unlink(missing_ok=True)


def _run_module(module: str, fresh: bool, lines: set[int] | None, survivors: bool,
                budget_s: float | None) -> None:
    from cosmic_ray.work_db import WorkDB, use_db

    _baseline(module)
    session = _open_session(module, fresh)
    if lines is None and not survivors:
        _run_pending(module, session, budget_s)
        return
    if survivors:
        chosen = _survivors(module, session)
    else:
        with use_db(str(session), WorkDB.Mode.open) as db:
            chosen = [w for w in db.work_items if w.mutations[0].start_pos[0] in (lines or ())]
    what = "survivors" if survivors else f"mutants on lines {_spans(lines or set())}"
    print(f"mutate: {len(chosen)} {what}", flush=True)
    if chosen:
        _run_some(module, session, chosen)


def _spans(lines: set[int]) -> str:
    out: list[list[int]] = []
    run: list[int] = []
    for n in sorted(lines):
        if run and n != run[-1] + 1:
            out.append(run)
            run = []
        run.append(n)
    if run:
        out.append(run)
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in out)


def print_table(summaries: list[Summary]) -> None:
    """killed / survived / equivalent per module; share = killed of the non-equivalent."""
    print(f"{'module':30} {'mutants':>7} {'killed':>7} {'surv.':>6} {'equiv.':>6} "
          f"{'share':>6} {'raw':>6} {'incomp.':>7} {'pending':>7}")
    for s in summaries:
        if not s.ran:
            print(f"{s.module:30} {'(no session: not run)':>30}")
            continue
        print(f"{s.module:30} {s.counted + s.incompetent + s.pending:7} {s.killed:7} "
              f"{s.survived:6} {s.equivalent:6} {100 * s.rate(True):5.1f}% "
              f"{100 * s.rate():5.1f}% {s.incompetent:7} {s.pending:7}")
    print("share: killed / (killed + survived - equivalent); raw: killed / (killed + survived);"
          "\npending: not run yet (Cosmic Ray picks mutants in random order, so with pending "
          "mutants\nthe others are a random sample of the module's)")
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
    p.add_argument("--lines", help="run (again) only the mutants on these lines (75,81-87), "
                   "one module: to check that new tests kill known survivors")
    p.add_argument("--minutes", type=float, help="stop starting new mutants after this long "
                   "per module (the rest stay pending; what ran is a random sample)")
    p.add_argument("--survivors", action="store_true", help="run again only the survivors "
                   "not judged equivalent (after adding tests)")
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
            run_module(module, args.fresh, lines, args.survivors,
                       None if args.minutes is None else 60 * args.minutes)
            print(f"mutate: {module} done in {time.monotonic() - started:.0f} s", flush=True)
    equivalent = _load_equivalent()
    if lines:
        print(f"lines {_spans(lines)} of {modules[0]}:")
        print_table([summarise(modules[0], equivalent, lines)])
        print(f"\nthe whole of {modules[0]}:")
    print_table([summarise(m, equivalent) for m in modules])
    return 0


if __name__ == "__main__":
    sys.exit(main())
