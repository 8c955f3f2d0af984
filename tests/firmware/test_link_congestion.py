"""Issue 10 bug 5 on the simulated node: a ground that reads slowly while it floods commands.

Between two link packets sent while the queue was drained, every message the node made is
accounted for exactly: frames_out + tx_dropped = messages made (downlink seq), the gaps in the
downlink seq the ground saw add up to tx_dropped, the ground received frames_out frames, and
not one byte of a partial frame (no discarded bytes, no CRC errors). Every command sent was
received (frames_in).
"""

from __future__ import annotations

import os
import select
import time

import pytest
from nodelink import field

from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import decode_message, encode_message

pytestmark = pytest.mark.slow

FRAMES_IN = field(ids.PKT_LINK, "frames_in")
FRAMES_OUT = field(ids.PKT_LINK, "frames_out")
TX_DROPPED = field(ids.PKT_LINK, "tx_dropped")
COMMANDS = 5000  # as in the issue


def noop(seq: int) -> bytes:
    """A noop bound to boot 0 (SPEC §5.1): rejected STALE_BOOT, one verification each; the
    accounting is the same, every command is answered."""
    return encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], 0)


class SlowGround:
    """A raw reader of the node's pty that reads as slowly as it is told."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.deframer = Deframer()
        self.messages: list[M.Message] = []

    def close(self) -> None:
        os.close(self.fd)

    def read(self, limit: int = 65536) -> int:
        try:
            data = os.read(self.fd, limit)
        except BlockingIOError:
            return 0
        for raw in self.deframer.feed(data):
            self.messages.append(decode_message(raw))
        return len(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                self.read(64)  # the node is busy: let a little of its output go
                select.select([], [self.fd], [], 0.01)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            select.select([self.fd], [], [], 0.05)
            self.read()

    def link_packet(self, after: int, timeout_s: float = 10.0) -> int:
        """Index (in messages) of the first link packet after index `after`, reading fast."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for i in range(after, len(self.messages)):
                m = self.messages[i]
                if m.kind == M.KIND_HOUSEKEEPING and m.id == ids.PKT_LINK:
                    return i
            select.select([self.fd], [], [], 0.05)
            self.read()
        raise AssertionError("no link packet arrived")


def test_slow_reader_every_frame_accounted_once_and_no_partial_frame(fresh_node) -> None:
    node, link = fresh_node
    for pid in range(1, 11):  # plenty of housekeeping to drop first
        link.send_and_assert_command(ids.CMD_HK_RATE, pid, 20.0)
    link.close()
    ground = SlowGround(node.port)
    try:
        ground.drain(0.5)
        first = ground.link_packet(len(ground.messages))
        frames = [encode_frame(noop(10000 + i)) for i in range(COMMANDS)]
        for i in range(0, COMMANDS, 10):  # flood, reading 100 bytes now and then
            ground.write(b"".join(frames[i:i + 10]))
            ground.read(100)
            time.sleep(0.001)
        ground.drain(2.0)  # now read fast: the node's queue drains
        last = ground.link_packet(len(ground.messages))
    finally:
        ground.close()
    msgs = ground.messages
    p0, p1 = msgs[first], msgs[last]
    made = (p1.seq - p0.seq) & 0xFFFF
    sent = p1.body[FRAMES_OUT] - p0.body[FRAMES_OUT]
    dropped = p1.body[TX_DROPPED] - p0.body[TX_DROPPED]
    between = [m.seq for m in msgs[first:last]]
    gaps = sum(((b - a - 1) & 0xFFFF) for a, b in zip(between, [*between[1:], p1.seq], strict=True))
    assert (ground.deframer.discarded_bytes, ground.deframer.crc_errors,
            ground.deframer.truncated) == (0, 0, 0)  # whole frames only
    assert p1.body[FRAMES_IN] - p0.body[FRAMES_IN] == COMMANDS
    assert dropped > 0, "the reader was not slow enough to congest the link"
    assert sent + dropped == made
    assert len(between) == sent
    assert gaps == dropped
