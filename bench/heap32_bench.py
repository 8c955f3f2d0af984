"""The node's heap on 32 bits, and the free heap it leaves on a stock Pico: the heap target.

The node booted in a real 32-bit MicroPython VM (bench/heap32.py says how, and what is
estimated): its heap use with .mpy files on the filesystem (a stock Pico: MicroPython v1.28
RPI_PICO has no ROMFS) and from a ROMFS image, and the free heap each leaves of the 241,472 B a
stock Pico has at a bare REPL. Target: >= 120 KB free with .mpy files. Beside them, the ratio
to the figure the real firmware reported for the same state on the emulated Pico
(bench/heap32.py EMULATED_FREE), and the parts of the figures.

    python -m bench.heap32_bench [--json]
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from bench import Row, print_section, row
from bench.heap32 import (
    EMULATED_COMMIT,
    EMULATED_FREE,
    PICO_REPL_FREE,
    Heap32,
    measure,
)

SECTION: Final = "node heap on 32 bits (MicroPython WebAssembly VM; a stock Pico v1.28)"
HEAP_TARGET: Final = 120 * 1024  # bytes free on a stock Pico with .mpy files (KB = 1024 B)


def rows(h: Heap32) -> list[Row]:
    """The section's rows from one measurement."""
    emulated_use = PICO_REPL_FREE - EMULATED_FREE
    return [
        row(f"free heap on a stock Pico, .mpy files ({PICO_REPL_FREE:,} - node's use; "
            "target >= 120 KB = 122,880 B)", h.files_free, "B", f">= {HEAP_TARGET:,}",
            h.files_free >= HEAP_TARGET),
        row("free heap on a Pico with a ROMFS partition (estimated)", h.romfs_free, "B"),
        row("node's heap use on 32 bits, .mpy files (VM measured + armv6m native code)",
            h.files_use, "B"),
        row("node's heap use on 32 bits, ROMFS (estimated)", h.romfs_use, "B"),
        row(f"use / the emulated Pico's at boot ({emulated_use:,} B: {EMULATED_FREE:,} B free, "
            f"the real firmware, node of {EMULATED_COMMIT})", h.files_use / emulated_use, "x"),
        row("measured in the VM: boot and one loop pass (.mpy files, pure twins)", h.vm_use,
            "B"),
        row("of which the node's imports", h.vm_modules, "B"),
        row("native code the Pico holds for the native/viper functions (armv6m)",
            h.native_code, "B"),
        row("bytecode the VM holds for them instead (taken off)", h.native_twins, "B"),
        row("bytecode, constants and qstr text a ROMFS import leaves in flash (estimated)",
            h.in_place, "B"),
        row("ROMFS estimate's calibration: 64-bit port's measured / modelled savings",
            h.calibration, "x"),
        *[row(f"free heap on a stock Pico with node.{name} loaded (imported only when needed)",
              h.files_free - use, "B") for name, use in h.lazy.items()],
        row("left in the heap once all of those are let go (their interned qstrs)",
            h.lazy_residue, "B"),
    ]


def run() -> list[Row]:
    return rows(measure())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.heap32_bench", description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return print_section(SECTION, run(), args.json)


if __name__ == "__main__":
    sys.exit(main())
