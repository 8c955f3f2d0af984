"""Authenticated messages (SPEC §10): COSE_Mac0 (RFC 9052, tag 17) with HMAC-SHA-256.

Shared by the node and the ground (the MicroPython subset; only ``hashlib.sha256``, which the
rp2 port has). The layout is fixed, so the node checks it byte by byte instead of decoding:

    d1 84                                   tag 17, array(4)
       <bstr protected>                     a3 01 05 04 42 <kid: 2 bytes> 3a 00 01 00 00 <ctr>
                                            (verification: label 3a 00 01 00 01, the
                                            counter of the command it answers)
       a0                                   unprotected: empty map
       <bstr payload>                       the message (§5), 1..1020 bytes
       58 20 <tag: 32 bytes>                HMAC-SHA-256 over MAC_structure

    MAC_structure = ["MAC0", protected, external_aad, payload],
    external_aad = h'00' for a command (ground -> node), h'01' for a verification.

- ``MacKey(kid, key)``: a key with its HMAC pads computed once; ``repr`` never shows the key.
- ``derive_key(master, kid)``: an operator's key for one generation (§10.6).
- The whole object built in one call (``encode_mac0``), the protected header and the tag of
  given parts, the headers' labels: protocol.cose_sign (the ground's; the node does not
  import it).
- ``wrap_in_place(buf, key, counter, n, r)``: the node's answer made authenticated in its own
  buffer (SPEC §10.5).
- ``Mac0Reader``: the node's check of a received object, no decoding into objects.
- ``equal(a, a_start, b, n)``: constant-time comparison.

Allocation (node verify path, ``Mac0Reader.parse`` then ``MacKey.verify``): nothing beyond
hashlib's own, the two sha256 objects and their two 32-byte digests. hashlib's ``update``
takes no offset and hashes the whole of what it is given, so a part of the frame would need
a memoryview slice (an object per call): instead MAC_structure goes through the reader's
64-byte block, copied in (viper on the node), hashed whole block by whole block; the last,
partial block is the same bytearray shortened in place, grown back by the next call (slice
assignments within its capacity reallocate nothing). Measured by tests/protocol/test_cose.py
and ``make bench``. The node's signing (``wrap_in_place``) hashes the same way, from the
answer laid out in place, with the reader's block: nothing beyond hashlib's own either
(bench/verify_bench.py, tests/firmware/test_auth_alloc.py).
"""

import hashlib
from binascii import hexlify

from protocol.compat import MICROPYTHON, const, micropython

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any

MAX_MESSAGE_BYTES = const(1020)  # the frame's message limit (§2), the whole object included
WRAP_OVERHEAD = const(58)  # d1 84, protected (1 + 17), a0, payload head (<= 3), 58 20, tag
KEY_BYTES = const(32)
MAX_COUNTER = const(0x3FFFFFFF)  # a small int on a 32-bit MicroPython: no heap integer
# protocol.cose_sign's (public there: a name here costs the node a globals entry and its text;
# tests/protocol/test_cose.py checks they agree)
_ALG_HMAC_256_256 = const(5)
_KID_BYTES = const(2)
_TAG_BYTES = const(32)
LABEL_COUNTER = b"\x3a\x00\x01\x00\x00"  # HDR_COUNTER as CBOR
LABEL_ANSWERS = b"\x3a\x00\x01\x00\x01"  # HDR_ANSWERS as CBOR

_BLOCK = const(64)  # SHA-256 block size (HMAC pads)
_MAC0_HEAD = b"\x84\x64MAC0"  # MAC_structure: array(4), "MAC0"
_MAC0_HEAD_LEN = const(6)
_BSTR1 = const(0x41)  # external_aad as an item: a 1-byte bstr, its byte the direction
_PROT_FIXED = const(12)  # a3 01 05 04 42 k k + 5-byte label: the protected map before ctr
_DERIVE = b"ILRS node key v1"

# Mac0Reader.parse results (why a received object is refused; never told to the sender)
OK = const(0)
BAD_FORM = const(1)  # not the fixed layout, a counter of 0 or above MAX_COUNTER
BAD_TAG = const(2)  # the layout holds but the tag is not 32 bytes (truncated or longer)


