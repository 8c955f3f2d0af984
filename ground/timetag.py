"""Time-tagged commands on the ground (SPEC §11): execution times and the queue listing.

* ``parse_at(text)``: ``2026-12-07T01:00:00Z`` (ISO 8601, UTC: a ``Z`` or ``+00:00``; a
  fraction of a second allowed) -> UTC ms.
* ``parse_in(text, now_ms)``: ``+00:05:00`` (``+HH:MM:SS``, also ``+MM:SS`` and ``+SS``, a
  fraction allowed) from ``now_ms`` -> UTC ms.
* ``execution_time(at=, in_=, now_ms=)``: the one the user gave (never both).
* ``Entry`` / ``decode_list(payload)``: the node's queue from a ``tt_list`` bulk (type 4),
  ``[[entry, seq, command, time_utc_ms, boot], ...]``, sorted by time then entry.
* ``format_utc(ms)``: ``2026-12-07T01:00:00.000Z``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple

from ground.errors import UsageError
from ground.validate import COMMANDS_BY_ID

_IN: re.Pattern[str] = re.compile(r"^\+(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d+)?)$")


def parse_at(text: str) -> int:
    """UTC ms of an ISO 8601 time in UTC; UsageError naming the accepted form otherwise."""
    raw = text.strip()
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r}: a UTC time like 2026-12-07T01:00:00Z") from None
    if when.tzinfo is None or when.utcoffset() != dt.timedelta(0):
        raise UsageError(f"--at {text!r}: give the time in UTC, ending in Z "
                         "(2026-12-07T01:00:00Z)")
    ms = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    if ms <= 0:
        raise UsageError(f"--at {text!r}: before 1970")
    return ms


def parse_in(text: str, now_ms: int) -> int:
    """now_ms plus a ``+HH:MM:SS`` offset; UsageError otherwise."""
    m = _IN.match(text.strip())
    if m is None:
        raise UsageError(f"--in {text!r}: an offset like +00:05:00 (+HH:MM:SS, +MM:SS, +SS)")
    hours, minutes, seconds = m.group(1), m.group(2), m.group(3)
    seconds_too_big = minutes is not None and float(seconds) >= 60
    minutes_too_big = hours is not None and int(minutes) >= 60
    if seconds_too_big or minutes_too_big:
        raise UsageError(f"--in {text!r}: minutes and seconds below 60")
    total_ms = round((int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)) * 1000)
    if total_ms <= 0:
        raise UsageError(f"--in {text!r}: a time after now")
    return now_ms + total_ms


def execution_time(at: str | None, in_: str | None, now_ms: int) -> int:
    """The execution time given by --at or --in (0 when neither)."""
    if at is not None and in_ is not None:
        raise UsageError("give --at or --in, not both")
    if at is not None:
        return parse_at(at)
    if in_ is not None:
        return parse_in(in_, now_ms)
    return 0


def format_utc(ms: int) -> str:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Entry(NamedTuple):
    entry: int  # 0..63: what tt_delete takes
    seq: int  # the command's seq
    command_id: int
    time_utc_ms: int
    boot: int  # the boot it was accepted in

    @property
    def command(self) -> str:
        cmd = COMMANDS_BY_ID.get(self.command_id)
        return cmd.name if cmd is not None else str(self.command_id)

    def text(self, now_ms: int | None = None) -> str:
        due = ""
        if now_ms is not None:
            left = (self.time_utc_ms - now_ms) / 1000
            due = f"  (in {left:.1f} s)" if left >= 0 else f"  ({-left:.1f} s late)"
        return (f"entry {self.entry:2d}  {format_utc(self.time_utc_ms)}  {self.command} "
                f"seq {self.seq} (boot {self.boot}){due}")


def decode_list(items: Any) -> list[Entry]:
    """The decoded tt_list payload as Entries in run order (time, then entry)."""
    out: list[Entry] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, list) and len(item) == 5 and all(type(v) is int for v in item):
            out.append(Entry(*item))
    out.sort(key=lambda e: (e.time_utc_ms, e.entry))
    return out
