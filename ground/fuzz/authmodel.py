"""The fuzzer's model of the node's authentication layer (SPEC §10.3, §10.4), for the oracle.

``AuthModel.verdict(message)`` follows §10.3 for a correctly framed message whose first byte is
``d1``, in the spec's order, and keeps the node's replay state as the spec defines it:

1. the exact layout of §10.2 (checked here by decoding with cbor2 and re-encoding
   canonically: a protected map {1: 5, 4: kid (2 bytes), -65537: counter 1..2^30-1}, an
   empty unprotected map, a payload of at least one byte, a 32-byte tag ending the object)
   -> ``forged``;
2. the key id: an operator key the fuzzer knows the node holds, its current generation
   -> else ``forged``;
3. the tag (HMAC-SHA-256 over MAC_structure, external_aad h'00') -> else ``forged``;
4. the counter against the operator's window (above the highest, or one of the 24 below it
   not yet accepted) -> else ``replayed``;

else ``accepted``: the payload is a command to judge under §5 (``model.expect(...,
signed=True)``), every answer authenticated under the key for this counter. The model only
knows the keys it is given: without the node's key every object is forged.

A reboot (power cut, watchdog) sets the highest to the reservation R and counts every counter
up to R as accepted (§10.4); the refusal counts (the channels ``auth_forged`` and
``auth_replayed``) start again from 0.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

import cbor2

from ground.fuzz.keyring import (
    ALG_LABEL,
    COUNTER_LABEL,
    HMAC_256_256,
    KID_LABEL,
    MAX_COUNTER,
    RESERVE,
    FuzzKey,
    mac0,
    tag_of,
)

WINDOW: Final = 24
FORGED: Final = "forged"
REPLAYED: Final = "replayed"
ACCEPTED: Final = "accepted"


@dataclass(frozen=True)
class Verdict:
    kind: str  # forged | replayed | accepted
    why: str
    payload: bytes = b""  # accepted: the command message inside
    counter: int = 0  # accepted: the counter its answers must name


def layout(message: bytes) -> tuple[int, int, int, bytes, bytes, bytes] | str:
    """(operator, generation, counter, protected, payload, tag) if the object has exactly the
    layout of §10.2, else why not."""
    try:
        item = cbor2.loads(message)
    except Exception as exc:
        return f"not one CBOR item ({type(exc).__name__})"
    if not isinstance(item, cbor2.CBORTag) or item.tag != 17:
        return "not tag 17"
    if not isinstance(item.value, (list, tuple)) or len(item.value) != 4:
        return "not an array of 4 in the tag"
    prot, unprot, payload, tag = item.value
    if not isinstance(prot, bytes):
        return "protected is not a bstr"
    if unprot != {}:
        return "unprotected is not an empty map"
    if not isinstance(payload, bytes) or not payload:
        return "payload is not a non-empty bstr"
    if not isinstance(tag, bytes) or len(tag) != 32:
        return "tag is not a 32-byte bstr"
    try:
        header = cbor2.loads(prot)
    except Exception:
        return "protected is not one CBOR item"
    if not isinstance(header, dict) or list(header) != [ALG_LABEL, KID_LABEL, COUNTER_LABEL]:
        return "protected keys are not 1, 4, -65537"
    kid, counter = header[KID_LABEL], header[COUNTER_LABEL]
    if header[ALG_LABEL] != HMAC_256_256 or type(header[ALG_LABEL]) is not int:
        return "algorithm is not 5"
    if not isinstance(kid, bytes) or len(kid) != 2:
        return "kid is not 2 bytes"
    if type(counter) is not int or not 1 <= counter <= MAX_COUNTER:
        return "counter is not 1..2^30-1"
    if cbor2.dumps(header, canonical=True) != prot or mac0(prot, payload, tag) != message:
        return "not in shortest form"
    return kid[0], kid[1], counter, prot, payload, tag


class _Window:
    """One operator's replay state on the node: ``high``, the accepted counters in the 24
    below it, and the reservation ``reserved`` (R) kept in flash."""

    def __init__(self) -> None:
        # a fresh node: R = 0 (with a key store, the ground's counters start above the R of
        # any earlier session, so what lies below does not matter)
        self.high = 0
        self.floor = 0  # every counter up to here counts as accepted (after a boot: R)
        self.accepted: set[int] = set()
        self.reserved = 0

    def take(self, counter: int) -> bool:
        """Accept (True) or refuse as replayed (False), as §10.4 says."""
        if counter > self.high:
            if counter > self.reserved:
                self.reserved = (counter // RESERVE + 1) * RESERVE
            self.accepted.add(self.high)
            self.high = counter
            self.accepted = {c for c in self.accepted if c >= counter - WINDOW}
            return True
        if counter == self.high or counter < self.high - WINDOW or counter <= self.floor \
                or counter in self.accepted:
            return False
        self.accepted.add(counter)
        return True

    def reboot(self) -> None:
        self.high = self.floor = self.reserved
        self.accepted = set()


class AuthModel:
    """The node's authentication state as the fuzzer predicts it (module doc)."""

    def __init__(self, keys: list[FuzzKey]) -> None:
        self.keys = {k.operator: k for k in keys if k.node_holds}
        self._windows = {op: _Window() for op in self.keys}
        self.forged = 0  # since the node's boot, as its channels count
        self.replayed = 0

    def window(self, operator: int) -> _Window | None:
        return self._windows.get(operator)

    def verdict(self, message: bytes) -> Verdict:
        """The node's verdict on one authenticated object, its state updated as the node's."""
        parts = layout(message)
        if isinstance(parts, str):
            return self._refuse(FORGED, parts)
        operator, generation, counter, prot, payload, tag = parts
        key = self.keys.get(operator)
        if key is None or key.generation != generation:
            return self._refuse(FORGED, f"key id {operator}/{generation} not the node's")
        if not hmac.compare_digest(tag, tag_of(key.key, prot, payload)):
            return self._refuse(FORGED, "wrong tag")
        if not self._windows[operator].take(counter):
            return self._refuse(REPLAYED, f"counter {counter} replayed")
        return Verdict(ACCEPTED, "authenticated", payload, counter)

    def _refuse(self, kind: str, why: str) -> Verdict:
        if kind == FORGED:
            self.forged += 1
        else:
            self.replayed += 1
        return Verdict(kind, why)

    def reboot(self) -> None:
        for window in self._windows.values():
            window.reboot()
        self.forged = self.replayed = 0
