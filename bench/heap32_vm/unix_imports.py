"""The node's imports on the MicroPython Unix port (64-bit), from .mpy files or from a ROMFS
image. bench/heap32.py runs it both ways on the same bytecode tree to calibrate its ROMFS
estimate (this port has ROMFS; the 32-bit VM has not).

    ILRS_TREE=DIR micropython unix_imports.py          # the .mpy files in DIR
    ILRS_ROMFS=IMAGE micropython unix_imports.py       # the image, mounted at /rom

Prints micropython.qstr_info() before and after the imports, then the heap they took (bytes)
as the last line.
"""

import gc
import os
import sys

import micropython

image = os.getenv("ILRS_ROMFS")
if image:  # as firmware/sim_main.py: the image in one bytearray, mounted, /rom first
    import vfs

    gc.collect()
    data = bytearray(os.stat(image)[6])
    with open(image, "rb") as f:
        f.readinto(data)
    vfs.mount(vfs.VfsRom(data), "/rom")  # pyright: ignore[reportAttributeAccessIssue]
    sys.path[:] = ["/rom", ".frozen"]
else:
    sys.path[:] = [os.getenv("ILRS_TREE"), ".frozen"]

gc.collect()
micropython.qstr_info()
before = gc.mem_free()
import board.rp2  # noqa: E402, F401
import node  # noqa: E402

node.preload()
import node.app  # noqa: E402

gc.collect()
used = before - gc.mem_free()
micropython.qstr_info()
print(used)
