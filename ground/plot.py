"""Plot channels from a session log: one panel per channel, limits and modes marked.

``plot_log(log, channels, out, axis=...)`` replays the log through the same decoders as a live
session (``ground.replay``) and draws each channel as a person reads it:

* a number as a line, with its yellow and red limits as dashed horizontal lines;
* an enum (``mode``, ``reset_cause``) or a bool as steps between labelled levels (the names
  on the y axis, not 0.96 to 1.04);
* a bit mask (``loads_on``, ``loads_tripped``, ``heaters_on``) as one lane per bit, named,
  filled while the bit is set (not 769);

every panel shaded by the node's mode, the mode names written above the first panel and each
change a dotted vertical line; legends sit outside the data, on the right. The x axis is
``wall`` (seconds since the log started, ground clock), ``node`` (the node's clock: seconds
since its boot) or ``model`` (the plant model's hours: node time times the time factor, given or
read from the log's ``sim://?time_factor=`` port). The PNG is written with matplotlib's Agg
backend; the ``PlotResult`` says what was drawn, so a test can check the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs, urlsplit

import matplotlib

matplotlib.use("Agg")  # no display needed, and the same output everywhere

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ground import validate, values
from ground.errors import UsageError
from ground.replay import Replay
from protocol import dictionary_types as t
from protocol.dictionary_lookup import MASK_CHANNELS

AXES: Final = ("wall", "node", "model")
AXIS_LABELS: Final = {
    "wall": "time since the log started (s, ground clock)",
    "node": "node time (s since the node's boot)",
    "model": "model time (h: node time x time factor {factor:g})",
}
LIMIT_COLOURS: Final = {values.YELLOW: "#d4a000", values.RED: "#d62728"}
MODE_COLOUR: Final = "#404040"
MODE_SHADES: Final = {"BOOT": "#eeeeee", "SAFE": "#fde0dd", "NOMINAL": "#e5f5e0",
                      "SCIENCE": "#deebf7"}
LANE_COLOUR: Final = "#1f77b4"
LINE: Final = "line"
STEPS: Final = "steps"
LANES: Final = "lanes"


class LimitLine(NamedTuple):
    channel: str
    level: str  # yellow | red
    side: str  # low | high
    value: float


class ModeChange(NamedTuple):
    t_s: float
    old: str
    new: str


class ModeSpan(NamedTuple):
    start: float
    end: float
    mode: str


class PlotResult(NamedTuple):
    figure: Figure
    series: dict[str, tuple[list[float], list[float]]]  # channel -> (t, values)
    limit_lines: list[LimitLine]
    mode_changes: list[ModeChange]
    path: Path
    axis: str  # wall | node | model
    kinds: dict[str, str]  # channel -> line | steps | lanes
    levels: dict[str, list[str]]  # steps: level names bottom up; lanes: bit names top down
    mode_spans: list[ModeSpan]


def kind_of(ch: t.Channel) -> str:
    if ch.name in MASK_CHANNELS:
        return LANES
    return STEPS if ch.enum or ch.type == t.BOOL else LINE


def time_factor_of(log: str | Path) -> float | None:
    """The time factor in the log's ``sim://?time_factor=X`` port, if it has one."""
    port = _header_port(log)
    query = urlsplit(port).query if port.startswith("sim://") else ""
    found = parse_qs(query).get("time_factor")
    try:
        return float(found[-1]) if found else None
    except ValueError:
        return None


def _header_port(log: str | Path) -> str:
    reader = Replay(log).reader
    for _ in reader:  # the header is read with the first record
        break
    return str(reader.header.get("port", ""))


def collect(
    log: str | Path, channels: list[str], axis: str = "wall", time_factor: float | None = None
) -> tuple[dict[str, tuple[list[float], list[float]]], list[ModeChange], list[ModeSpan]]:
    """Every sample of ``channels``, every mode change and the span of each mode, on ``axis``."""
    series: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in channels}
    modes: list[ModeChange] = []
    spans: list[ModeSpan] = []
    last_mode: Any = None
    since = 0.0
    t0: int | None = None
    t_s = 0.0
    mode_names = validate.CHANNELS["mode"].enum or {}
    for item in Replay(log).run():
        if item.topic != "housekeeping":
            continue
        hk: values.Housekeeping = item.value
        t0 = hk.ground_ns if t0 is None else t0
        if axis == "wall":
            t_s = (hk.ground_ns - t0) / 1e9
        elif axis == "node":
            t_s = hk.node_time_ms / 1000
        else:
            t_s = hk.node_time_ms / 1000 * (time_factor or 1.0) / 3600
        for v in hk.values:
            if v.name == "mode":
                if last_mode is None:
                    since = t_s
                elif v.value != last_mode:
                    old, new = mode_names.get(last_mode, str(last_mode)), mode_names.get(
                        v.value, str(v.value)
                    )
                    modes.append(ModeChange(t_s, old, new))
                    spans.append(ModeSpan(since, t_s, old))
                    since = t_s
                last_mode = v.value
            if v.name in series and isinstance(v.value, int | float):
                series[v.name][0].append(t_s)
                series[v.name][1].append(float(v.value))
    if last_mode is not None:
        spans.append(ModeSpan(since, t_s, mode_names.get(last_mode, str(last_mode))))
    return series, modes, spans


