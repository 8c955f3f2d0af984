"""Frame output to a non-blocking stream, shared by the rp2 and sim boards.

The board only moves bytes: ``write(buf, off, n)`` hands the stream what it takes now and
returns how many bytes that was (0 when it is full, or nobody is on the other side);
``tx_wait(ms)`` waits until it can take more. Whole frames, queueing, priorities and the
drop count are the link's (node/link.py). Allocation-free: stream ``write(buf, off, len)``
takes an offset, so no memoryview per write.
"""

import select

from micropython import const

_POLLOUT = const(4)  # select.POLLOUT


class StreamTx:
    def _tx_init(self, out):
        self._out = out
        self._pout = select.poll()
        self._pout.register(out, _POLLOUT)

    def write(self, buf, off, n):
        """Write what the stream takes now of buf[off:off+n]; return the bytes written."""
        try:
            w = self._out.write(buf, off, n)  # type: ignore[call-arg]  # write(buf, off, len)
        except OSError:  # EIO/EPIPE: nobody on the other side
            return 0
        return w or 0

    def tx_wait(self, ms):
        """Wait up to ms until the stream can take more; True if it can."""
        return bool(self._pout.poll(ms))
