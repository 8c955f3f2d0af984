"""Frame output to a non-blocking stream, shared by the rp2 and sim boards.

A frame is written whole or cut short and counted (``tx_dropped``): the link waits briefly for
room (``_TX_WAIT_MS``), and once it has been blocked does not wait at all until it drains, so a
port nobody reads (USB with no host, a pty nobody opened) does not slow the node down.
Allocation-free: stream ``write(buf, off, len)`` takes an offset, so no memoryview per frame.
"""

import select

from micropython import const

_POLLOUT = const(4)  # select.POLLOUT
_TX_WAIT_MS = const(20)  # how long a blocked link may hold one frame before it is dropped


class StreamTx:
    def _tx_init(self, out):
        self._out = out
        self._pout = select.poll()
        self._pout.register(out, _POLLOUT)
        self._blocked = False
        self.tx_dropped = 0

    def write(self, buf, n):
        """Write buf[0:n]; returns n, or fewer if the link stayed blocked (counted)."""
        out = self._out
        try:
            w = out.write(buf, 0, n)  # type: ignore[call-arg]  # stream write(buf, off, len)
        except OSError:  # EIO/EPIPE: nobody on the other side
            self.tx_dropped += 1
            return 0
        if w == n:
            self._blocked = False
            return n
        pos = w or 0
        while pos < n:
            if not self._pout.poll(0 if self._blocked else _TX_WAIT_MS):
                self._blocked = True
                self.tx_dropped += 1
                return pos
            try:
                w = out.write(buf, pos, n - pos)  # type: ignore[call-arg]
            except OSError:
                w = 0
            if w:
                pos += w
        self._blocked = False
        return n
