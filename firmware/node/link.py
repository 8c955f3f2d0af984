"""The link: bytes in, verified messages to the dispatcher; messages out, framed.

Receive: the board's bytes go into a preallocated buffer and through the protocol Deframer's
allocation-free core; each verified message is handed to ``on_message(buf, n)``.
Transmit: one preallocated CBOR Encoder. A sender calls ``enc = begin(kind, id)``, writes
the body, then ``end()``: the message gets the next downlink seq (SPEC §5, +1 per message,
wrapping at 65536) and the node time, and is framed (CRC appended in place, COBS into the tx
buffer) and written; while ``holding`` (a command being handled), frames collect in the tx
buffer and leave together at ``flush()``.
begin/end must not be interleaved (``busy`` is True in between); the node is single
threaded and nothing in between awaits.

Counters (copied to the telemetry store by ``update_tlm``): frames_in, frames_out,
crc_errors, discarded_bytes, frame_errors (oversize + truncated), tx_dropped.

No allocation on these paths: receive, begin/end. ``run`` (the asyncio task) allocates a
little per wait (asyncio's poll bookkeeping).
"""

import asyncio

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
_TX_SIZE = const(1040)  # one frame of MAX_MESSAGE: 2 delimiters + COBS of 1024 bytes (1029)
_FRAME_OVERHEAD = const(11)  # delimiters, CRC, COBS overhead of a message up to 1020 bytes


_SEQ_MASK = const(0xFFFF)


def _ignore(buf, n):
    pass


class Link:
    def __init__(self, board, clock, tlm):
        self.board = board
        self._now_ms = clock.now_ms
        self.tlm = tlm
        self.deframer = Deframer()
        self.rx = bytearray(_RX_CHUNK)
        self.enc = Encoder(MAX_MESSAGE + 4)  # + 4: room for the CRC, appended in place
        self.tx = bytearray(_TX_SIZE)
        self._tx_len = 0
        self.holding = False  # True while receive() handles commands: frames wait for flush
        self.seq = 0  # downlink seq of the next message
        self.frames_out = 0
        self.tx_dropped = 0  # frames the encoder could not take (too big)
        self._tx_dropped_base = 0  # board.tx_dropped at clear_counters
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
            while self.poll_once():  # more is waiting: take it, letting others run between
                await asyncio.sleep_ms(0)

    # --- transmit -----------------------------------------------------------------------

    def begin(self, kind, id):
        """Start a downlink message; returns the encoder positioned at the body."""
        self.busy = True
        begin(self.enc, kind, self.seq, self._now_ms(), id)
        return self.enc

    def end(self):
        """Frame the message begun with begin() into the tx buffer (00 COBS(msg+crc) 00, the
        CRC appended in place in the encoder's spare bytes) and write it, unless ``holding``:
        then it waits for flush(), so a command's verifications leave in one write. No
        allocation."""
        enc = self.enc
        n = enc.pos
        self.busy = False
        if n > MAX_MESSAGE:  # cannot happen with the node's messages; counted, not raised
            self.tx_dropped += 1
            return
        crc32_append(enc.buf, 0, n)
        tx = self.tx
        start = self._tx_len
        if start + n + _FRAME_OVERHEAD > len(tx):
            self.flush()
            start = 0
        tx[start] = 0
        end = encode_into(enc.buf, tx, start + 1, 0, n + 4)
        tx[end] = 0
        self._tx_len = end + 1
        self.seq = (self.seq + 1) & _SEQ_MASK
        self.frames_out += 1
        if not self.holding:
            self.flush()

    def flush(self):
        """Write the frames waiting in the tx buffer."""
        n = self._tx_len
        if n:
            self._tx_len = 0
            self.board.write(self.tx, n)

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
        tlm[_CH_TX_DROPPED] = self.board.tx_dropped - self._tx_dropped_base + self.tx_dropped

    def clear_counters(self):
        d = self.deframer
        d.frames = d.crc_errors = d.discarded_bytes = d.oversize = d.truncated = 0
        self.frames_out = 0
        self.tx_dropped = 0
        self._tx_dropped_base = self.board.tx_dropped
        self.update_tlm()
