"""The simulated node: command round trip, housekeeping rate, heap.

Against a fresh simulated node (ground.simnode: MicroPython Unix port, 192K heap, pty):

- command round trip: noop → completed, median and p99 over 1,000 commands (200 with
  --quick), housekeeping off; interleaved with a bare MicroPython echo loop (poll, then
  readinto what is there, write it back) on the same kind of pty with a frame of the same
  size, and with the same echo written on asyncio (StreamReader, five idle tasks: what the
  node's link task pays just to wake up). Target: median within 3x of the bare echo.
- authenticated noop round trip (SPEC §10) against an unauthenticated one, side by side on
  one node (the development-keyed node, its policy opened by a signed auth_policy so it takes
  both), alternated, each timed from the message's encoding (and signing) to both answers
  in; 200 pairs (100 with --quick). Target: median ratio <= 1.5x (issue 13).
- housekeeping: every housekeeping packet of the dictionary (protocol.dictionary.PACKETS)
  at hk_rate's maximum (the dictionary's upper limit of its rate argument, 50 Hz) for 60 s
  (10 s with --quick); packets/s received and messages lost (downlink seq gaps, tx_dropped).
  Target >= 500 packets/s with nothing lost (10 packets x 50 Hz). Beside it, the downlink's
  capacity: the same housekeeping plus a flood of noop commands, counting every downlink
  message.
- heap (64-bit, no target): heap_free after boot of the node deployed as on a Pico with a
  ROMFS partition (the default simulation: bytecode runs in place from the image; the process
  heap is 192K plus the image, so the node has 192K), and deployed as .mpy files on the
  filesystem (each import copies its bytecode into the heap); the heap the node's modules take
  when imported, in both deployments; and the heap_free trend over 5 minutes (30 s with
  --quick) at 50 Hz with commands flowing (target: no growth). heap_free is sampled by the
  node once a second right after a garbage collection. The Unix port is 64-bit: its objects
  and GC blocks are twice a Pico's, so these figures are not a Pico's: the heap target is
  judged on 32 bits (bench/heap32_bench.py), or on a board (below).

With a board's serial port (``--port``; ``make bench PORT=/dev/ttyACM0``) the same rows are
measured on the node flashed to that board, over its USB CDC link, where the heap figure is a
real Pico's: heap_free as the running node reports it (target >= 120 KB), the round trip
(median and p99; the echo comparison belongs to the simulation's pty, so no ratio), the
housekeeping rate with nothing lost, and the heap trend (target: no growth). The simulated
node is not started. The board is left with every packet at its dictionary rate and enabled
as its hk_enabled_mask parameter says, as after a boot.

    python -m bench.node_bench [--quick] [--json] [--port PORT]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cbor2

from bench import Row, print_section, row
from ground.auth import Signer, dev_signer
from ground.micropython import PICO_HEAP, find_micropython
from ground.simnode import MPY, MPY_DIR, ROMFS, SimNode, build_romfs, romfs_heap_bytes
from protocol import dictionary_lookup as D
from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import Message, encode_message

SECTION: Final = "node (simulated, or a board with --port)"
RTT_RATIO_TARGET: Final = 3.0
AUTH_RATIO_TARGET: Final = 1.5  # authenticated / unauthenticated noop round trip (issue 13)
HK_TARGET: Final = 500.0
HEAP_TARGET: Final = 120_000
# From the dictionary, so the rows follow it: every housekeeping packet, hk_rate's maximum.
_PACKETS: Final = tuple(packet.id for packet in D.PACKETS)
_HK_RATE: Final = D.COMMANDS["hk_rate"]
_HK_ENABLE: Final = D.COMMANDS["hk_enable"]
_HK_MAX_HZ: Final = float(next(arg.hi for arg in _HK_RATE.args if arg.name == "rate"))
_LINK: Final = D.PACKETS["link"]
_HEAP_FREE: Final = _LINK.channels.index("heap_free")  # indexes into the link packet's body
_TX_DROPPED: Final = _LINK.channels.index("tx_dropped")

ASYNCIO_ECHO_SCRIPT: Final = """
import sys, asyncio, micropython
micropython.kbd_intr(-1)
inp = sys.stdin.buffer
out = sys.stdout.buffer
buf = bytearray(1024)
async def idle():
    while True:
        await asyncio.sleep_ms(20)
