"""Frames written whole: ``00 COBS(message || crc32_le(message)) 00`` (SPEC §2-3).

The sending half of protocol.framing, for the ground's tools, the tests and the bench: the node
does not import it (node.link frames its messages in its own transmit queue with
protocol.crc and protocol.cobs, the same bytes).

- ``encode_frame(message) -> bytes`` (allocates).
- ``FrameWriter(max_message=MAX_MESSAGE)``: ``n = fw.frame(msg, length)`` frames
  ``msg[0:length]`` into the writer's own ``fw.buf`` and returns the frame's length, so the
  bytes to send are ``fw.buf[0:n]``. It allocates nothing on MicroPython. ``fw.write(msg) ->
  memoryview`` is the convenient form (allocates the returned view).
"""

from protocol import cobs
from protocol.compat import MICROPYTHON
from protocol.crc import CRC32_SIZE, crc32_append
from protocol.errors import FrameError
from protocol.framing import MAX_MESSAGE

if MICROPYTHON:
    import micropython

    @micropython.viper
    def _copy(dst: ptr8, src: ptr8, n: int):
        i = 0
        while i < n:
            dst[i] = src[i]
            i += 1


class FrameWriter:
    """Frames messages into a preallocated buffer; see the module docstring."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._raw = bytearray(max_message + CRC32_SIZE)
        self.buf = bytearray(2 + cobs.max_encoded_size(max_message + CRC32_SIZE))
        self._mv = memoryview(self.buf)

    def frame(self, msg, length: int = -1) -> int:
        """Frame ``msg[0:length]`` into ``self.buf``; return the frame length. No allocation."""
        if length < 0:
            length = len(msg)
        raw = self._raw
        if length < 1 or length > len(msg) or length + CRC32_SIZE > len(raw):
            raise FrameError("message empty or too long for a frame")
        if MICROPYTHON:
            _copy(raw, msg, length)  # pyright: ignore[reportArgumentType]
        else:
            raw[0:length] = bytes(msg[0:length])
        crc32_append(raw, 0, length)
        buf = self.buf
        buf[0] = 0
        end = cobs.encode_into(raw, buf, 1, 0, length + CRC32_SIZE)
        buf[end] = 0
        return end + 1

    def write(self, msg, length: int = -1) -> memoryview:
        """Frame ``msg[0:length]`` and return a view of the frame (allocates the view)."""
        return self._mv[: self.frame(msg, length)]


def encode_frame(message) -> bytes:
    """``00 COBS(message || crc32_le) 00`` for one message (1 to MAX_MESSAGE bytes)."""
    n = len(message)
    if n < 1 or n > MAX_MESSAGE:
        raise FrameError("message empty or longer than MAX_MESSAGE")
    raw = bytearray(n + CRC32_SIZE)
    raw[0:n] = message
    crc32_append(raw, 0, n)
    return b"\x00" + cobs.encode(raw) + b"\x00"