def _hmac(key: "Any", data: "Any") -> bytes:
    # HMAC-SHA-256 (RFC 2104) of bytes with a key of at most 64 bytes (allocates).
    k = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(data)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    outer.update(inner.digest())
    return outer.digest()


def derive_key(master: "Any", kid: "Any") -> bytes:
    """The 32-byte key of key id ``kid`` (2 bytes) under an operator's 32-byte master secret."""
    if len(master) != KEY_BYTES or len(kid) != _KID_BYTES:
        raise ValueError("a master secret is 32 bytes and a key id 2")
    return _hmac(master, _DERIVE + bytes(kid))


if MICROPYTHON:

    @micropython.viper
    def _diff(a: ptr8, a_start: int, b: ptr8, n: int) -> int:
        d = 0
        i = 0
        while i < n:
            d |= a[a_start + i] ^ b[i]
            i += 1
        return d

    def equal(a: "Any", a_start: int, b: "Any", n: int) -> bool:
        """True if a[a_start:a_start + n] == b[0:n], in time that does not depend on where
        they differ (every byte is compared; viper on the node). No allocation."""
        return _diff(a, a_start, b, n) == 0

    @micropython.viper
    def _copy_v(dst: ptr8, at: int, src: ptr8, start: int, n: int):
        # dst[at:at + n] = src[start:start + n], with no slice object
        i = 0
        while i < n:
            dst[at + i] = src[start + i]
            i += 1

    _copy = _copy_v

    @micropython.viper
    def _move_up_v(buf: ptr8, n: int, h: int):
        # buf[h:h + n] = buf[0:n], from the end down (the two overlap), with no slice object
        i = n - 1
        while i >= 0:
            buf[i + h] = buf[i]
            i -= 1

    _move_up = _move_up_v

else:

    def equal(a: "Any", a_start: int, b: "Any", n: int) -> bool:
        """True if a[a_start:a_start + n] == b[0:n], in time that does not depend on where
        they differ (every byte is compared). No allocation."""
        diff = 0
        for i in range(n):
            diff |= a[a_start + i] ^ b[i]
        return diff == 0

    import sys

    def _copy_loop(dst: "Any", at: int, src: "Any", start: int, n: int) -> None:
        # dst[at:at + n] = src[start:start + n], with no slice object
        for i in range(n):
            dst[at + i] = src[start + i]

    def _copy_slice(dst: "Any", at: int, src: "Any", start: int, n: int) -> None:
        dst[at:at + n] = src[start:start + n]

    def _move_up(buf: "Any", n: int, h: int) -> None:
        # buf[h:h + n] = buf[0:n], from the end down (the two overlap), with no slice object
        for i in range(n - 1, -1, -1):
            buf[i + h] = buf[i]

    # CPython (the ground checks every answer it gets): the slice, 10x faster there. A
    # MicroPython without the native emitter (the 32-bit VM the bench measures the node in,
    # where compat.MICROPYTHON is False: bench/heap32.py): the loop, which allocates nothing.
    _copy = _copy_loop if sys.implementation.name == "micropython" else _copy_slice


def _size(v: int) -> int:
    # The bytes of a CBOR head for v (< 2**32), shortest form: 1, 2, 3 or 5.
    return 1 if v < 24 else 2 if v < 0x100 else 3 if v < 0x10000 else 5


def _head(buf: "Any", at: int, major: int, v: int, k: int) -> None:
    # A CBOR head of k = _size(v) bytes at buf[at:at + k] (major: 0 uint, 0x40 bstr).
    buf[at] = major | v if k == 1 else major | (0x17 + (k - 1 if k < 5 else 3))
    while k > 1:
        k -= 1
        buf[at + k] = v & 0xFF
        v >>= 8


