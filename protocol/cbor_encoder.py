"""The node's CBOR encoder (RFC 8949), restricted to the profile of SPEC §4: protocol.cbor's
writing half (protocol.cbor re-exports it; the node imports this module, not protocol.cbor).

Encoding is deterministic and byte for byte what cbor2 writes with ``canonical=True``:
shortest integers and lengths, definite lengths, map keys ordered length-first then bytewise,
floats in their preferred serialization. Errors are ``EncodeError`` (the reason in ``args[0]``).

- ``Encoder(size=MAX_MESSAGE, single=True, grow=False)``: a writer into a preallocated
  buffer. ``reset()``, ``array(n)``, ``map(n)``, ``uint(n)``, ``int(n)``, ``bool(b)``, ``null()``,
  ``float32(x)``, ``bytes(b)``, ``text(s)``, ``raw(b)``, ``item(obj)``,
  ``extend(values)`` (each element as an item, no array head); the
  encoding is ``buf[0:length]`` (``length`` is ``pos``), ``view()`` (allocates a memoryview),
  ``getvalue()`` (allocates bytes). Integers, bools, null and ``float32`` allocate nothing
  (a float argument is the caller's object), nor does ``item()`` of a list of those.
  ``text()`` allocates its UTF-8 copy. With ``single=True`` (the node, SPEC §4.1) ``item()``
  rounds floats to single precision. The general float path (``float(x)``: the shortest of
  half, single, double that is exact, which ``item()`` uses when ``single=False``) and
  ``dumps(obj, single=False) -> bytes`` are protocol.cbor's (its Encoder is this one with
  ``float``): the node never writes a double.

Needs a port with the native emitter (see protocol.compat).
"""

import struct

from protocol.compat import MICROPYTHON, const, micropython
from protocol.errors import EncodeError

_MAX_DEPTH = const(16)  # the same as protocol.cbor_decoder.MAX_DEPTH
_MAX_MESSAGE = const(1020)
_HEAD_MAX = const(9)  # the longest head or float: initial byte + 8

_pack_into = struct.pack_into
_struct_error = getattr(struct, "error", ValueError)  # MicroPython raises ValueError
_U64_END = 1 << 64
_NEG_END = -(1 << 64) - 1

_E_FULL = const("encoder buffer full")


def _head_size(n: int) -> int:
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 0x100000000 else 9


# _f32_finish(buf, pos): buf[pos+1:pos+5] holds a big-endian binary32. Write its preferred
# serialization at pos (half if exact, else single) and return the end, or -1 for NaN and
# infinities. Viper on MicroPython, the same in Python on CPython.
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

    def _f32_finish_py(buf, pos: int) -> int:
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

    _f32_finish = _f32_finish_py


_SCRATCH = bytearray(_HEAD_MAX)  # a float staged before it is copied to a buffer's end


def _f32_at(buf, pos: int, x) -> int:
    # x's preferred serialization (half or single) written at buf[pos:]; return its end.
    # buf must have 5 bytes from pos.
    try:
        _pack_into(">f", buf, pos + 1, x)
    except OverflowError:  # CPython: beyond the single-precision range
        raise EncodeError("float out of the single-precision range") from None
    end = _f32_finish(buf, pos)  # pyright: ignore[reportArgumentType]
    if end < 0:
        raise EncodeError("NaN or infinity")
    return end


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
        buf = self.buf
        if pos + 5 > len(buf):
            if self._grow:
                self._room(5)
                buf = self.buf
            else:  # near the end: a half may still fit where a single would not
                self._tail(_f32_at(_SCRATCH, 0, x))
                return
        end = _f32_at(buf, pos, x)
        self.pos = end

    def _tail(self, n: int) -> None:
        # Copy the n-byte encoding built in _SCRATCH to the end of a buffer that cannot grow.
        pos = self.pos
        buf = self.buf
        if pos + n > len(buf):
            raise EncodeError(_E_FULL)
        for i in range(n):
            buf[pos + i] = _SCRATCH[i]
        self.pos = pos + n

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
        # roll back, then grow and retry (grow=True) or raise EncodeError.
        start = self.pos
        while True:
            try:
                if whole:
                    self._item(obj, _MAX_DEPTH)
                else:
                    self._extend(obj, _MAX_DEPTH - 1)
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

    def _item(self, obj, depth: int) -> None:
        # A list is written by _extend (native); it and everything else may run past the
        # end of buf (IndexError or a struct error), which item() turns into EncodeError.
        t = type(obj)
        if t is list or t is tuple:
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
        # The elements of a list: unsigned integers, floats (single), bools, null and short
        # lists are written inline, with the builtins in locals (no global lookups in native
        # code); any other element (a negative or large integer, text, bytes, a map, a float
        # near the end of the buffer) goes through _item: inline, those cost 0.4 KB more of a
        # Pico's heap (the native code is copied into RAM) for no housekeeping speed.
        buf = self.buf
        pos = self.pos
        single = self.single
        finish = _f32_finish
        for x in values:
            t = _type(x)
            if t is _int and 0 <= x < 0x100000000:
                if x < 24:
                    buf[pos] = x
                    pos += 1
                elif x < 0x100:
                    buf[pos] = 24
                    buf[pos + 1] = x
                    pos += 2
                elif x < 0x10000:
                    buf[pos] = 25
                    buf[pos + 1] = x >> 8
                    buf[pos + 2] = x & 0xFF
                    pos += 3
                else:
                    _pk(">BI", buf, pos, 26, x)
                    pos += 5
            elif t is _float and single and pos + 5 <= len(buf):
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
            else:  # the ground's: protocol.cbor.Encoder has the general float path
                self.float(obj)  # pyright: ignore[reportAttributeAccessIssue]
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
            pairs.append((_encoded_key(k), v))
        pairs.sort(key=_key_order)
        self._head(0xA0, len(pairs))
        for k, v in pairs:
            self.raw(k)
            self._item(v, depth)

    # Methods named after builtins come last so annotations above mean the builtins.
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


def _encoded_key(k) -> bytes:
    # A map key (an integer or text) as CBOR bytes (allocates).
    enc = Encoder(16, True, True)
    enc.item(k)
    return enc.getvalue()


def _key_order(pair):
    k = pair[0]
    return (len(k), k)
