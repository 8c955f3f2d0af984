"""Command dispatch (SPEC §5.1, §5.2, §6): decode, check, verify, execute, remember.

Services register their commands: ``register(cmd_id, handler, check=None)``.
- ``check(d) -> code``: optional argument checks the dictionary cannot express (arguments
  typed ``any``); a non-zero rejection code (1..15) rejects the command.
- ``handler(d) -> code``: executes with ``d.args`` (``d.cmd_seq``, ``d.cmd_id`` also set) and
  returns OK (0; ``d.result`` is then the completed verification's result, None by default),
  a failure code (16..31), or PENDING: the service finishes later with
  ``d.finish(cmd_seq, cmd_id, code, result)`` (bulk downlinks).
- A handler that raises: failed EXECUTION_ERROR and a cmd_failed event; never a crash.

Flow per command: envelope (read_command_head: the whole message well-formed, version,
shape) → bound to this boot? → known id → duplicate? → arguments (read_args, then mode, then
check) → accepted → handler → completed / failed. Rejections raise a cmd_rejected (debug)
event; failures a cmd_failed event. A rejection names the seq and id received, exactly
(read_address); a message without them is only counted.

Idempotency: a ring of the last 32 accepted (seq, command id) pairs with their final stage,
code and result. A repeat re-sends the recorded verifications and does not execute again.
The ring lives in RAM and is per boot: a command carries the boot it is bound to (SPEC
§5.1) and one for another boot is rejected STALE_BOOT (the result: this boot's count), so a
command re-sent after a reboot or a power cut never runs twice.

Authentication (SPEC §10, node.auth): a frame that starts with tag 17 is a COSE_Mac0 object;
a refused one gets no answer (node.auth counts it); an accepted one's payload is the command,
and every verification it gets is authenticated under its key, answering its counter (kept
in the idempotency ring for commands that finish later). A plain command on an ENFORCED node
is rejected UNAUTHENTICATED after the checks of §5.

Hazardous commands (SPEC §10.8; dictionary flag bit 0) run only as the very next command after
an ``arm`` (command 23, registered here) from the same sender naming the command id and the
exact bytes of its argument array, within arm_timeout_ms; else NOT_ARMED, after the checks of
§5.1. on_message takes the arming aside before every message; the armed command consumes it,
a repeat of the arm (answered from the ring) puts it back, anything else disarms (event). A
time-tagged hazardous command is armed as it arrives; internal execution (below) is not armed.

Time-tagged commands (SPEC §11): a command whose time item is not 0 goes, after its arguments
are checked, to the queue (``self.timetag``, node.ttqueue): it judges the rest on arrival
(``admit``) and persists the entry before the dispatcher answers accepted; the mode is judged
when it runs. The queue runs it with ``parse`` and ``execute`` and reports with ``report``.

Internal execution (time-tagged queue, stored sequences): ``execute(cmd_id, args)`` runs a
command now without any verification and returns ``(code, result)``; ``parse(buf, start,
end)`` reads a stored command message into ``self.args``; ``report(...)`` sends the final
verification of a command accepted earlier (perhaps in another boot). Neither may be called
from inside a command handler (they reuse ``args``, ``cmd_seq`` and ``cmd_id``).

No allocation for a command with integer/bool arguments whose handler does not allocate
(a noop ping): the history and argument lists are preallocated. An authenticated command
adds what node.auth's check allocates (hashlib) and its authenticated answers.
"""

import struct
from array import array

from micropython import const

