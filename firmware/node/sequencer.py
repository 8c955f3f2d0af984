"""Stored sequences: the slots, runs and the slot commands (SPEC §12.4-6).

Four slots. A run executes from the stored bytes (node.seqstore.read_step reads one step
into a buffer): nothing of a sequence is decoded into lists, so a 256-step sequence costs its
slot a few small integers in RAM. ``tick()`` (the sequencer task, every 100 ms) hands the
work to node.seqrun, the executor and the triggers, while a slot runs or has a trigger: that
module, its step buffer and decoder take heap only then (node.seqrun says how a step runs).

Commands: seq_start and seq_stop here. The others (upload, seq_trigger, seq_list, seq_delete)
are in node.seqcmds, imported when one arrives and dropped from sys.modules afterwards unless
an upload is in progress: that code and the validator's take heap only while they work. If
the heap cannot take them at that moment, the command is rejected BUSY (try again). Run marks
(node.seqstore's seqrun.bin, written here) are written when a run starts and ends, so a reset
in mid-run is reported at the next boot (seq_interrupted, state FAILED). node.seqstore itself
(the files) is held only while node.seqcmds or node.seqrun is.

Allocates: commands, run start and end, node.seqrun's import and what it allocates; a tick
with nothing running and no trigger allocates nothing.
"""

import struct
import sys
from array import array

from micropython import const

import node
from node import storage

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BUSY = const(5)
_CH_LUNAR_DAY = const(8)
_CH_MODE = const(1)
_CH_SEQ_HASH_0 = const(58)
_CH_SEQ_STATES = const(56)
_CH_SEQ_STEPS = const(57)
_CMD_SEQ_START = const(35)
_CMD_SEQ_STOP = const(36)
_EV_SEQ_ENDED = const(46)
_EV_SEQ_STARTED = const(43)
_NOT_FOUND = const(19)
_OK = const(0)
_STORAGE_ERROR = const(17)

# protocol.dictionary SEQ_STATES, SEQ_TRIGGERS (the others: node.seqrun)
_EMPTY = const(0)
_IDLE = const(1)
_RUNNING = const(2)
_STOPPED = const(5)
_CAUSE_COMMAND = const(0)

# node.seqcmds handles these: upload begin, part, commit, seq_trigger, seq_list, seq_delete
_LAZY = (32, 33, 34, 37, 38, 39)
_LAZY_MODULES = ("seqcmds", "seqcheck")
_RUN_FILE = const("seqrun.bin")  # node.seqstore.RUN_FILE

SLOTS = const(4)
TICK_MS = const(100)
_LOAD = const(0)  # a run's first phase: its step not read yet (node.seqrun)


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
        self.now_ms = now_ms
        self.state = bytearray(SLOTS)
        self.step = array("H", bytes(2 * SLOTS))
        self.steps = array("H", bytes(2 * SLOTS))  # steps stored (0: empty)
        self.hash = [0] * SLOTS
        self.trigger = bytearray(SLOTS)
        self.level = [0.0] * SLOTS
        self.armed_now = bytearray(SLOTS)  # BATTERY_BELOW: fires when the charge falls below
        self.rearm = [0.0] * SLOTS  # level + hysteresis: armed again at or above it
        self.runs = [0] * SLOTS  # the run marks as stored (hash of the sequence running)
        # the current step of each running slot (node.seqrun)
        self.phase = bytearray(SLOTS)
        self.due = [0] * SLOTS  # command: when it runs; wait: when it began
        self.timeout = [0] * SLOTS
        self.on_fail = bytearray(SLOTS)
        self.channel = bytearray(SLOTS)
        self.op = bytearray(SLOTS)
        self.value: list = [0] * SLOTS  # numbers or bools (wait steps)
        # made by node.seqrun while it is loaded: one step's bytes, its decoder, arguments
        self.buf = self.dec = self.args = None
        self.buf_slot = -1  # whose step buf holds (slot * 256 + index), -1: none
        self.buf_len = 0
        self.prev_mode = -1  # trigger inputs at the previous tick (-1: no tick yet)
        self.prev_day = False
        self.steps_run = 0
        self._run = None  # node.seqrun while loaded

    def register(self, d):
        d.register(_CMD_SEQ_START, self._cmd_start, self._check_not_running)
        d.register(_CMD_SEQ_STOP, self._cmd_stop)
        run = self._lazy_run  # one bound method for the six
        for cmd in _LAZY:
            d.register(cmd, run, self._lazy_check(cmd))

    def boot(self):
        """Read the slots, triggers, upload and run marks; report the runs a reset cut
        (node.seqcmds.boot, loaded for it and dropped). After the boot event (it emits)."""
        from node import seqcmds

        try:
            seqcmds.boot(self)
        finally:
            self._drop()

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
            self.end(slot, _STOPPED)
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
        self._drop_store()

    def _drop_store(self):
        # node.seqstore (the files: imported by node.seqcmds and node.seqrun) once neither
        # is loaded.
        if self._run is None and "node.seqcmds" not in sys.modules:
            node.drop("seqstore")

    def stored(self, slot, steps, h):
        """A new sequence is in the slot (steps 0: it is empty now), node.seqcmds."""
        self.steps[slot] = steps
        self.hash[slot] = h
        self.state[slot] = _IDLE if steps else _EMPTY
        self.step[slot] = 0
        if self.buf_slot >> 8 == slot:
            self.buf_slot = -1
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
            self.store_runs()
        except OSError:
            runs[slot] = 0
            return _STORAGE_ERROR
        self.state[slot] = _RUNNING
        self.step[slot] = 0
        self.phase[slot] = _LOAD
        self.due[slot] = self.now_ms()  # step 0's delay counts from the start
        self.update_tlm()
        self.events.emit(_EV_SEQ_STARTED, slot, cause, self.hash[slot])
        return _OK

    def end(self, slot, state):
        self.state[slot] = state
        self.update_tlm()
        self.events.emit(_EV_SEQ_ENDED, slot, state, self.step[slot])
        self.runs[slot] = 0
        try:
            self.store_runs()
        except OSError:  # the next boot reports an interruption that was not one
            pass

    def store_runs(self):
        """The run marks to the flash (node.seqstore's seqrun.bin). Raises OSError when the
        write fails."""
        payload = bytearray(4 * SLOTS)
        for slot in range(SLOTS):
            struct.pack_into("<I", payload, 4 * slot, self.runs[slot])
        storage.write_atomic(self.root, _RUN_FILE, payload)

    def tick(self):
        """The sequencer task: node.seqrun samples the triggers and advances the running slots
        while a slot runs or has a trigger (imported then, dropped when neither holds);
        otherwise only the trigger inputs are kept, so a trigger set later sees the edges from
        now on. No heap for node.seqrun at this tick: the next tick tries again (the inputs
        are not taken, so an edge is not lost)."""
        run = self._run
        if run is None:
            for slot in range(SLOTS):
                if self.trigger[slot] or self.state[slot] == _RUNNING:
                    break
            else:
                tlm = self.tlm
                self.prev_mode = tlm[_CH_MODE]
                self.prev_day = tlm[_CH_LUNAR_DAY]
                return
            try:
                run = self._run = node.load("seqrun")
            except MemoryError:
                node.drop("seqrun")
                self._drop_store()
                return
        if not run.tick(self):
            self._run = None
            self.buf = self.dec = self.args = None  # made again by node.seqrun
            self.buf_slot = -1
            node.drop("seqrun")
            self._drop_store()
