"""Consistent Overhead Byte Stuffing (Cheshire and Baker 1999), SPEC §2.

COBS removes every 0x00 byte from a byte string at a cost of at most one byte per 254 (plus
one). The output is byte for byte what the ``cobs`` package (``cobs.cobs``) produces: a
final block of 254 data bytes is not followed by an empty block.

- ``encode(data) -> bytes`` (allocates the result).
- ``decode(data) -> bytes``: raises ``FrameError`` on a zero byte or on a block whose code
  points past the end (a *truncated* frame).
- ``encode_into(src, dst, dst_start=0, src_start=0, src_end=-1) -> int``: encodes
  ``src[src_start:src_end]`` into ``dst`` from ``dst_start`` and returns the index just past
  the last byte written. It allocates nothing on MicroPython (a viper loop); ``dst`` needs
  ``max_encoded_size(n)`` bytes free.
"""

from protocol.compat import MICROPYTHON, const
from protocol.errors import FrameError

_BLOCK = const(254)  # data bytes in a full block (code 0xFF)
_ZERO = const(b"\x00")


def max_encoded_size(n: int) -> int:
    """Largest COBS encoding of ``n`` bytes (delimiters not included)."""
    return n + n // _BLOCK + 1


def _encode_py(src, s: int, e: int, dst, d: int) -> int:
    # Block copies with find(): C speed on CPython. src is bytes or bytearray.
    while True:
        z = src.find(_ZERO, s, e)
        stop = e if z < 0 else z
        while stop - s >= _BLOCK:
            dst[d] = 0xFF
            dst[d + 1 : d + 1 + _BLOCK] = src[s : s + _BLOCK]
            d += 1 + _BLOCK
            s += _BLOCK
            if s == e:
                return d
        run = stop - s
        dst[d] = run + 1
        dst[d + 1 : d + 1 + run] = src[s:stop]
        d += 1 + run
        if z < 0:
            return d
        s = z + 1


if MICROPYTHON:
    import micropython

    @micropython.viper
    def _encode_v(src: ptr8, s: int, e: int, dst: ptr8, d: int) -> int:
        code_pos = d
        d += 1
        code = 1
        i = s
        while i < e:
            b = src[i]
            if b == 0:
                dst[code_pos] = code
                code_pos = d
                d += 1
                code = 1
            else:
                dst[d] = b
                d += 1
                code += 1
                if code == 0xFF:
                    dst[code_pos] = 0xFF
                    if i + 1 == e:
                        return d
                    code_pos = d
                    d += 1
                    code = 1
            i += 1
        dst[code_pos] = code
        return d


def encode_into(src, dst, dst_start: int = 0, src_start: int = 0, src_end: int = -1) -> int:
    """COBS-encode ``src[src_start:src_end]`` into ``dst`` at ``dst_start``; return the end index.

    Allocation-free on MicroPython. Raises FrameError if ``dst`` is too small.
    """
    if src_end < 0:
        src_end = len(src)
    if src_start < 0 or src_start > src_end or src_end > len(src):
        raise FrameError("COBS source range outside the buffer")
    if dst_start < 0 or dst_start + max_encoded_size(src_end - src_start) > len(dst):
        raise FrameError("COBS destination too small")
    if MICROPYTHON:
        return _encode_v(src, src_start, src_end, dst, dst_start)
    if isinstance(src, memoryview):
        src = bytes(src)
    return _encode_py(src, src_start, src_end, dst, dst_start)


def encode(data) -> bytes:
    """COBS-encode ``data`` (no delimiters)."""
    out = bytearray(max_encoded_size(len(data)))
    n = encode_into(data, out)
    return bytes(out[:n])


def decode(data) -> bytes:
    """Decode one COBS-encoded frame (no delimiters). Raises FrameError if malformed."""
    if isinstance(data, memoryview):
        data = bytes(data)
    n = len(data)
    out = bytearray()
    i = 0
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("zero byte in COBS data")
        j = i + code
        if j > n:
            raise FrameError("truncated COBS block: code points past the end")
        if data.find(_ZERO, i + 1, j) >= 0:
            raise FrameError("zero byte in COBS data")
        out += data[i + 1 : j]
        if code < 0xFF and j < n:
            out.append(0)
        i = j
    return bytes(out)
