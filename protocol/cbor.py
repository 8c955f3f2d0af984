"""The node's CBOR codec (RFC 8949), restricted to the profile of SPEC §4.

Encoding is deterministic and byte for byte what cbor2 writes with ``canonical=True``:
shortest integers and lengths, definite lengths, map keys ordered length-first then bytewise,
floats in their preferred serialization. Decoding is strict and bounded and raises only
``DecodeError`` (the reason in ``args[0]``), never IndexError, UnicodeError, RecursionError...

- ``dumps(obj, single=False) -> bytes``, ``loads(data, ...) -> obj``: whole values.
- ``Encoder(size=MAX_MESSAGE, single=True, grow=False)``: a writer into a preallocated
  buffer. ``reset()``, ``array(n)``, ``map(n)``, ``uint(n)``, ``int(n)``, ``bool(b)``, ``null()``,
  ``float32(x)``, ``float(x)``, ``bytes(b)``, ``text(s)``, ``raw(b)``, ``item(obj)``,
  ``extend(values)`` (each element as an item, no array head); the
  encoding is ``buf[0:length]`` (``length`` is ``pos``), ``view()`` (allocates a memoryview),
  ``getvalue()`` (allocates bytes). Integers, bools, null and ``float32`` allocate nothing
  (a float argument is the caller's object), nor does ``item()`` of a list of those.
  ``text()`` allocates its UTF-8 copy; ``float()`` is the general path (shortest of half,
  single, double that is exact), which ``item()`` uses for floats when ``single=False``;
  with ``single=True`` (the node, SPEC §4.1) ``item()`` rounds floats to single precision.
- ``Decoder(max_depth=16, max_items=512, max_string=1020)``: a pull decoder over a buffer.
  ``reset(buf, start=0, end=-1)``, ``array() -> n``, ``map() -> n``, ``uint()``, ``int()``,
  ``bool()``, ``null()``, ``float()``, ``bytes()``, ``text()``, ``item()``, ``peek() -> int``
  (next initial byte, -1 at the end), ``at_end``, ``done()`` (DecodeError on trailing bytes),
  ``pos``. Reading integers below 2**30 and container headers allocates nothing.

On MicroPython, ``loads`` of an array (a whole message) runs a viper loop that reads small
integers, bools, null and short arrays itself and hands every other element to the general
decoder, so both give the same values and errors (the tests compare them on corpora).
Needs a port with the native emitter (see protocol.compat).
"""

import array
import struct

from protocol.compat import MICROPYTHON, const, micropython
from protocol.errors import DecodeError, EncodeError

MAX_DEPTH = const(16)
MAX_ITEMS = const(512)
MAX_STRING = const(1020)
MAX_ARRAY = const(256)
MAX_MAP = const(64)
_MAX_MESSAGE = const(1020)
_HEAD_MAX = const(9)  # the longest head or float: initial byte + 8

_pack_into = struct.pack_into
_struct_error = getattr(struct, "error", ValueError)  # MicroPython raises ValueError
_unpack_from = struct.unpack_from
_U64_END = 1 << 64
_NEG_END = -(1 << 64) - 1

_E_FULL = "encoder buffer full"
_E_TRUNC = "truncated input"


def _head_size(n: int) -> int:
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 0x100000000 else 9


def _f32_finish_py(buf, pos: int) -> int:
    # buf[pos+1:pos+5] holds a big-endian binary32. Write its preferred serialization at pos
    # (half if exact, else single) and return the end, or -1 for NaN and infinities.
    b1 = buf[pos + 1]
    b2 = buf[pos + 2]
    b3 = buf[pos + 3]
    e = ((b1 & 0x7F) << 1) | (b2 >> 7)
    if e == 0xFF:
        return -1
    if buf[pos + 4] == 0 and (b3 & 0x1F) == 0:
        m10 = ((b2 & 0x7F) << 3) | (b3 >> 5)  # the 10 mantissa bits a half keeps
        h = -1
        if 113 <= e <= 142:  # a normal half: exponent -14..15
            h = ((e - 112) << 10) | m10
        elif e == 0:
            if m10 == 0:
                h = 0
        elif 103 <= e <= 112:  # a subnormal half k * 2**-24 if no bit is lost
            full = 0x400 | m10
            s = 113 - e
            if full & ((1 << s) - 1) == 0:
                h = full >> s
        if h >= 0:
            buf[pos] = 0xF9
            buf[pos + 1] = (b1 & 0x80) | (h >> 8)
            buf[pos + 2] = h & 0xFF
            return pos + 3
    buf[pos] = 0xFA
    return pos + 5


