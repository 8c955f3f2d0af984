"""Flashing without a board: the build step for real, the mpremote command lines exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from ground import flash
from ground.errors import FlashError
from ground.micropython import REPO_ROOT

MPY_HEADER = b"M"  # .mpy files start with 'M' and the format version


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[flash.Built]:
    return flash.build(out=tmp_path_factory.mktemp("build") / "pico")


def test_build_compiles_what_the_node_needs(built: list[flash.Built]) -> None:
    remote = {b.remote for b in built}
    assert {
        "main.py",
        "protocol/cbor.mpy",
        "protocol/node_dictionary.mpy",
        "board/rp2.mpy",
        "node/app.mpy",
    } <= remote
    assert not remote & {
        "board/sim.mpy",
        "sim_main.mpy",
        "protocol/dictionary.mpy",
        "protocol/dictionary_lookup.mpy",
    }
    for b in built:
        data = b.local.read_bytes()
        if b.remote.endswith(".mpy"):
            assert data[:1] == MPY_HEADER and data[1] == 6  # mpy format version 6
        else:
            assert data == (REPO_ROOT / "firmware" / "main.py").read_bytes()


def test_build_failure_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "protocol").mkdir()
    (tmp_path / "firmware").mkdir()
    (tmp_path / "protocol" / "broken.py").write_text("def (:\n")
    with pytest.raises(FlashError, match=r"flash: build: mpy-cross .*broken.py"):
        flash.build(root=tmp_path, out=tmp_path / "out")


def test_plan_is_the_exact_mpremote_sequence(built: list[flash.Built]) -> None:
    steps = flash.plan("/dev/ttyACM0", built, mpremote=["mpremote"])
    argvs = [s.argv for s in steps]
    assert all(a[:3] == ["mpremote", "connect", "/dev/ttyACM0"] for a in argvs)
    assert argvs[0][3] == "exec"
    script = argvs[0][4]
    compile(script, "clean", "exec")  # valid Python (MicroPython runs the same subset)
    assert "rm(d)" in script and "os.mkdir(d)" in script
    assert "('board', 'node', 'node/plant', 'protocol')" in script  # parents first
    copies = [a[3:] for a in argvs[1:-1]]
    for args in copies:
        assert args[:2] == ["fs", "cp"]
    by_dest = {args[-1]: args[2:-1] for args in copies}
    assert set(by_dest) == {":board/", ":node/", ":node/plant/", ":protocol/", ":main.py"}
    assert by_dest[":main.py"] == [str(next(b.local for b in built if b.remote == "main.py"))]
    copied = sum(len(v) for v in by_dest.values())
    assert copied == len(built) == sum(s.files for s in steps)
    assert argvs[-1][3:] == ["reset"]


def test_install_runs_the_plan_and_stops_at_the_first_failure(built: list[flash.Built]) -> None:
    steps = flash.plan("/dev/ttyACM0", built, mpremote=["mpremote"])
    ran: list[Sequence[str]] = []

    def ok(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    flash.install(steps, runner=ok, show=False)
    assert ran == [s.argv for s in steps]

    def fail(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "could not enter raw repl\n")

    with pytest.raises(FlashError, match="remove the old modules: mpremote: could not enter raw"):
        flash.install(steps, runner=fail, show=False)


def test_to_repl_skips_a_board_that_does_not_answer() -> None:
    assert flash.to_repl("/dev/ttyNOPE", assume_yes=True) is False


def test_flash_build_only_via_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ground import cli

    monkeypatch.setattr(flash, "BUILD_DIR", tmp_path / "pico")
    assert cli.main(["flash", "--build-only"]) == 0
    assert f"files in {tmp_path}" in capsys.readouterr().out
    assert (tmp_path / "pico" / "main.py").exists()


def test_mpremote_is_runnable() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mpremote", "version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "mpremote" in proc.stdout


@pytest.mark.skipif(
    not os.environ.get("ILRS_BOARD"),
    reason="needs a Pico: set ILRS_BOARD=/dev/ttyACM0 to flash and ping one",
)
def test_flash_a_real_board() -> None:
    from ground import cli

    assert cli.main(["flash", "--port", os.environ["ILRS_BOARD"], "--yes"]) == 0


def test_to_repl_sends_a_running_node_to_maintenance(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakenode import FakeNode

    from ground.errors import UsageError

    monkeypatch.setattr(flash, "_MAINTENANCE_WAIT_S", 0.0)
    with FakeNode() as node:
        with pytest.raises(UsageError, match="not confirmed"):
            flash.to_repl(node.port, assume_yes=False, ask=lambda prompt: "no")
        assert node.executed[19] == 0
        assert flash.to_repl(node.port, assume_yes=False, ask=lambda prompt: "yes") is True
        assert node.executed[2] == 1 and node.executed[19] == 1  # set_mode SAFE, maintenance
