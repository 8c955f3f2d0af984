"""Authenticated commanding on the node (SPEC §10): key table, replay windows, policy, refusals.

Files on the flash (node.storage blobs, written atomically):
    keys.bin      CBOR [[operator, master (32 bytes), generation], ...]: the key table,
                  written only through the maintenance path (mpremote), never by the node
    keygen.bin    what key_rotate / key_revoke changed since (§10.7; node.keyops)
    auth.bin      1 byte: 1 enforce (the default once keys exist), 0 open by command
    ctr<op>.bin   4 bytes LE: the operator's counter reservation R (§10.4)

``check(buf, n)`` runs the checks of §10.3 on a received COSE_Mac0 object: it returns
ACCEPT 0 (the payload is buf[payload:payload_end]; ``slot``, ``reader.generation`` and
``counter`` say how to sign the answers), REFUSED 1 (counted; nothing may be sent back) or
STORE_FAILED 2 (authenticated, but the counter reservation could not be written: reject
COUNTER_STORE_FAILED, do not execute). ``wrap(enc, slot, generation, counter)`` turns the
verification in enc into its authenticated form, under the key that verified the command.

Per slot: the current generation's key, the previous generation's (kept until a command under
the new one is accepted) and a floor below which generations are revoked. The key table is
read at boot by node.boot; key_rotate, key_revoke and keygen.bin are node.keyops: both
imported only when needed and let go after. Refusals under a revoked or retired key count as
forged (§10.3 step 2).

Allocation: ``check`` allocates only what hashlib does in protocol.cose's verify (measured
per frame by make bench and tests/firmware/test_auth_alloc.py), plus the reservation write
once in 256 commands and the keygen.bin write once per rotation; ``wrap`` likewise only
hashlib's (measured by make bench and tests/firmware/test_auth_alloc.py).
The key never leaves this module: no repr, no telemetry, no event carries it.
"""

import struct

from micropython import const

import node
from node import storage
from protocol import cose

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_AUTH_STATE = const(33)
_CH_AUTH_FORGED = const(34)
_CH_AUTH_REPLAYED = const(35)
_EV_AUTH_REFUSED = const(31)
_EV_AUTH_OPEN = const(32)
_CMD_AUTH_POLICY = const(22)
_CMD_KEY_ROTATE = const(24)
_CMD_KEY_REVOKE = const(25)
_UNAUTHENTICATED = const(9)
_STORAGE_ERROR = const(17)
NONE = const(255)  # no previous generation; a floor of 255: revoked for good

# the state (auth_state channel; node.dispatcher's _ENFORCED) and check()'s verdicts
# (node.dispatcher's _AUTH_*)
_OPEN_NO_KEY = const(0)
_OPEN_BY_COMMAND = const(1)
_ENFORCED = const(2)

_ACCEPT = const(0)
_REFUSED = const(1)
_STORE_FAILED = const(2)

KEYGEN_FILE = const("keygen.bin")
_POLICY_FILE = const("auth.bin")
_WINDOW = const(24)  # counters below the highest that may still arrive (out of order)
_WINDOW_MASK = const(0xFFFFFF)
_RESERVE = const(256)  # counters reserved per flash write
_REFUSED_EVENT_MS = const(10000)  # at most one auth_refused event per 10 s
_OPEN_EVENT_MS = const(60000)  # auth_open repeated every 60 s while open


def mac_key(master, operator, generation):
    kid = bytes((operator, generation))
    return cose.MacKey(kid, cose.derive_key(master, kid))


def counter_file(operator):
    return "ctr" + str(operator) + ".bin"