if MICROPYTHON:

    @micropython.viper
    def _f32_finish(buf: ptr8, pos: int) -> int:
        b1 = int(buf[pos + 1])
        b2 = int(buf[pos + 2])
        b3 = int(buf[pos + 3])
        e = ((b1 & 0x7F) << 1) | (b2 >> 7)
        if e == 0xFF:
            return -1
        if int(buf[pos + 4]) == 0 and (b3 & 0x1F) == 0:
            m10 = ((b2 & 0x7F) << 3) | (b3 >> 5)
            h = -1
            if e >= 113 and e <= 142:
                h = ((e - 112) << 10) | m10
            elif e == 0:
                if m10 == 0:
                    h = 0
            elif e >= 103 and e <= 112:
                full = 0x400 | m10
                s = 113 - e
                if (full & ((1 << s) - 1)) == 0:
                    h = full >> s
            if h >= 0:
                buf[pos] = 0xF9
                buf[pos + 1] = (b1 & 0x80) | (h >> 8)
                buf[pos + 2] = h & 0xFF
                return pos + 3
        buf[pos] = 0xFA
        return pos + 5

else:
    _f32_finish = _f32_finish_py


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


class Encoder:
    """Deterministic CBOR writer into a preallocated buffer; see the module docstring."""

    def __init__(self, size: int = _MAX_MESSAGE, single: bool = True, grow: bool = False):
        self.buf = bytearray(size)
        self.pos = 0
        self.single = single
        self._grow = grow
        self._limit = size - _HEAD_MAX  # a head or float fits while pos <= _limit

    @property
    def length(self) -> int:
        return self.pos

    def reset(self) -> None:
        self.pos = 0

    def view(self) -> memoryview:
        """The encoding so far (allocates the view)."""
        return memoryview(self.buf)[: self.pos]

    def getvalue(self) -> bytes:
        return bytes(self.buf[: self.pos])

    def _room(self, n: int) -> None:
        # Make sure n more bytes fit (growing if allowed).
        need = self.pos + n - len(self.buf)
        if need > 0:
            if not self._grow:
                raise EncodeError(_E_FULL)
            self.buf.extend(bytes(max(need, len(self.buf))))
            self._limit = len(self.buf) - _HEAD_MAX

    def _head(self, mt: int, n: int) -> None:
        # Initial byte with major type mt (already shifted) and argument n >= 0, shortest form.
        pos = self.pos
        if pos > self._limit:
            self._room(_head_size(n))
        buf = self.buf
        if n < 24:
            buf[pos] = mt | n
            self.pos = pos + 1
        elif n < 0x100:
            buf[pos] = mt | 24
            buf[pos + 1] = n
            self.pos = pos + 2
        elif n < 0x10000:
            buf[pos] = mt | 25
            buf[pos + 1] = n >> 8
            buf[pos + 2] = n & 0xFF
            self.pos = pos + 3
        elif n < 0x100000000:
            buf[pos] = mt | 26
            _pack_into(">I", buf, pos + 1, n)
            self.pos = pos + 5
        elif n < _U64_END:
            buf[pos] = mt | 27
            _pack_into(">Q", buf, pos + 1, n)
            self.pos = pos + 9
        else:
            raise EncodeError("integer out of the 64-bit range")

    def array(self, n: int) -> None:
        self._head(0x80, n)

    def map(self, n: int) -> None:
        """A map head; the caller writes the n pairs with keys already in canonical order."""
        self._head(0xA0, n)

    def uint(self, n: int) -> None:
        if n < 0:
            raise EncodeError("negative value for uint")
        self._head(0x00, n)

    def null(self) -> None:
        pos = self.pos
        if pos >= len(self.buf):
            self._room(1)
        self.buf[pos] = 0xF6
        self.pos = pos + 1

    def float32(self, x) -> None:
        """Round x to single precision, write half if that is exact, else single (SPEC §4.1)."""
        pos = self.pos
        if pos > self._limit:
            self._room(5)
        buf = self.buf
        try:
            _pack_into(">f", buf, pos + 1, x)
        except OverflowError:  # CPython: beyond the single-precision range
            raise EncodeError("float out of the single-precision range") from None
        end = _f32_finish(buf, pos)  # pyright: ignore[reportArgumentType]
        if end < 0:
            raise EncodeError("NaN or infinity")
        self.pos = end

    def raw(self, data) -> None:
        """Append bytes that already are deterministic CBOR (not checked)."""
        n = len(data)
        self._room(n)
        pos = self.pos
        self.buf[pos : pos + n] = data
        self.pos = pos + n

    def text(self, s: str) -> None:
        """A text string (allocates its UTF-8 encoding)."""
        try:
            data = s.encode()
        except UnicodeError:  # CPython: a lone surrogate
            raise EncodeError("text is not valid Unicode") from None
        self._string(0x60, data)

    def _string(self, mt: int, data) -> None:
        n = len(data)
        self._room(n + _head_size(n))
        self._head(mt, n)
        pos = self.pos
        self.buf[pos : pos + n] = data
        self.pos = pos + n

    def item(self, obj) -> None:
        """Any supported value: int, float, bool, None, bytes-like, str, list/tuple, dict."""
        self._guarded(obj, True)

    def extend(self, values) -> None:
        """Write each element of ``values`` as an item, without an array head."""
        self._guarded(values, False)

    def _guarded(self, obj, whole: bool) -> None:
        # The hot paths below may run past the end of buf (IndexError, or a struct error):
        # roll back, then grow and retry (dumps) or raise EncodeError.
        start = self.pos
        while True:
            try:
                if whole:
                    self._item(obj, MAX_DEPTH)
                else:
                    self._extend(obj, MAX_DEPTH - 1)
                return
            except EncodeError:
                self.pos = start
                raise
            except OverflowError:  # CPython's struct: a float beyond single precision
                self.pos = start
                raise EncodeError("float out of the single-precision range") from None
            except (IndexError, ValueError, _struct_error):
                self.pos = start
                if not self._grow:
                    raise EncodeError(_E_FULL) from None
                self.buf.extend(bytes(len(self.buf)))
                self._limit = len(self.buf) - _HEAD_MAX

    @micropython.native
    def _item(self, obj, depth: int, _type=type, _list=list, _tuple=tuple) -> None:
        # Hot path: a list is written by _extend; it and everything else may run past the
        # end of buf (IndexError or a struct error), which item() turns into EncodeError.
        t = _type(obj)
        if t is _list or t is _tuple:
            if depth <= 0:
                raise EncodeError("nesting too deep")
            self._head(0x80, len(obj))
            self._extend(obj, depth - 1)
        else:
            self._scalar(obj, depth)

    @micropython.native
    def _extend(
        self, values, depth: int, _type=type, _int=int, _float=float, _list=list, _pk=_pack_into
    ) -> None:
        # The elements of a list: integers, floats (single), bools, null and short lists are
        # written inline with the builtins in locals (no global lookups in native code).
        buf = self.buf
        pos = self.pos
        single = self.single
        finish = _f32_finish
        for x in values:
            t = _type(x)
            if t is _int:
                if 0 <= x < 24:
                    buf[pos] = x
                    pos += 1
                elif 0 <= x < 0x100:
                    buf[pos] = 24
                    buf[pos + 1] = x
                    pos += 2
                elif 0 <= x < 0x10000:
                    buf[pos] = 25
                    buf[pos + 1] = x >> 8
                    buf[pos + 2] = x & 0xFF
                    pos += 3
                elif 0 <= x < 0x100000000:
                    _pk(">BI", buf, pos, 26, x)
                    pos += 5
                elif -24 <= x < 0:
                    buf[pos] = 0x1F - x
                    pos += 1
                else:
                    self.pos = pos
                    self._int(x)
                    pos = self.pos
            elif t is _float and single:
                _pk(">f", buf, pos + 1, x)
                pos = finish(buf, pos)  # pyright: ignore[reportArgumentType]
                if pos < 0:
                    raise EncodeError("NaN or infinity")
            elif x is True:
                buf[pos] = 0xF5
                pos += 1
            elif x is False:
                buf[pos] = 0xF4
                pos += 1
            elif x is None:
                buf[pos] = 0xF6
                pos += 1
            elif t is _list and len(x) < 24:
                if depth <= 0:
                    raise EncodeError("nesting too deep")
                buf[pos] = 0x80 | len(x)
                self.pos = pos + 1
                self._extend(x, depth - 1)
                pos = self.pos
            else:
                self.pos = pos
                self._item(x, depth)
                pos = self.pos
        self.pos = pos

    def _scalar(self, obj, depth: int) -> None:
        t = type(obj)
        if t is int:
            self._int(obj)
        elif t is float:
            if self.single:
                self.float32(obj)
            else:
                self.float(obj)
        elif obj is True or obj is False:
            self.bool(obj)
        elif obj is None:
            self.null()
        elif t is str:
            self.text(obj)
        elif t is bytes or t is bytearray or t is memoryview:
            self.bytes(obj)
        elif t is dict:
            if depth <= 0:
                raise EncodeError("nesting too deep")
            self._map(obj, depth - 1)
        else:
            raise EncodeError("unsupported type: " + t.__name__)

    def _int(self, n) -> None:
        if n >= 0:
            self._head(0x00, n)
        elif n > _NEG_END:
            self._head(0x20, -1 - n)
        else:
            raise EncodeError("integer out of the 64-bit range")

    def _map(self, obj: dict, depth: int) -> None:
        # Canonical order: encoded keys by length, then bytewise (allocates the key encodings).
        pairs = []
        for k, v in obj.items():
            if type(k) is not int and type(k) is not str:
                raise EncodeError("map keys must be integers or text")
            pairs.append((dumps(k), v))
        pairs.sort(key=_key_order)
        self._head(0xA0, len(pairs))
        for k, v in pairs:
            self.raw(k)
            self._item(v, depth)

    # Methods named after builtins come last so annotations above mean the builtins.
    def float(self, x) -> None:
        """The shortest of half, single, double that holds x exactly (cbor2 canonical)."""
        pos = self.pos
        if pos > self._limit:
            self._room(_HEAD_MAX)  # room for the double, even when it ends up shorter
        buf = self.buf
        _pack_into(">d", buf, pos + 1, x)
        kind = _float_kind(buf, pos)
        if kind == 8:
            buf[pos] = 0xFB
            self.pos = pos + 9
        elif kind == 0:
            raise EncodeError("NaN or infinity")
        else:  # exact in single precision: its preferred serialization is half or single
            self.float32(x)

    def bool(self, b) -> None:
        pos = self.pos
        if pos >= len(self.buf):
            self._room(1)
        self.buf[pos] = 0xF5 if b else 0xF4
        self.pos = pos + 1

    def int(self, n) -> None:
        self._int(n)

    def bytes(self, b) -> None:
        self._string(0x40, b)


