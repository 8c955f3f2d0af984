"""The virtual Pico: the real rp2 firmware on an emulated RP2040, as a serial port.

    vpico                                 the UF2 from $ILRS_VPICO_UF2, a fresh flash
    vpico://?uf2=PATH&flash=FILE          a given UF2; FILE keeps the flash across runs
    vpico://?uf2=PATH&flash=FILE&deploy=files|romfs|no&key=dev|none

``VirtualPico`` boots a MicroPython RPI_PICO UF2 that the user supplies (the official download
or their own build; none is shipped) in the RP2040 emulator rp2040py, in a child process
(``ground.vpico_board``), and gives its USB CDC serial a pty (``.port``) that any serial
program opens like ``/dev/ttyACM0``: the ground, mpremote, miniterm. The pty belongs to this
supervisor, so an open port survives a power cut.

**Flash** is a file (``flash=``, default ``flash.img`` in a fresh temporary directory), written
through on every erase and program (see ground/vpico_board.py): ``power_cut()`` is SIGKILL of
the emulator at that instant and a boot from the flash as it was. Watchdog resets and
``machine.reset()`` happen inside the emulated chip, as on a board.

**Deploying the node**: with ``deploy`` not ``no``, ``start()`` deploys the node exactly as
``ground flash`` does (ground/flash.py: precompile with mpy-cross for armv6m, ``mpremote romfs
query``, then the ROMFS image or the .mpy files, ``main.py``, ``reset``) unless the flash
already holds this very build (a marker file beside the flash image records the build's and
the UF2's digest; the build is compiled beside the flash image too, so boards deploying at once
never share one). ``deploy=files`` forces the files deployment (``--no-romfs``); ``romfs``
or the default chooses as ``ground flash`` does (no stock RPI_PICO image has a ROMFS partition,
so the default deploys files there). The node is never changed for the emulator.

**The development key** (``key=dev``, the default, as for ``sim``): the deployment provisions
ground.auth's development key (``ground keys provision --board`` does the same to a Pico), so
the node boots ENFORCED, and a Client on the port signs with it by itself, its counters kept
beside the flash image (``flash.img.keys.json``: the node's replay window lives in that flash,
so they belong together; a deployment leaves the node's state as it was, so they are kept
across deployments). ``ground flash`` on a ``vpico`` URL provisions and signs the same way.
``key=none`` deploys an open node.

Known limits of the emulator (rp2040py 0.3), which tests state as skips or expected values:
ADC reads 0 (the die temperature reads 437 °C), output pins read back 0, ``machine.UART``
hangs, one core, a stray CR LF at USB connect (rp2040py sends ``\\r\\n`` to the board when it
enumerates, to wake a REPL prompt: the node's deframer discards it), one TCP client at a time
(its socket console; the pty here has no such limit). Emulated time runs about 34x slower than
wall time: see hil/timing.py for how the rig's waits follow that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import parse_qs, urlsplit

from ground.errors import UsageError
from ground.micropython import REPO_ROOT

VPICO: Final = "vpico"
UF2_ENV: Final = "ILRS_VPICO_UF2"
DEPLOY_CHOICES: Final = ("auto", "romfs", "files", "no")
# Emulated boot to USB enumeration is about 1.5 s of wall time; a loaded 2-core machine, a
# first boot that formats littlefs, or a watchdog reboot take longer.
_UP_TIMEOUT_S: Final = 120.0
# From the boot to the node's first housekeeping: the 2 s escape window and the imports of the
# node's modules at a clock 34x slow (measured one to four minutes).
NODE_TIMEOUT_S: Final = 600.0
# MicroPython's REPL prompt after a line end (the banner's last line, or an answer to CR LF)
REPL_PROMPT: Final = b"\n>>> "


class VirtualPicoError(RuntimeError):
    """The virtual Pico could not be started or deployed."""


def is_vpico(url: str) -> bool:
    return url == VPICO or url.startswith(VPICO + "://")


def vpico_options(url: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``vpico://?uf2=PATH&flash=FILE&deploy=files`` → VirtualPico keyword arguments.

    The UF2 comes from ``uf2=``, else ``$ILRS_VPICO_UF2``; neither is a usage error that names
    both. A UF2 that does not exist is one too.
    """
    env = os.environ if environ is None else environ
    query = urlsplit(url).query if "://" in url else ""
    options: dict[str, Any] = {"dev_key": True}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if key == "key":
            if value not in ("dev", "none"):
                raise UsageError(f"{url}: key={value!r}: dev (the development key) or none")
            options["dev_key"] = value == "dev"
        elif key == "uf2":
            options["uf2"] = value
        elif key == "flash":
            options["flash"] = value
        elif key == "deploy":
            if value not in DEPLOY_CHOICES:
                raise UsageError(f"{url}: deploy={value!r}: one of {', '.join(DEPLOY_CHOICES)}")
            options["deploy"] = value
        else:
            raise UsageError(f"{url}: unknown vpico option {key!r} (uf2, flash, deploy, key)")
    uf2 = options.get("uf2") or env.get(UF2_ENV) or ""
    if not uf2:
        raise UsageError(f"{url}: no MicroPython UF2 for the virtual Pico: give "
                         f"vpico://?uf2=PATH or set ${UF2_ENV} (a MicroPython RPI_PICO UF2, "
                         "v1.23 or newer)")
    if not Path(uf2).is_file():
        raise UsageError(f"{url}: UF2 {uf2} does not exist (${UF2_ENV} or uf2=)")
    options["uf2"] = uf2
    return options


