"""The link and the watchdog on a Pico's USB CDC read path (board.rx_chunks False: asyncio
wakes the link for one byte, and it takes the rest while more is waiting), on MicroPython.

A ground that keeps sending keeps the link taking input: that is progress, and the watchdog
feeds at every check. The emulated Pico found the bug this is for: the link counted progress
only when it went back to waiting, so a steady command stream froze its counter, the watchdog
stopped feeding and the node reset itself by watchdog in the middle of being commanded (the
simulated node reads whole chunks and almost never took that path). A hung link (fault
injection) still stops the feeding while the ground keeps sending.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.micropython

SCRIPT = """
import asyncio, io, json
from hotpath import build, frame
from node.watchdog import Watchdog
app, board = build({root!r})
link = app.link
NOOP = frame(0, 7, 1, [])  # a noop bound to this boot: each one answered


class UsbIn(io.IOBase):
    # A USB CDC stdin behind a ground that never pauses: always readable, a byte per read.
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.taken = 0

    def ioctl(self, req, arg):
        return arg & 1 if req == 3 else 0  # MP_STREAM_POLL: POLLIN, always

    def readinto(self, buf):
        buf[0] = self.data[self.pos]
        self.pos = (self.pos + 1) % len(self.data)
        self.taken += 1
        return 1


usb = UsbIn(NOOP)


def read_into(buf):  # as board.rp2 does on USB: byte by byte while one is waiting
    n = 0
    while n < len(buf):
        usb.readinto(memoryview(buf)[n:n + 1])
        n += 1
    return n


board.rx_stream = usb
board.rx_chunks = False
board.read_into = read_into
wd = Watchdog(board, app.params)
wd.add(link)
CHECKS = {checks}
HANG_AT = {hang_at}


async def checker():
    fed = []
    for i in range(CHECKS):
        await asyncio.sleep_ms(20)
        if i == HANG_AT:
            link.hung = True  # fault injection: HANG_TASK on the link
        fed.append(wd.feed_if_alive())
        board.tx_len = 0  # the ground reads (and drops) the answers
    return fed


async def main():
    task = asyncio.create_task(link.run())
    fed = await checker()
    task.cancel()
    return fed


fed = asyncio.run(main())
d = link.deframer
print(json.dumps({{"fed": fed, "taken": usb.taken, "frames_in": d.frames, "crc": d.crc_errors}}))
"""


def run(run_mp, tmp_path, checks: int, hang_at: int) -> dict:
    out = run_mp(SCRIPT.format(root=str(tmp_path / "state"), checks=checks, hang_at=hang_at))
    return json.loads(out.splitlines()[-1])


def test_a_steady_command_stream_is_progress_and_the_watchdog_feeds(run_mp, tmp_path) -> None:
    res = run(run_mp, tmp_path, checks=25, hang_at=-1)
    assert res["fed"] == [True] * 25, res["fed"]
    # the link really took the stream, whole noops and nothing else
    assert res["frames_in"] >= 25 and res["crc"] == 0, res


def test_a_hung_link_stops_the_feeding_while_the_ground_keeps_sending(run_mp, tmp_path) -> None:
    res = run(run_mp, tmp_path, checks=25, hang_at=10)
    # fed up to the hang; the check at the hang sees the progress made before it (the
    # link stops at its next pass), every later one none
    assert res["fed"] == [True] * 11 + [False] * 14, res["fed"]