def plot_log(
    log: str | Path,
    channels: list[str],
    out: str | Path,
    axis: str = "wall",
    time_factor: float | None = None,
) -> PlotResult:
    if not channels:
        raise UsageError("plot: name at least one channel, e.g. --channels battery_soc")
    if axis not in AXES:
        raise UsageError(f"plot: time axis {axis!r}: one of {', '.join(AXES)}")
    records = [validate.channel(c) for c in channels]  # unknown names fail before reading
    if axis == "model":
        time_factor = time_factor or time_factor_of(log)
        if not time_factor or time_factor <= 0:
            raise UsageError(
                "plot: a model time axis needs the time factor: give --time-factor X "
                "(the log's port does not say it)"
            )
    series, modes, spans = collect(log, channels, axis, time_factor)
    kinds = {ch.name: kind_of(ch) for ch in records}
    heights = [_height(ch, kinds[ch.name]) for ch in records]
    fig, axes_array = plt.subplots(
        len(records),
        1,
        sharex=True,
        figsize=(10, sum(heights) + 0.8),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    limit_lines: list[LimitLine] = []
    levels: dict[str, list[str]] = {}
    for ax, ch in zip(axes_array[:, 0], records, strict=True):
        t_s, v = series[ch.name]
        for span in spans:
            ax.axvspan(span.start, span.end, color=MODE_SHADES.get(span.mode, "#f5f5f5"),
                       alpha=0.6, linewidth=0, zorder=0)
        if kinds[ch.name] == LANES:
            levels[ch.name] = _lanes(ax, ch, t_s, v)
        elif kinds[ch.name] == STEPS:
            levels[ch.name] = _steps(ax, ch, t_s, v)
        else:
            limit_lines += _line(ax, ch, t_s, v)
        if not t_s:
            ax.text(0.5, 0.5, "no samples in this log", transform=ax.transAxes, ha="center")
        for change in modes:
            ax.axvline(change.t_s, color=MODE_COLOUR, linestyle=":", linewidth=1)
        ax.set_ylabel(ch.name + (f" ({ch.unit})" if ch.unit else ""))
        ax.grid(True, axis="x" if kinds[ch.name] != LINE else "both", alpha=0.3)
    _mode_labels(axes_array[0, 0], spans)
    axes_array[-1, 0].set_xlabel(AXIS_LABELS[axis].format(factor=time_factor or 0))
    fig.suptitle(Path(log).name, fontsize="small", y=0.995)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise UsageError(f"plot: cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return PlotResult(fig, series, limit_lines, modes, path, axis, kinds, levels, spans)


def _height(ch: t.Channel, kind: str) -> float:
    if kind == LANES:
        return max(2.4, 0.3 * len(MASK_CHANNELS[ch.name]) + 0.6)
    return 2.4


def _legend(ax: Axes) -> None:
    """On the right of the panel, outside the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize="small", frameon=False)


def _line(ax: Axes, ch: t.Channel, t_s: list[float], v: list[float]) -> list[LimitLine]:
    ax.plot(t_s, v, label=ch.name, linewidth=1.2, zorder=3)
    drawn = []
    for level, limits in ((values.YELLOW, ch.yellow), (values.RED, ch.red)):
        for side, value in zip(("low", "high"), limits or (None, None), strict=True):
            if value is None:
                continue
            ax.axhline(value, color=LIMIT_COLOURS[level], linestyle="--", linewidth=1,
                       label=f"{level} {side} {values.format_value(value)}", zorder=2)
            drawn.append(LimitLine(ch.name, level, side, float(value)))
    _legend(ax)
    return drawn


def _steps(ax: Axes, ch: t.Channel, t_s: list[float], v: list[float]) -> list[str]:
    """Steps between named levels: every enum name (or false/true) on the y axis."""
    names = dict(ch.enum) if ch.enum else {0: "false", 1: "true"}
    ax.step(t_s, v, where="post", label=ch.name, linewidth=1.8, zorder=3)
    ticks = sorted(names)
    ax.set_yticks(ticks, [names[k] for k in ticks])
    ax.set_ylim(min(ticks) - 0.5, max(ticks) + 0.5)
    return [names[k] for k in ticks]


def _lanes(ax: Axes, ch: t.Channel, t_s: list[float], v: list[float]) -> list[str]:
    """One lane per bit of the mask, filled while the bit is set; bit 0 at the top."""
    names = MASK_CHANNELS[ch.name]
    bits = sorted(names)
    for lane, bit in enumerate(bits):
        spans: list[tuple[float, float]] = []
        for i, value in enumerate(v):
            if int(value) >> bit & 1:
                end = t_s[i + 1] if i + 1 < len(t_s) else t_s[i]
                if spans and abs(spans[-1][0] + spans[-1][1] - t_s[i]) < 1e-12:
                    spans[-1] = (spans[-1][0], end - spans[-1][0])  # extend the run
                else:
                    spans.append((t_s[i], end - t_s[i]))
        if spans:
            ax.broken_barh(spans, (lane - 0.35, 0.7), facecolors=LANE_COLOUR, zorder=3)
    ax.set_yticks(range(len(bits)), [names[b] for b in bits], fontsize="small")
    ax.set_ylim(len(bits) - 0.5, -0.5)  # bit 0 on top
    return [names[b] for b in bits]


def _mode_labels(ax: Axes, spans: list[ModeSpan]) -> None:
    """Each mode's name above the first panel, centred on its span, in readable type."""
    for span in spans:
        ax.annotate(span.mode, ((span.start + span.end) / 2, 1.01),
                    xycoords=("data", "axes fraction"), ha="center", va="bottom",
                    fontsize="medium", fontweight="bold", color=MODE_COLOUR,
                    annotation_clip=False)
