"""Stored sequences: check a sequence file, upload it to a slot, run and watch it.

    ground seq check FILE...                  parse and check, nothing sent (exit 2 on problems)
    ground seq show FILE                      the canonical text and the image's size and hash
    ground seq upload FILE --slot N           check, upload (resumable), verify; sets the file's
                                              trigger unless --no-trigger
    ground seq start|stop|delete --slot N
    ground seq trigger SUNSET --slot N        NONE, SAFE_ENTRY, SUNSET, SUNRISE,
                                              BATTERY_BELOW LEVEL
    ground seq list [--slot N]                every slot: state, step, steps, name, trigger, hash
    ground seq status --slot N                one slot, and the upload in progress (bytes held)

(Options go after the action's arguments: ``ground seq trigger SUNSET --slot 1``.)

The format is in docs/sequences.md and ``ground.sequence``; the checks in
``ground.seqcheck``; the upload in ``ground.sequpload``. Problems in a file are printed one per
line, ``FILE:LINE: message``, and nothing is sent.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from ground import seqcheck, seqimage, sequpload
from ground import sequence as s
from ground.errors import EXIT_OK, EXIT_USAGE, UsageError

_ACTIONS: Final = ("check", "show", "upload", "start", "stop", "delete", "trigger", "status",
                   "list")
_SLOTS: Final = 4
# Commands a node may refuse BUSY when it cannot load their code at that moment (SPEC §12.2):
# sent again (ground.sequpload.command).
_RETRY_BUSY: Final = frozenset({"seq_delete"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=_ACTIONS, help="what to do")
    p.add_argument("words", nargs="*", metavar="ARG",
                   help="check/show/upload: sequence file(s); trigger: TRIGGER [LEVEL]")
    p.add_argument("--slot", type=int, metavar="N", help=f"sequence slot, 0..{_SLOTS - 1}")
    p.add_argument("--no-trigger", action="store_true",
                   help="upload: do not set the trigger the file declares")


def _slot(args: argparse.Namespace) -> int:
    if args.slot is None:
        raise UsageError(f"seq {args.action} needs --slot N (0..{_SLOTS - 1})")
    if not 0 <= args.slot < _SLOTS:
        raise UsageError(f"--slot {args.slot} is out of range: 0..{_SLOTS - 1}")
    return int(args.slot)


def _checked(path: str) -> s.Sequence:
    try:
        return seqcheck.checked(path)
    except s.SequenceErrors as exc:
        for problem in exc.problems:
            print(f"{problem}", file=sys.stderr)
        raise


def _summary(seq: s.Sequence, image: bytes) -> str:
    trigger = ""
    if seq.trigger is not None:
        level = f" {s.format_number(seq.level)} %" if seq.trigger == s.BATTERY_BELOW else ""
        trigger = f", trigger {s.TRIGGERS[seq.trigger]}{level}"
    return (f"{seq.path}: ok: {seq.name}, {len(seq.steps)} steps, image {len(image)} B, "
            f"hash 0x{seqimage.hash_prefix(image):08x}{trigger}")


def run(args: argparse.Namespace) -> int:
    return int(_HANDLERS[args.action](args))


def _check(args: argparse.Namespace) -> int:
    if not args.words:
        raise UsageError("seq check takes one or more sequence files")
    failed = 0
    for path in args.words:
        try:
            seq = _checked(path)
        except s.SequenceErrors as exc:
            failed += len(exc.problems)
            continue
        print(_summary(seq, seqimage.compile(seq)))
    if failed:
        print(f"ground: error: {failed} problem(s); nothing was sent", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _one_file(args: argparse.Namespace) -> s.Sequence:
    if len(args.words) != 1:
        raise UsageError(f"seq {args.action} takes one sequence file")
    return _checked(args.words[0])


def _show(args: argparse.Namespace) -> int:
    seq = _one_file(args)
    image = seqimage.compile(seq)
    sys.stdout.write(s.render(seq))
    print(f"# image {len(image)} B, hash 0x{seqimage.hash_prefix(image):08x}")
    return EXIT_OK


def _upload(args: argparse.Namespace) -> int:
    from ground.subcommands import connect

    slot = _slot(args)
    seq = _one_file(args)  # every check before anything is sent
    image = seqimage.compile(seq)
    with connect(args) as node:
        report = sequpload.upload(node, image, slot, timeout=args.timeout)
        held = report.resumed_from
        resumed = f", continued from {held[0]} B held" if held and held[0] else ""
        if report.resumes:
            resumed += (f", resumed {report.resumes} time(s) from "
                        f"{', '.join(map(str, held[1:]))} B")
        print(f"slot {slot}: stored {seq.name}, {report.size} B in {report.parts_sent} "
              f"part(s), hash 0x{report.hash:08x} verified{resumed}")
        if seq.trigger is not None and not args.no_trigger:
            sequpload.command(node, "seq_trigger", args.timeout, slot=slot,
                              trigger=seq.trigger, level=seq.level)
            print(f"slot {slot}: trigger {s.TRIGGERS[seq.trigger]}")
    return EXIT_OK


def _simple(name: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from ground.subcommands import connect

        slot = _slot(args)
        if args.words:
            raise UsageError(f"seq {args.action} takes only --slot")
        with connect(args) as node:
            if name in _RETRY_BUSY:
                sequpload.command(node, name, args.timeout, slot=slot)
            else:  # seq_start/seq_stop: BUSY means the slot is running, not "try again"
                node.command(name, slot=slot, timeout=args.timeout)
        print(f"slot {slot}: {name} completed")
        return EXIT_OK

    return handler


def _trigger(args: argparse.Namespace) -> int:
    from ground.subcommands import connect

    slot = _slot(args)
    words = args.words
    if not words or words[0] not in s.TRIGGER_CODES:
        raise UsageError(f"seq trigger takes one of {', '.join(s.TRIGGER_CODES)}"
                         " (BATTERY_BELOW with a level in %)")
    code = s.TRIGGER_CODES[words[0]]
    if (code == s.BATTERY_BELOW) != (len(words) == 2) or len(words) > 2:
        raise UsageError("only BATTERY_BELOW takes a level: seq trigger BATTERY_BELOW 25")
    level = words[1] if len(words) == 2 else 0.0
    with connect(args) as node:
        sequpload.command(node, "seq_trigger", args.timeout, slot=slot, trigger=code,
                          level=level)
    print(f"slot {slot}: trigger {' '.join(words)}")
    return EXIT_OK


def slot_rows(listing: Any) -> list[dict[str, Any]]:
    """seq_list's result, by slot: [[state, step, hash, steps, name, trigger, level], ...]."""
    from protocol import dictionary as d

    rows = []
    for slot, item in enumerate(listing if isinstance(listing, list) else []):
        item = list(item) + [None] * (7 - len(item)) if isinstance(item, list) else [None] * 7
        state, step, hash_, steps, name, trigger, level = item[:7]
        rows.append({
            "slot": slot,
            "state": d.SEQ_STATES.get(state, str(state)),
            "step": step,
            "steps": steps,
            "name": name or "",
            "trigger": d.SEQ_TRIGGERS.get(trigger, str(trigger)),
            "level": level,
            "hash": f"0x{hash_:08x}" if isinstance(hash_, int) and hash_ else "",
        })
    return rows


