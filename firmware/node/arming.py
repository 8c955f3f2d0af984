"""Hazardous commands: arm, then execute (SPEC §10.8).

A hazardous command (dictionary flag bit 0: reboot, maintenance, param_reset, auth_policy,
key_rotate, key_revoke) runs only as the very next command after an ``arm`` from the same
sender (key slot, or plain) that names it and the exact CBOR encoding of its argument array,
within arm_timeout_ms of node time. Anything else the node handles as a command in between
disarms (a repeat of the arm itself, answered from the idempotency record, does not); a
reboot disarms (the state is in RAM only). A hazardous command that does not match, and an
arm naming a command that is not hazardous, are rejected NOT_ARMED.

The dispatcher, for every message that reaches command handling:
    take()                before handling: the armed state moves aside (expired: evented)
    restore(ring_slot)    the message was a repeat of the arm at that ring slot: put it back
    match(cmd_id, slot, buf, start, end)   the state taken arms exactly this: consume it
    settle(by)            after handling: a state taken and not consumed nor restored is
                          disarmed (the disarmed event names the command that did it)
and ``tick()`` at 1 Hz expires an arm nobody followed (arm_expired event).
Allocation: none in take/restore/match/settle/tick; ``arm`` copies into a preallocated buffer.
"""

from micropython import const

from protocol.node_dictionary import COMMAND_FLAGS

# Ids from protocol.ids, inlined at compile time (tests/firmware/test_consts.py checks them).
_CH_ARMED_COMMAND = const(36)
_EV_ARMED = const(33)
_EV_DISARMED = const(34)
_EV_ARM_EXPIRED = const(35)
_PARAM_ARM_TIMEOUT_MS = const(16)
_CMD_ARM = const(23)
_BAD_ARGUMENTS = const(2)
_NOT_ARMED = const(11)
_OK = const(0)
_FLAG_HAZARDOUS = const(1)

MAX_ARG_BYTES = const(64)  # the longest argument encoding an arm may name


def hazardous(cmd_id):
    return 0 <= cmd_id < len(COMMAND_FLAGS) and COMMAND_FLAGS[cmd_id] & _FLAG_HAZARDOUS


class Arming:
    def __init__(self, tlm, events, params, now_ms):
        self.tlm = tlm
        self.events = events
        self.params = params
        self._now_ms = now_ms
        self._args = bytearray(MAX_ARG_BYTES)
        self._n = 0
        self.cmd = 0  # the armed command, 0 when none
        self._slot = -1  # the key slot of the arm's sender (-1 plain)
        self._ring = -1  # the arm's idempotency ring slot
        self._deadline = 0
        self._taken = 0  # the command of the state moved aside by take(), 0 when none

    # --- the arm command ----------------------------------------------------------------

    def register(self, d):
        d.register(_CMD_ARM, self._arm, self._arm_check)

    def _arm_check(self, d):
        if not hazardous(d.args[0]):
            return _NOT_ARMED
        args = d.args[1]
        if type(args) is not bytes or len(args) > MAX_ARG_BYTES:
            return _BAD_ARGUMENTS
        return _OK

    def _arm(self, d):
        self.arm(d.args[0], d.args[1], d.sign_slot, d.ring_slot)
        return _OK

    # --- state ----------------------------------------------------------------------------

    def arm(self, cmd_id, args, key_slot, ring_slot):
        """The arm command (checked: cmd_id hazardous, len(args) <= MAX_ARG_BYTES)."""
        n = len(args)
        self._args[0:n] = args
        self._n = n
        self.cmd = cmd_id
        self._slot = key_slot
        self._ring = ring_slot
        self._deadline = self._now_ms() + self.params.get(_PARAM_ARM_TIMEOUT_MS)
        self.tlm[_CH_ARMED_COMMAND] = cmd_id
        self.events.emit(_EV_ARMED, cmd_id)

    def take(self):
        cmd = self.cmd
        if cmd and self._now_ms() >= self._deadline:
            self._expire()
            cmd = 0
        self._taken = cmd
        self.cmd = 0
        self.tlm[_CH_ARMED_COMMAND] = 0

    def restore(self, ring_slot):
        if self._taken and ring_slot == self._ring:
            self.cmd = self._taken
            self._taken = 0
            self.tlm[_CH_ARMED_COMMAND] = self.cmd

    def match(self, cmd_id, key_slot, buf, start, end):
        """Whether the state taken arms cmd_id from key_slot with arguments buf[start:end];
        if so it is consumed. Allocates nothing."""
        if self._taken != cmd_id or self._slot != key_slot or end - start != self._n:
            return False
        if self._now_ms() >= self._deadline:
            self._taken = 0
            self.cmd = cmd_id
            self._expire()
            return False
        args = self._args
        diff = 0
        for i in range(self._n):
            diff |= args[i] ^ buf[start + i]
        if diff:
            return False
        self._taken = 0
        return True

    def settle(self, by):
        cmd = self._taken
        if cmd:
            self._taken = 0
            self.events.emit(_EV_DISARMED, cmd, by if by > 0 else 0)

    def tick(self):
        if self.cmd and self._now_ms() >= self._deadline:
            self._expire()

    def _expire(self):
        cmd = self.cmd
        self.cmd = 0
        self.tlm[_CH_ARMED_COMMAND] = 0
        self.events.emit(_EV_ARM_EXPIRED, cmd)