def url_signer(url: str) -> Any:
    """The Signer a Client on a ``vpico`` URL signs with by itself: the development key's
    (``key=dev``, the default), its counters continued from the store beside a given flash
    image; None for ``key=none``. A board on a new temporary flash is a new node: its
    counters start from 0, as the node's replay window does."""
    from ground.auth import dev_signer
    from ground.keys import dev_key_signer

    options = vpico_options(url)
    if not options["dev_key"]:
        return None
    if options.get("flash"):
        return dev_key_signer(key_store_of(Path(options["flash"])))
    return dev_signer()


def open_unless_keyed(url: str) -> str:
    """``url`` with ``key=none`` unless it gives ``key=``: an open node, as the fuzzer's
    simulated node is unless asked (ground fuzz: its campaign commands are plain)."""
    query = urlsplit(url).query if "://" in url else ""
    if "key" in parse_qs(query, keep_blank_values=True):
        return url
    base = url if "://" in url else VPICO + "://"
    return base + ("&" if query else ("" if base.endswith("?") else "?")) + "key=none"


def key_store_of(flash: Path) -> Path:
    """Where a board's development-key counters are kept: beside its flash image."""
    return flash.with_name(flash.name + ".keys.json")


def missing_uf2_reason(environ: dict[str, str] | None = None) -> str | None:
    """Why vpico tests cannot run here (no UF2 given), or None when they can."""
    env = os.environ if environ is None else environ
    uf2 = env.get(UF2_ENV, "")
    if not uf2:
        return (f"no MicroPython RPI_PICO UF2 for the virtual Pico: set ${UF2_ENV}=PATH "
                "(the official download or your own build)")
    if not Path(uf2).is_file():
        return f"${UF2_ENV}={uf2} does not exist"
    return None