from protocol.cbor_decoder import Decoder
from protocol.envelope import read_args, read_command_head, write_verification
from protocol.errors import MessageError
from protocol.node_dictionary import COMMAND_ARG0, COMMAND_FLAGS, COMMAND_MODES, command_args

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_CMDS_ACCEPTED = const(27)
_CH_CMDS_REJECTED = const(28)
_EV_CMD_FAILED = const(23)
_EV_CMD_REJECTED = const(22)
_BAD_ARGUMENTS = const(2)
_EXECUTION_ERROR = const(16)
_MALFORMED = const(6)
_OK = const(0)
_STAGE_ACCEPTED = const(0)
_STAGE_COMPLETED = const(2)
_STAGE_FAILED = const(3)
_STAGE_REJECTED = const(1)
_STALE_BOOT = const(8)
_UNAUTHENTICATED = const(9)
_COUNTER_STORE_FAILED = const(10)
_QUEUE_FULL = const(14)
_AUTH_ACCEPT = const(0)  # node.auth check() verdicts
_AUTH_STORE_FAILED = const(2)
_ENFORCED = const(2)  # node.auth state
_UNKNOWN_COMMAND = const(1)
_WRONG_MODE = const(4)
_NOT_ARMED = const(11)
_FLAG_HAZARDOUS = const(1)
_CMD_ARM = const(23)
_CH_ARMED_COMMAND = const(36)
_EV_ARMED = const(33)
_EV_DISARMED = const(34)
_EV_ARM_EXPIRED = const(35)
_PARAM_ARM_TIMEOUT_MS = const(16)
_ARM_MAX_BYTES = const(64)  # the longest argument encoding an arm may name
_FLAG_IMMEDIATE = const(4)  # protocol.node_dictionary.FLAG_IMMEDIATE
_REPEAT = const(-2)  # node.ttqueue admit(): the entry is already queued

PENDING = const(-1)
_HISTORY = const(32)
_MAX_ARGS = const(4)
_NO_STAGE = const(-1)


def _put_uint(buf, pos, n):
    # CBOR unsigned integer head (shortest form) for 0 <= n < 2**32; returns the new end.
    if n < 24:
        buf[pos] = n
        return pos + 1
    if n < 0x100:
        buf[pos] = 0x18
        buf[pos + 1] = n
        return pos + 2
    if n < 0x10000:
        buf[pos] = 0x19
        buf[pos + 1] = n >> 8
        buf[pos + 2] = n & 0xFF
        return pos + 3
    buf[pos] = 0x1A
    struct.pack_into(">I", buf, pos + 1, n)
    return pos + 5


def _same(a, buf, start, end):
    # a (bytes) equals buf[start:end], without allocating
    n = len(a)
    if end - start != n:
        return False
    for i in range(n):
        if a[i] != buf[start + i]:
            return False
    return True


