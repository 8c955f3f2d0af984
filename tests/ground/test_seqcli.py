"""`ground seq` without a node: check and show, usage errors before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground import seqimage
from ground import sequence as s
from ground.cli import main
from ground.errors import EXIT_OK, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
BAD = ("ilrs-sequence 1\nname bad\nmodes SAFE\n"
       "load_switch channel=seismometer on=true\n"
       "set_mode mode=SCIENCE\n")


def test_check_passes_the_shipped_sequences(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(ROOT / "sequences" / n) for n in ("night_entry.seq", "morning.seq")]
    assert main(["seq", "check", *files]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    for path, line in zip(files, out, strict=True):
        seq = s.load(path)
        image = seqimage.compile(seq)
        assert line == (f"{path}: ok: {seq.name}, {len(seq.steps)} steps, image {len(image)} "
                        f"B, hash 0x{seqimage.hash_prefix(image):08x}, trigger "
                        f"{s.TRIGGERS[seq.trigger or 0]}")


def test_check_prints_every_problem_and_exits_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.seq"
    bad.write_text(BAD)
    worse = tmp_path / "worse.seq"
    worse.write_text("ilrs-sequence 1\nnoop on-fail later\n")
    good = ROOT / "sequences" / "morning.seq"
    assert main(["seq", "check", str(bad), str(good), str(worse), "--port", "loop://"]) \
        == EXIT_USAGE
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{bad}:4: load_switch is allowed only in NOMINAL or SCIENCE, and the sequence can "
        "only be in SAFE here: `set_mode mode=NOMINAL` before it",
        f"{bad}:5: set_mode mode=SCIENCE can never work: the sequence can only be in SAFE "
        "here, and SPEC §8 enters SCIENCE only from NOMINAL",
        f"{worse}:2: on-fail takes one of stop, skip, safe, at the end of the step (got "
        "'later')",
        "ground: error: 3 problem(s); nothing was sent",
    ]
    assert out.startswith(f"{good}: ok: morning")


def test_upload_checks_before_connecting(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.seq"
    bad.write_text(BAD)
    # a port that cannot be opened: the check's exit 2 comes first, nothing is opened
    assert main(["seq", "upload", str(bad), "--slot", "1", "--port", "/nonexistent/tty"]) \
        == EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:4: load_switch is allowed only in NOMINAL or SCIENCE")
    assert err[-1].startswith(f"ground: error: {bad}:4: load_switch") and \
        err[-1].endswith("(and 1 more); nothing was sent")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["seq", "upload", "x.seq"], "seq upload needs --slot N (0..3)"),
        (["seq", "upload", "x.seq", "--slot", "4"], "--slot 4 is out of range: 0..3"),
        (["seq", "start", "--slot", "-1"], "--slot -1 is out of range: 0..3"),
        (["seq", "check"], "seq check takes one or more sequence files"),
        (["seq", "show", "a.seq", "b.seq"], "seq show takes one sequence file"),
        (["seq", "trigger", "DUSK", "--slot", "0"], "seq trigger takes one of NONE, "
         "SAFE_ENTRY, SUNSET, SUNRISE, BATTERY_BELOW (BATTERY_BELOW with a level in %)"),
        (["seq", "trigger", "BATTERY_BELOW", "--slot", "0"], "only BATTERY_BELOW takes a "
         "level: seq trigger BATTERY_BELOW 25"),
        (["seq", "trigger", "SUNSET", "5", "--slot", "0"], "only BATTERY_BELOW takes a "
         "level: seq trigger BATTERY_BELOW 25"),
        (["seq", "start", "extra", "--slot", "0"], "seq start takes only --slot"),
        (["seq", "list", "extra"], "seq list takes no arguments"),
    ],
)
def test_usage_errors_before_anything_is_sent(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--port", "/nonexistent/tty"]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines()[-1] == f"ground: error: {message}"


def test_show_writes_the_canonical_text(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "sequences" / "night_entry.seq"
    assert main(["seq", "show", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    seq = s.load(path)
    image = seqimage.compile(seq)
    assert out == s.render(seq) + (f"# image {len(image)} B, hash "
                                   f"0x{seqimage.hash_prefix(image):08x}\n")
    assert s.render(s.parse(out)) == s.render(seq)


def test_the_example_in_docs_sequences_md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The example file checks as the page shows, and with `modes SAFE` fails as it shows."""
    page = (ROOT / "docs" / "sequences.md").read_text()
    blocks = page.split("```\n")
    example = blocks[1]
    shown = blocks[3].splitlines()
    wrong = blocks[5].splitlines()
    monkeypatch.chdir(tmp_path)
    Path("science_pass.seq").write_text(example)
    assert main(["seq", "check", "science_pass.seq"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert shown[0] == "$ ground seq check science_pass.seq"
    prefix, _, _ = shown[1].partition("0x…")
    seq = s.load("science_pass.seq")
    assert out == [f"{prefix}0x{seqimage.hash_prefix(seqimage.compile(seq)):08x}"]
    Path("science_pass.seq").write_text(example.replace("modes NOMINAL", "modes SAFE"))
    assert main(["seq", "check", "science_pass.seq"]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == wrong
