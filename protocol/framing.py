"""Frames on the wire: ``00 COBS(message || crc32_le(message)) 00`` (SPEC §2-3).

Sending
    protocol.frame_writer (``encode_frame``, ``FrameWriter``): the node does not import it; it
    frames its messages in node.link with protocol.crc and protocol.cobs.

Receiving
    ``Deframer(max_frame=MAX_FRAME)`` is fed arbitrary chunks of the byte stream (one byte or
    thousands) and returns complete, CRC-verified messages. It starts hunting for a delimiter
    (bytes before the first 0x00 are discarded), ignores empty frames (``00 00``), drops and
    counts bad ones, and resynchronises at the next delimiter. Counters: ``frames``
    (verified), ``crc_errors``, ``oversize`` (decoded frame longer than ``max_frame``; never
    buffered past the limit),
    ``truncated`` (a COBS block cut short, or a frame under 5 bytes), ``discarded_bytes``
    (every non-delimiter byte that did not end up in a verified frame).

    Node core, allocation-free::

        n = d.push(rx, 0, got)        # message length, or 0 when rx[0:got] is used up
        while n:
            handle(d.buf, n)          # the message is d.buf[0:n], valid until the next push
            n = d.push(rx, d.pos, got)

    ``push(data, start=0, end=-1) -> int`` consumes ``data[start:end]`` up to and including
    the delimiter that completes a verified frame and returns the message length, with
    ``d.pos`` the index to continue from; or it consumes everything, sets ``d.pos = end`` and
    returns 0. A partial frame is kept across calls. On MicroPython the byte loop runs in
    viper (COBS decoding and CRC without allocation); on CPython it uses ``bytes.find`` and
    block copies.

    Ground: ``feed(data) -> list[bytes]`` returns every message completed by ``data``.
"""

import array

from protocol.compat import MICROPYTHON, const
from protocol.crc import CRC32_SIZE, crc32_check
from protocol.errors import FrameError

MAX_FRAME = const(1024)  # decoded frame: message + CRC
MAX_MESSAGE = const(1020)
_MIN_FRAME = const(5)  # one message byte and the CRC

# Deframer state, an array('i') shared by the viper and pure kernels.
_MODE = const(0)  # _HUNT or _FRAME
_LEFT = const(1)  # data bytes left in the current COBS block
_CODE = const(2)  # current block's code byte; 0 before the first block
_N = const(3)  # decoded bytes in buf
_RAW = const(4)  # encoded bytes of the current frame so far
_DELIM = const(5)  # 1 when the kernel stopped after a frame's closing delimiter
_DISCARD = const(6)  # bytes discarded by the kernel, not yet added to the counter
_OVER = const(7)  # oversize frames seen by the kernel, not yet added to the counter
_STATE_SIZE = const(8)
_HUNT = const(0)
_FRAME = const(1)


def _deframe_py(st, out, src, pos: int, end: int) -> int:
    # Pure kernel: find() for the delimiter, slice copies for COBS blocks.
    mode = st[_MODE]
    left = st[_LEFT]
    code = st[_CODE]
    n = st[_N]
    raw = st[_RAW]
    cap = len(out)
    while pos < end:
        z = src.find(b"\x00", pos, end)
        stop = end if z < 0 else z
        if mode == _HUNT:
            st[_DISCARD] += stop - pos
        else:
            raw += stop - pos
            while pos < stop:
                if left == 0:
                    if 0 < code < 0xFF:
                        if n == cap:
                            break
                        out[n] = 0
                        n += 1
                    code = src[pos]
                    left = code - 1
                    pos += 1
                else:
                    k = min(left, stop - pos)
                    if n + k > cap:
                        break
                    out[n : n + k] = src[pos : pos + k]
                    n += k
                    left -= k
                    pos += k
            if pos < stop:  # oversize: drop the frame, hunt for the next delimiter
                st[_OVER] += 1
                st[_DISCARD] += raw
                mode = _HUNT
        pos = stop
        if z >= 0:
            pos = z + 1
            if mode == _HUNT:
                mode = _FRAME
                left = code = n = raw = 0
            elif raw:
                st[_DELIM] = 1
                break
    st[_MODE] = mode
    st[_LEFT] = left
    st[_CODE] = code
    st[_N] = n
    st[_RAW] = raw
    return pos