def rp2040py_missing() -> str | None:
    """Why the emulator cannot be imported here, or None."""
    try:
        import rp2040py  # noqa: F401
    except ImportError as exc:
        return f"rp2040py is not installed ({exc}): run `make venv`"
    return None


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class VirtualPico:
    """One virtual Pico: a pty, a supervised emulator process, a flash image file."""

    def __init__(self, uf2: str | os.PathLike[str], flash: str | os.PathLike[str] | None = None,
                 deploy: str = "auto", log_path: str | os.PathLike[str] | None = None,
                 python: str | None = None, dev_key: bool = False) -> None:
        """``dev_key``: the deployment provisions the development key (module docstring)."""
        if deploy not in DEPLOY_CHOICES:
            raise VirtualPicoError(f"deploy={deploy!r}: one of {', '.join(DEPLOY_CHOICES)}")
        self.uf2 = Path(uf2).resolve()
        if not self.uf2.is_file():
            raise VirtualPicoError(f"UF2 {self.uf2} does not exist")
        self.flash = Path(flash) if flash else Path(
            tempfile.mkdtemp(prefix="ilrs-vpico-")) / "flash.img"
        self.deploy = deploy
        self.dev_key = dev_key
        self.log_path = Path(log_path) if log_path else self.flash.with_suffix(".log")
        self.python = python or sys.executable
        self.port = ""
        self.boots = 0  # emulator processes started (power-ons)
        self.enumerations = 0  # USB enumerations seen (boots, watchdog and commanded resets)
        self.returncode: int | None = None
        self.deployment = ""  # what deploy() did: "romfs", "files", "kept" or ""
        self._master = -1
        self._slave = -1
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.RLock()
        self._up = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None

    # --- public API -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def emulator_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> VirtualPico:
        """Open the pty, boot the emulator, wait for USB, deploy the node if asked."""
        if self._master >= 0:
            raise VirtualPicoError("already started")
        self.flash.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab", buffering=0)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        try:
            self._spawn()
            self.wait_up(1)
            if self.deploy != "no":
                self.deploy_node()
                self.wait_node()
            elif self.marker.exists():  # a node deployed there: let it boot, so it answers
                self.wait_node()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the emulator (by pid) and close the pty. The flash image is kept."""
        self._stopping.set()
        with self._lock:
            self._kill()
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
        if self._log is not None:
            self._log.close()
            self._log = None

    def power_cut(self, off_s: float = 0.0) -> None:
        """SIGKILL the emulator now; after off_s seconds power on again from the flash file."""
        with self._lock:
            self._kill()
        if off_s > 0:
            time.sleep(off_s)
        with self._lock:
            if not self._stopping.is_set():
                self._spawn()

    def wait_up(self, count: int, timeout_s: float = _UP_TIMEOUT_S) -> int:
        """Wait until the board has enumerated on USB ``count`` times in all."""
        deadline = time.monotonic() + timeout_s
        with self._up:
            while self.enumerations < count:
                if self.returncode is not None:
                    raise VirtualPicoError(f"the emulator exited with code {self.returncode}; "
                                           f"log: {self.log_path}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VirtualPicoError(f"the virtual Pico did not come up on USB within "
                                           f"{timeout_s:g} s; log: {self.log_path}")
                self._up.wait(min(left, 0.5))
        return self.enumerations

    def wait_node(self, timeout_s: float = NODE_TIMEOUT_S, repl: bool = False) -> str:
        """Wait until the node sends housekeeping: its boot escape window is over and its
        tasks run (its first events come earlier, while it still starts up: a command then
        waits many seconds at a clock 34x slow). Returns ``"node"``.

        Until then a byte 0x03 from the ground (every command frame has one) reaches a firmware
        whose keyboard interrupt may still be on (issue 10), and the window lasts 2 s of
        emulated time, about a minute of wall time. Reads the pty from the supervisor's side
        before any client has opened it; what it reads (housekeeping) is dropped.

        With ``repl``, a REPL prompt ends the wait too and returns ``"repl"``: no node runs on
        this flash (none deployed, or a deployment that stopped half way and left a main.py
        that fails). The emulator's CR LF at USB connect wakes the prompt.
        """
        deadline = time.monotonic() + timeout_s
        watch = NodeUp()
        tail = b""
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise VirtualPicoError(f"the emulator exited with code {self.returncode}; "
                                       f"log: {self.log_path}")
            ready, _, _ = select.select([self._slave], [], [], 0.5)
            if not ready:
                continue
            data = os.read(self._slave, 4096)
            if watch.feed(data):
                self._note("the node is up: housekeeping received")
                return "node"
            tail = (tail + data)[-64:]
            if repl and REPL_PROMPT in tail:
                self._note("a REPL prompt: no node runs on this flash")
                return "repl"
        raise VirtualPicoError(f"the node sent nothing within {timeout_s:g} s of its boot "
                               "(no housekeeping" + (", no REPL prompt" if repl else "") + "); "
                               f"log: {self.log_path}")

    def __enter__(self) -> VirtualPico:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- deployment -------------------------------------------------------------------------

    @property
    def marker(self) -> Path:
        return self.flash.with_name(self.flash.name + ".deployed")

    @property
    def pristine(self) -> Path:
        """The flash as deployed, before the node first ran (a brand-new node's flash)."""
        return self.flash.with_name(self.flash.name + ".pristine")

    @property
    def build_dir(self) -> Path:
        """Where this board's node is compiled before a deployment (``ground flash``'s
        build/pico/ layout), beside its flash image."""
        return self.flash.with_name(self.flash.name + ".build")

    @property
    def key_store(self) -> Path:
        """The development key's counters for this board (``key=dev``)."""
        return key_store_of(self.flash)

    def key_steps(self) -> list[Any]:
        """The mpremote steps (ground.flash.Step) that provision the development key, for a
        deployment to run before its reset; none for ``key=none``. The counters beside the
        flash are kept: a deployment leaves the node's state, its replay window with it, as
        it was (only counters lower than the node's are refused, higher ones never)."""
        if not self.dev_key:
            return []
        from ground import keys
        from ground.auth import dev_key_table

        table = self.build_dir / "keys.bin"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_bytes(dev_key_table())
        return keys.provision_steps(self.port, table)

    def signer(self) -> Any:
        """The development key's Signer for this board, its counters from beside the flash;
        None for ``key=none``."""
        if not self.dev_key:
            return None
        from ground.keys import dev_key_signer

        return dev_key_signer(self.key_store)

    def digest(self, built: list[Any], deploy: str) -> str:
        """What the deployment marker records: this UF2, this build, how it was deployed,
        with which key."""
        key = ":key=dev" if self.dev_key else ""
        return _digest([self.uf2, *sorted(b.local for b in built)]) + ":" + deploy + key

    def record_deployment(self, built: list[Any], deploy: str) -> None:
        """Say that the flash now holds this build (``ground flash`` deployed it)."""
        self.marker.write_text(self.digest(built, deploy) + "\n")

    def deploy_node(self) -> str:
        """Deploy the node as ``ground flash`` does, unless the flash holds this build."""
        from ground import flash as flashing

        # its own build folder: two boards deploying at once (pytest-xdist workers) would
        # otherwise delete and rewrite one build/pico/ under each other
        built = flashing.build(out=self.build_dir)
        digest = self.digest(built, self.deploy)
        if self.marker.exists() and self.marker.read_text().strip() == digest and (
                self.key_store.exists() or not self.dev_key):
            self.deployment = "kept"
            return self.deployment
        self.marker.unlink(missing_ok=True)
        image = self.build_dir / flashing.ROMFS_IMAGE
        use_romfs = self.deploy != "files"
        size = flashing.query_romfs(self.port) if use_romfs else None
        decision = flashing.choose(size, image.stat().st_size, use_romfs)
        steps = (flashing.plan_romfs(self.port, built, image)
                 if decision.deployment == flashing.ROMFS else flashing.plan(self.port, built))
        steps[-1:-1] = self.key_steps()  # before the node first runs: it boots ENFORCED
        flashing.install(steps[:-1], runner=_run_slow, show=False)
        # the flash file is written through: as it is now, it is a node that never ran
        shutil.copyfile(self.flash, self.pristine)
        before = self.enumerations
        flashing.install(steps[-1:], runner=_run_slow, show=False)  # `reset`
        self.wait_up(before + 1)
        self.record_deployment(built, self.deploy)
        self.deployment = decision.deployment
        self._note(f"deployed the node: {decision.deployment}"
                   + (f" ({decision.warning})" if decision.warning else ""))
        return self.deployment

    # --- the emulator process ---------------------------------------------------------------

    def _spawn(self) -> None:
        self._note(f"--- power on {self.boots + 1}: {self.uf2.name}, flash {self.flash}")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", "ground.vpico_board", "--uf2", str(self.uf2),
                 "--flash", str(self.flash), "--serial-fd", str(self._master)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
                pass_fds=(self._master,), env=env, close_fds=True, start_new_session=True)
        except OSError as exc:
            raise VirtualPicoError(f"cannot start the emulator: {exc}") from None
        self.boots += 1
        self.returncode = None
        proc = self._proc
        self._reader = threading.Thread(target=self._watch, args=(proc,),
                                        name=f"vpico-supervisor {proc.pid}", daemon=True)
        self._reader.start()

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        out = proc.stdout
        assert out is not None
        for line in out:
            if line.strip() == b"up":
                with self._up:
                    self.enumerations += 1
                    self._up.notify_all()
        code = proc.wait()
        with self._up:
            if proc is self._proc and not self._stopping.is_set():
                self.returncode = code
                self._note(f"the emulator exited with code {code}")
            self._up.notify_all()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, 9)
            proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        self._proc = None

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.write(f"[vpico {time.strftime('%H:%M:%S')}] {text}\n".encode())


class NodeUp:
    """Fed the bytes from a node, says when a housekeeping message has arrived."""

    def __init__(self) -> None:
        from ground.link import Deframer

        self._deframer = Deframer()

    def feed(self, data: bytes) -> bool:
        import cbor2

        from ground.link import Frame
        from protocol.messages import KIND_HOUSEKEEPING

        for item in self._deframer.feed(data):
            if not isinstance(item, Frame):
                continue
            try:
                message = cbor2.loads(item.message)
            except Exception:  # any undecodable frame is simply not it
                continue
            if isinstance(message, list) and len(message) > 1 and \
                    message[1] == KIND_HOUSEKEEPING:
                return True
        return False


def _run_slow(argv: Any) -> subprocess.CompletedProcess[str]:
    """mpremote against the emulated board: the same commands, a longer patience."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=1800, check=False)

