"""The time-tagged command queue (SPEC §11): 64 entries on the flash, run at their times.

A command whose time item is not 0 reaches ``admit`` (from the dispatcher, after its envelope,
id and arguments are checked; node.ttmanage does the work), which judges in this order: the
clock must be correlated (CLOCK_UNCORRELATED), the time no further in the past than
``tt_tolerance_ms`` (TIME_PAST), the command's own check must pass, and an entry must be free
and written (QUEUE_FULL). The entry is written atomically *before* the dispatcher answers
accepted. The mode is judged when it runs.

One file per entry, ``ttNN.bin`` (NN the entry 00..63), a storage blob written atomically (a
new file renamed over the old: a power cut leaves the old file or the new one, never half):

    0  state: 1 QUEUED, 2 EXECUTING          1  key slot (0xFF: plain)   2  accept boot <H
    4  exec boot <H (0 until it runs)        6  counter <I (signed: the answers' label)
    10 order <I (arrival number: ties)       14 mark <I (next event_seq when it started)
    18 the command message as received (the payload of an authenticated one)

Running an entry (``step``, from the queue's task, the earliest due first, ties by arrival,
one entry per pass of the task so that a burst of due entries never holds the other tasks and
the watchdog off; node.ttrun does it, imported at the first due entry of a burst and let go
once none is due):
1. the file is rewritten EXECUTING (atomic), with this boot and the next event number;
2. the command runs (dispatcher.execute; WRONG_MODE or the command's own rejection when due
   become failed NOT_ALLOWED_NOW);
3. its final verification goes out (signed as it came), and the tt_executed event (seq,
   command, code) is sent and written to the event log at once (log.flush);
4. the file is removed.
A reset between 1 and 4 leaves an EXECUTING file. At the next boot the event log is searched
for that entry's tt_executed event (numbered at or above the mark): found, the file is only
removed; not found, the command may or may not have run, and a tt_unknown event (seq,
command) reports it, written to the log before the file is removed. It is never run again.
So every accepted entry ends with exactly one of tt_executed, tt_unknown or tt_not_run in the
event log (the live event may be lost with the link; the log keeps it), and runs at most once.

Overdue entries (the node was off, the clock not yet correlated after a boot, the queue held):
nothing runs while the clock is uncorrelated or the queue held; then an entry due more than
``tt_late_max_s`` ago fails NOT_RUN with a tt_not_run(TOO_LATE) event, the others run in order.
tt_delete and tt_clear end entries the same way (DELETED, CLEARED). The held state is kept in
``ttpause.bin`` (read at boot by node.boot).

Allocates: admit, step (reading the entry, the tag's heap int), the commands. The task's idle
loop compares small ints only.
"""

import asyncio
import os
from array import array

from micropython import const

import node
from node import storage

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_TT_EXECUTED = const(55)
_CH_TT_PAUSED = const(54)
_CH_TT_QUEUED = const(53)
_CMD_TT_CLEAR = const(29)
_CMD_TT_DELETE = const(28)
_CMD_TT_LIST = const(27)
_CMD_TT_PAUSE = const(30)
_PARAM_TT_LATE_MAX_S = const(19)
_WHY_TOO_LATE = const(3)

ENTRIES = const(64)
_FREE = const(0)
QUEUED = const(1)
EXECUTING = const(2)
_HDR = 18  # not const: node.ttmanage imports it
_SLICE_MS = const(100)  # the longest the task sleeps (watchdog progress, the tick)

_NO_DUE = const(0x3FFFFFFF)


def entry_name(i):
    return f"tt{i:02d}.bin"


