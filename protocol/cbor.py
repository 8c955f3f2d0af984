"""The node's CBOR codec (RFC 8949), restricted to the profile of SPEC §4.

Encoding is deterministic and byte for byte what cbor2 writes with ``canonical=True``:
shortest integers and lengths, definite lengths, map keys ordered length-first then bytewise,
floats in their preferred serialization. Decoding is strict and bounded and raises only
``DecodeError`` (the reason in ``args[0]``), never IndexError, UnicodeError, RecursionError...

In three modules, so the node imports only what it uses:
- protocol.cbor_encoder: ``Encoder(size=MAX_MESSAGE, single=True, grow=False)``, a writer into
  a preallocated buffer;
- protocol.cbor_decoder: ``Decoder(max_depth=16, max_items=512, max_string=1020)``, a pull
  decoder over a buffer;
- this module: the limits re-exported, and what only the ground and the tests use:
  ``loads(data, ...) -> obj`` for whole values; ``Decoder``: protocol.cbor_decoder's with the
  readers ``map()``, ``null()``, ``float()``, ``bool()``, ``int()``; ``Encoder``:
  protocol.cbor_encoder's with the general float path ``float(x)`` (the shortest of half,
  single, double that holds x exactly, cbor2 canonical; ``item()`` uses it when
  ``single=False``); ``dumps(obj, single=False) -> bytes``.

On MicroPython, ``loads`` of an array (a whole message) runs a viper loop that reads small
integers, bools, null and short arrays itself and hands every other element to the general
decoder, so both give the same values and errors (the tests compare them on corpora).
Needs a port with the native emitter (see protocol.compat).
"""

import array

from protocol.cbor_decoder import (  # noqa: F401  (re-exported; _utf8_valid: the tests call it)
    MAX_ARRAY,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_MAP,
    MAX_STRING,
    _utf8_valid,
)
from protocol.cbor_decoder import Decoder as _NodeDecoder  # extended below: the ground's Decoder
from protocol.cbor_encoder import _SCRATCH, _pack_into
from protocol.cbor_encoder import Encoder as _NodeEncoder  # extended below: the ground's Encoder
from protocol.compat import MICROPYTHON, const, micropython
from protocol.errors import DecodeError, EncodeError

_MAX_DEPTH = const(16)  # viper needs them as literals: cbor_decoder.MAX_DEPTH, MAX_ITEMS
_MAX_ITEMS = const(512)
_E_TRUNC = const("truncated input")  # cbor_decoder's message
_HEAD_MAX = const(9)  # cbor_encoder's: the longest head or float, initial byte + 8

_NONES: tuple = tuple((None,) * n for n in range(24))  # list(_NONES[n]): a list of n Nones


class Decoder(_NodeDecoder):
    """protocol.cbor_decoder's Decoder with the readers only the ground and the tests call:
    ``map() -> n``, ``null()``, ``float()``, ``bool()``, ``int()``."""

    def map(self) -> int:
        """Read a map head; return the number of pairs."""
        n = self._arg(5)
        if n > MAX_MAP:
            raise DecodeError("map too long")
        return n

    def null(self) -> None:
        if self.peek() != 0xF6:
            raise DecodeError("expected null")
        self._arg(7)

    def float(self) -> float:
        """A float (half, single or double precision)."""
        ib = self.peek()
        if ib < 0xF9 or ib > 0xFB:
            raise DecodeError(_E_TRUNC if ib < 0 else "expected a float")
        self._items -= 1
        if self._items < 0:
            raise DecodeError("too many data items")
        return self._float(ib & 0x1F)

    def bool(self) -> bool:
        ib = self.peek()
        if ib != 0xF4 and ib != 0xF5:
            raise DecodeError(_E_TRUNC if ib < 0 else "expected a bool")
        self._arg(7)
        return ib == 0xF5

    def int(self) -> int:
        ib = self.peek()
        if ib >> 5 == 1:
            return -1 - self._arg(1)
        return self._arg(0)


_BAIL = object()  # _loads_fast: not an array at the root, use the general path