class Dispatcher:
    def __init__(self, link, modes, events, tlm, boot_count, auth=None, params=None):
        self.link = link
        self.modes = modes
        self.events = events
        self.tlm = tlm
        n = len(COMMAND_MODES)
        self._handlers = [None] * n
        self._checks = [None] * n
        self._dec = Decoder()
        # seq, command id, boot, time (protocol.envelope.read_command_head)
        self._head = [-1, -1, -1, 0]
        self.timetag = None  # node.ttqueue.TimeTagQueue, or None: time-tagged commands MALFORMED
        self.msg_buf = None  # the command message being handled: msg_buf[msg_start:msg_end]
        self.msg_start = 0
        self.msg_end = 0
        self.boot_count = boot_count  # a command bound to another boot is rejected STALE_BOOT
        self.args = [None] * _MAX_ARGS
        self.cmd_seq = 0
        self.cmd_id = 0
        self.tag = 0  # parse(): the stored command's time item
        self.nargs = 0
        self.result = None
        # idempotency ring
        # arrays, not lists: 1-4 bytes an entry instead of a pointer (small ints: no boxing)
        self._h_seq = array("i", [-1] * _HISTORY)
        self._h_id = array("h", [-1] * _HISTORY)
        self._h_stage = array("b", [_NO_STAGE] * _HISTORY)  # final stage, or _NO_STAGE (pending)
        self._h_code = array("B", bytes(_HISTORY))
        self._h_result = [None] * _HISTORY
        self._h_next = 0
        self._h_slot = array("b", [-1] * _HISTORY)  # key slot of an authenticated command
        self._h_ctr = array("i", [0] * _HISTORY)  # its counter (the answers' label)
        self.auth = auth  # node.auth.Auth, or None: no authentication (tests)
        self.sign_slot = -1  # while an authenticated command is handled: its key slot
        self.sign_ctr = 0  # and counter
        self.sign_gen = 0  # and its key generation (answers are signed with that key)
        self._h_gen = array("B", bytes(_HISTORY))  # the generation of its answers' key
        # Arming (SPEC §10.8): the command armed (0: none), its sender's key slot, the arm's
        # ring slot, deadline (node ms) and argument bytes (the arm's own bytes object)
        self._params = params  # node.params.Params, or None: hazardous commands run unarmed
        self._arm_cmd = 0
        self._arm_slot = -1
        # ring_slot: while a handler runs, its command's idempotency ring slot
        self._arm_ring = self.ring_slot = -1
        self._arm_until = 0
        self._arm_args = b""
        self._armed = 0  # while a message is handled: the arming taken aside, 0 when none
        if params is not None:
            self.register(_CMD_ARM, self._arm, self._arm_check)
        self.cmds_accepted = 0
        self.cmds_rejected = 0
        link.on_message = self.on_message

    def register(self, cmd_id, handler, check=None):
        self._handlers[cmd_id] = handler
        self._checks[cmd_id] = check

    # --- receive path -------------------------------------------------------------------

    def on_message(self, buf, n):
        """One verified message from the link: buf[0:n]. Never raises."""
        auth = self.auth
        start = 0
        verdict = _AUTH_ACCEPT
        if auth is not None and n and buf[0] == 0xD1:  # tag 17: COSE_Mac0 (SPEC §10)
            try:
                verdict = auth.check(buf, n)
            except Exception as e:  # a bug in the checks: refuse, count, never crash
                self._log_exc(e)
                self.cmds_rejected += 1
                self.tlm[_CH_CMDS_REJECTED] = self.cmds_rejected
                return
            if verdict != _AUTH_ACCEPT and verdict != _AUTH_STORE_FAILED:
                return  # refused: counted by auth, never answered
            start = auth.reader.payload
            n = auth.reader.payload_end
            self.sign_slot = auth.slot
            self.sign_ctr = auth.counter
            self.sign_gen = auth.reader.generation
        if self._params is not None:
            self.arm_tick(True)  # any command disarms but the armed one and a repeat of the arm
        head = self._head
        head[1] = -1
        try:
            self._message(buf, start, n, verdict)
        finally:
            self.sign_slot = -1
            armed = self._armed
            if armed:  # neither consumed by its command nor kept by a repeat of the arm
                self._armed = 0
                self.events.emit(_EV_DISARMED, armed, head[1] if head[1] > 0 else 0)

    def _message(self, buf, start, n, verdict):
        head = self._head
        dec = self._dec
        self.msg_buf = buf
        self.msg_start = start
        self.msg_end = n
        try:
            dec.reset(buf, start, n)
            nargs = read_command_head(dec, head)
        except MessageError as e:
            if head[1] >= 0:
                self._reject(head[0], head[1], e.code)
            else:
                self.cmds_rejected += 1
                self.tlm[_CH_CMDS_REJECTED] = self.cmds_rejected
            return
        except Exception:  # anything else from a decoder: treat as malformed
            self.cmds_rejected += 1
            self.tlm[_CH_CMDS_REJECTED] = self.cmds_rejected
            return
        seq = head[0]
        cmd_id = head[1]
        try:
            if verdict == _AUTH_STORE_FAILED:  # authenticated; the counter could not be kept
                self._reject(seq, cmd_id, _COUNTER_STORE_FAILED)
                return
            if self.sign_slot < 0 and self.auth is not None and self.auth.state == _ENFORCED:
                self._reject(seq, cmd_id, _UNAUTHENTICATED)
                return
            if head[2] != self.boot_count:  # bound to another boot (SPEC §5.1): never run
                self._reject(seq, cmd_id, _STALE_BOOT, self.boot_count)
                return
            self._command(dec, seq, cmd_id, nargs)
        except Exception as e:  # a bug in the dispatcher path itself: count it, do not crash
            self.link.abort()
            self._log_exc(e)
            self.cmds_rejected += 1
            self.tlm[_CH_CMDS_REJECTED] = self.cmds_rejected

    def _command(self, dec, seq, cmd_id, nargs):
        modes = COMMAND_MODES[cmd_id] if cmd_id < len(COMMAND_MODES) else 0
        handler = self._handlers[cmd_id] if modes else None
        if handler is None:
            self._reject(seq, cmd_id, _UNKNOWN_COMMAND)
            return
        slot = self._find(seq, cmd_id, self.sign_slot)
        if slot >= 0:  # a repeat (SPEC §5.2): answer again, do not execute
            if self.sign_slot >= 0:  # later answers go to the newest transmission's counter
                self._h_slot[slot] = self.sign_slot
                self._h_ctr[slot] = self.sign_ctr
                self._h_gen[slot] = self.sign_gen
            if self._armed and slot == self._arm_ring:  # a repeat of the arm keeps it armed
                self._arm_cmd = self._armed
                self._armed = 0
                self.tlm[_CH_ARMED_COMMAND] = self._arm_cmd
            self._resend(slot)
            return
        args = self.args
        code = _OK
        first = dec.pos  # the first argument; the array head is the byte before (nargs < 24)
        if nargs or COMMAND_ARG0[cmd_id + 1] > COMMAND_ARG0[cmd_id]:
            try:  # command_args allocates: only commands that take arguments get here
                code = read_args(dec, nargs, command_args(cmd_id), args)
            except Exception:  # MemoryError: an argument too big for the heap left now
                code = _BAD_ARGUMENTS
        if code:
            self._reject(seq, cmd_id, code)
            return
        if self._head[3]:  # time-tagged (SPEC §11.2): judged now, queued, run later
            if self._not_armed(cmd_id, dec, first):  # a hazardous one is armed as it arrives
                self._reject(seq, cmd_id, _NOT_ARMED)
                return
            self._timetagged(seq, cmd_id, nargs, self._head[3])
            return
        if not modes & (1 << self.modes.current):
            self._reject(seq, cmd_id, _WRONG_MODE)
            return
        code = self.run_check(cmd_id)
        if code:
            self._reject(seq, cmd_id, code)
            return
        if self._not_armed(cmd_id, dec, first):  # (SPEC §10.8)
            self._reject(seq, cmd_id, _NOT_ARMED)
            return
        slot = self._remember(seq, cmd_id)
        self.cmds_accepted += 1
        self.tlm[_CH_CMDS_ACCEPTED] = self.cmds_accepted
        self._verify(seq, cmd_id, _STAGE_ACCEPTED, 0, None)
        self.cmd_seq = seq
        self.cmd_id = cmd_id
        self.result = None
        self.ring_slot = slot
        try:
            code = handler(self)
        except Exception as e:
            self.link.abort()  # the handler may have been half way through a message
            self._log_exc(e)
            code = _EXECUTION_ERROR
        for i in range(nargs):
            args[i] = None  # do not keep argument objects alive
        if code == PENDING:
            return
        self._complete(slot, seq, cmd_id, code, self.result)
        self.result = None

    def _timetagged(self, seq, cmd_id, nargs, tag):
        # Allocates (the tag is a heap int on a Pico, the queue writes the flash).
        args = self.args
        tt = self.timetag
        if tt is None:
            code = _MALFORMED  # no queue: a time tag is not understood
        elif COMMAND_FLAGS[cmd_id] & _FLAG_IMMEDIATE:
            code = _BAD_ARGUMENTS  # this command is never time-tagged
        else:
            try:  # the clock, the time, the command's own check (run_check), queue room
                code = tt.admit(self, seq, cmd_id, tag)
            except Exception as e:  # a queue bug: the command cannot be queued
                self._log_exc(e)
                code = _EXECUTION_ERROR
        for i in range(nargs):
            args[i] = None
        if code == _REPEAT:  # already queued, its ring entry pushed out: answer again
            self._verify(seq, cmd_id, _STAGE_ACCEPTED, 0, None)
            return
        if code == _EXECUTION_ERROR:  # the flash write failed: not queued
            code = _QUEUE_FULL
        if code:
            self._reject(seq, cmd_id, code)
            return
        self._remember(seq, cmd_id)  # its final stage comes from report()
        self.cmds_accepted += 1
        self.tlm[_CH_CMDS_ACCEPTED] = self.cmds_accepted
        self._verify(seq, cmd_id, _STAGE_ACCEPTED, 0, None)

    def run_check(self, cmd_id):
        """The command's own check (registered with it): 0 or its rejection code."""
        check = self._checks[cmd_id]
        if check is None:
            return _OK
        try:
            return check(self)
        except Exception as e:  # a checker bug: the command cannot be judged, reject it
            self._log_exc(e)
            return _BAD_ARGUMENTS

    # --- internal execution (time-tagged queue, stored sequences) -----------------------

    def parse(self, buf, start, end):
        """Read a stored command message buf[start:end] as on arrival (envelope, known id,
        arguments; not the boot binding, the mode or the command's check). Returns 0 or the
        rejection code; then ``cmd_seq``, ``cmd_id``, ``tag`` (its time item), ``nargs``
        and ``args[0:nargs]`` hold it. Allocates (a heap int tag, float arguments)."""
        head = self._head
        dec = self._dec
        try:
            dec.reset(buf, start, end)
            nargs = read_command_head(dec, head)
        except MessageError as e:
            return e.code
        except Exception:
            return _MALFORMED
        cmd_id = head[1]
        self.cmd_seq = head[0]
        self.cmd_id = cmd_id
        self.tag = head[3]
        self.nargs = nargs
        modes = COMMAND_MODES[cmd_id] if cmd_id < len(COMMAND_MODES) else 0
        if not modes or self._handlers[cmd_id] is None:
            return _UNKNOWN_COMMAND
        try:
            return read_args(dec, nargs, command_args(cmd_id), self.args)
        except Exception:
            return _BAD_ARGUMENTS

    def execute(self, cmd_id, args=None):
        """Run command ``cmd_id`` now, internally: no verification, nothing remembered.

        ``args``: its arguments, already checked against the dictionary (None: the ones
        ``parse`` left in ``self.args``). The mode is checked (WRONG_MODE), then the
        command's own check (its rejection code), then the handler runs. Returns ``(code,
        result)``: code 0 and the completed result, a rejection code (1..15), a failure code
        (16..31), or PENDING for a handler that finishes later (a bulk downlink: marked
        immediate, never queued). A handler that raises gives EXECUTION_ERROR and a
        cmd_failed event is the caller's choice (report() raises it)."""
        if args is not None:
            for i in range(len(args)):
                self.args[i] = args[i]
        modes = COMMAND_MODES[cmd_id] if cmd_id < len(COMMAND_MODES) else 0
        handler = self._handlers[cmd_id] if modes else None
        if handler is None:
            return _UNKNOWN_COMMAND, None
        if not modes & (1 << self.modes.current):
            return _WRONG_MODE, None
        code = self.run_check(cmd_id)
        if code:
            return code, None
        self.cmd_id = cmd_id
        self.result = None
        # no arrival of its own: an arm run here is kept by no repeat (only the arm's own
        # repeat keeps an arming, SPEC §10.8), not by the command whose handler ran last
        self.ring_slot = -1
        try:
            code = handler(self)
        except Exception as e:
            self.link.abort()
            self._log_exc(e)
            code = _EXECUTION_ERROR
        result = self.result
        self.result = None
        for i in range(_MAX_ARGS):
            self.args[i] = None
        return code, (None if code else result)

    def report(self, cmd_seq, cmd_id, code, result=None, key_slot=-1, counter=0, boot=0):
        """Send the final verification (completed for code 0, else failed) of a command
        accepted earlier in boot ``boot`` (0: this one), signed as it came (``key_slot``,
        ``counter``: node.auth, -1 plain), and record it in the idempotency ring when it was
        accepted in this boot and the ring still holds it pending. A failure raises a
        cmd_failed event."""
        same_boot = boot == 0 or boot == self.boot_count
        slot = self._find(cmd_seq, cmd_id, -2) if same_boot else -1
        if slot >= 0:
            key_slot = self._h_slot[slot]
            counter = self._h_ctr[slot]
        outer_slot = self.sign_slot  # a command being handled (tt_clear) keeps its own
        outer_ctr = self.sign_ctr
        self.sign_slot = key_slot if self.auth is not None else -1
        self.sign_ctr = counter
        try:
            if slot >= 0:
                self._complete(slot, cmd_seq, cmd_id, code, result)
                return
            stage = _STAGE_FAILED if code else _STAGE_COMPLETED
            try:
                self._verify(cmd_seq, cmd_id, stage, code, None if code else result)
            except Exception as e:  # a result the encoder cannot take
                self.link.abort()
                self._log_exc(e)
            if code:
                self.events.emit(_EV_CMD_FAILED, cmd_id, cmd_seq, code)
        finally:
            self.sign_slot = outer_slot
            self.sign_ctr = outer_ctr

    # --- verification -------------------------------------------------------------------

    def _verify(self, cmd_seq, cmd_id, stage, code, result):
        link = self.link
        link.busy = True
        now = link._now_ms()
        if result is None and code < 24 and now < 0x100000000 and cmd_id < 0x100000000:
            # The common case written directly (same bytes as M.write_verification).
            enc = link.enc
            buf = enc.buf
            buf[0] = 0x86  # array(6)
            buf[1] = 0x01  # version
            buf[2] = 0x01  # kind: verification
            pos = _put_uint(buf, 3, link.seq)
            pos = _put_uint(buf, pos, now)
            pos = _put_uint(buf, pos, cmd_id)
            buf[pos] = 0x84  # body: array(4)
            pos = _put_uint(buf, pos + 1, cmd_seq)
            buf[pos] = stage
            buf[pos + 1] = code
            buf[pos + 2] = 0xF6  # null
            enc.pos = pos + 3
        else:
            write_verification(link.enc, link.seq, now, cmd_id, cmd_seq, stage, code, result)
        auth = self.auth
        if self.sign_slot >= 0 and auth is not None and not auth.wrap(link.enc, self.sign_slot,
                                                                       self.sign_gen,
                                                                       self.sign_ctr):
            link.abort()  # too big once authenticated: counted as a dropped frame
            link.tx_dropped += 1
            return
        link.end()

    def _reject(self, seq, cmd_id, code, result=None):
        self.cmds_rejected += 1
        self.tlm[_CH_CMDS_REJECTED] = self.cmds_rejected
        self._verify(seq, cmd_id, _STAGE_REJECTED, code, result)
        self.events.emit(_EV_CMD_REJECTED, cmd_id, seq, code)

    def _complete(self, slot, seq, cmd_id, code, result):
        stage = _STAGE_FAILED if code else _STAGE_COMPLETED
        if code:
            result = None
        self._h_stage[slot] = stage
        self._h_code[slot] = code
        self._h_result[slot] = result
        try:
            self._verify(seq, cmd_id, stage, code, result)
        except Exception as e:  # a result the encoder cannot take: report the failure
            self.link.abort()
            self._log_exc(e)
            self._h_stage[slot] = _STAGE_FAILED
            self._h_code[slot] = code = _EXECUTION_ERROR
            self._h_result[slot] = None
            self._verify(seq, cmd_id, _STAGE_FAILED, code, None)
        if code:
            self.events.emit(_EV_CMD_FAILED, cmd_id, seq, code)

    def finish(self, cmd_seq, cmd_id, code, result=None):
        """Complete a command whose handler returned PENDING."""
        slot = self._find(cmd_seq, cmd_id, -2)
        if slot >= 0:
            self.sign_slot = self._h_slot[slot]  # answered as the command came: signed or not
            self.sign_ctr = self._h_ctr[slot]
            self.sign_gen = self._h_gen[slot]
            try:
                self._complete(slot, cmd_seq, cmd_id, code, result)
            finally:
                self.sign_slot = -1

    # --- hazardous commands: arm, then execute (SPEC §10.8) ------------------------------

    def _not_armed(self, cmd_id, dec, first):
        # A hazardous command that the arming taken aside does not arm (same command, sender
        # and argument bytes: dec.buf[first - 1:dec.pos]); if it does, the arming is consumed.
        if self._params is None or not COMMAND_FLAGS[cmd_id] & _FLAG_HAZARDOUS:
            return False
        if self._armed != cmd_id or self._arm_slot != self.sign_slot or \
                not _same(self._arm_args, dec.buf, first - 1, dec.pos):
            return True
        self._armed = 0  # consumed
        return False

    def _arm_check(self, d):
        cmd = d.args[0]
        if cmd >= len(COMMAND_FLAGS) or not COMMAND_FLAGS[cmd] & _FLAG_HAZARDOUS:
            return _NOT_ARMED
        a = d.args[1]
        if type(a) is not bytes or len(a) > _ARM_MAX_BYTES:
            return _BAD_ARGUMENTS
        return _OK

    def _arm(self, d):
        params = self._params
        if params is None:  # (registered only with params)
            return _OK
        cmd = d.args[0]
        self._arm_cmd = cmd
        self._arm_args = d.args[1]
        self._arm_slot = self.sign_slot
        self._arm_ring = self.ring_slot
        self._arm_until = self.link._now_ms() + params.get(_PARAM_ARM_TIMEOUT_MS)
        self.tlm[_CH_ARMED_COMMAND] = cmd
        self.events.emit(_EV_ARMED, cmd)
        return _OK

    def arm_tick(self, taking=False):
        """Expire an arm nobody followed (arm_expired; at 1 Hz and as a command arrives);
        taking: move the arming aside for the message being handled. Allocates nothing."""
        cmd = self._arm_cmd
        if cmd and self.link._now_ms() >= self._arm_until:
            self.events.emit(_EV_ARM_EXPIRED, cmd)
            cmd = 0
        if taking or not cmd:
            self._arm_cmd = 0
            self.tlm[_CH_ARMED_COMMAND] = 0
        if taking:
            self._armed = cmd

    # --- idempotency --------------------------------------------------------------------

    def _find(self, seq, cmd_id, key_slot):
        # The ring entry of (seq, cmd_id) from the sender of key_slot (-1: unauthenticated;
        # operators choose their seqs independently), or with key_slot -2 the pending entry
        # of (seq, cmd_id) whoever sent it (finish).
        hs = self._h_seq
        hi = self._h_id
        hk = self._h_slot
        for i in range(_HISTORY):
            if hs[i] == seq and hi[i] == cmd_id:
                if hk[i] == key_slot or (key_slot == -2 and self._h_stage[i] == _NO_STAGE):
                    return i
        return -1

    def _remember(self, seq, cmd_id):
        i = self._h_next
        self._h_next = (i + 1) % _HISTORY
        self._h_seq[i] = seq
        self._h_id[i] = cmd_id
        self._h_stage[i] = _NO_STAGE
        self._h_code[i] = 0
        self._h_result[i] = None
        self._h_slot[i] = self.sign_slot
        self._h_ctr[i] = self.sign_ctr
        self._h_gen[i] = self.sign_gen
        return i

    def _resend(self, slot):
        seq = self._h_seq[slot]
        cmd_id = self._h_id[slot]
        self._verify(seq, cmd_id, _STAGE_ACCEPTED, 0, None)
        stage = self._h_stage[slot]
        if stage != _NO_STAGE:
            self._verify(seq, cmd_id, stage, self._h_code[slot], self._h_result[slot])

    def clear_counters(self):
        self.cmds_accepted = 0
        self.cmds_rejected = 0
        self.tlm[_CH_CMDS_ACCEPTED] = 0
        self.tlm[_CH_CMDS_REJECTED] = 0

    def _log_exc(self, e):
        self.link.board.log_exc(e)
