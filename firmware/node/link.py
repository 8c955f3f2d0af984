"""The link: bytes in, verified messages to the dispatcher; messages out, framed and queued.

Receive: the board's bytes go into a preallocated buffer and through the protocol Deframer's
allocation-free core; each verified message is handed to ``on_message(buf, n)``.
Transmit: one preallocated CBOR Encoder. A sender calls ``enc = begin(kind, id)``, writes
the body, then ``end()``: the message gets the next downlink seq (SPEC §5, +1 per message,
wrapping at 65536) and the node time, and is framed (CRC appended in place, COBS) into the tx
queue; ``pump()`` writes the queue to the board as far as the link takes it. While
``holding`` (a command being handled, a housekeeping tick), frames wait in the queue and
leave together at ``flush()``.
begin/end must not be interleaved (``busy`` is True in between); the node is single
threaded and nothing in between awaits.

Congestion (SPEC §5.8): the tx queue (_TX_SIZE bytes, _TX_FRAMES frames) holds whole frames.
A frame whose first byte has gone out is always finished before anything else, so no partial
frame reaches the wire; the rest waits, however long the reader takes. When a new frame does
not fit, frames not yet begun are dropped to make room, housekeeping first (the oldest of the
lowest priority), never a verification or event while housekeeping is queued; if nothing of a
priority at most the new frame's can go, the new frame is dropped. Every dropped frame counts
once in ``tx_dropped`` and leaves a gap of exactly one in the downlink seq, so on a drained
queue frames_out + tx_dropped is the number of messages made. A link that stays blocked is
waited for once (_TX_WAIT_MS) and then not again until it drains, so a port nobody reads does
not slow the node down.

Counters (copied to the telemetry store by ``update_tlm``): frames_in, frames_out (frames
written whole), crc_errors, discarded_bytes, frame_errors (oversize + truncated), tx_dropped.

No allocation on these paths: receive, begin/end, pump. ``run`` (the asyncio task)
allocates a little per wait (asyncio's poll bookkeeping).
"""

import asyncio
from array import array

import micropython
from micropython import const

from protocol.cbor_encoder import Encoder
from protocol.cobs import encode_into
from protocol.crc import crc32_append
from protocol.envelope import begin
from protocol.framing import MAX_MESSAGE, Deframer

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_CRC_ERRORS = const(25)
_CH_DISCARDED_BYTES = const(26)
_CH_FRAMES_IN = const(23)
_CH_FRAMES_OUT = const(24)
_CH_FRAME_ERRORS = const(32)
_CH_TX_DROPPED = const(30)

_RX_CHUNK = const(256)
_TX_SIZE = const(2080)  # two frames of MAX_MESSAGE (1031 each: delimiters, COBS, CRC) + spare
_TX_FRAMES = const(48)  # frames the queue can hold
_FRAME_OVERHEAD = const(11)  # delimiters, CRC, COBS overhead of a message up to 1020 bytes
_TX_WAIT_MS = const(20)  # how long a blocked link is waited for before frames queue
_KIND_HOUSEKEEPING = const(2)
_LOW = const(0)  # housekeeping: dropped first
_HIGH = const(1)  # verifications, events, everything else


_SEQ_MASK = const(0xFFFF)


def _ignore(buf, n):
    pass


@micropython.viper
def _move_down(buf: ptr8, dst: int, src: int, n: int):
    # buf[dst:dst+n] = buf[src:src+n] for dst < src, without allocating
    i = 0
    while i < n:
        buf[dst + i] = buf[src + i]
        i += 1


