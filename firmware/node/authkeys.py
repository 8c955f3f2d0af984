"""The key table read at boot for node.auth (SPEC §10.6): imported for that once and let go,
so its code is not in the heap afterwards. ``load(auth)`` fills the Auth's per-slot lists
from keys.bin and each operator's counter reservation (ctr<op>.bin). Allocates.
"""

import struct

from micropython import const

from node import storage
from node.auth import counter_file
from protocol import cose
from protocol.cbor_decoder import Decoder

_KEYS_FILE = const("keys.bin")
_MAX_KEYS = const(8)
_WINDOW_MASK = const(0xFFFFFF)  # node.auth's: every counter of the window accepted


def load(auth):
    status, payload = storage.read_checked(auth.root, _KEYS_FILE)
    if status != storage.OK or payload is None:
        return  # no key: an open board (a corrupt table too: it says so loudly)
    dec = Decoder()
    try:
        dec.reset(payload)
        n = dec.array()
        for _ in range(min(n, _MAX_KEYS)):
            if dec.array() != 3:
                return
            operator = dec.uint()
            master = dec.bytes()
            generation = dec.uint()
            if operator > 255 or generation > 255 or len(master) != cose.KEY_BYTES:
                continue
            kid = bytes((operator, generation))
            auth.keys.append(cose.MacKey(kid, cose.derive_key(master, kid)))
            auth.operators.append(operator)
            r = _read_reserved(auth.root, operator)
            auth.reserved.append(r)
            auth.high.append(r)  # every counter up to R counts as accepted (§10.4)
            auth.mask.append(_WINDOW_MASK)
    except Exception:  # a malformed table: keep the keys read so far
        return


def _read_reserved(root, operator):
    status, payload = storage.read_checked(root, counter_file(operator))
    if status == storage.OK and payload is not None and len(payload) == 4:
        return struct.unpack("<I", payload)[0]
    if status == storage.CORRUPT:  # cannot happen with atomic writes; be safe anyway
        return cose.MAX_COUNTER
    return 0
