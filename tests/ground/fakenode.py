"""A small fake node on a pty: enough protocol to test the ground's layers on their own.

It speaks the wire format with the ``cobs`` package and cbor2 (not the ground's modules), keeps
the SPEC §5.2 idempotency memory, and can misbehave on purpose: lose verifications, answer
with another dictionary hash, stay silent, send noise. The integration tests use the real
simulated node; this one makes the lost-frame and mismatch cases deterministic.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from binascii import crc32
from collections import Counter, OrderedDict
from typing import Any

import cbor2
from cobs import cobs

from protocol import dictionary as d
from protocol.node_dictionary import DICT_HASH

_PACKET = next(p for p in d.PACKETS if p.id == 1)
_MODE_OK = {(1, 2), (2, 3), (3, 2), (1, 1), (2, 1), (3, 1)}


def frame(message: bytes) -> bytes:
    return b"\x00" + cobs.encode(message + crc32(message).to_bytes(4, "little")) + b"\x00"


class FakeNode:
    def __init__(
        self,
        dict_hash: int = DICT_HASH,
        hk_period_s: float | None = 0.05,
        silent: bool = False,
        lose_verifications: int = 0,
        noise: bytes = b"",
    ) -> None:
        self.dict_hash = dict_hash
        self.node_id = 0x0FA4E001  # the fake board's identity (SPEC §5.3)
        self.packet_channels = _PACKET.channels  # the one packet it sends
        self.hk_period_s = hk_period_s
        self.silent = silent
        self.lose_verifications = lose_verifications  # the next N verifications are lost
        self.noise = noise  # sent once, before the first answer (a port flushes at open)
        self.reject_next = 0  # reject the next command with this reason code
        self.hold_final: set[int] = set()  # command ids whose final verification waits
        self._held: list[tuple[tuple[int, int], tuple[int, int, Any]]] = []
        self.executed: Counter[int] = Counter()  # command id -> times executed
        self.received: list[list[Any]] = []
        self.mode = 1
        self.boot = 3  # boot count: a command bound to another is rejected STALE_BOOT (§5.1)
        self.params = {p.id: p.default for p in d.PARAMS}
        self._memory: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._seq = 0
        self._event_seq = 0
        self._stop = threading.Event()
        self._buf = b""
        self._lock = threading.Lock()

    def __enter__(self) -> FakeNode:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._thread = threading.Thread(target=self._run, name="fakenode", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- output ------------------------------------------------------------------------

    def send(self, kind: int, ident: int, body: list[Any], time_ms: int = 0) -> bytes:
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFF
            msg = cbor2.dumps([1, kind, self._seq, time_ms, ident, body], canonical=True)
        data = frame(msg)
        if not self.silent:
            with contextlib.suppress(OSError):
                os.write(self.master, data)
        return data

    def _verify(self, key: tuple[int, int], stage: int, code: int = 0, result: Any = None) -> None:
        seq, cmd_id = key
        self._memory.setdefault(key, []).append(
            cbor2.dumps([cmd_id, stage, code, result])  # remembered for repeats
        )
        self._emit(seq, cmd_id, stage, code, result)

    def _emit(self, seq: int, cmd_id: int, stage: int, code: int, result: Any) -> None:
        if self.lose_verifications > 0:
            self.lose_verifications -= 1
            return
        self.send(1, cmd_id, [seq, stage, code, result])

    def event(self, event_id: int, severity: int, args: list[Any]) -> None:
        self._event_seq += 1
        self.send(3, event_id, [self._event_seq, severity, args])

    def housekeeping(self) -> None:
        values: dict[str, Any] = {
            "mode": self.mode,
            "boot_count": self.boot,
            "dict_hash": self.dict_hash,
            "node_id": self.node_id,
            "uptime_s": int(time.monotonic()) % 100000,
            "reset_cause": 0,
            "lunar_day": True,
            "loads_on": 1,
            "loads_tripped": 0,
            "heaters_on": 0,
            "battery_soc": 12.5,
            "battery_voltage": 28.0,
        }
        body = [values.get(name, 1.5) for name in _PACKET.channels]
        self.send(2, 1, body, int(time.monotonic() * 1000) & 0xFFFFFFF)

    # --- input -------------------------------------------------------------------------

    def _run(self) -> None:
        next_hk = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.01)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                self._feed(data)
            if self.hk_period_s and time.monotonic() >= next_hk:
                next_hk += self.hk_period_s
                self.housekeeping()

    def _feed(self, data: bytes) -> None:
        if self.noise:
            os.write(self.master, self.noise)
            self.noise = b""
        self._buf += data
        *frames, self._buf = self._buf.split(b"\x00")
        for wire in frames:
            if not wire:
                continue
            try:
                body = cobs.decode(wire)
                msg = cbor2.loads(body[:-4])
            except Exception:
                continue
            self.received.append(msg)
            self._command(msg)

    def reboot(self) -> None:
        """A new boot: the idempotency memory is gone, the boot count one more."""
        with self._lock:
            self.boot += 1
            self._memory.clear()

    def _command(self, msg: list[Any]) -> None:
        _version, _kind, seq, _time, cmd_id, args, boot = msg
        key = (seq, cmd_id)
        if boot != self.boot:  # not remembered: a repeat is rejected again
            self._emit(seq, cmd_id, 1, 8, self.boot)
            return
        if key in self._memory:  # a repeat: re-send what was recorded, do not execute
            for item in self._memory[key]:
                self._emit(seq, *cbor2.loads(item))
            return
        if cmd_id not in {c.id for c in d.COMMANDS} or self.reject_next:
            self._verify(key, 1, self.reject_next or 1)
            self.reject_next = 0
            return
        self._verify(key, 0)
        self.executed[cmd_id] += 1
        while len(self._memory) > 32:
            self._memory.popitem(last=False)
        handler = getattr(self, f"_cmd_{cmd_id}", None)
        outcome = handler(seq, args) if handler else (2, 0, None)
        if cmd_id in self.hold_final:  # accepted; the final stage waits for release()
            self._held.append((key, outcome))
            return
        self._verify(key, *outcome)

    @property
    def holding(self) -> int:
        """Commands accepted whose final verification is held (``hold_final``)."""
        return len(self._held)

    def release(self) -> None:
        """Send the held final verifications."""
        held, self._held = self._held, []
        for key, outcome in held:
            self._verify(key, *outcome)

    # Handlers return (stage, code, result).
    def _cmd_2(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # set_mode
        new = args[0]
        if (self.mode, new) not in _MODE_OK:
            return 3, 18, None
        old, self.mode = self.mode, new
        self.event(2, 1, [old, new])
        return 2, 0, None

    def _cmd_3(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # load_switch
        return (2, 0, None) if self.mode in (2, 3) else (3, 20, None)

    def _cmd_7(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # param_get
        if args[0] not in self.params:
            return 3, 19, None
        self.send(4, args[0], [self.params[args[0]]])
        return 2, 0, self.params[args[0]]

    def _cmd_8(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # param_set
        self.params[args[0]] = args[1]
        return 2, 0, None

    def _cmd_15(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # status
        return 2, 0, [self.mode, self.boot, 0, 1234, self.dict_hash, self._event_seq, "fake-0.1",
                      self.node_id]

    def _cmd_16(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # event_log_downlink
        payload = cbor2.dumps([[1, 10, 1, 1, [3, 0]], [2, 20, 2, 1, [1, 2]]])
        self.send(6, 1, [seq, 0, True, payload])
        return 2, 0, None

    def _cmd_20(self, seq: int, args: list[Any]) -> tuple[int, int, Any]:  # dict_downlink
        payload = cbor2.dumps([1, list(range(300)), "fake dictionary"], canonical=True)
        parts = [payload[i : i + 100] for i in range(0, len(payload), 100)]
        for i, part in enumerate(parts):
            self.send(6, 2, [seq, i, i == len(parts) - 1, part])
        return 2, 0, None
