"""Stored sequences: the executor, the onboard triggers and the slot commands (SPEC §12.4-6).

Four slots. A run executes from the stored bytes (node.seqstore.read_step reads one step
into a buffer made at boot): nothing of a sequence is decoded into lists, so a 256-step
sequence costs its slot a few small integers in RAM. ``tick()`` (the sequencer task, every
100 ms) samples the triggers, then advances each running slot by at most _STEPS_PER_TICK
steps. A command step runs through ``Dispatcher.execute``, the ground's command path from
the mode check on (mode, the command's own check, handler); a wait step compares a
telemetry channel with its value at every tick until it holds or its timeout passes.

Commands: seq_start and seq_stop here. The others (upload, seq_trigger, seq_list, seq_delete)
are in node.seqcmds, imported when one arrives and dropped from sys.modules afterwards unless
an upload is in progress: that code and the validator's take heap only while they work. If
the heap cannot take them at that moment, the command is rejected BUSY (try again). Run marks
(node.seqstore seqrun.bin) are written when a run starts and ends, so a reset in mid-run is
reported at the next boot (seq_interrupted, state FAILED).

Allocates: commands, run start and end, and a step's flash read and arguments (a file object,
its command's argument records); a wait step's tick allocates nothing for integer channels.
"""

import sys
from array import array

from micropython import const

import node
from node import seqstore
from protocol.cbor_decoder import Decoder
from protocol.envelope import read_args
from protocol.node_dictionary import command_args

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BUSY = const(5)
_CH_BATTERY_SOC = const(11)
_CH_LUNAR_DAY = const(8)
_CH_MODE = const(1)
_CH_SEQ_HASH_0 = const(58)
_CH_SEQ_STATES = const(56)
_CH_SEQ_STEPS = const(57)
_CMD_SEQ_START = const(35)
_CMD_SEQ_STOP = const(36)
_EV_SEQ_ENDED = const(46)
_EV_SEQ_INTERRUPTED = const(50)
_EV_SEQ_STARTED = const(43)
_EV_SEQ_STEP = const(44)
_EV_SEQ_STEP_FAILED = const(45)
_EV_SEQ_TRIGGERED = const(47)
_MODE_BOOT = const(0)
_MODE_SAFE = const(1)
_NOT_FOUND = const(19)
_OK = const(0)
_SAFE_SEQUENCE = const(3)
_STORAGE_ERROR = const(17)
_WAIT_TIMEOUT = const(26)

# protocol.dictionary SEQ_STATES, SEQ_TRIGGERS, SEQ_ON_FAIL, SEQ_OPS
_EMPTY = const(0)
_IDLE = const(1)
_RUNNING = const(2)
_DONE = const(3)
_FAILED = const(4)
_STOPPED = const(5)
_T_NONE = const(0)
_T_SAFE_ENTRY = const(1)
_T_SUNSET = const(2)
_T_SUNRISE = const(3)
_T_BATTERY_BELOW = const(4)
_CAUSE_COMMAND = const(0)
_STOP = const(0)
_SKIP = const(1)
_SAFE = const(2)

# node.seqcmds handles these: upload begin, part, commit, seq_trigger, seq_list, seq_delete
_LAZY = (32, 33, 34, 37, 38, 39)
_LAZY_MODULES = ("seqcmds", "seqcheck")

SLOTS = const(4)
TICK_MS = const(100)
_STEPS_PER_TICK = const(8)
_STEP_BYTES = const(256)  # node.seqcheck.MAX_STEP_BYTES
_HYSTERESIS_PCT = 1.0
_MAX_ARGS = const(4)
# Phases of the current step
_LOAD = const(0)  # not read yet
_CMD = const(1)  # a command step waiting for its time
_WAIT = const(2)  # a wait step polling its condition


