"""Stored sequences in flash (SPEC §12): what the sequencer reads while it runs and at boot.

Files (in the board's flash root):
- ``seq<n>.bin`` slot n, a storage blob (atomic, checksummed): a 32-byte header
  ``<4sHHIB16s`` (b"SEQ1", steps, image length, image hash, name length, name), 257
  little-endian u16 offsets (where each step's bytes begin in the image, then the end of the
  last step), then the image itself from byte IMAGE on. Written whole with
  storage.write_atomic (node.seqcmds): a power cut leaves the old file or the new one.
- ``sequp.bin`` the upload in progress, a blob ``<BH32s`` (slot, size, digest), and
  ``sequp.dat`` the bytes held, appended part by part (node.seqcmds says how a cut is met).
- ``seqtrig.bin`` the four slots' triggers, a blob of 4 x ``<Bf`` (trigger, level).
- ``seqrun.bin`` the hash of the sequence each slot is running (0: not running), a blob of
  4 x ``<I``: written when a run starts and when it ends (node.sequencer), read at boot
  (seq_interrupted).

What reads them at boot and writes slots, staging and triggers is in node.seqcmds, loaded
only while it works; this module is imported by it and by node.seqrun and let go with them.
Everything here allocates and touches the flash: once per step (read_step reads one step's
bytes into a caller's buffer), the upload.
"""

import os
import struct

from micropython import const

from node import storage

SLOTS = const(4)
HEADER = const(32)  # <4sHHIB16s, padded
IMAGE = const(546)  # HEADER + 2 * (256 + 1): where the image begins
MAGIC = b"SEQ1"
UP_META = "sequp.bin"
UP_DATA = "sequp.dat"
TRIG_FILE = "seqtrig.bin"
RUN_FILE = "seqrun.bin"


def slot_name(slot):
    return "seq" + str(slot) + ".bin"


def slot_path(root, slot):
    return storage.path(root, slot_name(slot))


def read_step(root, slot, index, buf):
    """Read step ``index`` of slot's sequence into buf; return its length (0: the slot file is
    gone or the step does not fit buf)."""
    try:
        with open(slot_path(root, slot), "rb") as f:
            f.seek(4)
            if index >= struct.unpack("<H", f.read(2))[0]:
                return 0
            f.seek(HEADER + 2 * index)
            start, end = struct.unpack("<HH", f.read(4))
            n = end - start
            if n <= 0 or n > len(buf):
                return 0
            f.seek(IMAGE + start)
            return f.readinto(memoryview(buf)[0:n])
    except (OSError, ValueError):
        return 0


def upload_held(root, size):
    """Bytes held of the upload in progress (the staging data, at most size)."""
    try:
        return min(os.stat(storage.path(root, UP_DATA))[6], size)
    except OSError:
        return 0
