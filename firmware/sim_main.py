"""Entry point of the simulated node on the MicroPython Unix port.

Run by ground/simnode.py, which provides the pty, the state directory, the reset cause and the
watchdog pipe through the environment (see board/sim.py), and chooses the deployment:

- ROMFS (the default, as on a Pico with a ROMFS partition): ``ILRS_ROMFS`` names the image
  (``build/simnode.romfs``, built by ``mpremote.romfs.make_romfs`` from the precompiled .mpy
  tree) and ``MICROPYPATH=.frozen``. The very first thing this script does, before importing
  anything that is not built in, is read the image into one bytearray, mount it at /rom
  (``vfs.VfsRom``) and put /rom first on sys.path. Imports then execute the .mpy bytecode in
  place, as a Pico does from its flash. On a Pico the image is in flash, outside the heap;
  here it has to be in the heap, so the host gives this process a heap of exactly 192K plus
  the image's allocation (``ground.simnode.romfs_heap_bytes``): what is left once the image
  is allocated is a Pico's 192K, the heap the node really has (gc.mem_free() counts it).
- filesystem .mpy (``--no-romfs``, as ``mpremote cp``): ``MICROPYPATH=build/simnode-mpy-O3:
  .frozen``; each import copies its bytecode into the heap.
- source (``--source``): ``MICROPYPATH=firmware:<repo>:.frozen``, compiled at import.

    ILRS_ROMFS=build/simnode.romfs MICROPYPATH=.frozen micropython -X heapsize=<192K + image> \\
        firmware/sim_main.py

The Unix port puts this script's directory (firmware/) first on sys.path; it is replaced (or
removed), so the node never imports the sources by accident in the precompiled modes.

stdout is the link: nothing may print to it. Diagnostics go to stderr (the host's node.log).
"""

import gc
import os
import sys

_romfs = os.getenv("ILRS_ROMFS")
if _romfs:
    import vfs

    gc.collect()  # the image goes low in the heap, below everything the node allocates
    _image = bytearray(os.stat(_romfs)[6])
    with open(_romfs, "rb") as _f:
        _f.readinto(_image)
    vfs.mount(vfs.VfsRom(_image), "/rom")  # pyright: ignore[reportAttributeAccessIssue]
    sys.path[0] = "/rom"
else:
    sys.path.pop(0)
if ".frozen" not in sys.path:  # MICROPYPATH replaces the default path, frozen asyncio too
    sys.path.append(".frozen")


def _escape_window():
    # As main.py on a Pico (board/escape.py): the keyboard interrupt off first, then the
    # escapes looked for in what arrives. The Unix port has no REPL to stay in: an escape
    # exits with EXIT_ESCAPE and the host leaves the node down until its next power cut.
    # A frame arriving while the interrupt is on raises KeyboardInterrupt (board/sim.py),
    # which ends this script as it would end main.py on a Pico.
    from board import escape
    from board.sim import EXIT_ESCAPE, Console

    window = escape.Window(Console(), int(os.getenv("ILRS_ESCAPE_MS") or 0))
    how = window.run()
    if how != escape.NONE:
        sys.stderr.write("node: escape at boot (" + escape.NAMES[how] + ")\n")
        sys.exit(EXIT_ESCAPE)
    rx = window.rx
    del window, escape
    sys.modules.pop("board.escape", None)  # as main.py: needed at boot only
    delattr(sys.modules["board"], "escape")
    return rx


def main():
    rx = _escape_window()
    try:
        import node

        node.preload()
        from board.sim import Board
        from node.app import run

        gc.collect()  # the imports' temporaries: the node's buffers then find room in one piece
        board = Board()
        board.boot_rx = rx
        run(board)
    except Exception as e:  # the Unix port would print it on stdout: the link
        sys.print_exception(e, sys.stderr)  # type: ignore[arg-type]
        sys.exit(1)


main()
