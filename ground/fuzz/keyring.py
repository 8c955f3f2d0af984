"""The fuzzer's key: COSE_Mac0 objects (SPEC §10.2) built and opened with the standard library.

The fuzzer cannot sign through ``ground.auth.Signer``: it must build objects the ground never
would (any protected header, any counter, any tag) and check the node's answers without
trusting ``protocol.cose``, the code the node runs. So this module writes MAC_structure with
cbor2 and computes the tag with ``hmac``, from RFC 9052 and §10 alone.

``FuzzKey`` holds one operator key and hands out counters strictly increasing (reserved ahead
in the key store like ``Signer``, when it comes from one), and skips to the next block of 256
after the node rebooted (§10.4). ``for_campaign(key)`` gives either the node's key (the
development key of ``sim://?key=dev``, or an operator's from the key store) or, without one,
a key the node does not hold (same key id as the development key, so that the node's tag
check is reached): then every authenticated case must be refused as forged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final

import cbor2

KID_LABEL: Final = 4
ALG_LABEL: Final = 1
HMAC_256_256: Final = 5
COUNTER_LABEL: Final = -65537  # a command's counter
ANSWERS_LABEL: Final = -65538  # a verification: the counter of the command it answers
MAX_COUNTER: Final = 2**30 - 1
RESERVE: Final = 256
AAD_COMMAND: Final = b"\x00"
AAD_VERIFICATION: Final = b"\x01"
_DERIVE: Final = b"ILRS node key v1"
NOT_THE_NODES_MASTER: Final = hashlib.sha256(b"ILRS fuzz: a key no node holds").digest()


class OpenError(ValueError):
    """An authenticated answer that does not check out (which check; never the key)."""


def derive(master: bytes, kid: bytes) -> bytes:
    """SPEC §10.7: HMAC-SHA-256(master, "ILRS node key v1" || kid)."""
    return hmac.new(master, _DERIVE + kid, hashlib.sha256).digest()


def protected(kid: bytes, counter: int, label: int = COUNTER_LABEL) -> bytes:
    """The protected header's bytes, canonical: {1: 5, 4: kid, label: counter}."""
    return cbor2.dumps({ALG_LABEL: HMAC_256_256, KID_LABEL: kid, label: counter},
                       canonical=True)


def tag_of(key: bytes, prot: bytes, payload: bytes, aad: bytes = AAD_COMMAND) -> bytes:
    """RFC 9052 §6.3: HMAC over MAC_structure ["MAC0", protected, external_aad, payload]."""
    structure = cbor2.dumps(["MAC0", prot, aad, payload])
    return hmac.new(key, structure, hashlib.sha256).digest()


def mac0(prot: bytes, payload: bytes, tag: bytes, unprotected: bytes = b"\xa0") -> bytes:
    """A COSE_Mac0 object from its parts (the unprotected map as raw bytes)."""
    return (b"\xd1\x84" + cbor2.dumps(prot) + unprotected + cbor2.dumps(payload)
            + cbor2.dumps(tag))


class FuzzKey:
    """One operator key: counters, signing, opening the node's authenticated answers."""

    def __init__(self, master: bytes, operator: int, generation: int, *, last_counter: int = 0,
                 store: Callable[[int], None] | None = None, node_holds: bool = True,
                 key: bytes | None = None) -> None:
        self.operator = operator
        self.generation = generation
        self.kid = bytes((operator, generation))
        self.key = key if key is not None else derive(master, self.kid)  # key: as given
        self.node_holds = node_holds  # False: a key the node does not have (all forged)
        self.counter = (last_counter // RESERVE + 1) * RESERVE  # the last counter used
        self._reserved = self.counter
        self._store = store

    def __repr__(self) -> str:
        return f"FuzzKey(operator={self.operator}, generation={self.generation})"

    def next_counter(self, skip: int = 0) -> int:
        """A counter never used before (``skip`` more left unused, for out-of-order cases)."""
        counter = self.counter + 1 + skip
        if counter > MAX_COUNTER:
            raise OverflowError("the key's counter space is exhausted: rotate the key")
        if counter > self._reserved and self._store is not None:
            self._reserved = min(MAX_COUNTER, (counter // RESERVE + 1) * RESERVE)
            self._store(self._reserved)
        self.counter = counter
        return counter

    def after_reboot(self) -> None:
        """The node may have skipped up to 255 counters at its boot: continue in the next
        block (SPEC §10.4)."""
        self.counter = (self.counter // RESERVE + 1) * RESERVE

    def sign(self, message: bytes, counter: int | None = None) -> tuple[bytes, int]:
        """(the COSE_Mac0 object of a command message, its counter)."""
        counter = self.next_counter() if counter is None else counter
        prot = protected(self.kid, counter)
        return mac0(prot, message, tag_of(self.key, prot, message)), counter

    def open(self, data: bytes) -> tuple[bytes, int]:
        """(message, command counter answered) of an authenticated verification (§10.5),
        or raise OpenError: the exact layout, this key id, the tag under aad h'01'."""
        try:
            item = cbor2.loads(data)
        except Exception:
            raise OpenError("not one CBOR item") from None
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 17
                and isinstance(item.value, (list, tuple)) and len(item.value) == 4):
            raise OpenError("not a COSE_Mac0 object")
        prot, unprot, payload, tag = item.value
        if not (isinstance(prot, bytes) and unprot == {} and isinstance(payload, bytes)
                and isinstance(tag, bytes) and len(tag) == 32):
            raise OpenError("not the COSE_Mac0 layout")
        try:
            header = cbor2.loads(prot)
        except Exception:
            raise OpenError("protected header is not CBOR") from None
        if not isinstance(header, dict) or list(header) != [ALG_LABEL, KID_LABEL,
                                                           ANSWERS_LABEL]:
            raise OpenError(f"protected header keys {list(header)[:4]!r}")
        counter = header[ANSWERS_LABEL]
        if header[ALG_LABEL] != HMAC_256_256 or header[KID_LABEL] != self.kid \
                or not isinstance(counter, int) or not 1 <= counter <= MAX_COUNTER:
            raise OpenError("protected header values")
        if mac0(protected(self.kid, counter, ANSWERS_LABEL), payload, tag) != bytes(data):
            raise OpenError("not in canonical form")
        if not hmac.compare_digest(tag, tag_of(self.key, prot, payload, AAD_VERIFICATION)):
            raise OpenError("wrong tag")
        return payload, counter


def foreign_key() -> FuzzKey:
    """A key no node holds, with the development key's id (operator 0, generation 0)."""
    return FuzzKey(NOT_THE_NODES_MASTER, 0, 0, node_holds=False)
