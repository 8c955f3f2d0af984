"""Events (SPEC §5.4): numbered, sent live, kept in the persistent log, throttled per id.

``emit(event_id, a=None, b=None, c=None)`` is the one entry point (plant, FDIR, services).
It numbers the event (event_seq continues across reboots, never reused: see node.eventlog),
queues it in a preallocated RAM ring, and sends the queue at once unless a message is being
encoded (``link.busy``), in which case ``pump()`` sends it a moment later. Each sent event is
also handed to the event log for the flash.

Throttling: at most ``event_rate_limit`` (parameter) events of one id per 10 s window of node
time. Further events of that id in the window are suppressed: not numbered, not sent, not
logged, only counted (events_suppressed channel). When a window closes, an events_suppressed
event (id, count) is emitted per id that lost some (that event itself is not throttled).

No allocation in emit()/pump() for int, bool and None arguments (a float argument is
already an object; encoding it allocates nothing).
"""

from array import array

from micropython import const

from protocol.node_dictionary import EVENT_NARGS, EVENT_SEVERITY, NO_RECORD

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_EVENTS_SUPPRESSED = const(29)
_CH_EVENT_SEQ = const(31)
_EV_EVENTS_SUPPRESSED = const(19)
_KIND_EVENT = const(3)

_QUEUE = const(16)
_WINDOW_MS = const(10000)
_PARAM_EVENT_RATE_LIMIT = const(10)


class Events:
    def __init__(self, link, tlm, clock, log, params):
        self.link = link
        self.tlm = tlm
        self._now_ms = clock.now_ms
        self.log = log
        self.params = params
        self.seq = 0  # next event_seq (set from the log at boot)
        n = len(EVENT_SEVERITY)
        self._count = array("H", bytes(2 * n))  # events of each id in the current window
        self._suppressed = array("H", bytes(2 * n))  # suppressed in the current window
        self.suppressed = 0  # total, the events_suppressed channel
        self._window_end = _WINDOW_MS
        self._q_id = bytearray(_QUEUE)
        self._q_seq = [0] * _QUEUE
        self._q_time = [0] * _QUEUE
        self._q_a = [None] * _QUEUE
        self._q_b = [None] * _QUEUE
        self._q_c = [None] * _QUEUE
        self._q_head = 0
        self._q_count = 0
        self.dropped = 0  # queue overflow (events emitted faster than sent)

    def start(self, next_seq):
        self.seq = next_seq
        self.tlm[_CH_EVENT_SEQ] = next_seq - 1 if next_seq else 0

    def emit_kept(self, event_id, a=None, b=None, c=None):
        """emit without throttling: for events that account for something (node.ttqueue:
        every time-tagged command's end is in the log, however many end at once)."""
        self._emit(event_id, a, b, c, False)

    def emit(self, event_id, a=None, b=None, c=None):
        self._emit(event_id, a, b, c, event_id != _EV_EVENTS_SUPPRESSED)

    def _emit(self, event_id, a, b, c, throttled):
        if event_id <= 0 or event_id >= len(EVENT_SEVERITY):
            return
        if throttled:
            self.roll_window()
            if self._count[event_id] >= self.params.get(_PARAM_EVENT_RATE_LIMIT):
                self._suppressed[event_id] += 1
                self.suppressed += 1
                self.tlm[_CH_EVENTS_SUPPRESSED] = self.suppressed
                return
            self._count[event_id] += 1
        if self._q_count == _QUEUE:
            self.dropped += 1
            self._q_count -= 1
        i = self._q_head
        self._q_head = (i + 1) % _QUEUE
        self._q_count += 1
        seq = self.seq
        self.log.claim(seq)  # never reused after a power cut (allocates once per reservation)
        self.seq = seq + 1
        self.tlm[_CH_EVENT_SEQ] = seq
        self._q_id[i] = event_id
        self._q_seq[i] = seq
        self._q_time[i] = self._now_ms()
        self._q_a[i] = a
        self._q_b[i] = b
        self._q_c[i] = c
        if not self.link.busy:
            self.pump()

    def pump(self):
        """Send the queued events and hand them to the log."""
        link = self.link
        while self._q_count and not link.busy:
            i = (self._q_head - self._q_count) % _QUEUE
            self._q_count -= 1
            event_id = self._q_id[i]
            severity = EVENT_SEVERITY[event_id]
            if severity == NO_RECORD:  # emit() let only known ids in
                continue
            nargs = EVENT_NARGS[event_id]
            seq = self._q_seq[i]
            a = self._q_a[i]
            b = self._q_b[i]
            c = self._q_c[i]
            self._q_a[i] = self._q_b[i] = self._q_c[i] = None
            self.log.add(seq, self._q_time[i], event_id, severity, nargs, a, b, c)
            enc = link.begin(_KIND_EVENT, event_id)
            try:
                enc.array(3)
                enc.uint(seq)
                enc.uint(severity)
                enc.array(nargs)
                if nargs > 0:
                    _put(enc, a)
                if nargs > 1:
                    _put(enc, b)
                if nargs > 2:
                    _put(enc, c)
            except Exception:  # an argument the codec cannot carry: logged, not sent
                link.abort()
                continue
            link.end()

    def roll_window(self):
        """Close the throttling window when it is over; report what it suppressed."""
        now = self._now_ms()
        if now < self._window_end:
            return
        self._window_end = now + _WINDOW_MS
        counts = self._count
        sup = self._suppressed
        for event_id in range(1, len(counts)):
            counts[event_id] = 0
            n = sup[event_id]
            if n:
                sup[event_id] = 0
                self.emit(_EV_EVENTS_SUPPRESSED, event_id, n)


def _put(enc, v):
    t = type(v)
    if v is None:
        enc.null()
    elif t is bool:
        enc.bool(v)
    elif t is int:
        enc.int(v)
    elif t is float:
        enc.float32(v)
    else:
        enc.item(v)
