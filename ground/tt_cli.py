"""Manage the node's time-tagged command queue (SPEC §11): list, delete, clear, pause, resume.

    ground tt list                 the queue in run order (entry, time, command, seq)
    ground tt delete ENTRY         delete one entry (tt_list's number); it fails NOT_RUN
    ground tt clear                delete every entry
    ground tt pause | resume       hold or release the queue

Queue a command with ``ground cmd --at 2026-12-07T01:00:00Z NAME ARGS`` or ``--in +00:05:00``.
"""

from __future__ import annotations

import argparse
import json
import time

from ground.errors import EXIT_OK
from ground.subcommands import connect, new_console
from ground.timetag import format_utc


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "delete", "clear", "pause", "resume"))
    p.add_argument("entry", nargs="?", type=int, metavar="ENTRY",
                   help="for delete: the entry number tt list shows (0..63)")
    p.add_argument("--json", action="store_true", help="list: one JSON object per entry")


def run(args: argparse.Namespace) -> int:
    from ground.errors import UsageError

    if args.action == "delete" and args.entry is None:
        raise UsageError("tt delete ENTRY: the entry number `ground tt list` shows")
    if args.action != "delete" and args.entry is not None:
        raise UsageError(f"tt {args.action} takes no entry")
    out = new_console()
    with connect(args) as node:
        if args.action == "list":
            entries = node.tt_list(timeout=args.timeout)
            now_ms = time.time_ns() // 1_000_000
            for e in entries:
                if args.json:
                    print(json.dumps({"entry": e.entry, "seq": e.seq, "command": e.command,
                                      "time_utc_ms": e.time_utc_ms,
                                      "time": format_utc(e.time_utc_ms), "boot": e.boot}))
                else:
                    out.print(e.text(now_ms))
            if not args.json:
                out.print(f"{len(entries)} queued")
        elif args.action == "delete":
            node.command("tt_delete", entry=args.entry, timeout=args.timeout)
            out.print(f"entry {args.entry} deleted")
        elif args.action == "clear":
            res = node.command("tt_clear", timeout=args.timeout)
            out.print(f"{res.result} entries cleared")
        else:
            node.command("tt_pause", paused=args.action == "pause", timeout=args.timeout)
            out.print("queue held" if args.action == "pause" else "queue released")
    return EXIT_OK