def _list(args: argparse.Namespace) -> int:
    from ground.subcommands import connect

    if args.words:
        raise UsageError("seq list takes no arguments")
    with connect(args) as node:
        rows = slot_rows(sequpload.command(node, "seq_list", args.timeout).result)
    if args.slot is not None:
        rows = [r for r in rows if r["slot"] == _slot(args)]
    for r in rows:
        print(_row(r))
    return EXIT_OK


def _row(r: dict[str, Any]) -> str:
    trig = r["trigger"] + (f" {s.format_number(r['level'])} %"
                           if r["trigger"] == "BATTERY_BELOW" else "")
    return (f"slot {r['slot']}: {r['state']:<8} step {r['step']}/{r['steps']}  "
            f"{r['name'] or '-':<16} trigger {trig:<12} {r['hash']}").rstrip()


def _status(args: argparse.Namespace) -> int:
    """One slot as seq_list shows it, then the upload in progress from the sequence packet."""
    from ground.subcommands import connect

    slot = _slot(args)
    if args.words:
        raise UsageError("seq status takes only --slot")
    with connect(args) as node:
        rows = slot_rows(sequpload.command(node, "seq_list", args.timeout).result)
        held = node.await_telemetry("seq_upload_held", timeout=args.timeout).value
    for r in rows[slot:slot + 1]:
        print(_row(r))
    print(f"upload in progress: {held} B held" if held else "no upload in progress")
    return EXIT_OK


_HANDLERS: Final = {
    "check": _check,
    "show": _show,
    "upload": _upload,
    "start": _simple("seq_start"),
    "stop": _simple("seq_stop"),
    "delete": _simple("seq_delete"),
    "trigger": _trigger,
    "status": _status,
    "list": _list,
}