async def main():
    r = asyncio.StreamReader(inp)
    for _ in range(5):
        asyncio.create_task(idle())
    while True:
        n = await r.readinto(buf)
        if n:
            out.write(buf, 0, n)
asyncio.run(main())
"""

ECHO_SCRIPT: Final = """
import sys, select, micropython
micropython.kbd_intr(-1)
inp = sys.stdin.buffer
out = sys.stdout.buffer
p = select.poll()
p.register(inp, select.POLLIN)
buf = bytearray(1024)
while True:
    p.poll()
    n = inp.readinto(buf)
    if n:
        out.write(buf, 0, n)
"""


class RawLink:
    """Single-threaded, lowest-latency access to a pty: os.read/os.write and a deframer."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.deframer = Deframer()
        self.pending: list[Any] = []
        self.last_seq: int | None = None
        self.lost = 0
        self.count = 0
        self.boot = 0  # the node's boot (SPEC §5.1), learned from a STALE_BOOT answer
        self.drain()

    def close(self) -> None:
        os.close(self.fd)

    def drain(self) -> None:
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return
            except BlockingIOError:
                return

    def read(self, timeout: float) -> list[Any]:
        """Messages that arrive within timeout (at least one read attempt)."""
        out = []
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                data = b""
            for raw in self.deframer.feed(data):
                # cbor2 (C) rather than the validating pure-Python decode_message: the round
                # trip should time the node, not this decoder (the tests validate messages).
                msg = Message(*cbor2.loads(raw))
                if msg.kind == M.KIND_HOUSEKEEPING and len(msg.body) > 1:
                    self.boot = msg.body[1]  # every packet carries boot_count (SPEC §5.3)
                if self.last_seq is not None and msg.seq != (self.last_seq + 1) & 0xFFFF:
                    self.lost += (msg.seq - self.last_seq - 1) & 0xFFFF
                self.last_seq = msg.seq
                self.count += 1
                out.append(msg)
        return out

    def command(self, cmd_id: int, *args: Any, seq: int, timeout: float = 5.0) -> Any:
        os.write(self.fd, encode_frame(encode_message(M.KIND_COMMAND, seq, 0, cmd_id, list(args),
                                                      self.boot)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.read(0.05):
                if m.kind == M.KIND_VERIFICATION and m.body[0] == seq and m.body[1] in (1, 2, 3):
                    if m.body[1] == M.STAGE_REJECTED and m.body[2] == M.STALE_BOOT:
                        self.boot = m.body[3]  # bound to another boot: send it bound to this
                        return self.command(cmd_id, *args, seq=seq, timeout=timeout)
                    if m.body[1] != M.STAGE_COMPLETED:
                        raise RuntimeError(f"command {cmd_id}: {m!r}")
                    return m.body[3]
        raise TimeoutError(f"command {cmd_id} seq {seq}: no answer")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Echo:
    """A MicroPython echo on its own pty: bare (poll, readinto what is there, write it back)
    or through asyncio (a StreamReader, with five other tasks asleep, as on the node)."""

    def __init__(self, script: str) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        os.set_blocking(self.slave, False)
        env = dict(os.environ, MICROPYPATH=".frozen")
        self.proc = subprocess.Popen(
            [find_micropython(), "-X", f"heapsize={PICO_HEAP}", "-c", script],
            stdin=self.master, stdout=self.master, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        time.sleep(0.3)

    def rtt(self, frame: bytes) -> float:
        t0 = time.perf_counter()
        os.write(self.slave, frame)
        got = 0
        while got < len(frame):
            select.select([self.slave], [], [], 2.0)
            try:
                got += len(os.read(self.slave, 4096))
            except BlockingIOError:
                pass
        return time.perf_counter() - t0

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def node_rtt(link: RawLink, seq: int) -> float:
    """One noop round trip: the clock stops when both verification frames (two pairs of
    delimiters) are in, as the echo's stops at its last byte; decoding and checking them
    happen after, outside the timed part."""
    frame = encode_frame(encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], link.boot))
    t0 = time.perf_counter()
    os.write(link.fd, frame)
    data = _two_frames(link.fd)
    elapsed = time.perf_counter() - t0
    got = [Message(*cbor2.loads(raw)) for raw in link.deframer.feed(data)]
    if not any(m.kind == M.KIND_VERIFICATION and m.body[:2] == [seq, M.STAGE_COMPLETED]
               for m in got):
        raise RuntimeError(f"noop {seq}: no completed verification in {got!r}")
    return elapsed


class StrayFrame(RuntimeError):
    """A round trip's answers came with another frame (the open node's periodic auth_open
    event): the trial is done again."""


def _two_frames(fd: int) -> bytes:
    """Read until two whole frames (the accepted and completed answers) have come."""
    data = b""
    while data.count(0) < 4:
        select.select([fd], [], [], 2.0)
        try:
            data += os.read(fd, 4096)
        except BlockingIOError:
            pass
    return data


def _check_answers(what: str, seq: int, got: list[Message]) -> None:
    if not all(m.kind == M.KIND_VERIFICATION and m.body[0] == seq for m in got):
        raise StrayFrame(f"{what}: {got!r}")
    if not any(m.body[1] == M.STAGE_COMPLETED for m in got):
        raise RuntimeError(f"{what}: no completed verification in {got!r}")


def plain_rtt(link: RawLink, seq: int) -> float:
    """node_rtt with the command's encoding and framing timed, as signed_rtt times the
    signing: the unauthenticated side of the authenticated comparison (the same client path
    but the signing)."""
    t0 = time.perf_counter()
    frame = encode_frame(encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], link.boot))
    os.write(link.fd, frame)
    data = _two_frames(link.fd)
    elapsed = time.perf_counter() - t0
    _check_answers(f"noop {seq}", seq,
                   [Message(*cbor2.loads(raw)) for raw in link.deframer.feed(data)])
    return elapsed


