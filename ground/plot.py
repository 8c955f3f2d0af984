"""Plot channels from a session log: one panel per channel, limits and mode changes marked.

``plot_log(log, channels, out)`` replays the log through the same decoders as a live session
(``ground.replay``), draws each channel over time (seconds since the log started, ground
clock) with its yellow and red limits as dashed horizontal lines and every mode change as a
vertical line, writes a PNG with matplotlib's Agg backend and returns a ``PlotResult`` saying
what was drawn, so a test can check the figure without looking at pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, NamedTuple

import matplotlib

matplotlib.use("Agg")  # no display needed, and the same output everywhere

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ground import validate, values
from ground.errors import UsageError
from ground.replay import Replay

LIMIT_COLOURS: Final = {values.YELLOW: "#d4a000", values.RED: "#d62728"}
MODE_COLOUR: Final = "#7f7f7f"


class LimitLine(NamedTuple):
    channel: str
    level: str  # yellow | red
    side: str  # low | high
    value: float


class ModeChange(NamedTuple):
    t_s: float
    old: str
    new: str


class PlotResult(NamedTuple):
    figure: Figure
    series: dict[str, tuple[list[float], list[float]]]  # channel -> (t_s, values)
    limit_lines: list[LimitLine]
    mode_changes: list[ModeChange]
    path: Path


def collect(
    log: str | Path, channels: list[str]
) -> tuple[dict[str, tuple[list[float], list[float]]], list[ModeChange]]:
    """Every sample of ``channels`` and every mode change in a log, times in seconds."""
    series: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in channels}
    modes: list[ModeChange] = []
    last_mode: Any = None
    t0: int | None = None
    mode_names = validate.CHANNELS["mode"].enum or {}
    for item in Replay(log).run():
        if item.topic != "housekeeping":
            continue
        hk: values.Housekeeping = item.value
        t0 = hk.ground_ns if t0 is None else t0
        t_s = (hk.ground_ns - t0) / 1e9
        for v in hk.values:
            if v.name == "mode":
                if last_mode is not None and v.value != last_mode:
                    modes.append(
                        ModeChange(
                            t_s,
                            mode_names.get(last_mode, str(last_mode)),
                            mode_names.get(v.value, str(v.value)),
                        )
                    )
                last_mode = v.value
            if v.name in series and isinstance(v.value, int | float):
                series[v.name][0].append(t_s)
                series[v.name][1].append(float(v.value))
    return series, modes


def plot_log(log: str | Path, channels: list[str], out: str | Path) -> PlotResult:
    if not channels:
        raise UsageError("plot: name at least one channel, e.g. --channels battery_soc")
    records = [validate.channel(c) for c in channels]  # unknown names fail before reading
    series, modes = collect(log, channels)
    fig, axes_array = plt.subplots(
        len(records), 1, sharex=True, figsize=(10, 2.4 * len(records) + 0.8), squeeze=False
    )
    limit_lines: list[LimitLine] = []
    for ax, ch in zip(axes_array[:, 0], records, strict=True):
        t, v = series[ch.name]
        if ch.enum or ch.type == "bool":
            ax.step(t, v, where="post", label=ch.name)
        else:
            ax.plot(t, v, label=ch.name, linewidth=1.2)
        if not t:
            ax.text(0.5, 0.5, "no samples in this log", transform=ax.transAxes, ha="center")
        for level, limits in ((values.YELLOW, ch.yellow), (values.RED, ch.red)):
            for side, value in zip(("low", "high"), limits or (None, None), strict=True):
                if value is None:
                    continue
                ax.axhline(
                    value,
                    color=LIMIT_COLOURS[level],
                    linestyle="--",
                    linewidth=1,
                    label=f"{level} {side} {values.format_value(value)}",
                )
                limit_lines.append(LimitLine(ch.name, level, side, float(value)))
        for change in modes:
            ax.axvline(change.t_s, color=MODE_COLOUR, linestyle=":", linewidth=1)
        ax.set_ylabel(f"{ch.name}" + (f" ({ch.unit})" if ch.unit else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize="x-small")
    top = axes_array[0, 0]
    for change in modes:
        top.annotate(
            change.new,
            (change.t_s, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize="x-small",
            color=MODE_COLOUR,
            rotation=90,
            va="bottom",
        )
    axes_array[-1, 0].set_xlabel("time since the log started (s)")
    fig.suptitle(Path(log).name, fontsize="small")
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise UsageError(f"plot: cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return PlotResult(fig, series, limit_lines, modes, path)
