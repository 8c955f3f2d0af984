"""Stored sequences in flash (SPEC §12): the slots, the upload staging, triggers, run marks.

Files (in the board's flash root):
- ``seq<n>.bin`` slot n, a storage blob (atomic, checksummed): header ``<4sHHI`` (b"SEQ1",
  steps, image length, image hash), then ``steps + 1`` little-endian u16 offsets (where each
  step's bytes begin in the image, then the end of the last step), then the image itself.
  Written with storage.write_atomic: a power cut leaves the old file or the new one, whole.
- ``sequp.bin`` the upload in progress, a blob ``<BH32s`` (slot, size, digest), and
  ``sequp.dat`` the bytes held, appended part by part. A begin that restarts removes the
  data before it writes the new header, so a cut in between leaves the old header with no
  data (0 bytes held), never another image's bytes under a new header; a cut during an
  append leaves a prefix of the bytes sent (the commit's SHA-256 check is the last word).
- ``seqtrig.bin`` the four slots' triggers, a blob of 4 x ``<Bf`` (trigger, level).
- ``seqrun.bin`` the hash of the sequence each slot is running (0: not running), a blob of
  4 x ``<I``: written when a run starts and when it ends, read at boot (seq_interrupted).

Everything here allocates and touches the flash: boot, commands and once per step
(read_step reads one step's bytes into a caller's buffer).
"""

import os
import struct

from micropython import const

from node import storage

_SLOTS = const(4)
_HEADER = const(12)  # <4sHHI
_MAGIC = b"SEQ1"
_UP_META = const("sequp.bin")
_UP_DATA = const("sequp.dat")
_TRIG_FILE = const("seqtrig.bin")
_RUN_FILE = const("seqrun.bin")


def slot_name(slot):
    return "seq%d.bin" % slot