def signed_rtt(link: RawLink, signer: Signer, seq: int) -> float:
    """node_rtt for an authenticated noop (SPEC §10): signing on the ground is timed too, as
    it is part of sending a command; the answers are opened and checked after the clock."""
    t0 = time.perf_counter()
    message = encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], link.boot)
    frame = encode_frame(signer.sign(message)[0])
    os.write(link.fd, frame)
    data = _two_frames(link.fd)
    elapsed = time.perf_counter() - t0
    raws = link.deframer.feed(data)
    if not all(raw[:1] == b"\xd1" for raw in raws):  # an answer to it is never unsigned
        raise StrayFrame(f"signed noop {seq}: an unsigned frame among {raws!r}")
    _check_answers(f"signed noop {seq}", seq,
                   [Message(*cbor2.loads(signer.open(raw)[0])) for raw in raws])
    return elapsed


def _trial(link: RawLink, rtt: Callable[[int], float], seq: int) -> float:
    # One round trip; done again (a new seq) after a stray frame, what was left drained.
    for attempt in range(3):
        try:
            return rtt((seq + attempt * 0x4000) & 0xFFFF)
        except StrayFrame:
            while select.select([link.fd], [], [], 0.3)[0]:
                link.deframer.feed(os.read(link.fd, 65536))
    raise RuntimeError(f"round trip {seq}: a stray frame three times running")


def auth_round_trips(n: int, seq0: int, tmp: Path) -> list[Row]:
    """n authenticated noop round trips against n unauthenticated ones, side by side on one
    node: a node with the development key whose policy was opened by a signed auth_policy
    (SPEC §10.6), which then takes plain commands as an open node does and still checks
    signed ones and signs their answers. Same process, heap and link for both, so the ratio
    is the authentication's alone. Alternated, the one that goes first alternating too (a
    trial's first round trip ran slower by tens of µs: that order would otherwise count
    against one side); both timed from the message's encoding on."""
    keyed = SimNode(seed=1, state_dir=tmp / "keyed", dev_key=True).start()
    try:
        time.sleep(0.5)
        klink = RawLink(keyed.port)
        signer = dev_signer()
        try:
            klink.boot = keyed_boot(klink, signer)
            keyed_hk_off(klink, signer, seq0)
            keyed_open(klink, signer, seq0 + len(_PACKETS))
            seq0 += len(_PACKETS) + 2

            def plain(seq: int) -> float:
                return plain_rtt(klink, seq)

            def signed(seq: int) -> float:
                return signed_rtt(klink, signer, seq)

            p_rtt, s_rtt = [], []
            for i in range(n):
                seq = seq0 + 2 * i
                if i & 1:
                    s_rtt.append(_trial(klink, signed, seq))
                    p_rtt.append(_trial(klink, plain, seq + 1))
                else:
                    p_rtt.append(_trial(klink, plain, seq))
                    s_rtt.append(_trial(klink, signed, seq + 1))
        finally:
            klink.close()
    finally:
        keyed.stop()
    p, a = statistics.median(p_rtt), statistics.median(s_rtt)
    return [
        row(f"round trip median, noop unauthenticated (one node for both, {n}, encoding "
            "included)", p * 1000, "ms"),
        row(f"round trip median, noop authenticated (the same node, {n}, signing included)",
            a * 1000, "ms"),
        row("authenticated / unauthenticated noop median", a / p, "x",
            f"<= {AUTH_RATIO_TARGET}", a / p <= AUTH_RATIO_TARGET),
        row("round trip p99, noop authenticated", _percentile(s_rtt, 99) * 1000, "ms"),
    ]


