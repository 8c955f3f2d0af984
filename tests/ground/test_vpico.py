"""The virtual Pico's plumbing: its port form, the UF2 variable, write-through flash.

The flash tests drive rp2040py's own SSI (the SPI NOR command state machine the firmware's
littlefs writes through) with the commands a firmware sends, and compare the file with the
chip. The end-to-end tests (a real UF2 booted, the node deployed, `ground cmd noop`) need a
MicroPython RPI_PICO UF2 in $ILRS_VPICO_UF2 and are skipped with that reason without one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ground.errors import UsageError
from ground.micropython import REPO_ROOT
from ground.vpico import (
    UF2_ENV,
    VirtualPico,
    VirtualPicoError,
    is_vpico,
    missing_uf2_reason,
    rp2040py_missing,
    vpico_options,
)


@pytest.fixture
def uf2(tmp_path: Path) -> Path:
    path = tmp_path / "RPI_PICO.uf2"
    path.write_bytes(b"")  # only its existence is checked here
    return path


def test_is_vpico() -> None:
    assert is_vpico("vpico") and is_vpico("vpico://?uf2=x")
    assert not is_vpico("sim") and not is_vpico("/dev/ttyACM0") and not is_vpico("vpicox")


def test_options_from_the_url_and_from_the_environment(uf2: Path) -> None:
    assert vpico_options(f"vpico://?uf2={uf2}&flash=/f.img&deploy=files", {}) == {
        "uf2": str(uf2), "flash": "/f.img", "deploy": "files", "dev_key": True}
    assert vpico_options("vpico", {UF2_ENV: str(uf2)}) == {"uf2": str(uf2), "dev_key": True}
    assert vpico_options(f"vpico://?uf2={uf2}&key=none", {})["dev_key"] is False
    # the URL beats the variable
    assert vpico_options(f"vpico://?uf2={uf2}", {UF2_ENV: "/elsewhere.uf2"})["uf2"] == str(uf2)


def test_no_uf2_is_a_usage_error_naming_the_variable() -> None:
    with pytest.raises(UsageError) as err:
        vpico_options("vpico", {})
    assert f"${UF2_ENV}" in str(err.value) and "vpico://?uf2=PATH" in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("url", "words"), [
    ("vpico://?uf2=/no/such.uf2", "does not exist"),
    ("vpico://?uf2=X&speed=2", "unknown vpico option 'speed'"),
    ("vpico://?uf2=X&deploy=maybe", "deploy='maybe': one of auto, romfs, files, no"),
    ("vpico://?uf2=X&key=mine", "key='mine': dev (the development key) or none"),
])
def test_bad_options_are_one_line_usage_errors(url: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        vpico_options(url, {})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_missing_uf2_reason(uf2: Path) -> None:
    reason = missing_uf2_reason({})
    assert reason is not None and f"${UF2_ENV}=PATH" in reason
    missing = missing_uf2_reason({UF2_ENV: "/no/such.uf2"})
    assert missing == f"${UF2_ENV}=/no/such.uf2 does not exist"
    assert missing_uf2_reason({UF2_ENV: str(uf2)}) is None


def test_a_virtual_pico_without_its_uf2_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(VirtualPicoError, match="does not exist"):
        VirtualPico(tmp_path / "none.uf2", flash=tmp_path / "flash.img")
    with pytest.raises(VirtualPicoError, match="deploy='x'"):
        VirtualPico(tmp_path / "none.uf2", deploy="x")


def test_each_board_compiles_the_node_beside_its_own_flash(
        tmp_path: Path, uf2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two pytest-xdist workers deploying at once once shared build/pico/: one deleted the
    # tree while the other compiled or copied it, and its first test errored.
    from ground import flash as flashing

    outs: list[Path | None] = []

    def build(root: Path = REPO_ROOT, out: Path | None = None, mpy_cross: str | None = None):
        outs.append(out)
        raise flashing.FlashError("build", "stopped here by the test")

    monkeypatch.setattr(flashing, "build", build)
    boards = [VirtualPico(uf2, flash=tmp_path / name / "flash.img") for name in ("gw0", "gw1")]
    for board in boards:
        with pytest.raises(flashing.FlashError):
            board.deploy_node()
    assert outs == [tmp_path / "gw0" / "flash.img.build", tmp_path / "gw1" / "flash.img.build"]
    assert [board.build_dir for board in boards] == outs


@pytest.mark.parametrize("dev_key", [True, False])
def test_the_development_key_is_provisioned_before_the_node_first_runs(
        tmp_path: Path, uf2: Path, monkeypatch: pytest.MonkeyPatch, dev_key: bool) -> None:
    # key=dev (the default): the deployment copies the development key's table to the board
    # before its reset, so the node's first boot is ENFORCED and the pristine flash (every
    # fresh node of a HIL session) holds the key
    from ground import flash as flashing
    from ground.auth import dev_key_table
    from ground.keys import BOARD_KEYS

    def build(root: Path = REPO_ROOT, out: Path | None = None, mpy_cross: str | None = None):
        assert out is not None
        out.mkdir(parents=True, exist_ok=True)
        (out / "main.py").write_text("")
        (out / flashing.ROMFS_IMAGE).write_bytes(b"")
        return [flashing.Built(out / "main.py", "main.py")]

    ran: list[list[str]] = []  # every mpremote command line, in order
    pristine_after: list[int] = []  # how many had run when the pristine flash was saved

    def install(steps, runner=None, show=True):
        for step in steps:
            if step.argv[-1] == BOARD_KEYS:
                assert Path(step.argv[-2]).read_bytes() == dev_key_table()
            ran.append(step.argv)

    board = VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="files", dev_key=dev_key)
    board.flash.write_bytes(b"\xff")
    from ground.keys import dev_store_at

    kept = dev_store_at(board.key_store)  # the counters of the node on this flash
    kept.operators[0]["counter"] = 5000
    kept.save()
    monkeypatch.setattr(flashing, "build", build)
    monkeypatch.setattr(flashing, "install", install)
    monkeypatch.setattr(board, "wait_up", lambda count, timeout_s=0: count)
    real_copy = __import__("shutil").copyfile

    def copyfile(src, dst):
        pristine_after.append(len(ran))
        return real_copy(src, dst)

    monkeypatch.setattr("ground.vpico.shutil.copyfile", copyfile)
    assert board.deploy_node() == "files"
    tails = [argv[argv.index("connect") + 2:] for argv in ran]
    keyed = [["exec", "import os\ntry:\n os.mkdir('/data')\nexcept OSError:\n pass\n"],
             ["fs", "cp", str(board.build_dir / "keys.bin"), BOARD_KEYS]]
    named = flashing.reset_steps([])[0].argv  # the reset named COMMANDED
    assert tails[1:] == ([["fs", "cp", str(board.build_dir / "main.py"), ":main.py"], named]
                         + (keyed if dev_key else []) + [["reset"]])
    assert pristine_after == [len(ran) - 1]  # after the key, before the reset
    # the node's state (its replay window) outlives a deployment: so do the counters
    assert board.key_store.exists()
    signer = board.signer()
    assert (signer is not None) is dev_key
    if signer is not None:
        assert signer.sign(b"\x80")[1] > 5000
    assert board.marker.read_text().strip().endswith(":files:key=dev" if dev_key else ":files")


def flash_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`ground flash` on a vpico URL with no emulator: a one-file build (its folder returned),
    a board that starts on /dev/pts/x, no ROMFS partition."""
    from ground import flash as flashing

    out = tmp_path / "pico"
    out.mkdir()
    (out / "main.py").write_text("")
    (out / flashing.ROMFS_IMAGE).write_bytes(b"")
    monkeypatch.setattr(flashing, "BUILD_DIR", out)
    monkeypatch.setattr(flashing, "build", lambda: [flashing.Built(out / "main.py", "main.py")])
    monkeypatch.setattr(VirtualPico, "start", lambda self: setattr(self, "port", "/dev/pts/x")
                        or self)
    monkeypatch.setattr(VirtualPico, "stop", lambda self: None)
    monkeypatch.setattr(flashing, "query_romfs", lambda port, runner=None: None)
    return out


