"""Record a session, replay it through the same decoders, plot it; check what was drawn."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import pytest

from ground import cli
from ground.client import Client
from ground.errors import CorruptLog, UnknownName
from ground.log import LogReader
from ground.plot import plot_log
from ground.replay import Replay

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def recording(sim_port: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A session with mode changes: SAFE -> NOMINAL -> SAFE, telemetry in between."""
    path = tmp_path_factory.mktemp("rec") / "session.jsonl"
    with Client(sim_port, log=path) as node:
        node.command("set_mode", mode="SAFE")
        list(node.telemetry(count=6))
        node.command("set_mode", mode="NOMINAL")
        list(node.telemetry(count=6))
        node.command("set_mode", mode="SAFE")
        packets = len(list(node.telemetry(count=6)))
    return path, packets


def test_replay_gives_what_the_live_session_saw(recording: tuple[Path, int]) -> None:
    path, _ = recording
    rp = Replay(path)
    items = list(rp.run())
    topics = {i.topic for i in items}
    assert {"housekeeping", "command", "link"} <= topics
    commands = [i.value for i in items if i.topic == "command"]
    assert any(c.startswith("command set_mode") for c in commands)
    soc = rp.downlink.latest["battery_soc"]
    assert soc.unit == "%" and 0 < soc.value <= 100
    assert rp.downlink.decode_errors == 0
    mode_events = [i.value for i in items if i.topic == "event" and i.value.name == "mode_changed"]
    assert [e.text for e in mode_events][-2:] == ["mode SAFE -> NOMINAL", "mode NOMINAL -> SAFE"]


def test_a_signed_session_replays_as_clearly_as_an_open_one(tmp_path: Path) -> None:
    # every command of a keyed node is a COSE_Mac0 object, and so is every verification: a
    # replay showed each as "undecodable: semantic tag 17"
    from ground.auth import dev_signer
    from ground.simnode import SimNode

    path = tmp_path / "signed.jsonl"
    with SimNode(seed=7, state_dir=tmp_path / "state", dev_key=True) as sim, \
            Client(sim.port, log=path, signer=dev_signer()) as node:
        node.command("set_mode", mode="NOMINAL")
        node.command("set_mode", mode="SAFE")
        counters = node.signer.counter  # type: ignore[union-attr]
    rp = Replay(path)
    items = list(rp.run())
    assert rp.downlink.decode_errors == 0 and rp.downlink.auth_errors == 0
    assert not [i for i in items if i.topic == "error"]
    commands = [i.value for i in items if i.topic == "command"]
    modes = [c for c in commands if c.startswith("command set_mode")]
    assert [c.split(" seq ")[1].split(" ", 1)[1] for c in modes] == [
        f"[2] (signed: key 0000, counter {counters - 1})",
        f"[1] (signed: key 0000, counter {counters})"]
    mode_events = [i.value.text for i in items
                   if i.topic == "event" and i.value.name == "mode_changed"]
    assert mode_events[-2:] == ["mode SAFE -> NOMINAL", "mode NOMINAL -> SAFE"]


def test_replay_speed_paces(recording: tuple[Path, int]) -> None:
    import time

    path, _ = recording
    records = list(LogReader(path))
    span_s = (records[-1].t_ns - records[0].t_ns) / 1e9
    start = time.monotonic()
    list(Replay(path).run(speed=20.0))
    assert time.monotonic() - start == pytest.approx(span_s / 20.0, abs=0.3)


def test_plot_draws_series_limits_and_mode_changes(
    recording: tuple[Path, int], tmp_path: Path
) -> None:
    path, _ = recording
    out = tmp_path / "plot.png"
    result = plot_log(path, ["battery_soc", "battery_voltage", "mode"], out)
    assert list(result.series) == ["battery_soc", "battery_voltage", "mode"]
    assert all(len(t) > 3 for t, _ in result.series.values())
    # battery_soc: yellow and red low limits; battery_voltage: both sides of both.
    by_channel = {(line.channel, line.level, line.side) for line in result.limit_lines}
    assert {("battery_soc", "yellow", "low"), ("battery_soc", "red", "low")} <= by_channel
    assert len([x for x in result.limit_lines if x.channel == "battery_voltage"]) == 4
    assert [(m.old, m.new) for m in result.mode_changes] == [
        ("SAFE", "NOMINAL"),
        ("NOMINAL", "SAFE"),
    ]
    axes = result.figure.axes
    assert len(axes) == 3
    soc_ax = axes[0]
    data_lines = [ln for ln in soc_ax.get_lines() if ln.get_label() == "battery_soc"]
    assert len(data_lines) == 1 and len(data_lines[0].get_xdata()) == len(
        result.series["battery_soc"][0]
    )
    horizontal = [ln for ln in soc_ax.get_lines() if ln.get_label().startswith(("yellow", "red"))]
    assert sorted(ln.get_ydata()[0] for ln in horizontal) == [15.0, 30.0]
    vertical = [ln for ln in soc_ax.get_lines() if ln.get_linestyle() == ":"]
    assert len(vertical) == 2
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1000, 800)  # figsize (10, 8) at 100 dpi