if MICROPYTHON:

    @micropython.viper
    def _loads_fast(dec, data, objs, st: ptr32):
        # loads() of an array on the node, without a Python call per nested array: open
        # arrays are kept on an explicit stack (objs: the lists, st: [index, count] pairs).
        # Small integers, bools, null and short arrays are read here; any other element is
        # read by dec._item (same limits), so the result and every error are the general
        # decoder's. A root that is not an array of fewer than 24 items returns _BAIL.
        buf = ptr8(data)
        end = int(len(data))  # noqa: RUF046 - viper: an object to a machine int
        if end == 0:
            return _BAIL
        ib = int(buf[0])
        if ib < 0x80 or ib > 0x97:
            return _BAIL
        n = ib - 0x80
        pos = 1
        need = n  # slots still to fill in every open array: each takes at least a byte
        if need > end - pos:
            raise DecodeError(_E_TRUNC)
        items = 1 + n
        root = list(_NONES[n])
        cur = root
        i = 0
        top = 0
        while True:
            if i == n:
                if top == 0:
                    break
                top -= 1
                cur = objs[top]
                objs[top] = None
                i = int(st[2 * top])
                n = int(st[2 * top + 1])
                continue
            if pos >= end:
                raise DecodeError(_E_TRUNC)
            need -= 1
            ib = int(buf[pos])
            if ib < 0x18:
                cur[i] = ib
                pos += 1
            elif ib == 0x18 and pos + 1 < end:
                cur[i] = int(buf[pos + 1])
                pos += 2
            elif ib == 0x19 and pos + 2 < end:
                cur[i] = (int(buf[pos + 1]) << 8) | int(buf[pos + 2])
                pos += 3
            elif ib >= 0x20 and ib < 0x38:
                cur[i] = 0x1F - ib
                pos += 1
            elif ib >= 0xF9 and ib <= 0xFB:
                dec.buf = data
                dec.end = end
                dec.pos = pos
                cur[i] = dec._float(ib & 0x1F)
                pos = int(dec.pos)
            elif ib == 0xF6:
                pos += 1
            elif ib == 0xF5:
                cur[i] = True
                pos += 1
            elif ib == 0xF4:
                cur[i] = False
                pos += 1
            elif ib >= 0x80 and ib <= 0x97 and top < _MAX_DEPTH - 2:
                m = ib - 0x80
                pos += 1
                if need + m > end - pos:
                    raise DecodeError(_E_TRUNC)
                items += m
                if items > _MAX_ITEMS:
                    raise DecodeError("too many data items")
                need += m
                child = list(_NONES[m])
                cur[i] = child
                objs[top] = cur
                st[2 * top] = i + 1
                st[2 * top + 1] = n
                top += 1
                cur = child
                n = m
                i = 0
                continue
            else:  # anything else, including a nesting too deep, by the general decoder
                dec.buf = data
                dec.end = end
                dec.pos = pos
                dec._items = _MAX_ITEMS - items
                cur[i] = dec._item(_MAX_DEPTH - 1 - top, need)
                pos = int(dec.pos)
                items = _MAX_ITEMS - int(dec._items)
            i += 1
        if pos < end:
            raise DecodeError("trailing bytes after the data item")
        return root


# Reused (loads is not reentrant): the decoder and _loads_fast's stack.
_LOADS = Decoder() if MICROPYTHON else None
_STACK_OBJS = [None] * MAX_DEPTH
_STACK_ST = array.array("i", bytes(8 * MAX_DEPTH))


def loads(
    data,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
    max_string: int = MAX_STRING,
):
    """Decode exactly one data item that fills ``data``; raises only DecodeError."""
    dec = _LOADS
    if dec is None or max_depth != MAX_DEPTH or max_items != MAX_ITEMS or max_string != MAX_STRING:
        dec = Decoder(max_depth, max_items, max_string)
    else:  # MicroPython, default limits
        obj = _loads_fast(dec, data, _STACK_OBJS, _STACK_ST)  # pyright: ignore[reportArgumentType]
        if obj is not _BAIL:
            dec.buf = b""
            return obj
    dec.buf = data
    dec.pos = 0
    dec.end = len(data)
    dec._items = max_items - 1
    if max_items < 1:
        raise DecodeError("too many data items")
    obj = dec._item(max_depth, 0)
    if dec.pos < dec.end:
        raise DecodeError("trailing bytes after the data item")
    dec.buf = b""
    return obj


def _float_kind(buf, pos: int) -> int:
    # buf[pos+1:pos+9] holds a big-endian binary64. Return the narrowest exact width:
    # 2 (half), 4 (single), 8 (double); 0 for NaN and infinities.
    d0 = buf[pos + 1]
    d1 = buf[pos + 2]
    e = ((d0 & 0x7F) << 4) | (d1 >> 4)
    if e == 0x7FF:
        return 0
    tz = 0  # trailing zero bits of the 52-bit mantissa
    i = pos + 8
    while i > pos + 2 and buf[i] == 0:
        tz += 8
        i -= 1
    last = buf[i] if i > pos + 2 else d1 & 0x0F
    if last == 0:
        tz = 52
    else:
        while last & 1 == 0:
            last >>= 1
            tz += 1
    if e == 0:
        return 2 if tz == 52 else 8  # zero, or a double subnormal
    sig = 52 - tz  # fraction bits in use
    x = e - 1023
    if (-14 <= x <= 15 and sig <= 10) or (-24 <= x < -14 and sig + (-14 - x) <= 10):
        return 2
    if (-126 <= x <= 127 and sig <= 23) or (-149 <= x < -126 and sig + (-126 - x) <= 23):
        return 4
    return 8


class Encoder(_NodeEncoder):
    """protocol.cbor_encoder's Encoder with the general float path (see the module docstring)."""

    def float(self, x) -> None:
        """The shortest of half, single, double that holds x exactly (cbor2 canonical)."""
        pos = self.pos
        buf = self.buf
        if pos + _HEAD_MAX > len(buf):
            if self._grow:
                self._room(_HEAD_MAX)
                buf = self.buf
            else:  # staged: near the end a half or single may fit where a double would not
                buf = _SCRATCH
                pos = 0
        _pack_into(">d", buf, pos + 1, x)
        kind = _float_kind(buf, pos)
        if kind == 0:
            raise EncodeError("NaN or infinity")
        if kind != 8:  # exact in single precision: its preferred serialization is half or single
            self.float32(x)
        elif buf is _SCRATCH:
            buf[0] = 0xFB
            self._tail(9)
        else:
            buf[pos] = 0xFB
            self.pos = pos + 9


def dumps(obj, single: bool = False) -> bytes:
    """Deterministic encoding of obj; ``single=True`` rounds floats to single precision."""
    enc = Encoder(64, single, True)
    enc.item(obj)
    return enc.getvalue()