@pytest.mark.parametrize("dev_key", [True, False])
def test_ground_flash_provisions_the_key_and_signs_as_the_board_deployment_does(
        tmp_path: Path, uf2: Path, monkeypatch: pytest.MonkeyPatch, dev_key: bool) -> None:
    # `ground flash --port 'vpico://?flash=F'` then `ground cmd noop` on F: the node must hold
    # the key the marker names, and flash's own commands (maintenance, ping) must be signed
    import argparse

    from ground import flash as flashing
    from ground.auth import Signer
    from ground.keys import BOARD_KEYS, KeyStore

    flash = tmp_path / "flash.img"
    out = flash_offline(tmp_path, monkeypatch)
    monkeypatch.setattr(VirtualPico, "wait_node", lambda self, timeout_s=0: None)
    ran: list[list[str]] = []
    monkeypatch.setattr(flashing, "install",
                        lambda steps, runner=None, show=True: ran.extend(s.argv for s in steps))
    signed: list[tuple[str, object]] = []

    def to_repl(port: str, yes: bool, timeout_s: float = 0, signer: object = None) -> bool:
        signed.append(("to_repl", signer))
        return True

    def ping(port: str, signer: object = None, timeout_s: float = 3.0) -> str:
        signed.append(("ping", signer))
        assert timeout_s == 60.0  # a signed round trip takes seconds on the emulated Pico
        return "node up"

    def await_repl(port: str, timeout_s: float) -> None:
        signed.append(("await_repl", None))
        assert timeout_s == 600.0  # the maintenance reset and a boot at a clock 34x slow

    monkeypatch.setattr(flashing, "to_repl", to_repl)
    monkeypatch.setattr(flashing, "await_repl", await_repl)
    monkeypatch.setattr(flashing, "ping", ping)
    url = f"vpico://?uf2={uf2}&flash={flash}&key={'dev' if dev_key else 'none'}"
    args = argparse.Namespace(port=url, build_only=False, no_maintenance=False, yes=True,
                              no_romfs=True)
    assert flashing.main(args) == 0
    tails = [argv[argv.index("connect") + 2:] for argv in ran]
    table = str(flash.with_name("flash.img.build") / "keys.bin")
    keyed = [["exec", "import os\ntry:\n os.mkdir('/data')\nexcept OSError:\n pass\n"],
             ["fs", "cp", table, BOARD_KEYS]]
    named = flashing.reset_steps([])[0].argv  # the reset named COMMANDED
    assert tails[1:] == ([["fs", "cp", str(out / "main.py"), ":main.py"], named]
                         + (keyed if dev_key else []) + [["reset"]])
    assert [what for what, _ in signed] == ["to_repl", "await_repl", "ping"]
    signers = {id(signer): signer for what, signer in signed if what != "await_repl"}
    if dev_key:  # one signer, the development key's, its counters beside the flash
        (signer,) = signers.values()
        assert isinstance(signer, Signer) and signer.operator == 0
        counter = signer.sign(b"\x80")[1]
        assert KeyStore(flash.with_name("flash.img.keys.json")).operators[0]["counter"] >= counter
    else:
        assert list(signers.values()) == [None]
    marker = flash.with_name("flash.img.deployed").read_text().strip()
    assert marker.endswith(":files:key=dev" if dev_key else ":files")


