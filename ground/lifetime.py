"""Processes and folders that end with the process that made them.

Three tools, used by the simulated node's host (``ground.simnode``) and the CLI:

- ``die_with_parent(parent_pid)``: a ``preexec_fn`` for ``subprocess.Popen``. On Linux it
  calls ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child, so the kernel kills the child when
  the *thread* that started it ends, however the process ends (SIGKILL included). Start such
  children from a thread that lives as long as the child should (SimNode's supervisor). macOS
  and the BSDs have no equivalent: there the child is stopped by a clean exit, SIGINT, SIGTERM
  or SIGHUP (see ``terminate_on_signals``) and survives only a SIGKILL of its parent.
- ``OwnedDir``: a temporary folder (``tempfile.mkdtemp``) holding a lock file that its owner
  keeps ``flock``-ed while it lives. ``remove()`` deletes it at a clean end; a folder whose
  owner died without cleaning up (SIGKILL, a crash) has a free lock, and ``sweep_stale()``
  (called whenever a new one is made) removes it. Folders without a lock file are never
  touched.
- ``terminate_on_signals()``: while active, SIGTERM and SIGHUP raise ``Terminated`` in the main
  thread, so ``finally`` blocks and context managers run (the node is stopped, the temporary
  folder removed) as they do for Ctrl-C. The CLI turns it into exit code 128 + signal.
- ``shielded()``: a clean-up that a Ctrl-C (or SIGTERM, SIGHUP) arriving meanwhile must not cut
  short; the signal is delivered again once it is done.
- ``first_interrupt_held(on_hold)``: a step that should finish (a command waiting for its
  verification): a first Ctrl-C is noted and ``on_hold()`` called, a second one interrupts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Final

if os.name == "posix":
    import fcntl
# (Windows has no simulated node, which needs a pty; the CLI only uses the signal tools there.)

LOCK_NAME: Final = ".owner.lock"
_PR_SET_PDEATHSIG: Final = 1


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC: Final = _load_libc()  # loaded in the parent: the child only calls it


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn that makes the child die with its parent (Linux); None elsewhere."""
    libc = _LIBC
    if libc is None:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl: follow it now
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def pdeathsig_supported() -> bool:
    return _LIBC is not None


# --- temporary folders -----------------------------------------------------------------------


def _try_lock(path: Path) -> int | None:
    """Open and flock ``path`` without waiting; the fd, or None when another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def sweep_stale(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the folders ``parent/prefix*`` whose owner is gone; return them."""
    removed = []
    for folder in (parent or Path(tempfile.gettempdir())).glob(prefix + "*"):
        lock = folder / LOCK_NAME
        if not lock.is_file():
            continue  # not made by OwnedDir (or not yet locked): never ours to remove
        fd = _try_lock(lock)
        if fd is None:
            continue  # its owner is alive
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


class OwnedDir:
    """A temporary folder locked by this process while it lives; see the module docstring."""

    def __init__(self, prefix: str) -> None:
        sweep_stale(prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        # Lock a file under another name, then rename it: a sweeper never sees it unlocked.
        tmp = self.path / (LOCK_NAME + ".new")
        self._fd: int | None = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(tmp, self.path / LOCK_NAME)

    def remove(self) -> None:
        """Delete the folder and everything in it (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(fd)


# --- signals -----------------------------------------------------------------------------


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like KeyboardInterrupt, then exit 128 + signum."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


TERMINATING_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Terminated while active (main thread only; elsewhere a no-op).

    Only the first signal raises: a second one during the clean-up is ignored, so the clean-up
    finishes (SIGKILL remains for a clean-up that hangs).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in TERMINATING_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then deliver the first again
    (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    held = (signal.SIGINT, *TERMINATING_SIGNALS)
    previous = {s: signal.signal(s, hold) for s in held}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if pending:
        signal.raise_signal(pending[0])


@contextlib.contextmanager
def first_interrupt_held(on_hold: Callable[[], None]) -> Iterator[list[int]]:
    """Hold a first SIGINT while the block runs: ``on_hold()`` is called and the yielded list
    gets the signal, for the caller to act on once the block is done; a second SIGINT raises
    KeyboardInterrupt at once (main thread only; elsewhere nothing is held)."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, _frame: FrameType | None) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)
        on_hold()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