class MacKey:
    """A key id and its key, with the HMAC pads computed once (64 bytes each)."""

    def __init__(self, kid: "Any", key: "Any") -> None:
        if len(kid) != _KID_BYTES or len(key) != KEY_BYTES:
            raise ValueError("a key id is 2 bytes and a key 32")
        self.kid = bytes(kid)
        k = bytes(key) + bytes(_BLOCK - KEY_BYTES)
        self._ipad = bytes(b ^ 0x36 for b in k)
        self._opad = bytes(b ^ 0x5C for b in k)

    def __repr__(self) -> str:
        return "MacKey(kid=" + hexlify(self.kid).decode() + ")"

    def verify(self, r: "Mac0Reader", aad_index: int) -> bool:
        """True if the tag of the object Mac0Reader r has parsed is right for this key
        (aad_index: 0 a command, 1 a verification)."""
        return equal(r.buf, r.tag, self.digest(r, aad_index), _TAG_BYTES)

    def digest(self, r: "Mac0Reader", aad_index: int) -> bytes:
        """The tag (32 bytes, hashlib's digest) of the object laid out in r.buf: its protected
        bstr at [2:r.unprot], its payload bstr at [r.payload_head:r.tag_head], heads included
        as MAC_structure holds them. Hashed through r's 64-byte block (no slice, no view: see
        the module's "Allocation"); two arguments only: a call with more costs the node 1 us."""
        buf = r.buf
        block = r.block
        unprot = r.unprot
        block[0:len(block)] = self._ipad  # _BLOCK bytes long (any 64 will do): see below
        h = hashlib.sha256(self._ipad)
        # "MAC0", protected, external_aad: at most 6 + 18 + 2 bytes, the first block's start
        block[0:_MAC0_HEAD_LEN] = _MAC0_HEAD
        fill = _MAC0_HEAD_LEN + unprot - 2
        _copy(block, _MAC0_HEAD_LEN, buf, 2,  # pyright: ignore[reportArgumentType]
              fill - _MAC0_HEAD_LEN)
        block[fill] = _BSTR1
        block[fill + 1] = aad_index
        fill += 2
        start = r.payload_head  # the payload bstr, head and bytes, a block at a time
        left = r.tag_head - start
        while left:
            k = _BLOCK - fill
            if k > left:
                k = left
            _copy(block, fill, buf, start, k)  # pyright: ignore[reportArgumentType]
            fill += k
            start += k
            left -= k
            if fill == _BLOCK:
                h.update(block)
                fill = 0
        block[fill:] = b""  # the partial block: shortened in place (fill may be 0), grown
        h.update(block)  # back by the next call's first line (no reallocation either way)
        o = hashlib.sha256(self._opad)
        o.update(h.digest())
        return o.digest()


def wrap_in_place(buf: "Any", key: MacKey, counter: int, n: int,
                  r: "Mac0Reader | None" = None) -> int:
    """Turn the verification in buf[0:n] into its authenticated form (label -65538 = counter,
    aad h'01') in place, with no second buffer; return its length. buf must hold it (n +
    WRAP_OVERHEAD bytes). The payload moves up (viper on the node), the headers are written
    byte by byte and the tag is hashed from buf by MacKey.digest: nothing allocated beyond
    hashlib's own, as on the verify path. r: a Mac0Reader lent as scratch (the node's, after
    its command was checked; None: a new one): its buf and the offsets MacKey.digest reads
    are this object's afterwards, its other fields left as they were."""
    if counter < 1 or counter > MAX_COUNTER:
        raise ValueError("a counter is 1..1073741823")
    if r is None:
        r = Mac0Reader()
    nc = _size(counter)
    np = _PROT_FIXED + nc
    nh = _size(n)
    h = 4 + np + nh  # d1 84 (40|np) prot a0 head: where the payload goes
    _move_up(buf, n, h)  # pyright: ignore[reportArgumentType]
    _copy(buf, 0, b"\xd1\x84\x40\xa3\x01\x05\x04\x42", 0, 8)  # pyright: ignore[reportArgumentType]
    buf[2] = 0x40 | np
    _copy(buf, 8, key.kid, 0, _KID_BYTES)  # pyright: ignore[reportArgumentType]
    _copy(buf, 10, LABEL_ANSWERS, 0, 5)  # pyright: ignore[reportArgumentType]
    _head(buf, 3 + _PROT_FIXED, 0, counter, nc)  # the counter, shortest form
    u = 3 + np
    buf[u] = 0xA0
    _head(buf, u + 1, 0x40, n, nh)  # the payload's bstr head
    pos = h + n
    r.buf = buf
    r.unprot = u
    r.payload_head = u + 1
    r.tag_head = pos
    tag = key.digest(r, 1)
    buf[pos] = 0x58
    buf[pos + 1] = _TAG_BYTES
    _copy(buf, pos + 2, tag, 0, _TAG_BYTES)  # pyright: ignore[reportArgumentType]
    return pos + 2 + _TAG_BYTES


