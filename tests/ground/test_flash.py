"""Flashing without a board: the build step for real, the mpremote command lines exactly, and
the choice between ROMFS and filesystem .mpy files from what ``mpremote romfs query`` says."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import mpy_layout
from ground import flash
from ground.errors import EXIT_LINK, FlashError, FlashTimeout
from ground.micropython import REPO_ROOT, find_micropython, mpy_cross_args

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


def test_each_mpy_is_named_by_its_path_on_the_board(built: list[flash.Built]) -> None:
    # Its source name (the first qstr of its table) is what an import from the board's
    # filesystem interns as its __file__: one name on the node, not two.
    for b in built:
        if b.remote.endswith(".mpy"):
            assert mpy_layout.parse(b.local.read_bytes()).qstrs[0] == b.remote.encode()


def test_mpy_cross_args_are_one_command_line_for_every_build() -> None:
    args = mpy_cross_args(Path("/src/node/link.py"), "node/link.mpy", Path("/out/link.mpy"),
                          "armv6m")
    assert args == ["-march=armv6m", "-O3", "-s", "node/link.mpy", "-o", "/out/link.mpy",
                    "/src/node/link.py"]
    assert mpy_cross_args(Path("a.py"), "a.mpy", Path("a.mpy")) == [
        "-O3", "-s", "a.mpy", "-o", "a.mpy", "a.py"]


def test_build_failure_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "protocol").mkdir()
    (tmp_path / "firmware").mkdir()
    (tmp_path / "protocol" / "broken.py").write_text("def (:\n")
    with pytest.raises(FlashError, match=r"flash: build: mpy-cross .*broken.py"):
        flash.build(root=tmp_path, out=tmp_path / "out")


# the deployment's reset is named COMMANDED (firmware/board/rp2.py's reset cause marker)
NAME_THE_RESET = ("import os\ntry:\n os.mkdir('/data')\nexcept OSError:\n pass\n"
                  "with open('/data/reset_marker', 'wb') as f:\n f.write(bytes((2,)))\n")


def test_plan_is_the_exact_mpremote_sequence(built: list[flash.Built]) -> None:
    steps = flash.plan("/dev/ttyACM0", built, mpremote=["mpremote"])
    argvs = [s.argv for s in steps]
    assert all(a[:3] == ["mpremote", "connect", "/dev/ttyACM0"] for a in argvs)
    assert argvs[0][3] == "exec"
    script = argvs[0][4]
    compile(script, "clean", "exec")  # valid Python (MicroPython runs the same subset)
    assert "rm(d)" in script and "os.mkdir(d)" in script
    assert "('board', 'node', 'node/plant', 'protocol')" in script  # parents first
    copies = [a[3:] for a in argvs[1:-2]]
    for args in copies:
        assert args[:2] == ["fs", "cp"]
    by_dest = {args[-1]: args[2:-1] for args in copies}
    assert set(by_dest) == {":board/", ":node/", ":node/plant/", ":protocol/", ":main.py"}
    assert by_dest[":main.py"] == [str(next(b.local for b in built if b.remote == "main.py"))]
    copied = sum(len(v) for v in by_dest.values())
    assert copied == len(built) == sum(s.files for s in steps)
    assert argvs[-2][3:] == ["exec", NAME_THE_RESET]
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

    with FakeNode() as node:
        with pytest.raises(UsageError, match="not confirmed"):
            flash.to_repl(node.port, assume_yes=False, ask=lambda prompt: "no")
        assert node.executed[19] == 0
        assert flash.to_repl(node.port, assume_yes=False, ask=lambda prompt: "yes") is True
        assert node.executed[2] == 1 and node.executed[19] == 1  # set_mode SAFE, maintenance


def test_to_repl_fails_when_the_arm_of_maintenance_is_not_confirmed() -> None:
    # on the virtual Pico the arm took longer than maintenance's 3 s: to_repl took the
    # timeout for "the node is resetting", though maintenance was never sent
    from fakenode import FakeNode

    from ground.client import ARM_ID

    with FakeNode() as node:
        node.hold_final = {ARM_ID}
        with pytest.raises(FlashError, match=r"did not confirm arm within 3 s, so maintenance "
                                             r"was not sent; nothing was changed"):
            flash.to_repl(node.port, assume_yes=True)
        assert node.executed[19] == 0


class _ResettingBoard:
    """A pty whose far side is a node (frames, deaf to text) until ``at_repl`` is set (its
    maintenance reset), then a REPL that answers each line end with a prompt."""

    def __init__(self) -> None:
        import threading
        import tty

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.at_repl = threading.Event()
        self.stop = threading.Event()
        self.heard_before_reset = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import select

        while not self.stop.is_set():
            ready = select.select([self.master], [], [], 0.05)[0]
            if not self.at_repl.is_set():
                os.write(self.master, b"\x00\x05\x81\x01\x02\x03\x00")  # housekeeping-ish
                if ready:
                    self.heard_before_reset += os.read(self.master, 4096)
            elif ready and b"\n" in os.read(self.master, 4096):
                os.write(self.master, b"\r\n>>> ")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


def test_await_repl_returns_once_the_board_answers_at_its_repl() -> None:
    # mpremote started 3 s after maintenance on the virtual Pico: the node had not reset yet,
    # took mpremote's bytes for noise, and mpremote waited for an answer for ever
    import threading

    board = _ResettingBoard()
    try:
        threading.Timer(1.5, board.at_repl.set).start()
        flash.await_repl(board.port, timeout_s=30.0)
        assert board.at_repl.is_set()
        assert set(board.heard_before_reset) <= {0x0D, 0x0A}  # only line ends, for the node
    finally:
        board.close()


def test_await_repl_says_what_to_do_when_no_prompt_comes() -> None:
    board = _ResettingBoard()
    try:
        with pytest.raises(FlashError, match=r"did not come to its REPL within 1 s .*"
                                             r"--no-maintenance"):
            flash.await_repl(board.port, timeout_s=1.0)
    finally:
        board.close()


def test_to_repl_signs_for_a_node_that_holds_keys(tmp_path: Path) -> None:
    # a node with a key table refuses plain commands, silently (SPEC §10.3): flashing a Pico
    # that holds keys must sign set_mode and maintenance with the operator's key
    from ground.auth import dev_signer
    from ground.client import Client
    from ground.errors import CommandRejected
    from ground.simnode import SimNode

    with SimNode(seed=7, state_dir=tmp_path / "state", dev_key=True) as sim:
        with pytest.raises(CommandRejected) as refused:  # not taken for a board at its REPL
            flash.to_repl(sim.port, assume_yes=True, timeout_s=10.0)
        assert (refused.value.command, refused.value.reason) == ("status", "UNAUTHENTICATED")
        assert refused.value.why == flash._KEYED_NODE
        signer = dev_signer()
        assert flash.to_repl(sim.port, assume_yes=True, timeout_s=10.0, signer=signer) is True
        sim.wait_boots(2, 30.0)  # to_repl does not wait for the reset (await_repl does)
        client = Client(sim.port, signer=signer, write_log=False)
        try:
            status = client.connect(timeout=10.0)
        finally:
            client.close()
        assert (status.boot_count, status.reset_cause) == (2, "MAINTENANCE")


def test_flash_signs_with_the_operator_given(
    monkeypatch: pytest.MonkeyPatch, built: list[flash.Built], tmp_path: Path
) -> None:
    from ground import cli
    from ground.keys import KeyStore

    store = KeyStore(tmp_path / "keys.json")
    store.generate(3)
    monkeypatch.setattr(flash, "BUILD_DIR", built[-1].local.parent)
    monkeypatch.setattr(flash, "build", lambda: built)
    monkeypatch.setattr(flash, "check_port", lambda port: port)  # no board here: say it is
    monkeypatch.setattr(flash, "query_romfs", lambda port: None)
    monkeypatch.setattr(flash, "install", lambda steps: None)
    monkeypatch.setattr(flash, "_BOOT_WAIT_S", 0.0)
    signers: list[tuple[str, int | None]] = []

    def to_repl(port: str, yes: bool, signer: object = None) -> bool:
        signers.append(("to_repl", getattr(signer, "operator", None)))
        return True

    def ping(port: str, signer: object = None) -> str:
        signers.append(("ping", getattr(signer, "operator", None)))
        return "node up"

    def await_repl(port: str, timeout_s: float) -> None:
        signers.append(("await_repl", None))
        assert timeout_s == flash.REPL_TIMEOUT_S

    monkeypatch.setattr(flash, "to_repl", to_repl)
    monkeypatch.setattr(flash, "await_repl", await_repl)
    monkeypatch.setattr(flash, "ping", ping)
    argv = ["flash", "--port", "/dev/ttyACM0", "--yes", "--no-romfs"]
    assert cli.main([*argv, "--operator", "3", "--key-store", str(tmp_path / "keys.json")]) == 0
    assert signers == [("to_repl", 3), ("await_repl", None), ("ping", 3)]
    signers.clear()
    assert cli.main(argv) == 0  # no operator: plain, as a board that holds no keys wants
    assert signers == [("to_repl", None), ("await_repl", None), ("ping", None)]


# --- ROMFS ----------------------------------------------------------------------------------

QUERY_OK = """ROMFS0 partition has size 262144 bytes (64 blocks of 4096 bytes each)
  Raw contents: d2:cd:31:83:b6:02:85:01:87:0b:80:02 ...
  ROMFS image size: 56066
