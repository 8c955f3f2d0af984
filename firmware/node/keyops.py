"""Key rotation and revocation on the node (SPEC §10.7), for node.auth.

Imported only when it is needed: when a key_rotate or key_revoke runs, when the first command
under a rotated generation retires the previous one, or at boot when keygen.bin exists. A node
whose keys never changed keeps this code out of its heap (on a Pico the bytecode of a .mpy
module lives in RAM).

keygen.bin (node.storage blob, written atomically before a change takes effect): crc32 LE of
keys.bin's payload (a re-provisioned table discards it), then per slot of the table 3 bytes
[generation, previous generation (255: none), floor (lowest generation not revoked; 255: the
operator is revoked for good)].

Everything here allocates (commands, boot, once per rotation).
"""

import struct

from micropython import const

from node import storage
from node.auth import KEYGEN_FILE, NONE, mac_key

_EV_KEY_CHANGED = const(36)
_STORAGE_ERROR = const(17)
_NOT_FOUND = const(19)
_KEY_REFUSED = const(21)
_KEY_ROTATED = const(1)  # key_changed's change (protocol.dictionary.KEY_CHANGES)
_KEY_REVOKED = const(2)
_KEY_OLD_DROPPED = const(3)


def load(auth, payload):
    """Apply keygen.bin's payload, if it was written for this key table."""
    n = len(auth.keys)
    if payload is None or len(payload) != 4 + 3 * n or \
            struct.unpack("<I", payload[0:4])[0] != auth._table_crc:
        return  # written for another key table: the table as provisioned
    for i in range(n):
        gen = payload[4 + 3 * i]
        prev = payload[5 + 3 * i]
        auth.floor[i] = payload[6 + 3 * i]
        if gen != auth.gen[i]:
            auth.gen[i] = gen
            auth.keys[i] = mac_key(auth._masters[i], auth.operators[i], gen)
        auth.prev[i] = prev
        if prev != NONE:
            auth.old[i] = mac_key(auth._masters[i], auth.operators[i], prev)


def _save(auth, slot, gen, prev, floor):
    # keygen.bin with slot's entry replaced. Raises OSError.
    out = bytearray(4 + 3 * len(auth.keys))
    struct.pack_into("<I", out, 0, auth._table_crc)
    for i in range(len(auth.keys)):
        entry = (gen, prev, floor) if i == slot else (auth.gen[i], auth.prev[i], auth.floor[i])
        out[4 + 3 * i:7 + 3 * i] = bytes(entry)
    storage.write_atomic(auth.root, KEYGEN_FILE, out)


def drop_old(auth, slot):
    """The new generation was used: the previous one is refused from now on. Persisted
    first: if the write fails both stay valid, as on the flash, and the next command under
    the new generation tries again."""
    prev = auth.prev[slot]
    try:
        _save(auth, slot, auth.gen[slot], NONE, auth.floor[slot])
    except OSError:
        return
    auth.prev[slot] = NONE
    auth.old[slot] = None
    auth.events.emit(_EV_KEY_CHANGED, auth.operators[slot], _KEY_OLD_DROPPED, prev)


def _slot_of(auth, operator):
    for i in range(len(auth.operators)):
        if auth.operators[i] == operator:
            return i
    return -1


def rotate(auth, operator, gen):
    """key_rotate: a failure code, or 0."""
    slot = _slot_of(auth, operator)
    if slot < 0:
        return _NOT_FOUND
    floor = auth.floor[slot]
    cur = auth.gen[slot]
    if floor == NONE or gen <= cur or gen < floor:
        return _KEY_REFUSED
    prev = cur if cur >= floor else NONE  # the old one works until the new one is used
    try:
        _save(auth, slot, gen, prev, floor)
    except OSError:
        return _STORAGE_ERROR
    auth.old[slot] = auth.keys[slot] if prev != NONE else None
    auth.keys[slot] = mac_key(auth._masters[slot], operator, gen)
    auth.gen[slot] = gen
    auth.prev[slot] = prev
    auth.events.emit(_EV_KEY_CHANGED, operator, _KEY_ROTATED, gen)
    return 0


def revoke(auth, operator, upto):
    """key_revoke: a failure code, or 0."""
    slot = _slot_of(auth, operator)
    if slot < 0:
        return _NOT_FOUND
    floor = NONE if upto == NONE else max(upto + 1, auth.floor[slot])
    gen = auth.gen[slot]
    if gen < floor:  # the operator's current generation goes: is anyone else left?
        usable = 0
        for i in range(len(auth.keys)):
            if i != slot and auth.gen[i] >= auth.floor[i]:
                usable += 1
        if not usable:
            return _KEY_REFUSED  # nobody could command the node any more
    prev = auth.prev[slot]
    if prev != NONE and prev < floor:
        prev = NONE
    try:
        _save(auth, slot, gen, prev, floor)
    except OSError:
        return _STORAGE_ERROR
    auth.floor[slot] = floor
    if prev == NONE:
        auth.old[slot] = None
    auth.prev[slot] = prev
    auth.events.emit(_EV_KEY_CHANGED, operator, _KEY_REVOKED, upto)
    return 0
