"""The ground's half of authenticated commanding (protocol/SPEC.md §10).

- ``Signer``: signs command messages for one operator key (a new counter per transmission,
  reserved ahead in the key store so a counter is never used twice) and checks the node's
  authenticated verifications (``open``).
- ``node_key_table(entries)``: the bytes of the node's ``keys.bin`` (written through the
  maintenance path or into a simulated node's state directory, never over the protocol).
- ``DEV_OPERATOR``/``DEV_MASTER``: the development key every simulated node (and virtual
  Pico, ``vpico://?key=dev``) is provisioned with. It is public (it is in this file): a board
  never gets it.
- ``unwrap`` / ``open_unchecked``: what a logged COSE_Mac0 object carries, its tag not
  checked, for a replay of a session log (the live client checked it, or logged refusing it).

Key material never appears in a repr, a log line or an error message of this module.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Final

import cbor2

from protocol import cose, cose_sign
from protocol.crc import crc32
from protocol.errors import ProtocolError

DEV_OPERATOR: Final = 0
DEV_GENERATION: Final = 0
DEV_MASTER: Final = hashlib.sha256(b"ILRS development key: public, for the simulated node only"
                                   ).digest()
RESERVE: Final = 256  # counters per reservation, as on the node (SPEC §10.4)


class AuthError(ProtocolError, ValueError):
    """An authenticated verification that does not check out (which check, never the key)."""


def dev_signer() -> Signer:
    """A Signer for the development key of the simulated node."""
    return Signer(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)


def node_key_table(entries: list[tuple[int, bytes, int]]) -> bytes:
    """The node's keys.bin blob: CBOR [[operator, master, generation], ...] || crc32 LE."""
    payload = cbor2.dumps([[op, bytes(master), gen] for op, master, gen in entries])
    return payload + struct.pack("<I", crc32(payload))


def dev_key_table() -> bytes:
    """The node's keys.bin holding the development key alone (what ``key=dev`` provisions)."""
    return node_key_table([(DEV_OPERATOR, DEV_MASTER, DEV_GENERATION)])


def unwrap(data: bytes, label: bytes) -> tuple[bytes, int, int, int]:
    """(payload, operator, generation, counter) of a COSE_Mac0 object (``label``:
    ``cose.LABEL_COUNTER`` for a command, ``cose.LABEL_ANSWERS`` for a verification) as a
    session log holds it. The tag is NOT checked: a replay shows what the live client checked
    at the time. AuthError if it is not the layout."""
    r = cose.Mac0Reader()
    if r.parse(data, len(data), label) != cose.OK:
        raise AuthError("not the authenticated layout")
    return bytes(data[r.payload:r.payload_end]), r.operator, r.generation, r.counter


def open_unchecked(data: bytes) -> tuple[bytes, int]:
    """``Signer.open`` for a replay: (payload, the command counter it answers), the tag not
    checked (see ``unwrap``)."""
    payload, _operator, _generation, counter = unwrap(data, cose.LABEL_ANSWERS)
    return payload, counter


def next_block(last: int) -> int:
    """The first counter a ground uses after the node rebooted or a session began (§10.4)."""
    return (last // RESERVE + 1) * RESERVE + 1


class Signer:
    """One operator's key: signs commands, checks the answers.

    ``counter_store(n)`` is called before a counter at or above the stored reservation is
    used, with the new reservation (persist it, or raise): a crash then never reuses one.
    """

    def __init__(self, master: bytes, operator: int, generation: int, last_counter: int = 0,
                 counter_store: Callable[[int], None] | None = None) -> None:
        kid = bytes((operator, generation))
        self.operator = operator
        self.generation = generation
        self._key = cose.MacKey(kid, cose.derive_key(master, kid))
        self._store = counter_store
        self.counter = next_block(last_counter) - 1  # the last counter used
        self._reserved = self.counter
        self.boot: int | None = None  # the node boot the counters were last used in

    def __repr__(self) -> str:
        return f"Signer(operator={self.operator}, generation={self.generation})"

    def new_boot(self, boot: int) -> None:
        """A command is about to be sent bound to boot: if that is another boot than the last
        one, or 0 (a ground that does not know the boot, SPEC §5.1), skip to the next block,
        since the node may have skipped up to 255 counters at a reboot (§10.4)."""
        if boot == 0 or (self.boot is not None and boot != self.boot):
            self.counter = next_block(self.counter) - 1
        self.boot = boot

    def sign(self, message: bytes) -> tuple[bytes, int]:
        """(the COSE_Mac0 object of a command message, its counter)."""
        counter = self.counter + 1
        if counter > cose.MAX_COUNTER:
            raise AuthError("counter space of this key exhausted: rotate the key")
        if counter > self._reserved:
            reserve = min(cose.MAX_COUNTER, (counter // RESERVE + 1) * RESERVE)
            if self._store is not None:
                self._store(reserve)
            self._reserved = reserve
        self.counter = counter
        return cose_sign.encode_mac0(self._key, cose.LABEL_COUNTER, counter, message,
                                     cose_sign.AAD_COMMAND), counter

    def open(self, data: bytes) -> tuple[bytes, int]:
        """(payload, the command counter it answers) of an authenticated verification, or
        raise AuthError naming the check that failed."""
        r = cose.Mac0Reader()
        code = r.parse(data, len(data), cose.LABEL_ANSWERS)
        if code != cose.OK:
            raise AuthError("not the authenticated verification layout")
        if r.operator != self.operator or r.generation != self.generation:
            raise AuthError(f"key id {r.operator}/{r.generation} is not ours")
        if not self._key.verify(r, 1):
            raise AuthError("wrong tag")
        return bytes(data[r.payload:r.payload_end]), r.counter