class TimeTagQueue:
    def __init__(self, root, clock, dispatcher, events, log, params, tlm, bulk):
        self.root = root
        self.clock = clock
        self.d = dispatcher
        self.events = events
        self.log = log
        self.params = params
        self.tlm = tlm
        self.bulk = bulk
        self.state = bytearray(ENTRIES)
        self.seq = array("i", [0] * ENTRIES)
        self.cmd = array("h", [0] * ENTRIES)
        self.key = array("b", [-1] * ENTRIES)
        self.boot_of = array("H", [0] * ENTRIES)
        self.order = array("I", [0] * ENTRIES)
        self.tag = [0] * ENTRIES  # UTC ms (heap ints on a Pico)
        self.due = [_NO_DUE] * ENTRIES  # node ms; _NO_DUE until the clock is correlated
        self.next_order = 1
        self.count = 0
        self.executed = 0  # since boot (tt_executed channel)
        self.paused = False
        self.progress = 0  # watchdog (node.watchdog)
        self.hung = False
        self.storage_errors = 0
        self._running = False  # node.ttrun held: entries are due now (step)
        clock.on_correlate = self.plan
        dispatcher.timetag = self

    def register(self, d):
        d.register(_CMD_TT_LIST, self._cmd_list, self._check_bulk)
        lazy = node.Lazy(self, "ttrun")  # the rare ones, imported per command
        for cmd_id in (_CMD_TT_DELETE, _CMD_TT_CLEAR, _CMD_TT_PAUSE):
            d.register(cmd_id, lazy)

    # --- arrival --------------------------------------------------------------------------

    def admit(self, d, seq, cmd_id, tag):
        """Judge and store a time-tagged command (the dispatcher checked its envelope, id and
        arguments). 0: stored; -2: the same command is queued already; or a rejection code.
        node.ttmanage does it, imported for each such command and let go after."""
        return node.call("ttmanage", "admit", self, d, seq, cmd_id, tag)

    def plan(self):
        """Node due times from the tags (after each correlation: the drift may change)."""
        clock = self.clock
        for i in range(ENTRIES):
            if self.state[i] == QUEUED:
                self.due[i] = clock.node_of(self.tag[i]) if clock.correlated else _NO_DUE

    # --- running --------------------------------------------------------------------------

    def next_due(self):
        """The queued entry to run first (earliest due, then arrival), or -1."""
        best = -1
        for i in range(ENTRIES):
            if self.state[i] != QUEUED:
                continue
            if best < 0 or self.due[i] < self.due[best] or (
                    self.due[i] == self.due[best] and self.order[i] < self.order[best]):
                best = i
        return best

    def step(self):
        """Run the first entry that is due now: one per call, so the node's other tasks (and
        the watchdog's view of them) run between two entries of a burst, however many are
        due. Returns node ms until the next entry is due: 0 when one is due now."""
        if self.paused or not self.clock.correlated:
            return self._let_go(_SLICE_MS)
        i = self.next_due()
        if i >= 0 and self.due[i] - self.clock.now_ms() <= 0:
            # node.ttrun, imported at the first due entry and kept while entries are due
            run = node.load("ttrun")
            self._running = True
            try:
                late_ms = self.clock.utc_now() - self.tag[i]
                if late_ms > self.params.get(_PARAM_TT_LATE_MAX_S) * 1000:
                    run.end(self, i, _WHY_TOO_LATE)
                else:
                    run.run(self, i)
            except BaseException:
                self._let_go(0)
                raise
            if self.paused:
                return self._let_go(_SLICE_MS)
            i = self.next_due()
        if i < 0:
            return self._let_go(_SLICE_MS)
        wait = self.due[i] - self.clock.now_ms()
        return 0 if wait <= 0 else self._let_go(wait)

    def _let_go(self, wait):
        """Drop node.ttrun once no entry is due now (it is imported per burst); returns wait."""
        if self._running:
            self._running = False
            node.drop("ttrun")
        return wait

    def durable_event(self, event_id, a, b, c=None):
        events = self.events
        events.emit_kept(event_id, a, b, c)
        events.pump()
        self.log.flush()

    def free(self, i):
        self._remove(i)
        self.state[i] = _FREE
        self.due[i] = _NO_DUE
        self.tag[i] = 0
        self.update_tlm()

    def _remove(self, i):
        try:
            os.remove(storage.path(self.root, entry_name(i)))
        except OSError:
            pass  # missing already

    async def run(self):
        while True:
            wait = _SLICE_MS
            if not self.hung:
                self.progress += 1
                wait = self.step()
            # 0: another entry is due now; the other tasks run first (asyncio's round)
            await asyncio.sleep_ms(wait if 0 <= wait < _SLICE_MS else _SLICE_MS)

    # --- commands -------------------------------------------------------------------------

    # tt_list (SPEC §11.4) lives in node.ttmanage, tt_delete, tt_clear and tt_pause in
    # node.ttrun, each imported for each use and let go after.

    def _check_bulk(self, d):
        return self.bulk.check_idle(d)

    def _cmd_list(self, d):
        return node.call("ttmanage", "cmd_list", self, d)

    def update_tlm(self):
        tlm = self.tlm
        tlm[_CH_TT_QUEUED] = self.count
        tlm[_CH_TT_PAUSED] = self.paused
        tlm[_CH_TT_EXECUTED] = self.executed