class SeqStore:
    def __init__(self, root):
        self.root = root
        # What the upload in progress is: slot (-1: none), size, digest, bytes held.
        self.up_slot = -1
        self.up_size = 0
        self.up_digest = b""
        self.up_held = 0

    # --- slots --------------------------------------------------------------------------

    def load_slot(self, slot):
        """(steps, hash) of the sequence stored in slot, or (0, 0) when it is empty or its
        file is corrupt (a corrupt slot is empty: never half a sequence)."""
        status, payload = storage.read_checked(self.root, slot_name(slot))
        if status != storage.OK or payload is None or len(payload) < _HEADER:
            return 0, 0
        magic, steps, size, h = struct.unpack_from("<4sHHI", payload, 0)
        if magic != _MAGIC or len(payload) != _HEADER + 2 * (steps + 1) + size:
            return 0, 0
        return steps, h

    def store_slot(self, slot, steps, h, offsets, image, size):
        """Write the slot atomically. offsets: steps + 1 offsets; image[0:size] the image.
        Raises OSError when the flash write fails (the old sequence is then intact)."""
        payload = bytearray(_HEADER + 2 * (steps + 1) + size)
        struct.pack_into("<4sHHI", payload, 0, _MAGIC, steps, size, h)
        pos = _HEADER
        for i in range(steps + 1):
            struct.pack_into("<H", payload, pos, offsets[i])
            pos += 2
        payload[pos:pos + size] = memoryview(image)[0:size]
        storage.write_atomic(self.root, slot_name(slot), payload)

    def delete_slot(self, slot):
        try:
            os.remove(storage.path(self.root, slot_name(slot)))
        except OSError:  # already empty
            pass

    def read_step(self, slot, index, buf):
        """Read step ``index`` of slot's sequence into buf; return its length (0: the slot
        file is gone or the step does not fit buf)."""
        try:
            with open(storage.path(self.root, slot_name(slot)), "rb") as f:
                head = f.read(_HEADER)
                steps, size = struct.unpack_from("<HH", head, 4)
                if index >= steps:
                    return 0
                f.seek(_HEADER + 2 * index)
                start, end = struct.unpack("<HH", f.read(4))
                n = end - start
                if n <= 0 or n > len(buf):
                    return 0
                f.seek(_HEADER + 2 * (steps + 1) + start)
                return f.readinto(memoryview(buf)[0:n])
        except (OSError, ValueError):
            return 0

    def read_image(self, slot):
        """The stored image of slot (bytes), or None."""
        status, payload = storage.read_checked(self.root, slot_name(slot))
        if status != storage.OK or payload is None or len(payload) < _HEADER:
            return None
        steps = struct.unpack_from("<H", payload, 4)[0]
        return payload[_HEADER + 2 * (steps + 1):]

    # --- upload staging -----------------------------------------------------------------

    def boot_upload(self):
        """Find the upload in progress left by an earlier boot."""
        status, meta = storage.read_checked(self.root, _UP_META)
        if status != storage.OK or meta is None or len(meta) != 35:
            self.up_slot = -1
            self.up_held = 0
            return
        slot, size, digest = struct.unpack("<BH32s", meta)
        self.up_slot = slot
        self.up_size = size
        self.up_digest = digest
        self.up_held = min(self._data_size(), size)

    def _data_size(self):
        try:
            return os.stat(storage.path(self.root, _UP_DATA))[6]
        except OSError:
            return 0

    def begin_upload(self, slot, size, digest):
        """Resume the upload in progress when it is this one, else start afresh. Returns the
        bytes held. Raises OSError when the flash write fails."""
        if slot == self.up_slot and size == self.up_size and digest == self.up_digest:
            return self.up_held
        self.discard_upload()  # data first, then the header (see the module docstring)
        with open(storage.path(self.root, _UP_DATA), "wb"):
            pass
        storage.write_atomic(self.root, _UP_META, struct.pack("<BH32s", slot, size, digest))
        self.up_slot = slot
        self.up_size = size
        self.up_digest = bytes(digest)
        self.up_held = 0
        return 0

    def append(self, offset, data):
        """Write the part data at offset (offset <= bytes held; bytes below held are not
        written again). Returns the bytes held. Raises OSError when the write fails."""
        held = self.up_held
        skip = held - offset
        if skip < len(data):
            with open(storage.path(self.root, _UP_DATA), "ab") as f:
                f.write(memoryview(data)[skip:])
            self.up_held = held = min(self._data_size(), self.up_size)
        return held

    def read_upload(self, buf):
        """Read the bytes held into buf (at least up_size long); return their number."""
        try:
            with open(storage.path(self.root, _UP_DATA), "rb") as f:
                return f.readinto(memoryview(buf)[0:self.up_size])
        except OSError:
            return 0

    def discard_upload(self):
        for name in (_UP_DATA, _UP_META):
            try:
                os.remove(storage.path(self.root, name))
            except OSError:
                pass
        self.up_slot = -1
        self.up_size = 0
        self.up_digest = b""
        self.up_held = 0

    # --- triggers and run marks ---------------------------------------------------------

    def load_triggers(self, triggers, levels):
        status, payload = storage.read_checked(self.root, _TRIG_FILE)
        if status != storage.OK or payload is None or len(payload) != 5 * _SLOTS:
            return
        for slot in range(_SLOTS):
            t, level = struct.unpack_from("<Bf", payload, 5 * slot)
            if t <= 4 and 0.0 <= level <= 100.0:
                triggers[slot] = t
                levels[slot] = level

    def store_triggers(self, triggers, levels):
        payload = bytearray(5 * _SLOTS)
        for slot in range(_SLOTS):
            struct.pack_into("<Bf", payload, 5 * slot, triggers[slot], levels[slot])
        storage.write_atomic(self.root, _TRIG_FILE, payload)

    def load_runs(self, hashes):
        status, payload = storage.read_checked(self.root, _RUN_FILE)
        if status != storage.OK or payload is None or len(payload) != 4 * _SLOTS:
            return
        for slot in range(_SLOTS):
            hashes[slot] = struct.unpack_from("<I", payload, 4 * slot)[0]

    def store_runs(self, hashes):
        payload = bytearray(4 * _SLOTS)
        for slot in range(_SLOTS):
            struct.pack_into("<I", payload, 4 * slot, hashes[slot])
        storage.write_atomic(self.root, _RUN_FILE, payload)