"""
QUERY_DISABLED = "ROMFS is not enabled on this device\n"
QUERY_NONE = "No ROMFS partitions available\n"


def test_build_makes_the_romfs_image_of_the_mpy_tree(built: list[flash.Built]) -> None:
    out = built[-1].local.parent  # main.py sits at the top of the build dir
    image = out / flash.ROMFS_IMAGE
    assert image.read_bytes()[:3] == b"\xd2\xcd\x31"  # the ROMFS header
    # Mounted by MicroPython's own VfsRom, it holds exactly the .mpy files, byte for byte.
    script = (
        "import vfs, os\n"
        f"vfs.mount(vfs.VfsRom(open({str(image)!r}, 'rb').read()), '/rom')\n"
        "def walk(p, rel):\n"
        "    for name, kind, *_ in os.ilistdir(p):\n"
        "        if kind == 0x4000:\n"
        "            walk(p + '/' + name, rel + name + '/')\n"
        "        else:\n"
        "            data = open(p + '/' + name, 'rb').read()\n"
        "            print(rel + name, len(data), sum(data))\n"
        "walk('/rom', '')\n"
    )
    done = subprocess.run([find_micropython(), "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    listed = {line.split()[0]: (int(line.split()[1]), int(line.split()[2]))
              for line in done.stdout.splitlines()}
    mpys = {b.remote: b.local.read_bytes() for b in built if b.remote.endswith(".mpy")}
    assert listed == {name: (len(data), sum(data)) for name, data in mpys.items()}


@pytest.mark.parametrize(
    ("output", "size"), [(QUERY_OK, 262144), (QUERY_DISABLED, None), (QUERY_NONE, None)]
)
def test_romfs_size_from_the_query(output: str, size: int | None) -> None:
    assert flash.romfs_size(output) == size


def test_query_romfs_runs_mpremote_and_reports_failures() -> None:
    ran: list[Sequence[str]] = []

    def board(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, QUERY_OK, "")

    assert flash.query_romfs("/dev/ttyACM0", runner=board, mpremote=["mpremote"]) == 262144
    assert ran == [["mpremote", "connect", "/dev/ttyACM0", "romfs", "query"]]

    def busy(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "could not enter raw repl\n")

    with pytest.raises(FlashError, match="romfs query: mpremote: could not enter raw repl"):
        flash.query_romfs("/dev/ttyACM0", runner=busy)


def test_choose_romfs_only_when_the_image_fits() -> None:
    assert flash.choose(262144, 60000) == (flash.ROMFS, "")
    none = flash.choose(None, 60000)
    assert none.deployment == flash.FILES and "no ROMFS partition" in none.warning
    assert "less heap" in none.warning
    small = flash.choose(32768, 60000)
    assert small.deployment == flash.FILES and "larger than the board's partition" in small.warning
    forced = flash.choose(262144, 60000, romfs=False)
    assert forced.deployment == flash.FILES and "--no-romfs" in forced.warning


def test_plan_romfs_is_the_exact_mpremote_sequence(built: list[flash.Built]) -> None:
    image = built[-1].local.parent / flash.ROMFS_IMAGE
    steps = flash.plan_romfs("/dev/ttyACM0", built, image, mpremote=["mpremote"])
    argvs = [s.argv for s in steps]
    assert all(a[:3] == ["mpremote", "connect", "/dev/ttyACM0"] for a in argvs)
    clean = argvs[0][3:]
    assert clean[0] == "exec" and "rm(d)" in clean[1] and "for d in ():" in clean[1]
    assert argvs[1][3:] == ["romfs", "deploy", str(image)]
    main_py = str(next(b.local for b in built if b.remote == "main.py"))
    assert argvs[2][3:] == ["fs", "cp", main_py, ":main.py"]
    assert argvs[3][3:] == ["exec", NAME_THE_RESET]
    assert argvs[4][3:] == ["reset"]
    assert len(argvs) == 5
    assert sum(s.files for s in steps) == len(built)


@pytest.mark.parametrize(
    ("query", "no_romfs", "deployment"),
    [(QUERY_OK, False, "romfs"), (QUERY_DISABLED, False, "files"), (QUERY_OK, True, "files")],
)
def test_main_deploys_romfs_when_the_board_has_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    built: list[flash.Built],
    query: str,
    no_romfs: bool,
    deployment: str,
) -> None:
    out = built[-1].local.parent
    monkeypatch.setattr(flash, "BUILD_DIR", out)
    monkeypatch.setattr(flash, "build", lambda: built)
    monkeypatch.setattr(flash, "check_port", lambda port: port)  # no board here
    monkeypatch.setattr(flash, "to_repl", lambda port, yes, signer=None: False)
    monkeypatch.setattr(flash, "_BOOT_WAIT_S", 0.0)
    monkeypatch.setattr(flash, "ping", lambda port, signer=None: "node up")
    queried: list[str] = []

    def fake_query(port: str) -> int | None:
        queried.append(port)
        return flash.romfs_size(query)

    monkeypatch.setattr(flash, "query_romfs", fake_query)
    installed: list[list[flash.Step]] = []
    monkeypatch.setattr(flash, "install", lambda steps: installed.append(list(steps)))
    args = argparse.Namespace(build_only=False, port="/dev/ttyACM0", no_maintenance=False,
                              yes=True, no_romfs=no_romfs)
    assert flash.main(args) == 0
    assert queried == ([] if no_romfs else ["/dev/ttyACM0"])
    (steps,) = installed
    err = capsys.readouterr().err
    if deployment == "romfs":
        assert steps == flash.plan_romfs("/dev/ttyACM0", built, out / flash.ROMFS_IMAGE)
        assert "warning" not in err
    else:
        assert steps == flash.plan("/dev/ttyACM0", built)
        assert "warning:" in err and "less heap" in err


@pytest.mark.skipif(
    not os.environ.get("ILRS_BOARD"),
    reason="needs a Pico at the REPL: set ILRS_BOARD=/dev/ttyACM0 to query its ROMFS partition",
)
def test_query_a_real_board() -> None:
    size = flash.query_romfs(os.environ["ILRS_BOARD"])
    assert size is None or size > 0


def _times_out(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    raise subprocess.TimeoutExpired(list(argv), flash.MPREMOTE_TIMEOUT_S)


def test_an_mpremote_timeout_is_a_link_error_naming_the_step(built: list[flash.Built]) -> None:
    steps = flash.plan("/dev/ttyACM0", built, mpremote=["mpremote"])
    with pytest.raises(FlashTimeout) as caught:
        flash.install(steps, runner=_times_out, show=False)
    assert caught.value.exit_code == EXIT_LINK
    assert caught.value.step == steps[0].title
    assert str(caught.value) == (
        f"flash: {steps[0].title}: mpremote gave no answer within 120 s: the port is slow or "
        "the board is busy (check the cable, that no other program has the port open, and "
        "that the board is at the REPL; then flash again)")
    with pytest.raises(FlashTimeout, match=r"^flash: romfs query: mpremote gave no answer"):
        flash.query_romfs("/dev/ttyACM0", runner=_times_out)


def test_flash_through_a_slow_port_exits_with_the_link_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], built: list[flash.Built]
) -> None:
    from ground import cli

    monkeypatch.setattr(flash, "BUILD_DIR", built[-1].local.parent)
    monkeypatch.setattr(flash, "build", lambda: built)
    monkeypatch.setattr(flash, "_run", _times_out)
    monkeypatch.setattr(flash, "check_port", lambda port: port)  # no board here: say it is
    assert cli.main(["flash", "--port", "/dev/ttyACM0", "--no-maintenance"]) == EXIT_LINK
    err = capsys.readouterr().err
    assert "internal error" not in err and "TimeoutExpired" not in err
    assert "flash: romfs query: mpremote gave no answer within 120 s" in err


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["flash"], 2, "ground: error: flash: give the board's port, e.g. --port /dev/ttyACM0 ("),
        (
            ["flash", "--port", "/dev/ttyNOPE9"],
            3,
            "ground: error: cannot open port /dev/ttyNOPE9: no such device: is the board "
            "plugged in, with a data cable? (",
        ),
        (["flash", "--port", "sim"], 2, "ground: error: flash: the simulated node runs"),
    ],
)
def test_flash_checks_the_port_before_building(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    code: int,
    text: str,
) -> None:
    from ground import cli

    builds: list[int] = []
    monkeypatch.setattr(flash, "build", lambda: builds.append(1) or [])
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith(text) and err.count("\n") == 1, err
    assert builds == []  # asked before building


def test_mpremote_errors_are_named_once() -> None:
    def in_use(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            argv, 1, "", "mpremote: failed to access /dev/ttyACM0 (it may be in use by another "
            "program)\n"
        )

    with pytest.raises(FlashError) as info:
        flash.query_romfs("/dev/ttyACM0", runner=in_use)
    assert str(info.value) == (
        "flash: romfs query: mpremote: failed to access /dev/ttyACM0 (it may be in use by "
        "another program) (is the board at the REPL?)"
    )
    with pytest.raises(FlashError) as info:
        flash.install([flash.Step("copy", ["x"], 1)], runner=in_use, show=False)
    assert str(info.value).count("mpremote:") == 1
