"""CRC-32/ISO-HDLC (zlib's, ``binascii.crc32``), appended little-endian to a message (SPEC §3).

``crc32(data, value=0) -> int`` is ``binascii.crc32``, native on both interpreters.

Frame helpers that work on a region of a buffer without allocating (the node's tx/rx paths):

- ``crc32_append(buf, start, end)`` writes the CRC of ``buf[start:end]`` little-endian into
  ``buf[end:end+4]``.
- ``crc32_check(buf, start, end) -> bool``: True when ``buf[start:end]`` is a message followed by
  its little-endian CRC. It uses the CRC's residue: the CRC of any message followed by its own
  CRC is the constant ``CRC32_RESIDUE``.

On MicroPython these run a table-driven CRC in viper that writes the CRC's bytes straight into
a buffer (a nibble table, 16 words: it costs 64 bytes of RAM where a byte table costs 1 KB, for
two lookups per byte instead of one), because ``binascii`` needs a memoryview slice of the
region (an allocation) and returns values of 2**30 and more as heap integers on a 32-bit port.
On CPython they use ``binascii``. Not reentrant on MicroPython (one scratch buffer): call from
one thread.
"""

import struct
from binascii import crc32 as _binascii_crc32

from protocol.compat import MICROPYTHON, const

CRC32_SIZE = const(4)
CRC32_RESIDUE = const(0x2144DF1C)
_POLY_REFLECTED = const(0xEDB88320)


def crc32(data, value: int = 0) -> int:
    """CRC-32/ISO-HDLC of ``data`` (any buffer), continuing from ``value``."""
    return _binascii_crc32(data, value)


def _make_table():
    # The CRC of each 4-bit value (reflected), then the register's initial value and final XOR.
    import array

    table = array.array("I", bytes(4 * 17))
    for i in range(16):
        c = i
        for _ in range(4):
            c = (c >> 1) ^ _POLY_REFLECTED if c & 1 else c >> 1
        table[i] = c
    table[16] = 0xFFFFFFFF
    return table


if MICROPYTHON:
    import micropython

    _TABLE = _make_table()
    _SCRATCH = bytearray(CRC32_SIZE)

    @micropython.viper
    def _crc_into(table: ptr32, buf: ptr8, start: int, end: int, dst: ptr8, d: int):
        # uint: logical shifts on a 32-bit port; ptr8 stores keep the low byte.
        init = uint(table[16])
        c = init
        i = start
        while i < end:
            c = c ^ uint(buf[i])
            c = uint(table[c & 0xF]) ^ (c >> 4)
            c = uint(table[c & 0xF]) ^ (c >> 4)
            i += 1
        c ^= init
        dst[d] = c
        dst[d + 1] = c >> 8
        dst[d + 2] = c >> 16
        dst[d + 3] = c >> 24

    def crc32_append(buf, start: int, end: int) -> None:
        """Write the CRC of ``buf[start:end]`` little-endian to ``buf[end:end+4]`` (no alloc)."""
        if start < 0 or end < start or end + CRC32_SIZE > len(buf):
            raise ValueError("crc32_append: region outside the buffer")
        _crc_into(_TABLE, buf, start, end, buf, end)  # pyright: ignore[reportArgumentType]

    def crc32_check(buf, start: int, end: int) -> bool:
        """True if ``buf[start:end]`` is a message and its little-endian CRC (no alloc)."""
        if start < 0 or end > len(buf) or end - start < CRC32_SIZE:
            return False
        s = _SCRATCH
        b = end - CRC32_SIZE
        _crc_into(_TABLE, buf, start, b, s, 0)  # pyright: ignore[reportArgumentType]
        ok = s[0] == buf[b] and s[1] == buf[b + 1]
        return ok and s[2] == buf[b + 2] and s[3] == buf[b + 3]

else:

    def crc32_append(buf, start: int, end: int) -> None:
        """Write the CRC of ``buf[start:end]`` little-endian to ``buf[end:end+4]``."""
        if start < 0 or end < start or end + CRC32_SIZE > len(buf):
            raise ValueError("crc32_append: region outside the buffer")
        struct.pack_into("<I", buf, end, _binascii_crc32(memoryview(buf)[start:end]))

    def crc32_check(buf, start: int, end: int) -> bool:
        """True if ``buf[start:end]`` is a message and its little-endian CRC."""
        if start < 0 or end > len(buf) or end - start < CRC32_SIZE:
            return False
        return _binascii_crc32(memoryview(buf)[start:end]) == CRC32_RESIDUE
