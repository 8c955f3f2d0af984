"""Authenticated commanding on the node (SPEC §10): key table, replay windows, policy, refusals.

Files on the flash (node.storage blobs, written atomically):
    keys.bin      CBOR [[operator, master (32 bytes), generation], ...]: the key table,
                  written only through the maintenance path (mpremote), never by the node
    auth.bin      1 byte: 1 enforce (the default once keys exist), 0 open by command
    ctr<op>.bin   4 bytes LE: the operator's counter reservation R (§10.4)

``check(buf, n)`` runs the checks of §10.3 on a received COSE_Mac0 object: it returns
ACCEPT (the payload is buf[payload:payload_end]; ``slot`` and ``counter`` say how to sign the
answers), REFUSED (counted; nothing may be sent back) or STORE_FAILED (authenticated, but the
counter reservation could not be written: reject COUNTER_STORE_FAILED, do not execute).
``wrap(enc, slot, counter)`` turns the verification in enc into its authenticated form.

Allocation: ``check`` allocates only what protocol.cose's verify does (hashlib), plus the
reservation write once in 256 commands; ``wrap`` allocates (downlink of answers only).
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
_UNAUTHENTICATED = const(9)
_STORAGE_ERROR = const(17)

OPEN_NO_KEY = const(0)
OPEN_BY_COMMAND = const(1)
ENFORCED = const(2)

ACCEPT = const(0)
REFUSED = const(1)
STORE_FAILED = const(2)

_POLICY_FILE = const("auth.bin")
_WINDOW = const(24)  # counters below the highest that may still arrive (out of order)
_WINDOW_MASK = const(0xFFFFFF)
_RESERVE = const(256)  # counters reserved per flash write
_REFUSED_EVENT_MS = const(10000)  # at most one auth_refused event per 10 s
_OPEN_EVENT_MS = const(60000)  # auth_open repeated every 60 s while open


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
        self.keys = []  # MacKey per slot
        self.operators = []  # operator number per slot
        self.high = []  # highest counter accepted, per slot
        self.mask = []  # bit i: counter high - 1 - i accepted
        self.reserved = []  # R per slot (flash)
        node.call("authkeys", "load", self)  # boot only: the code goes after
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
            return OPEN_NO_KEY
        return ENFORCED if self.enforce else OPEN_BY_COMMAND

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
        if slot < 0 or self.keys[slot].kid[1] != r.generation:
            return self._refuse(False)
        if not self.keys[slot].verify(r, 0):
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
                    return STORE_FAILED
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
        return ACCEPT

    def _refuse(self, replay):
        if replay:
            self.replayed += 1
        else:
            self.forged += 1
        self._update_tlm()
        self.report()
        return REFUSED

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
        if state != ENFORCED and now - self._open_at >= _OPEN_EVENT_MS:
            self._open_at = now
            self.events.emit(_EV_AUTH_OPEN, state)

    def boot(self):
        """The boot-time auth_open event of an open board."""
        self._open_at = self._now_ms() - _OPEN_EVENT_MS
        self.report()

    # --- the auth_policy command (taken only authenticated) ------------------------------

    def register(self, d):
        d.register(_CMD_AUTH_POLICY, self._policy, self._policy_check)

    def _policy_check(self, d):
        return 0 if d.sign_slot >= 0 else _UNAUTHENTICATED

    def _policy(self, d):
        try:
            self.set_enforce(d.args[0])
        except OSError:
            return _STORAGE_ERROR
        return 0

    # --- answers ------------------------------------------------------------------------

    def wrap(self, enc, slot, counter):
        """Replace the message in enc (a protocol.cbor_encoder.Encoder) with its COSE_Mac0 form
        under slot's key, answering counter (§10.5). Returns False if it would not fit."""
        n = enc.pos
        if n + cose.WRAP_OVERHEAD > cose.MAX_MESSAGE_BYTES:
            return False
        enc.pos = cose.wrap_in_place(enc.buf, self.keys[slot], counter, n)
        return True