if MICROPYTHON:
    import micropython

    @micropython.viper
    def _deframe_v(st: ptr32, out: ptr8, src: ptr8, pos: int, end: int) -> int:
        mode = int(st[_MODE])
        left = int(st[_LEFT])
        code = int(st[_CODE])
        n = int(st[_N])
        raw = int(st[_RAW])
        cap = int(st[_STATE_SIZE])
        discard = 0
        while pos < end:
            b = int(src[pos])
            pos += 1
            if b == 0:
                if mode == _HUNT:
                    mode = _FRAME
                    left = 0
                    code = 0
                    n = 0
                    raw = 0
                elif raw != 0:
                    st[_DELIM] = 1
                    break
            elif mode == _HUNT:
                discard += 1
            else:
                raw += 1
                if left == 0:
                    if code != 0 and code != 0xFF:
                        if n == cap:
                            mode = _HUNT
                        else:
                            out[n] = 0
                            n += 1
                    code = b
                    left = b - 1
                elif n == cap:
                    mode = _HUNT
                else:
                    out[n] = b
                    n += 1
                    left -= 1
                if mode == _HUNT:
                    st[_OVER] = int(st[_OVER]) + 1
                    discard += raw
        st[_MODE] = mode
        st[_LEFT] = left
        st[_CODE] = code
        st[_N] = n
        st[_RAW] = raw
        st[_DISCARD] = int(st[_DISCARD]) + discard
        return pos


class Deframer:
    """Streaming deframer: bytes in, verified messages out; see the module docstring."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        if max_frame < _MIN_FRAME:
            raise FrameError("max_frame too small")
        self.buf = bytearray(max_frame)
        # state[_STATE_SIZE] holds the capacity for the viper kernel
        self._st = array.array("i", bytes(4 * (_STATE_SIZE + 1)))
        self._st[_STATE_SIZE] = max_frame
        self.pos = 0
        self.frames = 0
        self.crc_errors = 0
        self.oversize = 0
        self.truncated = 0
        self.discarded_bytes = 0

    def reset(self) -> None:
        """Forget a partial frame (its bytes count as discarded) and hunt for a delimiter."""
        st = self._st
        if st[_MODE] == _FRAME:
            self.discarded_bytes += st[_RAW]
        for i in range(_STATE_SIZE):
            st[i] = 0

    def push(self, data, start: int = 0, end: int = -1) -> int:
        """Consume ``data[start:end]`` until a verified frame completes; see the module doc.

        Returns the message length (the message is ``self.buf[0:n]``) or 0 when the input is
        used up; ``self.pos`` is where to continue. Allocates nothing on MicroPython.
        """
        if end < 0:
            end = len(data)
        if start < 0 or start > end or end > len(data):
            raise FrameError("push: range outside the data")
        st = self._st
        buf = self.buf
        if not MICROPYTHON and isinstance(data, memoryview):
            data = bytes(data)
        pos = start
        while pos < end:
            if MICROPYTHON:
                pos = _deframe_v(st, buf, data, pos, end)  # pyright: ignore[reportArgumentType]
            else:
                pos = _deframe_py(st, buf, data, pos, end)
            if st[_DISCARD]:
                self.discarded_bytes += st[_DISCARD]
                st[_DISCARD] = 0
            if st[_OVER]:
                self.oversize += st[_OVER]
                st[_OVER] = 0
            if st[_DELIM]:
                n = self._finish()
                if n:
                    self.pos = pos
                    return n
        self.pos = end
        return 0

    def _finish(self) -> int:
        # A frame's closing delimiter was consumed: verify it, reset for the next frame.
        st = self._st
        n = st[_N]
        raw = st[_RAW]
        left = st[_LEFT]
        st[_DELIM] = 0
        st[_LEFT] = 0
        st[_CODE] = 0
        st[_N] = 0
        st[_RAW] = 0
        if left or n < _MIN_FRAME:
            self.truncated += 1
        elif not crc32_check(self.buf, 0, n):
            self.crc_errors += 1
        else:
            self.frames += 1
            return n - CRC32_SIZE
        self.discarded_bytes += raw
        return 0

    def feed(self, data) -> list:
        """Every message completed by ``data``, as bytes (the ground's convenience; allocates)."""
        out = []
        end = len(data)
        n = self.push(data, 0, end)
        while n:
            out.append(bytes(self.buf[:n]))
            n = self.push(data, self.pos, end)
        return out
