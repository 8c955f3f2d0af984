"""Files on the node's flash: atomic, checksummed blobs (parameters, boot count, keys...).

A blob file is ``payload || crc32_le(payload)``. ``write_atomic`` writes ``name.tmp`` and
renames it over ``name``: a reader sees the old file or the new one, never half of one (a
rename is atomic on littlefs and on POSIX). ``read_checked`` tells a missing file from a
corrupt one. Everything here allocates: boot time and commands only.
"""

import os
import struct

from micropython import const

from protocol.crc import crc32

OK = const(0)
MISSING = const(1)
CORRUPT = const(2)


def path(root, name):
    return root + "/" + name


def write_atomic(root, name, payload):
    """Persist payload atomically. Raises OSError if the flash write fails."""
    final = path(root, name)
    tmp = final + ".tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.write(struct.pack("<I", crc32(payload)))
    try:
        os.rename(tmp, final)
    except OSError:  # a filesystem that will not rename over a file
        try:
            os.remove(final)
        except OSError:
            pass
        os.rename(tmp, final)


def read_checked(root, name):
    """(OK, payload), (MISSING, None) or (CORRUPT, None)."""
    try:
        with open(path(root, name), "rb") as f:
            data = f.read()
    except OSError:
        return MISSING, None
    if len(data) < 4:
        return CORRUPT, None
    payload = data[:-4]
    if struct.unpack("<I", data[-4:])[0] != crc32(payload):
        return CORRUPT, None
    return OK, payload
