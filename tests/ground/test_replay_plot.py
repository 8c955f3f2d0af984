"""Record a session, replay it through the same decoders, plot it; check what was drawn."""

from __future__ import annotations

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
