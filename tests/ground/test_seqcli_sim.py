"""`ground seq` against the simulated node: upload, list, trigger, start, stop, delete, and an
upload that continues from what the node already holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground import cli, seqimage
from ground import sequence as s
from ground.client import Client

ROOT = Path(__file__).resolve().parents[2]
NIGHT = ROOT / "sequences" / "night_entry.seq"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def image_of(path: Path) -> tuple[s.Sequence, bytes]:
    seq = s.load(path)
    return seq, seqimage.compile(seq)


def test_upload_list_start_delete(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    seq, image = image_of(NIGHT)
    h = seqimage.hash_prefix(image)
    code, out, err = run(capsys, "seq", "upload", str(NIGHT), "--slot", "2", "--port", sim_port)
    assert (code, err) == (0, "")
    parts = -(-len(image) // 128)
    assert out.splitlines() == [
        f"slot 2: stored night_entry, {len(image)} B in {parts} part(s), hash 0x{h:08x} "
        "verified",
        "slot 2: trigger SUNSET",
    ]
    code, out, _ = run(capsys, "seq", "list", "--port", sim_port)
    assert code == 0
    assert out.splitlines()[2] == (f"slot 2: IDLE     step 0/{len(seq.steps)}  night_entry  "
                                   f"    trigger SUNSET       0x{h:08x}")
    code, out, _ = run(capsys, "seq", "trigger", "BATTERY_BELOW", "25.5", "--slot", "2",
                       "--port", sim_port)
    assert (code, out) == (0, "slot 2: trigger BATTERY_BELOW 25.5\n")
    code, out, _ = run(capsys, "seq", "status", "--slot", "2", "--port", sim_port)
    assert out == (f"slot 2: IDLE     step 0/{len(seq.steps)}  night_entry      trigger "
                   f"BATTERY_BELOW 25.5 % 0x{h:08x}\nno upload in progress\n")
    code, out, _ = run(capsys, "seq", "start", "--slot", "2", "--port", sim_port)
    assert (code, out) == (0, "slot 2: seq_start completed\n")
    with Client(sim_port, write_log=False) as client:
        client.await_telemetry("seq_states", lambda v: (v >> 8) & 0xF == 3, timeout=10)
        listing = client.command("seq_list").result
    assert listing[2][:5] == [3, len(seq.steps) - 1, h, len(seq.steps), "night_entry"]
    code, out, _ = run(capsys, "seq", "stop", "--slot", "2", "--port", sim_port)
    assert (code, out) == (0, "slot 2: seq_stop completed\n")  # not running: nothing to do
    code, out, _ = run(capsys, "seq", "delete", "--slot", "2", "--port", sim_port)
    assert (code, out) == (0, "slot 2: seq_delete completed\n")
    code, out, _ = run(capsys, "seq", "list", "--slot", "2", "--port", sim_port)
    assert out == "slot 2: EMPTY    step 0/0  -                trigger NONE\n"


def test_upload_continues_from_what_the_node_holds(capsys: pytest.CaptureFixture[str],
                                                   sim_port: str) -> None:
    _, image = image_of(NIGHT)
    assert len(image) > 128
    with Client(sim_port, write_log=False) as client:  # an upload that stopped after a part
        held = client.command("seq_upload_begin", slot=3, size=len(image),
                              digest=seqimage.digest(image)).result
        assert held == 0
        assert client.command("seq_upload_part", slot=3, offset=0,
                              data=image[:128]).result == 128
    code, out, _ = run(capsys, "seq", "status", "--slot", "3", "--port", sim_port)
    assert out.splitlines()[1] == "upload in progress: 128 B held"
    code, out, _ = run(capsys, "seq", "upload", str(NIGHT), "--slot", "3", "--no-trigger",
                       "--port", sim_port)
    h = seqimage.hash_prefix(image)
    parts = -(-(len(image) - 128) // 128)
    assert (code, out) == (0, f"slot 3: stored night_entry, {len(image)} B in {parts} part(s),"
                              f" hash 0x{h:08x} verified, continued from 128 B held\n")
    code, out, _ = run(capsys, "seq", "status", "--slot", "3", "--port", sim_port)
    assert "trigger NONE" in out and f"0x{h:08x}" in out  # --no-trigger: none set
    run(capsys, "seq", "delete", "--slot", "3", "--port", sim_port)


def test_a_node_refusal_exits_1(capsys: pytest.CaptureFixture[str], sim_port: str) -> None:
    code, _, err = run(capsys, "seq", "start", "--slot", "1", "--port", sim_port)
    assert code == 1
    assert err.startswith("ground: error: seq_start (seq ") and "failed: NOT_FOUND (19)" in err