def _key_order(pair):
    k = pair[0]
    return (len(k), k)


def dumps(obj, single: bool = False) -> bytes:
    """Deterministic encoding of obj; ``single=True`` rounds floats to single precision."""
    enc = Encoder(64, single, True)
    enc.item(obj)
    return enc.getvalue()



_E_UTF8 = "invalid UTF-8 in a text string"


def _utf8_valid(buf, i: int, end: int) -> bool:
    # Strict UTF-8 (RFC 3629): no overlong forms, surrogates or values above U+10FFFF.
    # MicroPython's own decoder accepts some of those, CPython's does not; this agrees with it.
    while i < end:
        c = buf[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F
        elif 0xF0 <= c <= 0xF4:
            n = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F
        else:
            return False
        if i + n >= end:
            return False
        c = buf[i + 1]
        if c < lo or c > hi:
            return False
        j = i + 2
        i += n + 1
        while j < i:
            if buf[j] & 0xC0 != 0x80:
                return False
            j += 1
    return True


class Decoder:
    """Strict, bounded pull decoder over a buffer; see the module docstring."""

    def __init__(
        self, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS, max_string: int = MAX_STRING
    ):
        self.buf = b""
        self.pos = 0
        self.end = 0
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self._items = 0  # items left: the budget of max_items
        self._scratch = bytearray(4)

    def reset(self, buf, start: int = 0, end: int = -1) -> None:
        """Decode from ``buf[start:end]`` (the whole buffer by default)."""
        n = len(buf)
        if end < 0 or end > n:
            end = n
        if start < 0 or start > end:
            start = end
        self.buf = buf
        self.pos = start
        self.end = end
        self._items = self.max_items

    @property
    def at_end(self) -> bool:
        return self.pos >= self.end

    def done(self) -> None:
        """Raise DecodeError unless every byte has been read."""
        if self.pos < self.end:
            raise DecodeError("trailing bytes after the data item")

    def peek(self) -> int:
        """The next initial byte, or -1 at the end."""
        return self.buf[self.pos] if self.pos < self.end else -1

    def _arg(self, major: int) -> int:
        # Read a head of the given major type; return its argument.
        buf = self.buf
        pos = self.pos
        if pos >= self.end:
            raise DecodeError(_E_TRUNC)
        ib = buf[pos]
        if ib >> 5 != major:
            raise DecodeError("unexpected data item type")
        self._items -= 1
        if self._items < 0:
            raise DecodeError("too many data items")
        ai = ib & 0x1F
        if ai < 24:
            self.pos = pos + 1
            return ai
        return self._long_arg(ai, pos)

    def _long_arg(self, ai: int, pos: int) -> int:
        # The argument of a head with additional information ai >= 24 at pos.
        if ai > 27:
            raise DecodeError(
                "indefinite length not allowed" if ai == 31 else "reserved additional information"
            )
        size = 1 << (ai - 24)
        if pos + 1 + size > self.end:
            raise DecodeError(_E_TRUNC)
        buf = self.buf
        self.pos = pos + 1 + size
        if size == 1:
            return buf[pos + 1]
        if size == 2:
            return (buf[pos + 1] << 8) | buf[pos + 2]
        return _unpack_from(">I" if size == 4 else ">Q", buf, pos + 1)[0]

    @micropython.native
    def array(self) -> int:
        """Read an array head; return its length (the caller reads the items)."""
        pos = self.pos
        if pos < self.end:  # fast path: a short array
            ib = self.buf[pos]
            if 0x80 <= ib < 0x98 and self._items > 0:
                self._items -= 1
                self.pos = pos + 1
                return ib - 0x80
        n = self._arg(4)
        if n > MAX_ARRAY:
            raise DecodeError("array too long")
        return n

    def map(self) -> int:
        """Read a map head; return the number of pairs."""
        n = self._arg(5)
        if n > MAX_MAP:
            raise DecodeError("map too long")
        return n

    @micropython.native
    def uint(self) -> int:
        pos = self.pos
        if pos < self.end:  # fast path: a small integer
            ib = self.buf[pos]
            if ib < 0x18 and self._items > 0:
                self._items -= 1
                self.pos = pos + 1
                return ib
        return self._arg(0)

    def null(self) -> None:
        if self.peek() != 0xF6:
            raise DecodeError("expected null")
        self._arg(7)

    def text(self) -> str:
        return self._text(self._arg(3))

    def _text(self, n: int) -> str:
        data = self._string(n)
        if not _utf8_valid(data, 0, n):
            raise DecodeError(_E_UTF8)
        try:
            return str(data, "utf-8")
        except UnicodeError:  # not reached: validated above
            raise DecodeError(_E_UTF8) from None

    def _string(self, n: int):
        pos = self.pos
        if n > self.max_string:
            raise DecodeError("string too long")
        if pos + n > self.end:
            raise DecodeError(_E_TRUNC)
        self.pos = pos + n
        data = self.buf[pos : pos + n]
        return data if type(data) is bytes else bytes(data)

    def _float(self, ai: int):
        # A float head at self.pos (initial byte 0xF9, 0xFA or 0xFB) -> float.
        pos = self.pos
        buf = self.buf
        size = 1 << (ai - 24)
        if pos + 1 + size > self.end:
            raise DecodeError(_E_TRUNC)
        self.pos = pos + 1 + size
        b1 = buf[pos + 1]
        b2 = buf[pos + 2]
        if ai == 25:
            e = (b1 >> 2) & 0x1F
            if e == 31:
                raise DecodeError("NaN or infinity")
            m = ((b1 & 3) << 8) | b2
            if e == 0:  # subnormal or zero: m * 2**-24
                x = m * 5.960464477539063e-08
                return -x if b1 & 0x80 else x
            s = self._scratch  # the same value as a binary32
            e += 112
            s[0] = (b1 & 0x80) | (e >> 1)
            s[1] = ((e & 1) << 7) | (m >> 3)
            s[2] = (m & 7) << 5
            s[3] = 0
            return _unpack_from(">f", s, 0)[0]
        if ai == 26:
            if (b1 & 0x7F) == 0x7F and b2 & 0x80:
                raise DecodeError("NaN or infinity")
            return _unpack_from(">f", buf, pos + 1)[0]
        if (b1 & 0x7F) == 0x7F and b2 & 0xF0 == 0xF0:
            raise DecodeError("NaN or infinity")
        return _unpack_from(">d", buf, pos + 1)[0]

    def item(self):
        """One complete data item of any supported type."""
        self._items -= 1
        if self._items < 0:
            raise DecodeError("too many data items")
        return self._item(self.max_depth, 0)

    def _item(self, depth: int, pending: int):
        # One item at pos; its own place in the item budget is already taken by the caller.
        # pending: bytes the enclosing containers still need after this item (one per slot
        # left), so a list is only allocated for items that can still be present.
        buf = self.buf
        pos = self.pos
        if pos >= self.end:
            raise DecodeError(_E_TRUNC)
        ib = buf[pos]
        major = ib >> 5
        ai = ib & 0x1F
        if major == 7:
            return self._simple(ai)
        if ai < 24:
            n = ai
            self.pos = pos + 1
        else:
            n = self._long_arg(ai, pos)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 4:
            if n > MAX_ARRAY:
                raise DecodeError("array too long")
            if depth <= 0:
                raise DecodeError("nesting too deep")
            return self._array(n, depth - 1, pending)
        if major == 2:
            return self._string(n)
        if major == 3:
            return self._text(n)
        if major == 5:
            if n > MAX_MAP:
                raise DecodeError("map too long")
            if depth <= 0:
                raise DecodeError("nesting too deep")
            if 2 * n + pending > self.end - self.pos:
                raise DecodeError(_E_TRUNC)
            self._items -= 2 * n
            if self._items < 0:
                raise DecodeError("too many data items")
            return self._map(n, depth - 1, pending)
        raise DecodeError("tags are not allowed")

    @micropython.native
    def _array(self, n: int, depth: int, pending: int):
        # The n items of an array (the hot path: a command or housekeeping body). Small
        # integers, bools and null are read inline; the rest through _item.
        buf = self.buf
        pos = self.pos
        end = self.end
        if n + pending > end - pos:
            raise DecodeError(_E_TRUNC)
        items = self._items - n
        if items < 0:
            raise DecodeError("too many data items")
        self._items = items
        out: list = [None] * n
        pending += n
        for i in range(n):
            pending -= 1
            if pos >= end:
                raise DecodeError(_E_TRUNC)
            ib = buf[pos]
            if ib < 0x18:
                out[i] = ib
                pos += 1
            elif ib == 0x18 and pos + 1 < end:
                out[i] = buf[pos + 1]
                pos += 2
            elif 0x20 <= ib < 0x38:
                out[i] = 0x1F - ib
                pos += 1
            elif ib == 0xF6:
                pos += 1
            elif ib == 0xF5 or ib == 0xF4:
                out[i] = ib == 0xF5
                pos += 1
            else:
                self.pos = pos
                out[i] = self._item(depth, pending)
                pos = self.pos
        self.pos = pos
        return out

    def _map(self, n: int, depth: int, pending: int) -> dict:
        out = {}
        for i in range(n):
            ib = self.peek()
            if ib < 0:
                raise DecodeError(_E_TRUNC)
            if ib >> 5 not in (0, 1, 3):
                raise DecodeError("map keys must be integers or text")
            left = pending + 2 * (n - i - 1)
            k = self._item(depth, left + 1)
            if k in out:
                raise DecodeError("duplicate map key")
            out[k] = self._item(depth, left)
        return out

    def _simple(self, ai: int):
        if ai == 20 or ai == 21 or ai == 22:
            self.pos += 1
            return None if ai == 22 else ai == 21
        if 25 <= ai <= 27:
            return self._float(ai)
        if ai == 23:
            raise DecodeError("undefined is not allowed")
        if ai == 31:
            raise DecodeError("indefinite length not allowed")
        if ai > 27:
            raise DecodeError("reserved additional information")
        raise DecodeError("unsupported simple value")

    # Methods named after builtins come last so annotations above mean the builtins.
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

    def bytes(self) -> bytes:
        return self._string(self._arg(2))


_NONES: tuple = tuple((None,) * n for n in range(24))  # list(_NONES[n]): a list of n Nones


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
            elif ib >= 0x80 and ib <= 0x97 and top < MAX_DEPTH - 2:
                m = ib - 0x80
                pos += 1
                if need + m > end - pos:
                    raise DecodeError(_E_TRUNC)
                items += m
                if items > MAX_ITEMS:
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
                dec._items = MAX_ITEMS - items
                cur[i] = dec._item(MAX_DEPTH - 1 - top, need)
                pos = int(dec.pos)
                items = MAX_ITEMS - int(dec._items)
            i += 1
        if pos < end:
            raise DecodeError("trailing bytes after the data item")
        return root


# Reused on the node (loads is not reentrant): the decoder and _loads_fast's stack.
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
