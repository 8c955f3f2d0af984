"""COSE_Mac0 objects built whole (SPEC §10): protocol.cose's signing side for the ground.

The node checks commands and signs its answers in place with protocol.cose (``Mac0Reader``,
``MacKey.verify``, ``wrap_in_place``) and does not import this module; the ground signs its
commands here, and the tests build objects of any shape with it. The layout is protocol.cose's.

- Labels and sizes: ``TAG_MAC0`` (17), ``ALG_HMAC_256_256`` (5), ``HDR_ALG``, ``HDR_KID``,
  ``HDR_COUNTER`` (-65537), ``HDR_ANSWERS`` (-65538), ``KID_BYTES``, ``TAG_BYTES``;
  ``AAD_COMMAND`` (h'00', ground -> node) and ``AAD_VERIFICATION`` (h'01').
- ``protected_header(kid, label, counter) -> bytes``: {1: 5, 4: kid, label: counter}.
- ``tag(key, protected, aad, payload) -> bytes``: HMAC-SHA-256 of MAC_structure.
- ``encode_mac0(key, label, counter, payload, aad) -> bytes``: the whole object.
- ``is_mac0(buf, n)``: buf[0:n] starts like a COSE_Mac0 object (tag 17).

All of them allocate.
"""

import hashlib

from protocol.compat import const

# the layout's pieces, shared with the node's signing in place (one definition)
from protocol.cose import _MAC0_HEAD, MAX_COUNTER, MacKey, _head, _size

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any

TAG_MAC0 = const(17)
ALG_HMAC_256_256 = const(5)  # COSE algorithm "HMAC 256/256"
HDR_ALG = const(1)
HDR_KID = const(4)
HDR_COUNTER = const(-65537)  # private use (RFC 9052 §3.1: labels < -65536)
HDR_ANSWERS = const(-65538)  # private use: the counter of the command a verification answers
KID_BYTES = const(2)  # [operator, generation]
TAG_BYTES = const(32)
AAD_COMMAND = b"\x00"
AAD_VERIFICATION = b"\x01"


def _item(major: int, v: int) -> bytes:
    # A CBOR head alone, as bytes (major: 0 uint, 0x40 bstr).
    k = _size(v)
    b = bytearray(k)
    _head(b, 0, major, v, k)
    return bytes(b)


def protected_header(kid: "Any", label: bytes, counter: int) -> bytes:
    """The protected header's bytes: {1: 5, 4: kid, label: counter} in canonical order."""
    if len(kid) != KID_BYTES:
        raise ValueError("a key id is 2 bytes")
    if counter < 1 or counter > MAX_COUNTER:
        raise ValueError("a counter is 1..1073741823")
    return b"\xa3\x01\x05\x04\x42" + bytes(kid) + label + _item(0, counter)


def tag(key: MacKey, protected: "Any", aad: "Any", payload: "Any") -> bytes:
    """The 32-byte tag of MAC_structure ["MAC0", protected, aad, payload] under key."""
    h = hashlib.sha256(key._ipad)  # the pads MacKey computed once
    h.update(_MAC0_HEAD)
    h.update(_item(0x40, len(protected)))
    h.update(protected)
    h.update(_item(0x40, len(aad)))
    h.update(aad)
    h.update(_item(0x40, len(payload)))
    h.update(payload)
    o = hashlib.sha256(key._opad)
    o.update(h.digest())
    return o.digest()


def encode_mac0(key: MacKey, label: bytes, counter: int, payload: "Any", aad: bytes) -> bytes:
    """The whole COSE_Mac0 object (bytes) of payload under key (a MacKey)."""
    protected = protected_header(key.kid, label, counter)
    mac = tag(key, protected, aad, payload)
    return (b"\xd1\x84" + _item(0x40, len(protected)) + protected + b"\xa0"
            + _item(0x40, len(payload)) + bytes(payload) + b"\x58\x20" + mac)


def is_mac0(buf: "Any", n: int) -> bool:
    """True if buf[0:n] starts like a COSE_Mac0 object (tag 17): the message is authenticated."""
    return n > 0 and buf[0] == 0xD1