@pytest.mark.parametrize("flash_state,found", [
    ("unrecorded", "node"), ("unrecorded", "repl"), ("recorded", None), ("new", None)])
def test_ground_flash_waits_for_what_an_unfinished_deployment_left(
        tmp_path: Path, uf2: Path, monkeypatch: pytest.MonkeyPatch, flash_state: str,
        found: str | None) -> None:
    # a `ground flash` that stopped after its copy left no marker: the next one went on at
    # once, gave the booting node 60 s, took it for a REPL and ran mpremote against it. Now it
    # waits for the node (then sends it to maintenance) or a REPL prompt (then goes on with
    # mpremote); a recorded deployment has booted in start(); a new flash holds nothing.
    import argparse

    from ground import flash as flashing

    flash = tmp_path / "flash.img"
    if flash_state != "new":
        flash.write_bytes(b"\xff" * 16)
    if flash_state == "recorded":
        flash.with_name("flash.img.deployed").write_text("an earlier deployment\n")
    flash_offline(tmp_path, monkeypatch)
    calls: list[str] = []

    def wait_node(self: VirtualPico, timeout_s: float = 0, repl: bool = False) -> str:
        calls.append(f"wait repl={repl}")
        return found if repl and found else "node"

    monkeypatch.setattr(VirtualPico, "wait_node", wait_node)
    monkeypatch.setattr(flashing, "install",
                        lambda steps, runner=None, show=True: calls.append("install"))
    monkeypatch.setattr(flashing, "to_repl", lambda port, yes, timeout_s=0, signer=None:
                        calls.append("maintenance") or True)
    monkeypatch.setattr(flashing, "await_repl", lambda port, timeout_s: calls.append("repl"))
    monkeypatch.setattr(flashing, "ping", lambda port, signer=None, timeout_s=0.0:
                        calls.append("ping") or "node up")
    args = argparse.Namespace(port=f"vpico://?uf2={uf2}&flash={flash}&key=none",
                              build_only=False, no_maintenance=False, yes=True, no_romfs=True)
    assert flashing.main(args) == 0
    first = {"node": ["wait repl=True", "maintenance", "repl"], "repl": ["wait repl=True"],
             None: ["maintenance", "repl"]}[found]
    assert calls == [*first, "install", "wait repl=False", "ping"]
    assert flash.with_name("flash.img.deployed").read_text().strip().endswith(":files")