class Mac0Reader:
    """Checks the fixed layout of a received COSE_Mac0 object; no allocation.

    After ``parse(buf, n, label)`` returned OK: ``operator``, ``generation`` (the key id's
    two bytes), ``counter``, ``payload``/``payload_end`` (the message's bytes in buf), and the
    offsets ``verify`` hashes."""

    def __init__(self) -> None:
        self.buf = bytearray(0)
        self.block = bytearray(_BLOCK)  # MacKey.verify's scratch: one SHA-256 block
        self.operator = -1
        self.generation = -1
        self.counter = 0
        self.prot_head = 0
        self.unprot = 0
        self.payload_head = 0
        self.payload = 0
        self.payload_end = 0
        self.tag_head = 0
        self.tag = 0
        self._len = 0

    def _bstr(self, pos: int, n: int) -> int:
        # Read a bstr head at pos; set self._len; return the content's start or -1.
        buf = self.buf
        if pos >= n:
            return -1
        ib = buf[pos]
        if 0x40 <= ib < 0x58:
            self._len = ib - 0x40
            return pos + 1
        if ib == 0x58 and pos + 1 < n:
            self._len = buf[pos + 1]
            return pos + 2 if self._len >= 24 else -1  # shortest form only
        if ib == 0x59 and pos + 2 < n:
            self._len = (buf[pos + 1] << 8) | buf[pos + 2]
            return pos + 3 if self._len >= 0x100 else -1
        return -1

    def parse(self, buf: "Any", n: int, label: bytes) -> int:
        """OK, BAD_FORM or BAD_TAG for the object buf[0:n]; label: LABEL_COUNTER (a command)
        or LABEL_ANSWERS (a verification)."""
        self.buf = buf
        self.operator = -1
        if n < 4 or buf[0] != 0xD1 or buf[1] != 0x84:
            return BAD_FORM
        self.prot_head = 2
        self._len = 0
        p = self._bstr(2, n)
        plen = self._len
        if p < 0 or plen < _PROT_FIXED + 1 or plen > _PROT_FIXED + 5 or p + plen > n:
            return BAD_FORM
        if (buf[p] != 0xA3 or buf[p + 1] != 0x01 or buf[p + 2] != _ALG_HMAC_256_256
                or buf[p + 3] != 0x04 or buf[p + 4] != 0x40 | _KID_BYTES):
            return BAD_FORM
        for i in range(5):
            if buf[p + 7 + i] != label[i]:
                return BAD_FORM
        c = p + _PROT_FIXED
        ib = buf[c]
        left = plen - _PROT_FIXED - 1  # bytes after the counter's initial byte
        if ib < 24 and left == 0:
            counter = ib
        elif ib == 0x18 and left == 1 and buf[c + 1] >= 24:
            counter = buf[c + 1]
        elif ib == 0x19 and left == 2 and buf[c + 1]:
            counter = (buf[c + 1] << 8) | buf[c + 2]
        elif ib == 0x1A and left == 4 and (buf[c + 1] or buf[c + 2]) and buf[c + 1] < 0x40:
            counter = (buf[c + 1] << 24) | (buf[c + 2] << 16) | (buf[c + 3] << 8) | buf[c + 4]
        else:
            return BAD_FORM
        if counter < 1:
            return BAD_FORM
        u = p + plen
        self.unprot = u
        if u >= n or buf[u] != 0xA0:
            return BAD_FORM
        self.payload_head = u + 1
        q = self._bstr(u + 1, n)
        qlen = self._len
        if q < 0 or qlen < 1 or q + qlen > n:
            return BAD_FORM
        t = q + qlen
        self.tag_head = t
        if t + 2 > n or buf[t] != 0x58:
            return BAD_FORM
        if buf[t + 1] != _TAG_BYTES or t + 2 + _TAG_BYTES != n:
            return BAD_TAG
        self.operator = buf[p + 5]
        self.generation = buf[p + 6]
        self.counter = counter
        self.payload = q
        self.payload_end = t
        self.tag = t + 2
        return OK
