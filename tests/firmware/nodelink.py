"""A small test-side client for the node: pyserial + protocol/ framing, verification waits.

Not the ground tool (ground/client.py is): just enough to drive the simulated node through
its pty with the real protocol. A reader thread deframes and decodes everything the node
sends into ``messages`` (each with the host's receive time in ``.rx_time``), counts downlink
seq gaps and discarded bytes. Vocabulary: ``send_command``, ``send_and_assert_command``,
``assert_rejected``, ``assert_failed``, ``await_telemetry``, ``await_event``,
``assert_event``; every timeout says what arrived and where the node log is.

Authentication (SPEC §10): with ``signer`` (a ground.auth.Signer) set, commands are sent as
COSE_Mac0 objects and authenticated verifications are opened with it; each message gets
``.auth``: the command counter an authenticated verification answers, or None (plain).
Authenticated frames that do not check out are counted in ``auth_bad``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import serial

from ground.auth import AuthError, Signer
from protocol import ids
from protocol import messages as M
from protocol.errors import MessageError
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import Message, decode_message, encode_message
from protocol.node_dictionary import COMMAND_FLAGS, FLAG_HAZARDOUS

ACCEPTED, REJECTED, COMPLETED, FAILED = (M.STAGE_ACCEPTED, M.STAGE_REJECTED,
                                          M.STAGE_COMPLETED, M.STAGE_FAILED)


def is_hazardous(cmd_id: int) -> bool:
    return 0 <= cmd_id < len(COMMAND_FLAGS) and bool(COMMAND_FLAGS[cmd_id] & FLAG_HAZARDOUS)


class NodeTimeout(AssertionError):
    """A wait ran out: the message lists what arrived."""


class NodeLink:
    def __init__(self, port: str, log_path: Any = None, seq: int | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.serial = serial.serial_for_url(port, timeout=0.02, do_not_open=True)
        self.serial.open()
        self.serial.reset_input_buffer()  # stale frames the pty kept while nobody read
        self.deframer = Deframer()
        self.messages: list[Message] = []
        self.malformed = 0
        self.seq_gaps = 0
        self.lost = 0  # downlink messages missing according to seq gaps
        self._last_seq: int | None = None
        self.boot: int | None = None  # the node's boot as last heard (commands are bound to it)
        self.signer: Signer | None = None
        self.auth_bad = 0  # authenticated frames the signer could not open
        self.sent_counters: dict[int, list[int]] = {}  # seq -> counters it was sent with
        self._seq = random.randrange(0x10000) if seq is None else seq
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="nodelink-reader", daemon=True)
        self._thread.start()

    # --- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.serial.close()

    def __enter__(self) -> NodeLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.serial.read(65536)
            except (serial.SerialException, OSError, TypeError):
                if self._stop.is_set():
                    return
                time.sleep(0.05)
                continue
            if not data:
                continue
            now = time.monotonic()
            out = []
            for raw in self.deframer.feed(data):
                auth = None
                if raw[:1] == b"\xd1" and self.signer is not None:
                    try:
                        raw, auth = self.signer.open(raw)
                    except AuthError:
                        self.auth_bad += 1
                        continue
                try:
                    msg = decode_message(raw)
                except MessageError:
                    self.malformed += 1
                    continue
                msg.auth = auth  # type: ignore[attr-defined]
                msg.rx_time = now  # type: ignore[attr-defined]
                self._track_seq(msg.seq)
                self._learn_boot(msg)
                out.append(msg)
            if out:
                with self._cond:
                    self.messages.extend(out)
                    self._cond.notify_all()

    def _learn_boot(self, msg: Message) -> None:
        # The node's boot (SPEC §5.1): every packet's boot_count, a STALE_BOOT rejection's result.
        if msg.kind == M.KIND_HOUSEKEEPING and len(msg.body) > 1:
            self.boot = msg.body[1]
        elif (msg.kind == M.KIND_VERIFICATION and msg.body[1] == REJECTED
              and msg.body[2] == M.STALE_BOOT):
            self.boot = msg.body[3]
        elif msg.kind == M.KIND_EVENT and msg.id == ids.EV_BOOT:
            # A new boot, announced before its first packet: the boot count is not known
            # until a packet (or a STALE_BOOT answer, current_boot() asks) says it.
            self.boot = None

    def _track_seq(self, seq: int) -> None:
        last = self._last_seq
        if last is not None and seq != (last + 1) & 0xFFFF:
            gap = (seq - last - 1) & 0xFFFF
            # A seq restarting at 0 is a reboot (or a stale tail), not a loss.
            if seq != 0:
                self.seq_gaps += 1
                self.lost += gap
        self._last_seq = seq

    def reset_seq_tracking(self) -> None:
        self._last_seq = None
        self.seq_gaps = 0
        self.lost = 0

    def mark(self) -> int:
        """An index into messages: waits and searches from a mark see only later messages."""
        with self._cond:
            return len(self.messages)

    def since(self, mark: int) -> list[Message]:
        with self._cond:
            return self.messages[mark:]

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def write(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    def _describe(self, mark: int, limit: int = 12) -> str:
        got = self.since(mark)
        tail = "\n  ".join(repr(m) for m in got[-limit:])
        return (f"{len(got)} messages arrived since the wait began (last {min(limit, len(got))}"
                f"):\n  {tail}\nnode log: {self.log_path}")

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 5.0, mark: int = 0,
                 what: str = "a message") -> Message:
        deadline = time.monotonic() + timeout
        i = mark
        with self._cond:
            while True:
                while i < len(self.messages):
                    m = self.messages[i]
                    i += 1
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        raise NodeTimeout(f"timed out after {timeout} s waiting for {what}; "
                          + self._describe(mark))

    # --- commands -------------------------------------------------------------------------

    def send_command(self, cmd_id: int, *args: Any, seq: int | None = None,
                     boot: int | None = None, plain: bool = False, arm: bool = True) -> int:
        """Send a command bound to ``boot`` (default: the node's as last heard, else 0),
        signed if there is a signer and not ``plain``; return its seq. A hazardous command is
        armed first (SPEC §10.8: an `arm` naming it, completed) unless ``arm`` is false."""
        seq = self.next_seq() if seq is None else seq
        if boot is None:
            boot = self.current_boot()
        message = encode_message(M.KIND_COMMAND, seq, 0, cmd_id, list(args), boot)
        if arm and is_hazardous(cmd_id):
            self.arm(cmd_id, M.command_arguments(message), plain=plain)
        if self.signer is not None and not plain:
            self.signer.new_boot(boot)
            message, counter = self.signer.sign(message)
            self.sent_counters.setdefault(seq, []).append(counter)
        self.write(encode_frame(message))
        return seq

    def arm(self, cmd_id: int, arguments: bytes, plain: bool = False) -> None:
        """Send `arm` for cmd_id with its argument bytes and assert it completed."""
        mark = self.mark()
        seq = self.send_command(ids.CMD_ARM, cmd_id, arguments, plain=plain)
        v = self.verification(seq, ids.CMD_ARM, (COMPLETED, FAILED, REJECTED), 5.0, mark)
        assert v.body[1] == COMPLETED, f"arm {cmd_id}: {v!r}; log {self.log_path}"

    def current_boot(self) -> int:
        """The boot commands are bound to: as last heard, else asked for."""
        return self.learn_boot() if self.boot is None else self.boot

    def learn_boot(self, timeout: float = 5.0) -> int:
        """The node's boot count: a `status` bound to boot 0 is rejected STALE_BOOT with it."""
        mark = self.mark()
        seq = self.send_command(ids.CMD_STATUS, boot=0)
        self.verification(seq, ids.CMD_STATUS, (REJECTED,), timeout, mark)
        assert self.boot is not None
        return self.boot

    def verification(self, seq: int, cmd_id: int, stages: Iterable[int], timeout: float = 5.0,
                     mark: int = 0) -> Message:
        stages = tuple(stages)
        return self.wait_for(
            lambda m: m.kind == M.KIND_VERIFICATION and m.id == cmd_id and m.body[0] == seq
            and m.body[1] in stages,
            timeout, mark, f"verification {stages} of command {cmd_id} seq {seq}")

    def command(self, cmd_id: int, *args: Any, timeout: float = 5.0,
                seq: int | None = None, arm: bool = True) -> tuple[Message, Message]:
        """Send and wait for the outcome: (first answer, final answer) — the final one is
        rejected, completed or failed; the first is accepted (or the rejection itself)."""
        mark = self.mark()
        seq = self.send_command(cmd_id, *args, seq=seq, arm=arm)
        first = self.verification(seq, cmd_id, (ACCEPTED, REJECTED), timeout, mark)
        if first.body[1] == REJECTED and first.body[2] == M.STALE_BOOT:
            # bound to a boot the node has left (it rebooted since we heard from it): that
            # attempt did not run, so send it again bound to the boot the answer names
            mark = self.mark()
            self.send_command(cmd_id, *args, seq=seq, boot=first.body[3], arm=arm)
            first = self.verification(seq, cmd_id, (ACCEPTED, REJECTED), timeout, mark)
        if first.body[1] == REJECTED:
            return first, first
        final = self.verification(seq, cmd_id, (COMPLETED, FAILED), timeout, mark)
        return first, final

    def send_and_assert_command(self, cmd_id: int, *args: Any, timeout: float = 5.0,
                                arm: bool = True) -> Any:
        """Send; assert accepted then completed; return the completed result."""
        _first, final = self.command(cmd_id, *args, timeout=timeout, arm=arm)
        assert final.body[1] == COMPLETED, (
            f"command {cmd_id}{list(args)}: {final!r}, not completed; log {self.log_path}")
        return final.body[3]

    def assert_rejected(self, cmd_id: int, *args: Any, code: int, arm: bool = True) -> Message:
        _first, final = self.command(cmd_id, *args, arm=arm)
        assert final.body[1] == REJECTED and final.body[2] == code, (
            f"command {cmd_id}{list(args)}: {final!r}, wanted rejected "
            f"{M.REASON_NAMES.get(code, code)}")
        return final

    def assert_failed(self, cmd_id: int, *args: Any, code: int) -> Message:
        first, final = self.command(cmd_id, *args)
        assert first.body[1] == ACCEPTED, f"command {cmd_id}: {first!r}, wanted accepted"
        assert final.body[1] == FAILED and final.body[2] == code, (
            f"command {cmd_id}{list(args)}: {final!r}, wanted failed "
            f"{M.REASON_NAMES.get(code, code)}")
        return final

    # --- telemetry and events ---------------------------------------------------------------

    def await_telemetry(self, packet_id: int, pred: Callable[[list[Any]], bool] = lambda b: True,
                        timeout: float = 5.0, mark: int | None = None) -> Message:
        return self.wait_for(
            lambda m: m.kind == M.KIND_HOUSEKEEPING and m.id == packet_id and pred(m.body),
            timeout, self.mark() if mark is None else mark, f"housekeeping packet {packet_id}")

    def await_event(self, event_id: int, pred: Callable[[list[Any]], bool] = lambda a: True,
                    timeout: float = 5.0, mark: int | None = None) -> Message:
        return self.wait_for(
            lambda m: m.kind == M.KIND_EVENT and m.id == event_id and pred(m.body[2]),
            timeout, self.mark() if mark is None else mark, f"event {event_id}")

    def assert_event(self, event_id: int, mark: int, pred: Callable[[list[Any]], bool]
                     = lambda a: True, timeout: float = 5.0) -> Message:
        """An event (from mark on) that already arrived or arrives within timeout."""
        return self.await_event(event_id, pred, timeout, mark)

    def events(self, event_id: int, mark: int = 0) -> list[Message]:
        return [m for m in self.since(mark) if m.kind == M.KIND_EVENT and m.id == event_id]

    def packets(self, packet_id: int, mark: int = 0) -> list[Message]:
        return [m for m in self.since(mark)
                if m.kind == M.KIND_HOUSEKEEPING and m.id == packet_id]

    def await_boot(self, timeout: float = 10.0, mark: int | None = None) -> Message:
        """The boot event of a (re)started node."""
        return self.await_event(1, timeout=timeout, mark=mark)

    def bulk(self, transfer: int, bulk_type: int, mark: int, timeout: float = 5.0) -> bytes:
        """Concatenated payload of a bulk transfer (SPEC §5.7), checking the part indexes."""
        parts: list[bytes] = []
        while True:
            m = self.wait_for(
                lambda m: m.kind == M.KIND_BULK and m.id == bulk_type and m.body[0] == transfer
                and m.body[1] == len(parts), timeout, mark, f"bulk part {len(parts)}")
            parts.append(m.body[3])
            if m.body[2]:
                return b"".join(parts)


def field(packet_id: int, channel: str) -> int:
    """Index of a channel (by name) in a housekeeping packet's body."""
    from protocol.dictionary import PACKETS

    packet = next(p for p in PACKETS if p.id == packet_id)
    return packet.channels.index(channel)