def test_wait_node_takes_a_repl_prompt_for_no_node_only_when_asked(
        tmp_path: Path, uf2: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FRAME", b"\r\n>>> ".hex())  # the prompt, woken by a CR LF
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        with pytest.raises(VirtualPicoError, match="sent nothing within 2 s"):
            b.wait_node(timeout_s=2)
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        assert b.wait_node(timeout_s=30, repl=True) == "repl"
        assert "a REPL prompt: no node runs on this flash" in b.log_path.read_text()
    monkeypatch.setenv("FAKE_FRAME", _frame(3) + _frame(2))
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        assert b.wait_node(timeout_s=30, repl=True) == "node"


def test_a_client_on_a_kept_flash_continues_the_counters_beside_it(
        tmp_path: Path, uf2: Path) -> None:
    from ground.client import Client
    from ground.keys import KeyStore

    flash = tmp_path / "flash.img"
    client = Client(f"vpico://?uf2={uf2}&flash={flash}", write_log=False)
    assert client.signer is not None and client.signer.operator == 0
    first = client.signer.sign(b"\x80")[1]
    store = KeyStore(flash.with_name("flash.img.keys.json"))
    assert store.operators[0]["counter"] >= first  # reserved before use
    again = Client(f"vpico://?uf2={uf2}&flash={flash}", write_log=False)
    assert again.signer is not None and again.signer.sign(b"\x80")[1] > first
    assert Client(f"vpico://?uf2={uf2}&key=none", write_log=False).signer is None


@pytest.mark.parametrize(("url", "fuzzed"), [
    ("vpico", "vpico://?key=none"),
    ("vpico://", "vpico://?key=none"),
    ("vpico://?uf2=X", "vpico://?uf2=X&key=none"),
    ("vpico://?uf2=X&key=dev", "vpico://?uf2=X&key=dev"),
    ("vpico://?key=none", "vpico://?key=none"),
])
def test_the_fuzzer_deploys_an_open_node_unless_asked(url: str, fuzzed: str) -> None:
    # as its simulated node: the campaign's commands are plain
    from ground.fuzz.port import NodePort
    from ground.vpico import open_unless_keyed

    assert open_unless_keyed(url) == fuzzed
    assert NodePort(url).url == fuzzed


def test_the_fuzzer_holds_the_development_key_of_a_keyed_virtual_pico(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    monkeypatch.delenv("ILRS_OPERATOR", raising=False)

    from ground.fuzz.cli import node_key
    from ground.keys import dev_store_at

    args = argparse.Namespace(operator=None, key_store=None)
    assert node_key(args, "vpico://?uf2=X") is None
    fresh = node_key(args, "vpico://?uf2=X&key=dev")
    assert fresh is not None and fresh.counter == 256  # a new board: from the first block
    # a kept board's counters continue from the store beside its flash
    flash = tmp_path / "flash.img"
    store = dev_store_at(flash.with_name("flash.img.keys.json"))
    store.operators[0]["counter"] = 5000
    store.save()
    key = node_key(args, f"vpico://?uf2=X&key=dev&flash={flash}")
    assert key is not None and (key.operator, key.counter) == (0, 5120)


@pytest.mark.parametrize("deployed", [True, False])
def test_a_board_not_deployed_again_is_handed_over_once_its_node_has_booted(
        tmp_path: Path, uf2: Path, monkeypatch: pytest.MonkeyPatch, deployed: bool) -> None:
    # `ground cmd noop --port 'vpico://?flash=F&deploy=no'` gave up after 5 s: the node on F
    # was still in its boot (a minute of wall time, its escape window open). A flash that holds
    # no node (a bare MicroPython, for `ground flash`) has nothing to wait for.
    board = VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no")
    if deployed:
        board.marker.write_text("a deployment\n")
    calls: list[str] = []
    monkeypatch.setattr(board, "_spawn", lambda: calls.append("power on"))
    monkeypatch.setattr(board, "wait_up", lambda count, timeout_s=0: calls.append("usb") or 1)
    monkeypatch.setattr(board, "wait_node", lambda timeout_s=0: calls.append("node"))
    monkeypatch.setattr(board, "deploy_node", lambda: calls.append("deploy"))
    try:
        board.start()
    finally:
        board.stop()
    assert calls == ["power on", "usb", *(["node"] if deployed else [])]


def test_ground_without_a_uf2_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != UF2_ENV}
    env["ILRS_LOG_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "ground", "cmd", "noop", "--port", "vpico"],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ground: error: vpico: no MicroPython UF2")
    assert f"${UF2_ENV}" in lines[0]


# --- write-through flash ------------------------------------------------------------------

needs_rp2040py = pytest.mark.skipif(rp2040py_missing() is not None,
                                    reason=str(rp2040py_missing()))


@needs_rp2040py
class TestWriteThroughFlash:
    @pytest.fixture
    def chip(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        from rp2040py.rp2040 import RP2040

        from ground.vpico_board import FLASH_BYTES, open_flash, persist_flash_writes

        mcu = RP2040()
        path = tmp_path / "flash.img"
        fd = open_flash(path)
        assert os.fstat(fd).st_size == FLASH_BYTES
        assert os.pread(fd, 16, 0x1000) == b"\xff" * 16  # a new file is erased flash
        mcu.flash[:FLASH_BYTES] = os.pread(fd, FLASH_BYTES, 0)
        persist_flash_writes(mcu.ssi, mcu.flash, fd)
        yield mcu, fd
        os.close(fd)

    @staticmethod
    def command(mcu, data: bytes, enable: bool = True) -> None:  # type: ignore[no-untyped-def]
        ssi = mcu.ssi
        ssi._write_enabled = enable
        ssi._tx_buffer = bytearray(data)
        ssi._apply_command()

    def test_program_and_erase_reach_the_file(self, chip) -> None:  # type: ignore[no-untyped-def]
        mcu, fd = chip
        page = bytes(range(256))
        self.command(mcu, b"\x02\x0a\x10\x00" + page)  # PAGE_PROGRAM at 0x0A1000
        assert bytes(mcu.flash[0xA1000:0xA1100]) == page
        assert os.pread(fd, 256, 0xA1000) == page
        # NOR programs only clear bits: the file says what the chip says
        self.command(mcu, b"\x02\x0a\x10\x00" + b"\x0f" * 256)
        assert os.pread(fd, 256, 0xA1000) == bytes(b & 0x0F for b in page)
        self.command(mcu, b"\x20\x0a\x17\xff")  # SECTOR_ERASE: the whole 4 KiB sector
        assert os.pread(fd, 4096, 0xA1000) == b"\xff" * 4096

    def test_without_write_enable_nothing_changes(self, chip) -> None:  # type: ignore[no-untyped-def]
        mcu, fd = chip
        self.command(mcu, b"\x02\x0a\x10\x00" + b"\x00" * 256, enable=False)
        assert bytes(mcu.flash[0xA1000:0xA1100]) == b"\xff" * 256
        assert os.pread(fd, 256, 0xA1000) == b"\xff" * 256

    def test_a_block_erase_reaches_the_file(self, chip) -> None:  # type: ignore[no-untyped-def]
        mcu, fd = chip
        for offset in (0xB0000, 0xBFF00):
            self.command(mcu, bytes([0x02, offset >> 16, offset >> 8 & 0xFF, 0]) + b"\0" * 256)
        assert os.pread(fd, 1, 0xBFF00) == b"\0"
        self.command(mcu, b"\xd8\x0b\x12\x34")  # BLOCK_ERASE: 64 KiB from 0x0B0000
        assert os.pread(fd, 0x10000, 0xB0000) == b"\xff" * 0x10000


# --- with a real UF2 -----------------------------------------------------------------------

needs_uf2 = pytest.mark.skipif(missing_uf2_reason() is not None,
                               reason=str(missing_uf2_reason()))


@needs_uf2
@needs_rp2040py
@pytest.mark.slow
def test_ground_cmd_noop_against_the_virtual_pico(tmp_path: Path) -> None:
    """Boots the UF2, deploys the node as `ground flash` does, pings it (minutes)."""
    env = dict(os.environ, ILRS_LOG_DIR=str(tmp_path))
    port = f"vpico://?flash={tmp_path / 'flash.img'}"
    done = subprocess.run([sys.executable, "-m", "ground", "cmd", "noop", "--port", port,
                           "--timeout", "600"],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stderr


# --- the supervisor, with a stand-in for the emulator ----------------------------------------

FAKE_BOARD = '''#!{python}
"""Stands in for `python -m ground.vpico_board`: says up, sends a frame, echoes the serial."""
import os, select, sys
args = sys.argv[sys.argv.index("--serial-fd") + 1:]
fd = int(args[0])
flash = sys.argv[sys.argv.index("--flash") + 1]
with open(flash, "ab") as f:
    f.write(b"B")  # one byte per power-on: the flash file survives a cut
print("up", flush=True)
os.write(fd, bytes.fromhex(os.environ.get("FAKE_FRAME", "00")))
if os.environ.get("FAKE_EXIT"):
    sys.exit(int(os.environ["FAKE_EXIT"]))
while True:
    if select.select([fd], [], [], 1.0)[0]:
        os.write(fd, os.read(fd, 4096))
'''


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_BOARD.replace("{python}", sys.executable))
    path.chmod(0o755)
    return str(path)


def test_port_survives_a_power_cut_and_flash_is_kept(
        tmp_path: Path, uf2: Path, fake_python: str) -> None:
    import serial

    flash = tmp_path / "state" / "flash.img"
    with VirtualPico(uf2, flash=flash, deploy="no", python=fake_python) as board:
        assert board.enumerations == 1 and board.boots == 1
        with serial.Serial(board.port, timeout=2) as port:
            first = board.emulator_pid
            board.power_cut()
            board.wait_up(2, timeout_s=30)
            assert board.boots == 2 and board.emulator_pid not in (None, first)
            port.write(b"ping")  # the same open port reaches the new emulator
            assert port.read_until(b"ping", 64).endswith(b"ping")
        assert flash.read_bytes() == b"BB"
        pid = board.emulator_pid
    assert pid is not None and not _alive(pid)  # stopped by its pid
    assert board.log_path.read_text().count("--- power on") == 2


def _frame(kind: int) -> str:
    import cbor2

    from ground.link import encode_frame

    return encode_frame(cbor2.dumps([1, kind, 7, 1234, 1, [0]])).hex()


def test_wait_node_returns_on_housekeeping_not_on_an_event(
        tmp_path: Path, uf2: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FRAME", _frame(3) + "0d0a")  # an event, a stray CR LF
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        with pytest.raises(VirtualPicoError, match="sent nothing within 2 s"):
            b.wait_node(timeout_s=2)
    monkeypatch.setenv("FAKE_FRAME", _frame(3) + _frame(2))  # then housekeeping
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        b.wait_node(timeout_s=30)
        assert "the node is up: housekeeping received" in b.log_path.read_text()


def test_an_emulator_that_exits_is_a_clear_error(tmp_path: Path, uf2: Path, fake_python: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EXIT", "3")
    with VirtualPico(uf2, flash=tmp_path / "flash.img", deploy="no", python=fake_python) as b:
        with pytest.raises(VirtualPicoError, match="exited with code 3"):
            b.wait_up(2, timeout_s=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
