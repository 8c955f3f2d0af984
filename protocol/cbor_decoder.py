"""The node's CBOR decoder (RFC 8949), restricted to the profile of SPEC §4: protocol.cbor's
reading half (protocol.cbor re-exports it; the node imports this module, not protocol.cbor).

Decoding is strict and bounded and raises only ``DecodeError`` (the reason in ``args[0]``),
never IndexError, UnicodeError, RecursionError...

- ``Decoder(max_depth=16, max_items=512, max_string=1020)``: a pull decoder over a buffer.
  ``reset(buf, start=0, end=-1)``, ``array() -> n``, ``uint()``, ``bytes()``, ``text()``,
  ``item()``, ``skip()`` (check one whole item under the profile without building it),
  ``peek() -> int`` (next initial byte, -1 at the end), ``at_end``, ``done()`` (DecodeError
  on trailing bytes), ``pos``. The readers the node never calls (``map()``, ``int()``,
  ``bool()``, ``null()``, ``float()``) are protocol.cbor's Decoder's, this one extended.
  Reading integers below 2**30 and container headers allocates nothing; nor does ``skip()``
  except inside a map (built to find duplicate keys) and for heads of 4 or 8 bytes.

Nesting (SPEC §4): at most ``max_depth`` arrays and maps open at once, the outermost counting
as the first; an item inside the innermost allowed container is fine when it is no container.

Whole values (``loads``) are protocol.cbor's: the node reads its commands with a Decoder.
All bytecode: the native emitter made array(), uint() and the array items about 15 % faster
per command head (a microsecond or two of a round trip of a tenth of a millisecond on the
simulated node) for 2 KB of a Pico's heap (its machine code is copied into RAM).
"""

import struct
from array import array as _array

from protocol.compat import const
from protocol.errors import DecodeError

MAX_DEPTH = const(16)
MAX_ITEMS = const(512)
MAX_STRING = const(1020)
MAX_ARRAY = const(256)
MAX_MAP = const(64)

_unpack_from = struct.unpack_from

_E_TRUNC = const("truncated input")
_E_UTF8 = const("invalid UTF-8 in a text string")


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
        self._left = _array("i", bytes(4 * (max_depth + 1)))  # skip(): items left per level

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

    def uint(self) -> int:
        pos = self.pos
        if pos < self.end:  # fast path: a small integer
            ib = self.buf[pos]
            if ib < 0x18 and self._items > 0:
                self._items -= 1
                self.pos = pos + 1
                return ib
        return self._arg(0)

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

    def _array(self, n: int, depth: int, pending: int):
        # The n items of an array. Small integers, bools and null are read inline; the rest
        # through _item.
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

    def skip(self) -> None:
        """Check one whole data item under the profile (SPEC §4) and move past it.

        The same errors as item() but nothing is built: no allocation except inside a map
        (built to find duplicate keys) and for 4- or 8-byte heads (struct's tuple).
        """
        self._items -= 1
        if self._items < 0:
            raise DecodeError("too many data items")
        buf = self.buf
        end = self.end
        stack = self._left
        depth = 0  # containers open
        left = 1  # items still to skip at this level
        while True:
            if left == 0:
                if depth == 0:
                    return
                depth -= 1
                left = stack[depth]
                continue
            left -= 1
            pos = self.pos
            if pos >= end:
                raise DecodeError(_E_TRUNC)
            ib = buf[pos]
            major = ib >> 5
            ai = ib & 0x1F
            if major == 7:
                if 20 <= ai <= 22:
                    self.pos = pos + 1
                elif 25 <= ai <= 27:
                    self._float_skip(ai, pos)
                else:
                    self._simple(ai)  # raises: undefined, reserved, indefinite, other simple
                continue
            if ai < 24:
                n = ai
                self.pos = pos + 1
            else:
                n = self._long_arg(ai, pos)
            if major <= 1:
                continue
            if major == 2 or major == 3:
                if n > self.max_string:
                    raise DecodeError("string too long")
                p = self.pos
                if p + n > end:
                    raise DecodeError(_E_TRUNC)
                if major == 3 and not _utf8_valid(buf, p, p + n):
                    raise DecodeError(_E_UTF8)
                self.pos = p + n
                continue
            if major == 6:
                raise DecodeError("tags are not allowed")
            if major == 4:
                if n > MAX_ARRAY:
                    raise DecodeError("array too long")
                if depth >= self.max_depth:
                    raise DecodeError("nesting too deep")
                if n > end - self.pos:
                    raise DecodeError(_E_TRUNC)
                self._items -= n
                if self._items < 0:
                    raise DecodeError("too many data items")
                stack[depth] = left
                depth += 1
                left = n
                continue
            # a map: built by the general decoder, which finds duplicate keys
            self.pos = pos
            self._item(self.max_depth - depth, left)

    def _float_skip(self, ai: int, pos: int) -> None:
        # Check the float head at pos (f9, fa, fb) is complete and finite; move past it.
        size = 1 << (ai - 24)
        if pos + 1 + size > self.end:
            raise DecodeError(_E_TRUNC)
        b1 = self.buf[pos + 1] & 0x7F
        b2 = self.buf[pos + 2]
        if ai == 25:
            bad = b1 >> 2 == 0x1F
        elif ai == 26:
            bad = b1 == 0x7F and b2 & 0x80
        else:
            bad = b1 == 0x7F and b2 & 0xF0 == 0xF0
        if bad:
            raise DecodeError("NaN or infinity")
        self.pos = pos + 1 + size

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
    def bytes(self) -> bytes:
        return self._string(self._arg(2))