def test_plot_via_cli(
    recording: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = recording
    out = tmp_path / "cli.png"
    code = cli.main(["plot", str(path), "--channels", "battery_soc,bus_current", "--out", str(out)])
    assert code == 0 and out.read_bytes().startswith(PNG_SIGNATURE)
    assert "2 series, 4 limit lines, 2 mode changes" in capsys.readouterr().out


def test_plot_unknown_channel(recording: tuple[Path, int], tmp_path: Path) -> None:
    with pytest.raises(UnknownName, match="battery_soc"):
        plot_log(recording[0], ["battery_sco"], tmp_path / "x.png")


def test_damage_in_the_middle_is_reported_nothing_before_is_lost(
    recording: tuple[Path, int], tmp_path: Path
) -> None:
    lines = recording[0].read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:10], "{oops", *lines[10:]]) + "\n")
    seen = []
    with pytest.raises(CorruptLog) as info:
        for record in LogReader(bad):
            seen.append(record)
    assert info.value.line == 11 and len(seen) == 9


def test_replay_jsonl_matches_live_values(
    recording: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["replay", str(recording[0]), "--format", "jsonl", "--channels", "battery_soc"])
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    socs = [r for r in rows if r.get("channel") == "battery_soc"]
    assert socs and all(r["unit"] == "%" for r in socs)
    assert any(r.get("event") == "mode_changed" for r in rows)


def _blend(hex_colour: str, alpha: float) -> tuple[float, float, float]:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return tuple(alpha * c + (1 - alpha) for c in rgb)  # type: ignore[return-value]


def test_plot_draws_enums_as_named_steps_masks_as_lanes_legends_outside(
    recording: tuple[Path, int], tmp_path: Path
) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    from ground import plot
    from protocol import dictionary

    path, _ = recording
    out = tmp_path / "kinds.png"
    result = plot_log(path, ["battery_soc", "mode", "loads_on", "lunar_day"], out)
    assert result.kinds == {
        "battery_soc": "line", "mode": "steps", "loads_on": "lanes", "lunar_day": "steps"
    }
    soc_ax, mode_ax, loads_ax, day_ax = result.figure.axes
    assert [t.get_text() for t in mode_ax.get_yticklabels()] == [
        "BOOT", "SAFE", "NOMINAL", "SCIENCE"
    ]
    assert set(result.series["mode"][1]) == {1.0, 2.0}  # SAFE and NOMINAL, nothing between
    assert [t.get_text() for t in day_ax.get_yticklabels()] == ["false", "true"]
    load_names = [dictionary.LOAD_NAMES[i] for i in range(10)]
    assert [t.get_text() for t in loads_ax.get_yticklabels()] == load_names
    assert result.levels["loads_on"] == load_names
    # One lane of bars per bit that was ever on; lane y centred on its tick.
    on_bits = {b for m in result.series["loads_on"][1] for b in range(10) if int(m) >> b & 1}
    lanes = {round(c.get_paths()[0].get_extents().y0 + 0.35) for c in loads_ax.collections
             if c.get_paths()}
    assert lanes == on_bits and 0 in on_bits  # comms_relay is on from boot
    # Legends right of the panels, never over the data.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(result.figure)  # the figure was closed after saving
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = soc_ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent(renderer).x0 >= soc_ax.get_window_extent(renderer).x1
    # Mode names above the first panel, readable: black-grey, bold, medium type.
    labels = [a for a in soc_ax.texts if a.get_text() in plot.MODE_SHADES]
    assert [a.get_text() for a in labels] == ["SAFE", "NOMINAL", "SAFE"]
    assert all(a.get_fontsize() >= 10 and a.get_color() == plot.MODE_COLOUR for a in labels)
    assert [s.mode for s in result.mode_spans] == ["SAFE", "NOMINAL", "SAFE"]
    assert all(s.end >= s.start for s in result.mode_spans)
    spans = result.mode_spans
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    # The PNG itself: the mode shades are there, and so are the lane bars' pixels.
    image = mpimg.imread(out)[:, :, :3]
    for mode in ("SAFE", "NOMINAL"):
        shade = np.array(_blend(plot.MODE_SHADES[mode], 0.6))
        assert (np.abs(image - shade).max(axis=2) < 0.02).sum() > 5000, mode
    bar = np.array(_blend(plot.LANE_COLOUR, 1.0))
    assert (np.abs(image - bar).max(axis=2) < 0.02).sum() > 2000


def test_plot_time_axes(
    recording: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = recording
    node_times = [
        item.value.node_time_ms / 1000
        for item in Replay(path).run()
        if item.topic == "housekeeping"
        and any(v.name == "battery_soc" for v in item.value.values)
    ]
    node = plot_log(path, ["battery_soc"], tmp_path / "node.png", axis="node")
    assert node.series["battery_soc"][0] == node_times and node.axis == "node"
    assert node.figure.axes[0].get_xlabel() == "node time (s since the node's boot)"
    model = plot_log(path, ["battery_soc"], tmp_path / "m.png", axis="model", time_factor=600)
    assert model.series["battery_soc"][0] == pytest.approx([t * 600 / 3600 for t in node_times])
    assert [round(c.t_s, 9) for c in node.mode_changes] == [
        round(c.t_s * 3600 / 600, 9) for c in model.mode_changes
    ]
    code = cli.main(["plot", str(path), "--channels", "mode", "--out", str(tmp_path / "x.png"),
                     "--time-axis", "model"])  # the log's port is a pty: no time factor in it
    err = capsys.readouterr().err
    assert code == 2 and "a model time axis needs the time factor: give --time-factor X" in err
    code = cli.main(["plot", str(path), "--channels", "mode", "--out", str(tmp_path / "y.png"),
                     "--time-axis", "node"])
    assert code == 0 and (tmp_path / "y.png").read_bytes().startswith(PNG_SIGNATURE)