def keyed_command(link: RawLink, signer: Signer, seq: int, cmd_id: int, *args: Any) -> None:
    """One signed command to the keyed node, until its completed verification."""
    message = encode_message(M.KIND_COMMAND, seq, 0, cmd_id, list(args), link.boot)
    os.write(link.fd, encode_frame(signer.sign(message)[0]))
    deadline = time.monotonic() + 10
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the keyed node did not complete command {cmd_id} seq {seq}")
        if select.select([link.fd], [], [], 0.1)[0]:
            for raw in link.deframer.feed(os.read(link.fd, 65536)):
                if raw[:1] == b"\xd1":
                    m = Message(*cbor2.loads(signer.open(raw)[0]))
                    if m.kind == M.KIND_VERIFICATION and m.body[0] == seq:
                        if m.body[1] == M.STAGE_COMPLETED:
                            return
                        if m.body[1] != M.STAGE_ACCEPTED:
                            raise RuntimeError(f"command {cmd_id} seq {seq}: {m!r}")


def _drain(link: RawLink) -> None:
    while select.select([link.fd], [], [], 0.3)[0]:  # what was sent meanwhile
        link.deframer.feed(os.read(link.fd, 65536))


def keyed_hk_off(link: RawLink, signer: Signer, seq: int) -> None:
    """Every housekeeping packet of the keyed node off, with signed hk_enable commands, as on
    the open node: its housekeeping (unsigned, SPEC §10.5) would otherwise land among the
    answers the round trips read, from 1 s after its boot on."""
    for i, pid in enumerate(_PACKETS):
        keyed_command(link, signer, (seq - len(_PACKETS) + i) & 0xFFFF, _HK_ENABLE.id, pid,
                      False)
    _drain(link)


