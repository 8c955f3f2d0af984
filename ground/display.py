"""Displays shared by the live commands and replay: a rich table, JSON Lines, CSV, event lines.

Each display takes decoded items (``values.Housekeeping``, ``values.EventRecord``) from a live
client or from a log being replayed; none knows which.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from typing import IO, Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ground import values
from protocol import dictionary as d

STATE_STYLES: Final = {values.RED: "bold red", values.YELLOW: "yellow", values.NOMINAL: "green"}
SEVERITY_STYLES: Final = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "bold red",
    "fatal": "bold white on red",
}
CHANNEL_ORDER: Final = {c.name: i for i, c in enumerate(d.CHANNELS)}
CSV_FIELDS: Final = ("ground_ns", "node_time_ms", "packet", "channel", "value", "unit", "state")


def channel_table(
    latest: dict[str, values.ChannelValue],
    channels: list[str] | None = None,
    title: str = "",
    width: int | None = None,
) -> Table:
    """The latest value of every channel (or of ``channels``), coloured by limit state.

    Channel names are never shortened: on a terminal ``width`` columns wide the table leaves
    out the packet column (under 100 columns), the node time (under 80), then the state
    (under 60: the value's colour still shows it), instead.
    """
    names = channels or sorted(latest, key=lambda n: CHANNEL_ORDER.get(n, 999))
    table = Table(title=title or None, expand=False)
    longest = max((len(n) for n in names), default=7)
    table.add_column("channel", no_wrap=True, min_width=max(7, longest))
    table.add_column("value", justify="right", overflow="fold", min_width=8)
    table.add_column("unit", no_wrap=True)
    extra = [
        col
        for col, narrowest in (("state", 60), ("packet", 100), ("node time", 80))
        if width is None or width >= narrowest
    ]
    for col in extra:
        table.add_column(col, justify="right" if col == "node time" else "left", no_wrap=True)
    for name in names:
        v = latest.get(name)
        if v is None:
            table.add_row(name, "-", "", *[""] * len(extra))
            continue
        style = STATE_STYLES.get(v.state, "")
        more: dict[str, Any] = {
            "state": Text(v.state, style=style),
            "packet": v.packet,
            "node time": f"{v.node_time_ms / 1000:.1f} s",
        }
        table.add_row(name, Text(v.text, style=style), v.unit, *[more[col] for col in extra])
    return table


def packet_table(
    packets: list[values.Housekeeping], channels: Sequence[str] | None = None
) -> Table:
    """A few packets side by side: one row per channel, one column per packet."""
    table = Table(expand=False)
    if not packets:
        return table
    table.add_column("channel")
    table.add_column("unit")
    for hk in packets:
        table.add_column(f"{hk.packet} @ {hk.node_time_ms / 1000:.1f} s", justify="right")
    for i, first in enumerate(packets[0].values):
        if channels is not None and first.name not in channels:
            continue
        cells: list[Any] = [first.name, first.unit]
        for hk in packets:
            v = hk.values[i] if i < len(hk.values) else None
            cells.append(Text(v.text, style=STATE_STYLES.get(v.state, "")) if v else "")
        table.add_row(*cells)
    return table


def event_text(ev: values.EventRecord) -> Text:
    stamp = f"{ev.node_time_ms / 1000:10.3f}"
    text = Text(f"{stamp} #{ev.event_seq:<5} {ev.severity:<7} {ev.name}: {ev.text}")
    text.stylize(SEVERITY_STYLES.get(ev.severity, ""))
    return text


class JsonlWriter:
    """One JSON object per channel sample or event, flushed per line."""

    def __init__(self, out: IO[str], channels: list[str] | None = None) -> None:
        self.out = out
        self.channels = set(channels) if channels else None

    def housekeeping(self, hk: values.Housekeeping) -> None:
        for v in hk.values:
            if self.channels is None or v.name in self.channels:
                self.out.write(json.dumps(v.as_dict()) + "\n")
        self.out.flush()

    def event(self, ev: values.EventRecord) -> None:
        self.out.write(json.dumps(ev.as_dict()) + "\n")
        self.out.flush()


class CsvWriter:
    """One CSV row per channel sample, with a header row."""

    def __init__(self, out: IO[str], channels: list[str] | None = None) -> None:
        self.out = out
        self.channels = set(channels) if channels else None
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(CSV_FIELDS)

    def housekeeping(self, hk: values.Housekeeping) -> None:
        for v in hk.values:
            if self.channels is None or v.name in self.channels:
                self.writer.writerow(
                    (v.ground_ns, v.node_time_ms, v.packet, v.name, v.text, v.unit, v.state)
                )
        self.out.flush()

    def event(self, ev: values.EventRecord) -> None:  # CSV carries telemetry only
        return


class TextWriter:
    """Events as coloured lines; telemetry as one line per packet."""

    def __init__(self, console: Console, channels: list[str] | None = None) -> None:
        self.console = console
        self.channels = set(channels) if channels else None

    def housekeeping(self, hk: values.Housekeeping) -> None:
        parts = [
            f"{v.name}={v.text}{(' ' + v.unit) if v.unit else ''}"
            for v in hk.values
            if self.channels is None or v.name in self.channels
        ]
        if parts:
            self.console.print(f"{hk.node_time_ms / 1000:10.3f} {hk.packet}: " + ", ".join(parts))

    def event(self, ev: values.EventRecord) -> None:
        self.console.print(event_text(ev))


def stamp_ns(t_ns: int) -> str:
    ms = t_ns // 1_000_000 % 1000
    return time.strftime("%H:%M:%S", time.localtime(t_ns / 1e9)) + f".{ms:03d}"