class Auth:
    def __init__(self, root, tlm, events, now_ms):
        self.root = root
        self.tlm = tlm
        self.events = events
        self._now_ms = now_ms
        self.reader = cose.Mac0Reader()
        self.slot = -1  # after check() returned ACCEPT or STORE_FAILED: the key's slot
        self.counter = 0  # and the counter (the answers' label -65538)
        self.keys = []  # MacKey of the current generation, per slot
        self.old = []  # MacKey of the previous generation (until the new one is used) or None
        self.gen = []  # current generation, per slot
        self.prev = []  # previous generation, or NONE
        self.floor = []  # lowest generation not revoked (NONE: the operator is revoked)
        self._masters = []  # per slot (derivation on rotation; never leaves this module)
        self._table_crc = 0  # crc32 of keys.bin's payload (keygen.bin belongs to it)
        self.operators = []  # operator number per slot
        self.high = []  # highest counter accepted, per slot
        self.mask = []  # bit i: counter high - 1 - i accepted
        self.reserved = []  # R per slot (flash)
        node.call("boot", "load_keys", self)  # keys.bin, the reservations, keygen.bin
        self.enforce = True
        status, payload = storage.read_checked(root, _POLICY_FILE)
        if status == storage.OK and payload is not None and len(payload) == 1:
            self.enforce = payload[0] != 0
        self.forged = 0
        self.replayed = 0
        self._reported = 0  # forged + replayed when the last auth_refused event went out
        self._refused_at = -_REFUSED_EVENT_MS
        self._open_at = 0
        self._update_tlm()

    # --- state --------------------------------------------------------------------------

    @property
    def state(self):
        if not self.keys:
            return _OPEN_NO_KEY
        return _ENFORCED if self.enforce else _OPEN_BY_COMMAND

    def set_enforce(self, enforce):
        """auth_policy: persist, then apply. Raises OSError if the flash write fails."""
        storage.write_atomic(self.root, _POLICY_FILE, b"\x01" if enforce else b"\x00")
        self.enforce = enforce
        self._open_at = self._now_ms() - _OPEN_EVENT_MS  # say so at once if now open
        self._update_tlm()

    def _update_tlm(self):
        tlm = self.tlm
        tlm[_CH_AUTH_STATE] = self.state
        tlm[_CH_AUTH_FORGED] = self.forged
        tlm[_CH_AUTH_REPLAYED] = self.replayed

    def clear_counters(self):
        self.forged = 0
        self.replayed = 0
        self._reported = 0
        self._update_tlm()

    # --- the checks of §10.3 ------------------------------------------------------------

    def check(self, buf, n):
        r = self.reader
        if r.parse(buf, n, cose.LABEL_COUNTER) != cose.OK:
            return self._refuse(False)
        operators = self.operators
        slot = -1
        for i in range(len(operators)):
            if operators[i] == r.operator:
                slot = i
                break
        if slot < 0 or r.generation < self.floor[slot]:
            return self._refuse(False)  # unknown, or revoked
        if r.generation == self.gen[slot]:
            key = self.keys[slot]
        elif r.generation == self.prev[slot]:
            key = self.old[slot]
        else:
            return self._refuse(False)
        if not key.verify(r, 0):
            return self._refuse(False)
        c = r.counter
        high = self.high[slot]
        if c > high:
            if c > self.reserved[slot]:
                reserve = (c // _RESERVE + 1) * _RESERVE
                try:
                    storage.write_atomic(self.root, counter_file(self.operators[slot]),
                                         struct.pack("<I", reserve))
                except OSError:
                    self.slot = slot
                    self.counter = c
                    return _STORE_FAILED
                self.reserved[slot] = reserve
            shift = c - high
            mask = self.mask[slot]
            # (kept below 2**24: a small int on a 32-bit port, no allocation)
            mask = ((mask & (_WINDOW_MASK >> shift)) << shift) | (1 << (shift - 1)) \
                if shift <= _WINDOW else 0
            self.mask[slot] = mask
            self.high[slot] = c
        else:
            d = high - c  # >= 0
            if d == 0 or d > _WINDOW or (self.mask[slot] >> (d - 1)) & 1:
                return self._refuse(True)
            self.mask[slot] |= 1 << (d - 1)
        self.slot = slot
        self.counter = c
        if key is self.keys[slot] and self.prev[slot] != NONE:  # once per rotation
            node.call("keyops", "drop_old", self, slot)
        return _ACCEPT

    def _refuse(self, replay):
        if replay:
            self.replayed += 1
        else:
            self.forged += 1
        self._update_tlm()
        self.report()
        return _REFUSED

    def report(self):
        """The throttled auth_refused event and the auth_open reminder; also called
        periodically (a burst's last refusals are reported when the 10 s are up)."""
        now = self._now_ms()
        total = self.forged + self.replayed
        if total != self._reported and now - self._refused_at >= _REFUSED_EVENT_MS:
            self._refused_at = now
            self._reported = total
            self.events.emit(_EV_AUTH_REFUSED, self.forged, self.replayed)
        state = self.state
        if state != _ENFORCED and now - self._open_at >= _OPEN_EVENT_MS:
            self._open_at = now
            self.events.emit(_EV_AUTH_OPEN, state)

    def boot(self):
        """The boot-time auth_open event of an open board."""
        self._open_at = self._now_ms() - _OPEN_EVENT_MS
        self.report()

    # --- the auth_policy command (taken only authenticated) ------------------------------

    def register(self, d):
        d.register(_CMD_AUTH_POLICY, self._policy, self._policy_check)
        d.register(_CMD_KEY_ROTATE, self._rotate, self._policy_check)
        d.register(_CMD_KEY_REVOKE, self._revoke, self._policy_check)

    def _policy_check(self, d):
        return 0 if d.sign_slot >= 0 else _UNAUTHENTICATED

    def _policy(self, d):
        try:
            self.set_enforce(d.args[0])
        except OSError:
            return _STORAGE_ERROR
        return 0

    # --- key_rotate / key_revoke (taken only authenticated, hazardous) --------------------

    def _rotate(self, d):
        return node.call("keyops", "rotate", self, d.args[0], d.args[1])  # let go after

    def _revoke(self, d):
        return node.call("keyops", "revoke", self, d.args[0], d.args[1])

    # --- answers ------------------------------------------------------------------------

    def wrap(self, enc, slot, generation, counter):
        """Replace the message in enc (a protocol.cbor_encoder.Encoder) with its COSE_Mac0 form
        under the key that verified the command (slot's generation), answering counter (§10.5).
        Returns False if it would not fit. Wrapped in place (cose.wrap_in_place), hashed
        through the reader's 64-byte block (the reader lent as scratch): no copy of the
        message, nothing allocated beyond hashlib's own (a retired or revoked generation's key
        aside)."""
        n = enc.pos
        if n + cose.WRAP_OVERHEAD > cose.MAX_MESSAGE_BYTES:
            return False
        if generation == self.gen[slot]:
            key = self.keys[slot]
        elif generation == self.prev[slot]:
            key = self.old[slot]
        else:  # retired or revoked since the command came: still its key (allocates)
            key = mac_key(self._masters[slot], self.operators[slot], generation)
        enc.pos = cose.wrap_in_place(enc.buf, key, counter, n, self.reader)
        return True