def keyed_open(link: RawLink, signer: Signer, seq: int) -> None:
    """The keyed node's policy opened (signed arm, then auth_policy(false): SPEC §10.6, §10.8):
    it takes plain commands from then on. Its auth_open event, sent at its next periodic
    check (then every 60 s), is waited for, so that it does not land among the round trips."""
    keyed_command(link, signer, seq & 0xFFFF, ids.CMD_ARM, ids.CMD_AUTH_POLICY,
                  cbor2.dumps([False]))
    keyed_command(link, signer, (seq + 1) & 0xFFFF, ids.CMD_AUTH_POLICY, False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if select.select([link.fd], [], [], 0.1)[0]:
            for raw in link.deframer.feed(os.read(link.fd, 65536)):
                m = Message(*cbor2.loads(raw)) if raw[:1] != b"\xd1" else None
                if m is not None and m.kind == M.KIND_EVENT and m.id == ids.EV_AUTH_OPEN:
                    _drain(link)
                    return
    raise TimeoutError("the keyed node opened by auth_policy sent no auth_open event")


def keyed_boot(link: RawLink, signer: Signer) -> int:
    """The keyed node's boot: a signed status bound to boot 0 is rejected STALE_BOOT."""
    frame = encode_frame(signer.sign(encode_message(M.KIND_COMMAND, 1, 0, ids.CMD_STATUS, [],
                                                    0))[0])
    os.write(link.fd, frame)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if select.select([link.fd], [], [], 0.1)[0]:
            for raw in link.deframer.feed(os.read(link.fd, 65536)):
                if raw[:1] == b"\xd1":
                    m = Message(*cbor2.loads(signer.open(raw)[0]))
                    if m.kind == M.KIND_VERIFICATION and m.body[2] == M.STALE_BOOT:
                        return int(m.body[3])
    raise TimeoutError("the keyed node did not answer a signed status")


def round_trips(link: RawLink, n: int, seq0: int) -> dict[str, list[float]]:
    """n noop round trips, each followed by one echo and one asyncio-echo round trip of a
    frame of the same size: interleaved, so all three see the same machine load."""
    if link.boot == 0:  # learn the boot the noops are bound to
        link.command(ids.CMD_NOOP, seq=(seq0 - 1) & 0xFFFF)
    size = len(encode_frame(encode_message(0, seq0, 0, ids.CMD_NOOP, [], link.boot)))
    frame = bytes(range(1, size + 1))
    echo, aecho = Echo(ECHO_SCRIPT), Echo(ASYNCIO_ECHO_SCRIPT)
    out: dict[str, list[float]] = {"node": [], "echo": [], "asyncio echo": []}
    try:
        for i in range(n):
            out["node"].append(node_rtt(link, (seq0 + i) & 0xFFFF))
            out["echo"].append(echo.rtt(frame))
            out["asyncio echo"].append(aecho.rtt(frame))
    finally:
        echo.close()
        aecho.close()
    return out


def _hk_all(link: RawLink, rate_hz: float | None, seq: int) -> int:
    """Every packet of the dictionary off (rate_hz None), or on at rate_hz."""
    for pid in _PACKETS:
        if rate_hz is None:
            link.command(_HK_ENABLE.id, pid, False, seq=seq)
        else:
            link.command(_HK_ENABLE.id, pid, True, seq=seq)
            seq += 1
            link.command(_HK_RATE.id, pid, rate_hz, seq=seq)
        seq += 1
    return seq


def measure_hk(link: RawLink, seconds: float, flood: bool, seq: int,
               rate_hz: float = _HK_MAX_HZ) -> dict[str, Any]:
    """Receive for `seconds`; with flood, keep 8 noop commands in flight all along.

    hk_per_s is what the node sent at, from the packets' own time tags: per packet id, the
    commanded rate times the share of its scheduled packets that arrived (scheduled: one per
    period between its first and last time tag). Nothing skipped or lost: exactly the
    commanded total. It does not depend on where the host's window cuts the streams, which
    alone moves a count over 10 s by up to one packet per stream: rx_per_s, the plain count
    over the host's window, is reported beside it. period_ratio: the mean period seen in the
    time tags over the commanded one.
    """
    link.read(0.2)
    link.lost = 0
    link.last_seq = None
    start_count = link.count
    hk = 0
    spans: dict[int, list[int]] = {}  # packet id -> [count, first time, last time]
    tx_dropped = 0
    inflight = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        while flood and inflight < 8:
            seq = (seq + 1) & 0xFFFF
            os.write(link.fd, encode_frame(encode_message(0, seq, 0, ids.CMD_NOOP, [],
                                                          link.boot)))
            inflight += 1
        for m in link.read(0.01):
            if m.kind == M.KIND_HOUSEKEEPING:
                hk += 1
                span = spans.setdefault(m.id, [0, m.time, m.time])
                span[0] += 1
                span[2] = m.time
                if m.id == _LINK.id:
                    tx_dropped = m.body[_TX_DROPPED]
            elif m.kind == M.KIND_VERIFICATION and m.body[1] == M.STAGE_COMPLETED:
                inflight -= 1
    elapsed = time.monotonic() - t0
    period_ms = round(1000.0 / rate_hz)  # as the node rounds it (node.housekeeping)
    sent = scheduled = 0
    span_ms = 0
    for n, first, last in spans.values():
        sent += n
        scheduled += round((last - first) / period_ms) + 1
        span_ms += last - first
    intervals = sent - len(spans)
    return {"hk_per_s": rate_hz * len(spans) * sent / scheduled if scheduled else 0.0,
            "period_ratio": span_ms / intervals / period_ms if intervals else 0.0,
            "rx_per_s": hk / elapsed, "packets": len(spans),
            "msgs_per_s": (link.count - start_count) / elapsed,
            "lost": link.lost, "tx_dropped": tx_dropped, "seq": seq}


def heap_trend(link: RawLink, seconds: float, seq: int) -> dict[str, Any]:
    """heap_free samples (post-collection, 1 Hz) while hk runs at 50 Hz and noops flow."""
    samples: list[tuple[float, int]] = []
    inflight = 0
    t0 = time.monotonic()
    last = -1.0
    while time.monotonic() - t0 < seconds:
        if inflight < 2:
            seq = (seq + 1) & 0xFFFF
            os.write(link.fd, encode_frame(encode_message(0, seq, 0, ids.CMD_STATUS, [],
                                                          link.boot)))
            inflight += 1
        for m in link.read(0.01):
            if m.kind == M.KIND_HOUSEKEEPING and m.id == _LINK.id:
                now = time.monotonic() - t0
                if now - last >= 0.5:  # the node samples once a second
                    samples.append((now, m.body[_HEAP_FREE]))
                    last = now
            elif m.kind == M.KIND_VERIFICATION and m.body[1] == M.STAGE_COMPLETED:
                inflight -= 1
    k = max(3, len(samples) // 10)
    first = statistics.median(v for _, v in samples[:k])
    end = statistics.median(v for _, v in samples[-k:])
    return {"growth": first - end, "min": min(v for _, v in samples),
            "samples": len(samples), "seq": seq}


_MODULE_HEAP_SCRIPT: Final = """
import gc, os, sys
image = os.getenv("ILRS_ROMFS")
if image:  # as sim_main.py: the image first, then /rom first on sys.path
    import vfs
    gc.collect()
    buf = bytearray(os.stat(image)[6])
    with open(image, "rb") as f:
        f.readinto(buf)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    sys.path[0] = "/rom"
else:
    sys.path.pop(0)
sys.path.append(".frozen")
gc.collect()
before = gc.mem_free()
import node
node.preload()
import board.sim, node.app
gc.collect()
print(before - gc.mem_free())
"""


def module_heap(deployment: str) -> int:
    """Heap the node's modules take when imported (sim_main.py's imports) on the Unix port:
    from the ROMFS image (bytecode in place) or from .mpy files (bytecode copied in)."""
    env = dict(os.environ, MICROPYPATH=".frozen")
    heap = PICO_HEAP
    if deployment == ROMFS:
        image = build_romfs()
        env["ILRS_ROMFS"] = str(image)
        heap = str(romfs_heap_bytes(image.stat().st_size))
    else:
        env["MICROPYPATH"] = f"{MPY_DIR}{os.pathsep}.frozen"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_MODULE_HEAP_SCRIPT)
    try:
        done = subprocess.run([find_micropython(), "-X", f"heapsize={heap}", f.name], env=env,
                              capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    return int(done.stdout.split()[-1])


def boot_heap(link: RawLink, seq: int) -> tuple[int, int]:
    """heap_free from the link packet (the node's post-collection sample); returns it and seq."""
    link.command(_HK_RATE.id, _LINK.id, 2.0, seq=seq)
    seq += 1
    while True:
        for m in link.read(1.0):
            if m.kind == M.KIND_HOUSEKEEPING and m.id == _LINK.id:
                return m.body[_HEAP_FREE], seq


def filesystem_boot_heap(tmp: Path) -> int:
    """heap_free after boot of a node deployed as .mpy files on its filesystem (--no-romfs)."""
    with SimNode(seed=1, state_dir=tmp / "state-mpy", deployment=MPY) as node:
        time.sleep(0.5)
        link = RawLink(node.port)
        try:
            link.command(ids.CMD_STATUS, seq=1)
            return boot_heap(link, 2)[0]
        finally:
            link.close()


def run(quick: bool = False, port: str | None = None) -> list[Row]:
    n_rtt = 200 if quick else 1000
    hk_s = 10.0 if quick else 60.0
    heap_s = 30.0 if quick else 300.0
    if port:
        return run_board(port, n_rtt, hk_s, heap_s)
    rows: list[Row] = []
    build_romfs()
    with tempfile.TemporaryDirectory(prefix="node-bench-") as tmp:
        fs_heap = filesystem_boot_heap(Path(tmp))
        node = SimNode(seed=1, state_dir=Path(tmp) / "state").start()
        try:
            rows += _run_node(node, n_rtt, hk_s, heap_s, fs_heap)
        finally:
            node.stop()
    return rows


def _run_node(node: SimNode, n_rtt: int, hk_s: float, heap_s: float,
              fs_heap: int) -> list[Row]:
    """The rows measured on the running ROMFS node (fs_heap: the filesystem node's)."""
    rows: list[Row] = []
    time.sleep(0.5)
    link = RawLink(node.port)
    try:
        seq = 1
        link.command(ids.CMD_STATUS, seq=seq)
        seq += 1
        heap, seq = boot_heap(link, seq)
        # 64-bit figures: the heap target is judged on 32 bits (heap32_bench) or on a board
        rows.append(row("64-bit sim: heap free after boot of its 192K, ROMFS (no target: "
                        "objects twice a Pico's)", heap, "B"))
        rows.append(row("64-bit sim: heap free after boot of its 192K, filesystem .mpy",
                        fs_heap, "B"))
        rows.append(row("64-bit sim: heap the node's modules take, ROMFS (bytecode in place)",
                        module_heap(ROMFS), "B"))
        rows.append(row("64-bit sim: heap the node's modules take, filesystem .mpy "
                        "(bytecode copied)", module_heap(MPY), "B"))

        seq = _hk_all(link, None, seq)
        link.read(0.3)
        seq = max(seq, 1000)  # seqs 1000.. all encode in 2 bytes: one frame size
        rtt = round_trips(link, n_rtt, seq)
        seq = (seq + n_rtt) & 0xFFFF
        for name in ("node", "echo", "asyncio echo"):
            what = "noop → completed" if name == "node" else f"{name} loop, same frame size"
            rows.append(row(f"round trip median, {what} ({n_rtt})",
                            statistics.median(rtt[name]) * 1000, "ms"))
            rows.append(row(f"round trip p99, {what}", _percentile(rtt[name], 99) * 1000,
                            "ms"))
        ratio = statistics.median(rtt["node"]) / statistics.median(rtt["echo"])
        rows.append(row("noop median / echo median", ratio, "x",
                        f"<= {RTT_RATIO_TARGET}", ratio <= RTT_RATIO_TARGET))
        n_auth = max(n_rtt // 5, 100)
        with tempfile.TemporaryDirectory(prefix="node-bench-auth-") as atmp:
            rows += auth_round_trips(n_auth, seq, Path(atmp))

        seq = _hk_all(link, _HK_MAX_HZ, seq)
        hk = measure_hk(link, hk_s, flood=False, seq=seq)
        seq = hk["seq"]
        clean = hk["lost"] == 0 and hk["tx_dropped"] == 0 and hk["packets"] == len(_PACKETS)
        rows.append(row(f"housekeeping sustained {hk_s:.0f} s ({len(_PACKETS)} packets x "
                        f"{_HK_MAX_HZ:.0f} Hz = dictionary max; node time tags)",
                        hk["hk_per_s"], "packets/s", f">= {HK_TARGET:.0f}, none lost",
                        hk["hk_per_s"] >= HK_TARGET and clean))
        rows.append(row("housekeeping mean period / commanded period (node time tags)",
                        hk["period_ratio"], "x", "0.99..1.01",
                        0.99 <= hk["period_ratio"] <= 1.01))
        rows.append(row("housekeeping received per second of host time (window edges count)",
                        hk["rx_per_s"], "packets/s"))
        rows.append(row("housekeeping messages lost (seq gaps + tx_dropped)",
                        hk["lost"] + hk["tx_dropped"], "msgs", "0", clean))
        flood = measure_hk(link, min(hk_s, 10.0), flood=True, seq=seq)
        seq = flood["seq"]
        rows.append(row(f"downlink capacity: hk {len(_PACKETS) * _HK_MAX_HZ:.0f}/s + noop "
                        "flood, all messages",
                        flood["msgs_per_s"], "msgs/s", "", True))
        rows.append(row("downlink messages lost during the flood", flood["lost"], "msgs",
                        "0", flood["lost"] == 0))

        trend = heap_trend(link, heap_s, seq)
        rows.append(row(f"heap_free growth over {heap_s:.0f} s, hk at {_HK_MAX_HZ:.0f} Hz, "
                        "commands flowing", trend["growth"], "B", "<= 0 (1 KB noise)",
                        trend["growth"] <= 1024))
        rows.append(row("heap_free minimum during that run", trend["min"], "B"))
    finally:
        link.close()
    if node.boots != 1:
        rows.append(row("node restarts during the bench", node.boots - 1, "", "0", False))
    return rows


def run_board(port: str, n_rtt: int, hk_s: float, heap_s: float) -> list[Row]:
    """The node rows measured on a board (or any node) at a serial port; see the docstring."""
    rows: list[Row] = []
    try:
        link = RawLink(port)
    except OSError as e:
        raise RuntimeError(f"cannot open the board's port {port}: {e.strerror or e}") from e
    where = f"on {port}"
    seq = 1
    try:
        link.command(ids.CMD_STATUS, seq=seq)
        seq += 1
        heap, seq = boot_heap(link, seq)
        rows.append(row(f"heap free, the running node ({where})", heap, "B",
                        f">= {HEAP_TARGET:,}", heap >= HEAP_TARGET))
        seq = _hk_all(link, None, seq)
        link.read(0.3)
        seq = max(seq, 1000)  # seqs 1000.. all encode in 2 bytes: one frame size
        rtt = [node_rtt(link, (seq + i) & 0xFFFF) for i in range(n_rtt)]
        seq = (seq + n_rtt) & 0xFFFF
        rows.append(row(f"round trip median, noop → completed ({n_rtt}, {where})",
                        statistics.median(rtt) * 1000, "ms"))
        rows.append(row(f"round trip p99, noop → completed ({where})",
                        _percentile(rtt, 99) * 1000, "ms"))
        seq = _hk_all(link, _HK_MAX_HZ, seq)
        hk = measure_hk(link, hk_s, flood=False, seq=seq)
        seq = hk["seq"]
        clean = hk["lost"] == 0 and hk["tx_dropped"] == 0 and hk["packets"] == len(_PACKETS)
        rows.append(row(f"housekeeping sustained {hk_s:.0f} s ({len(_PACKETS)} packets x "
                        f"{_HK_MAX_HZ:.0f} Hz; {where})", hk["hk_per_s"], "packets/s"))
        rows.append(row(f"housekeeping messages lost (seq gaps + tx_dropped; {where})",
                        hk["lost"] + hk["tx_dropped"], "msgs", "0", clean))
        trend = heap_trend(link, heap_s, seq)
        seq = trend["seq"]
        rows.append(row(f"heap_free growth over {heap_s:.0f} s, hk at {_HK_MAX_HZ:.0f} Hz, "
                        f"commands flowing ({where})", trend["growth"], "B",
                        "<= 0 (1 KB noise)", trend["growth"] <= 1024))
        rows.append(row(f"heap_free minimum during that run ({where})", trend["min"], "B"))
    finally:
        try:  # also after a failure: never leave a board at 50 Hz
            _hk_defaults(link, seq + 0x1000)  # clear of any command still in flight
        except (OSError, RuntimeError, TimeoutError) as e:
            print(f"node bench: could not set {port}'s housekeeping back: {e}", file=sys.stderr)
        link.close()
    return rows


def _hk_defaults(link: RawLink, seq: int) -> None:
    """Every packet back at its dictionary rate, enabled as hk_enabled_mask says (as at boot)."""
    mask = link.command(D.COMMANDS["param_get"].id, D.PARAMS["hk_enabled_mask"].id,
                        seq=seq & 0xFFFF)
    for packet in D.PACKETS:
        seq += 2
        link.command(_HK_RATE.id, packet.id, float(packet.rate_hz), seq=(seq - 1) & 0xFFFF)
        link.command(_HK_ENABLE.id, packet.id, bool(mask >> (packet.id - 1) & 1),
                     seq=seq & 0xFFFF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--port", help="a board's serial port: measure that node instead")
    args = parser.parse_args(argv)
    return print_section(SECTION, run(quick=args.quick, port=args.port), args.json)


if __name__ == "__main__":
    sys.exit(main())