class Link:
    # the channels update_tlm writes (housekeeping sends packets carrying them first, SPEC §5.8)
    COUNTER_CHANNELS = bytes((_CH_FRAMES_IN, _CH_FRAMES_OUT, _CH_CRC_ERRORS,
                              _CH_DISCARDED_BYTES, _CH_FRAME_ERRORS, _CH_TX_DROPPED))

    def __init__(self, board, clock, tlm):
        self.board = board
        self._now_ms = clock.now_ms
        self.tlm = tlm
        self.deframer = Deframer()
        self.rx = bytearray(_RX_CHUNK)
        self.enc = Encoder(MAX_MESSAGE + 4)  # + 4: room for the CRC, appended in place
        self.tx = bytearray(_TX_SIZE)  # the queue: whole frames, contiguous, from _rd to _wr
        self._rd = 0  # next byte to write (inside the head frame once it has begun)
        self._wr = 0  # end of the queued frames
        self._head_start = 0  # where the head frame starts (it has begun if _rd > this)
        self._f_end = array("H", bytes(2 * _TX_FRAMES))  # ring: each queued frame's end
        self._f_pri = bytearray(_TX_FRAMES)  # ring: each queued frame's priority
        self._f_head = 0
        self._f_n = 0  # frames queued
        self._pri = _HIGH  # priority of the message being encoded
        self._blocked = False  # the link stayed blocked: no more waiting until it drains
        self.holding = False  # True while receive() handles commands: frames wait for flush
        self.seq = 0  # downlink seq of the next message
        self.frames_out = 0  # frames written whole
        self.tx_dropped = 0  # frames made but never written (each a downlink seq gap)
        self.busy = False
        self.on_message = _ignore  # set by the dispatcher: on_message(buf, n)
        self.hung = False  # fault injection: stop taking input (TASK_LINK)
        self.progress = 0  # bumped per loop of the receive task (watchdog)
        self.idle = False  # True while waiting for input (watchdog: waiting is progress)

    # --- receive ------------------------------------------------------------------------

    def receive(self, data, end):
        """Feed data[0:end] (bytes read from the board) through the deframer. No allocation.

        What the commands in data make the node send is written together at the end."""
        d = self.deframer
        handle = self.on_message
        self.holding = True
        try:
            n = d.push(data, 0, end)
            while n:
                handle(d.buf, n)
                n = d.push(data, d.pos, end)
        finally:
            self.holding = False
            self.flush()

    def poll_once(self):
        """Take what the board has now and process it; return the number of bytes read."""
        got = self.board.read_into(self.rx)
        if got:
            self.receive(self.rx, got)
        return got

    async def run(self):
        # Wait for input with asyncio (the board's rx_stream registered in asyncio's poll),
        # then read what is there. A board whose stream returns what is available (sim:
        # O_NONBLOCK pty; UART) reads straight into rx; a USB CDC stdin would block until a
        # buffer is full, so there asyncio reads one byte and read_into takes the rest.
        held = getattr(self.board, "boot_rx", None)
        if held:  # what arrived during the boot escape window: a command sent then is answered
            self.board.boot_rx = None
            self.receive(held, len(held))
        reader = asyncio.StreamReader(self.board.rx_stream)
        chunk = self.board.rx_chunks
        one = bytearray(1)
        rx = self.rx
        size = len(rx)
        while True:
            if self.hung:  # fault injection: no progress, no input taken
                await asyncio.sleep_ms(100)
                continue
            self.progress += 1
            self.idle = True
            try:
                n = await reader.readinto(rx if chunk else one)
            finally:
                self.idle = False
            if not n:
                continue
            if chunk:
                self.receive(rx, n)
                if n < size:
                    continue  # drained; asyncio wakes us again at once if more came
            else:
                self.receive(one, 1)
            # More is waiting: take it, letting others run between. Each pass is progress: a
            # ground that keeps sending (a Pico's USB CDC delivers a command a few bytes at a
            # time) keeps the link here, and the watchdog must not take it for hung.
            while not self.hung and self.poll_once():
                self.progress += 1
                await asyncio.sleep_ms(0)

    # --- transmit -----------------------------------------------------------------------

    def begin(self, kind, id):
        """Start a downlink message; returns the encoder positioned at the body."""
        self.busy = True
        self._pri = _LOW if kind == _KIND_HOUSEKEEPING else _HIGH
        begin(self.enc, kind, self.seq, self._now_ms(), id)
        return self.enc

    def end(self):
        """Frame the message begun with begin() into the tx queue (00 COBS(msg+crc) 00, the
        CRC appended in place in the encoder's spare bytes) and write what the link takes,
        unless ``holding``: then it waits for flush(), so a command's verifications leave in
        one write. A message that cannot be queued is dropped and counted; its seq is used
        all the same (the gap tells the ground). No allocation."""
        enc = self.enc
        n = enc.pos
        self.busy = False
        self.seq = (self.seq + 1) & _SEQ_MASK
        pri = self._pri
        self._pri = _HIGH  # a message not begun with begin() (the dispatcher's) is high
        if n > MAX_MESSAGE or not self._room(n + _FRAME_OVERHEAD, pri):
            self.tx_dropped += 1  # (too big cannot happen with the node's messages)
            if not self.holding:
                self.pump()
            return
        crc32_append(enc.buf, 0, n)
        tx = self.tx
        start = self._wr
        tx[start] = 0
        end = encode_into(enc.buf, tx, start + 1, 0, n + 4)
        tx[end] = 0
        self._wr = end + 1
        i = (self._f_head + self._f_n) % _TX_FRAMES
        self._f_end[i] = end + 1
        self._f_pri[i] = pri
        self._f_n += 1
        if not self.holding:
            self.pump()

    def _room(self, need, pri):
        # Make room for a frame of up to need bytes: compact the queue, then drop queued
        # frames not yet begun, lowest priority and oldest first, of priority <= pri.
        # False if that is not enough (the new frame is dropped).
        while True:
            if self._f_n < _TX_FRAMES:
                if self._wr + need <= _TX_SIZE:
                    return True
                if self._wr - self._rd + need <= _TX_SIZE and self._rd > 0:
                    self._compact()
                    continue
            victim = self._victim(pri)
            if victim < 0:
                return False
            self._evict(victim)
            self.tx_dropped += 1

    def _compact(self):
        # Move the queue [_rd, _wr) to the start of the buffer.
        shift = self._rd
        _move_down(self.tx, 0, shift, self._wr - shift)  # pyright: ignore[reportArgumentType]
        self._wr -= shift
        self._rd = 0
        self._head_start -= shift
        f_end = self._f_end
        for k in range(self._f_n):
            i = (self._f_head + k) % _TX_FRAMES
            f_end[i] -= shift

    def _victim(self, pri):
        # The ring position (0 = head) of the oldest frame not yet begun with the lowest
        # priority <= pri, or -1.
        best = -1
        best_pri = pri + 1
        k = 1 if self._rd > self._head_start else 0  # a begun head frame is finished first
        f_pri = self._f_pri
        while k < self._f_n:
            p = f_pri[(self._f_head + k) % _TX_FRAMES]
            if p < best_pri:
                best = k
                best_pri = p
            k += 1
        return best

    def _evict(self, k):
        # Remove the k-th queued frame (not begun): close its bytes up, shift the ring.
        f_end = self._f_end
        f_pri = self._f_pri
        head = self._f_head
        i = (head + k) % _TX_FRAMES
        start = self._head_start if k == 0 else f_end[(head + k - 1) % _TX_FRAMES]
        length = f_end[i] - start
        _move_down(self.tx, start, start + length, self._wr - start - length)  # pyright: ignore[reportArgumentType]
        self._wr -= length
        n = self._f_n
        while k < n - 1:
            j = (head + k) % _TX_FRAMES
            nxt = (head + k + 1) % _TX_FRAMES
            f_end[j] = f_end[nxt] - length
            f_pri[j] = f_pri[nxt]
            k += 1
        self._f_n = n - 1

    def pump(self):
        """Write queued frames while the link takes them. A begun frame is always finished
        before another starts. No allocation."""
        board = self.board
        tx = self.tx
        stalled = False
        f_end = self._f_end
        while self._f_n:
            rd = self._rd
            w = board.write(tx, rd, self._wr - rd)  # every queued frame in one write
            if w > 0:
                stalled = False
                rd += w
                self._rd = rd
                while self._f_n and f_end[self._f_head] <= rd:  # frames out, whole
                    self._head_start = f_end[self._f_head]
                    self._f_head = (self._f_head + 1) % _TX_FRAMES
                    self._f_n -= 1
                    self.frames_out += 1
                continue
            if stalled or self._blocked or not board.tx_wait(_TX_WAIT_MS):
                self._blocked = True
                return
            stalled = True
        self._blocked = False
        self._rd = self._wr = self._head_start = 0

    flush = pump  # write the frames waiting in the queue (as far as the link takes them)

    def queued(self):
        """Frames waiting in the tx queue."""
        return self._f_n

    def abort(self):
        """Forget a message begun with begin() (an encoding error)."""
        self.busy = False

    # --- counters -----------------------------------------------------------------------

    def update_tlm(self):
        d = self.deframer
        tlm = self.tlm
        tlm[_CH_FRAMES_IN] = d.frames
        tlm[_CH_FRAMES_OUT] = self.frames_out
        tlm[_CH_CRC_ERRORS] = d.crc_errors
        tlm[_CH_DISCARDED_BYTES] = d.discarded_bytes
        tlm[_CH_FRAME_ERRORS] = d.oversize + d.truncated
        tlm[_CH_TX_DROPPED] = self.tx_dropped

    def clear_counters(self):
        d = self.deframer
        d.frames = d.crc_errors = d.discarded_bytes = d.oversize = d.truncated = 0
        self.frames_out = 0
        self.tx_dropped = 0
        self.update_tlm()