class Sequencer:
    def __init__(self, root, tlm, events, modes, dispatcher, now_ms):
        self.root = root
        # The upload in progress (node.seqcmds): slot (-1: none), size, digest, bytes held.
        self.up_slot = -1
        self.up_size = 0
        self.up_digest = b""
        self.up_held = 0
        self.tlm = tlm
        self.events = events
        self.modes = modes
        self.dispatcher = dispatcher
        self._now_ms = now_ms
        self.state = bytearray(SLOTS)
        self.step = array("H", bytes(2 * SLOTS))
        self.steps = array("H", bytes(2 * SLOTS))  # steps stored (0: empty)
        self.hash = [0] * SLOTS
        self.trigger = bytearray(SLOTS)
        self.level = [0.0] * SLOTS
        self._armed = bytearray(SLOTS)  # BATTERY_BELOW: fires when the charge falls below
        self._rearm = [0.0] * SLOTS  # level + hysteresis: armed again at or above it
        self.runs = [0] * SLOTS  # the run marks as stored (hash of the sequence running)
        # the current step of each running slot
        self._phase = bytearray(SLOTS)
        self._due = [0] * SLOTS  # command: when it runs; wait: when it began
        self._timeout = [0] * SLOTS
        self._on_fail = bytearray(SLOTS)
        self._channel = bytearray(SLOTS)
        self._op = bytearray(SLOTS)
        self._value: list = [0] * SLOTS  # numbers or bools (wait steps)
        # made at boot: one step's bytes, its decoder, its arguments
        self._buf = bytearray(_STEP_BYTES)
        self._buf_slot = -1  # whose step _buf holds (slot * 256 + index), -1: none
        self._buf_len = 0
        self._dec = Decoder()
        self._args = [None] * _MAX_ARGS
        self._prev_mode = -1  # trigger inputs at the previous tick (-1: no tick yet)
        self._prev_day = False
        self.steps_run = 0

    def register(self, d):
        d.register(_CMD_SEQ_START, self._cmd_start, self._check_not_running)
        d.register(_CMD_SEQ_STOP, self._cmd_stop)
        for cmd in _LAZY:
            d.register(cmd, self._lazy_run, self._lazy_check(cmd))

    def boot(self):
        """Read the slots, triggers, upload and run marks; report the runs a reset cut
        (node.seqcmds.boot, loaded for it and dropped). After the boot event (it emits)."""
        from node import seqcmds

        try:
            seqcmds.boot(self)
        finally:
            self._drop()
        for slot in range(SLOTS):
            self._rearm[slot] = self.level[slot] + _HYSTERESIS_PCT
        self.update_tlm()

    def interrupted(self, slot, h):
        """Slot was running hash h when a reset came (boot)."""
        self.events.emit(_EV_SEQ_INTERRUPTED, slot, h)
        if self.steps[slot]:
            self.state[slot] = _FAILED

    def update_tlm(self):
        tlm = self.tlm
        states = 0
        steps = 0
        for slot in range(SLOTS):
            states |= self.state[slot] << (4 * slot)
            steps |= (self.step[slot] & 0xFF) << (8 * slot)
            tlm[_CH_SEQ_HASH_0 + slot] = self.hash[slot]
        tlm[_CH_SEQ_STATES] = states
        tlm[_CH_SEQ_STEPS] = steps
        tlm[_CH_SEQ_HASH_0 + SLOTS] = self.up_held  # seq_upload_held

    # --- commands -----------------------------------------------------------------------

    def _check_not_running(self, d):
        return _BUSY if self.state[d.args[0]] == _RUNNING else _OK

    def _cmd_start(self, d):
        return self.start(d.args[0], _CAUSE_COMMAND)

    def _cmd_stop(self, d):
        slot = d.args[0]
        if self.state[slot] == _RUNNING:
            self._end(slot, _STOPPED)
        return _OK

    def _lazy_check(self, cmd):
        # The check of command cmd (a check is called before the dispatcher sets cmd_id).
        def check(d):
            try:
                from node import seqcmds
            except MemoryError:  # no heap for the code now: the command may come again
                self._drop()
                return _BUSY
            return seqcmds.check(self, cmd, d)
        return check

    def _lazy_run(self, d):
        from node import seqcmds  # imported by _lazy_check just before

        try:
            return seqcmds.run(self, d)
        finally:
            if self.up_slot < 0:
                self._drop()

    def _drop(self):
        # Forget node.seqcmds and node.seqcheck (sys.modules and the package's attributes):
        # the next collection frees their code.
        for name in _LAZY_MODULES:
            full = "node." + name
            if full in sys.modules:
                del sys.modules[full]
            if hasattr(node, name):
                delattr(node, name)

    def armed(self, slot):
        """A new trigger level: the re-arm level, and armed if the charge is at or above it."""
        level = self.level[slot]
        self._rearm[slot] = level + _HYSTERESIS_PCT
        self._armed[slot] = self.tlm[_CH_BATTERY_SOC] >= level

    def stored(self, slot, steps, h):
        """A new sequence is in the slot (steps 0: it is empty now), node.seqcmds."""
        self.steps[slot] = steps
        self.hash[slot] = h
        self.state[slot] = _IDLE if steps else _EMPTY
        self.step[slot] = 0
        if self._buf_slot >> 8 == slot:
            self._buf_slot = -1
        self.update_tlm()

    # --- runs ---------------------------------------------------------------------------

    def start(self, slot, cause):
        """Start slot's sequence: OK, BUSY (running), NOT_FOUND (empty) or STORAGE_ERROR."""
        if self.state[slot] == _RUNNING:
            return _BUSY
        if not self.steps[slot]:
            return _NOT_FOUND
        runs = self.runs
        runs[slot] = self.hash[slot]
        try:
            seqstore.store_runs(self.root, runs)
        except OSError:
            runs[slot] = 0
            return _STORAGE_ERROR
        self.state[slot] = _RUNNING
        self.step[slot] = 0
        self._phase[slot] = _LOAD
        self._due[slot] = self._now_ms()  # step 0's delay counts from the start
        self.update_tlm()
        self.events.emit(_EV_SEQ_STARTED, slot, cause, self.hash[slot])
        return _OK

    def _end(self, slot, state):
        self.state[slot] = state
        self.update_tlm()
        self.events.emit(_EV_SEQ_ENDED, slot, state, self.step[slot])
        runs = self.runs
        runs[slot] = 0
        try:
            seqstore.store_runs(self.root, runs)
        except OSError:  # the next boot reports an interruption that was not one
            pass

    def tick(self):
        """Sample the triggers, then advance the running slots (the sequencer task)."""
        self._triggers()
        for slot in range(SLOTS):
            n = 0
            while self.state[slot] == _RUNNING and n < _STEPS_PER_TICK:
                if not self._advance(slot):
                    break
                n += 1

    def _advance(self, slot):
        # Work on slot's current step; True if it ended (the next one may run at once).
        phase = self._phase[slot]
        if phase == _LOAD:
            phase = self._load(slot)
            if phase < 0:
                return False
        now = self._now_ms()
        if phase == _CMD:
            if now - self._due[slot] < 0:
                return False
            code = self._execute(slot)
        else:
            if self._holds(slot):
                code = _OK
            elif now - self._due[slot] >= self._timeout[slot]:
                code = _WAIT_TIMEOUT
            else:
                return False
        if self.state[slot] != _RUNNING:  # the step stopped its own sequence (seq_stop)
            return False
        i = self.step[slot]
        self.steps_run += 1
        if code:
            self.events.emit(_EV_SEQ_STEP_FAILED, slot, i, code)
            on_fail = self._on_fail[slot]
            if on_fail == _SAFE:
                self.modes.force_safe(_SAFE_SEQUENCE)
            if on_fail != _SKIP:
                self._end(slot, _FAILED)
                return False
        else:
            self.events.emit(_EV_SEQ_STEP, slot, i)
        if i + 1 >= self.steps[slot]:
            self._end(slot, _DONE)
            return False
        self.step[slot] = i + 1
        self._phase[slot] = _LOAD
        self._due[slot] = self._now_ms()  # the next step's delay counts from now
        self.update_tlm()
        return True

    def _read(self, slot):
        # The current step's bytes into _buf (unless there already); their length or 0.
        key = (slot << 8) | self.step[slot]
        n = seqstore.read_step(self.root, slot, self.step[slot], self._buf)
        self._buf_slot = key if n else -1
        self._buf_len = n
        return n

    def _load(self, slot):
        # Read the current step's timing and on_fail; the new phase, or -1 (unreadable: the
        # run fails as if the step had failed STOP).
        n = self._read(slot)
        dec = self._dec
        try:
            if not n:
                raise ValueError
            dec.reset(self._buf, 0, n)
            dec.array()
            if dec.uint() == 0:  # [0, delay_ms, command, [args], on_fail]
                self._due[slot] += dec.uint()
                dec.uint()
                dec.skip()
                phase = _CMD
            else:  # [1, channel, op, value, timeout_ms, on_fail]
                self._channel[slot] = dec.uint()
                self._op[slot] = dec.uint()
                self._value[slot] = dec.item()
                self._timeout[slot] = dec.uint()
                self._due[slot] = self._now_ms()
                phase = _WAIT
            self._on_fail[slot] = dec.uint()
        except Exception:  # flash damaged since the commit
            self.events.emit(_EV_SEQ_STEP_FAILED, slot, self.step[slot], _STORAGE_ERROR)
            self._end(slot, _FAILED)
            return -1
        self._phase[slot] = phase
        return phase

    def _execute(self, slot):
        # Run the current command step now: its code (0, a rejection or a failure code).
        if self._buf_slot != (slot << 8) | self.step[slot] and not self._read(slot):
            return _STORAGE_ERROR
        dec = self._dec
        args = self._args
        dec.reset(self._buf, 0, self._buf_len)
        dec.array()
        dec.uint()
        dec.uint()
        cmd = dec.uint()
        nargs = dec.array()
        code = read_args(dec, nargs, command_args(cmd), args)
        if code:
            return code
        code, _result = self.dispatcher.execute(cmd, args)
        for i in range(_MAX_ARGS):
            args[i] = None
        return 0 if code < 0 else code  # PENDING: a downlink started, it goes on alone

    def _holds(self, slot):
        v = self.tlm[self._channel[slot]]
        x = self._value[slot]
        op = self._op[slot]
        if op == 0:
            return v < x
        if op == 1:
            return v <= x
        if op == 2:
            return v == x
        if op == 3:
            return v >= x
        if op == 4:
            return v > x
        return v != x

    # --- triggers -----------------------------------------------------------------------

    def _triggers(self):
        tlm = self.tlm
        mode = tlm[_CH_MODE]
        day = tlm[_CH_LUNAR_DAY]
        soc = tlm[_CH_BATTERY_SOC]
        prev_mode = self._prev_mode
        self._prev_mode = mode
        first = prev_mode < 0
        safe_entry = mode == _MODE_SAFE and prev_mode > _MODE_SAFE
        sunset = not first and self._prev_day and not day
        sunrise = not first and day and not self._prev_day
        self._prev_day = day
        for slot in range(SLOTS):
            t = self.trigger[slot]
            if t == _T_NONE:
                continue
            if t == _T_BATTERY_BELOW:
                level = self.level[slot]
                if first:
                    self._armed[slot] = soc >= level
                    continue
                if not self._armed[slot]:
                    if soc >= self._rearm[slot]:
                        self._armed[slot] = 1
                    continue
                if soc >= level:
                    continue
                self._armed[slot] = 0
            elif not ((t == _T_SAFE_ENTRY and safe_entry) or (t == _T_SUNSET and sunset)
                      or (t == _T_SUNRISE and sunrise)):
                continue
            self._fire(slot, t)

    def _fire(self, slot, t):
        if self.state[slot] == _RUNNING:
            code = _BUSY
        elif not self.steps[slot]:
            code = _NOT_FOUND
        else:
            code = _OK
        self.events.emit(_EV_SEQ_TRIGGERED, slot, t, code)
        if code == _OK:
            self.start(slot, t)
