"""Raw access to a node for fuzzing: write any bytes, collect verifications and link counters.

The fuzzer cannot use ground.client: it must send bytes the client would never produce. It
reads the downlink itself (ground.link's deframer, cbor2) and keeps only what it checks:
verifications by (command id, seq), the status result, and the link housekeeping packet.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import cbor2

from ground.errors import LinkLost
from ground.fuzz import profile
from ground.fuzz.keyring import FuzzKey, OpenError
from ground.link import Deframer, Frame
from ground.log import DOWN, UP, SessionLog
from ground.transport import Transport, is_sim, sim_options
from ground.vpico import is_vpico, open_unless_keyed
from protocol import dictionary

KIND_VERIFICATION: Final = 1
KIND_HOUSEKEEPING: Final = 2
KIND_EVENT: Final = 3
STAGES: Final = ("accepted", "rejected", "completed", "failed")
LINK_PACKET: Final = next(p for p in dictionary.PACKETS if p.name == "link")
COMMANDING_PACKET: Final = next(p for p in dictionary.PACKETS if p.name == "commanding")
AUTH_REFUSED: Final = next(e.id for e in dictionary.EVENTS if e.name == "auth_refused")
STATUS_ID: Final = next(c.id for c in dictionary.COMMANDS if c.name == "status")
OWN_KEYS: Final = 4096  # own command addresses remembered (the node remembers 32)
STALE_BOOT: Final = 8  # SPEC §6: a command bound to another boot; its result is the boot


class Status:
    """The `status` result: [mode, boot_count, reset_cause, uptime_ms, dict_hash, ...]."""

    def __init__(self, result: Any, node_time_ms: int) -> None:
        r = list(result) if isinstance(result, list) else []
        r += [None] * (7 - len(r))
        self.mode = r[0]
        self.boot_count = r[1] if isinstance(r[1], int) else -1
        self.reset_cause = r[2]
        self.uptime_ms = r[3] if isinstance(r[3], int) else -1
        self.dict_hash = r[4]
        self.node_time_ms = node_time_ms

    def __repr__(self) -> str:
        return f"Status(boot_count={self.boot_count}, uptime_ms={self.uptime_ms})"


class NodePort:
    """One node on one port: a SimNode of its own for ``sim``, else any pyserial URL."""

    def __init__(self, url: str = "sim", *, uplink_bytes_per_s: float | None = None,
                 log_path: str | Path | None = None, seed: int | None = None,
                 key: FuzzKey | None = None) -> None:
        # a virtual Pico, as the simulated node, is deployed open unless the URL asks for the
        # key (key=dev): the campaign is plain
        self.url = open_unless_keyed(url) if is_vpico(url) else url
        # the node's key: the port's own commands are signed with it, and authenticated
        # answers opened with it (SPEC §10.5); None: plain commands, an open node
        self.key = key
        self.on_sign: Callable[[int], None] | None = None  # each counter the port signs with
        self.on_reboot: Callable[[], None] | None = None  # a reboot the port caused
        self.own_keys: dict[tuple[int, int], None] = {}  # (cmd id, seq) the port sent lately
        self.case_keys: dict[tuple[int, int], None] = {}  # (cmd id, seq) fuzz cases used lately
        self.uplink_bytes_per_s = uplink_bytes_per_s
        self.log = SessionLog(log_path, 0, url) if log_path else None
        self.sim: Any = None
        self._sim_dir: str | None = None
        # an open node unless the URL asks for the key (key=dev): the campaign is plain
        self._sim_options = sim_options(url, default_key=False) if is_sim(url) else {}
        if seed is not None and is_sim(url):
            self._sim_options.setdefault("seed", seed)
        self.transport: Transport | None = None
        self.deframer = Deframer()
        self._cond = threading.Condition()
        # (cmd id, seq) -> [(stage, code, result, node time, counter answered or None)]
        self.verifications: dict[tuple[int, int], list[tuple[int, int, Any, int, int | None]]] = {}
        self.link_counters: dict[str, Any] = {}
        self.commanding: dict[str, Any] = {}  # the latest commanding packet (auth counters)
        self.commanding_time_ms = -1
        self.auth_refused: list[tuple[int, Any]] = []  # auth_refused events: (node time, args)
        self.link_time_ms = -1
        self.link_seq = -1
        self.decode_errors = 0
        # every downlink message checked against SPEC §4 / §4.1 (canonical form, floats in
        # single precision) and §5 (six items): what failed, a few examples kept
        self.noncanonical = 0
        self.noncanonical_examples: list[str] = []
        # downlink sequence numbers: messages received, and numbers skipped (lost messages)
        self.downlink_received = 0
        self.downlink_gaps = 0
        self._last_downlink_seq: int | None = None
        self.verifications_seen = 0
        self.events_seen = 0  # live events (kind 3): how many, the latest and highest number
        self.last_event_seq: int | None = None
        self.max_event_seq: int | None = None
        self.downlink_discards = 0  # ground-side deframer: damaged or cut-short frames
        self.downlink_log: list[tuple[int, int, int]] | None = []  # (seq, kind, id) in order
        self.read_bytes_per_s = 0.0  # > 0: a slow reader (a loaded host, a slow UART)
        self._seq = (time.time_ns() // 1_000_000) & 0xFFFF

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def is_sim(self) -> bool:
        return is_sim(self.url)

    def open(self) -> None:
        device = self.url
        if self.is_sim:
            from ground.simnode import SimNode

            options = dict(self._sim_options)
            if "state_dir" not in options:
                self._sim_dir = tempfile.mkdtemp(prefix="ilrs-fuzz-")
                options["state_dir"] = self._sim_dir
            self.sim = SimNode(**options)
            self.sim.start()
            device = self.sim.port
        self.transport = Transport(device, self._on_bytes, self._on_state,
                                   uplink_bytes_per_s=self.uplink_bytes_per_s)
        self.transport.open()

    def close(self) -> None:
        self.deframer = Deframer()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self._sim_dir is not None:
            shutil.rmtree(self._sim_dir, ignore_errors=True)
            self._sim_dir = None
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> NodePort:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def alive(self) -> bool | None:
        """Sim: is the node process running? A board: None (cannot tell)."""
        if self.sim is None:
            return None
        return bool(self.sim.running)

    def restart(self, timeout_s: float = 15.0) -> None:
        """Sim: power-cut and restart the node. Board: wait for it to come back by itself."""
        if self.sim is not None:
            if self.sim.returncode is not None:  # exited for good: start a new one
                self.close()
                self.open()
                self._rebooted()
                return
            boots = self.sim.boots
            self.power_cut()
            self.sim.wait_boots(boots + 1, timeout_s)
        else:
            self._rebooted()

    def power_cut(self) -> None:
        """Sim: SIGKILL the node now (it restarts on the same pty and state directory)."""
        self.sim.power_cut()
        self._rebooted()

    def _rebooted(self) -> None:
        # the node may have skipped up to 255 counters at its boot (SPEC §10.4)
        if self.key is not None:
            self.key.after_reboot()
        if self.on_reboot is not None:
            self.on_reboot()

    # --- receiving ---------------------------------------------------------------------------

    def _on_state(self, state: str, detail: str) -> None:
        if state == "up":
            self.deframer.reset()
            self._last_downlink_seq = None  # a new connection: no gap across it

    def _note_bad(self, why: str, message: bytes) -> None:
        self.noncanonical += 1
        if len(self.noncanonical_examples) < 10:
            self.noncanonical_examples.append(f"{why}: {bytes(message).hex()}")

    def _note_seq(self, seq: object) -> None:
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        last = self._last_downlink_seq
        if last is not None:
            self.downlink_gaps += (seq - last - 1) & 0xFFFF
        self.downlink_received += 1
        self._last_downlink_seq = seq

    def reset_downlink_accounting(self) -> None:
        """Forget the last downlink seq (after a restart of the node)."""
        self._last_downlink_seq = None

    def _on_bytes(self, data: bytes, t_ns: int) -> None:
        rate = self.read_bytes_per_s
        if rate > 0:  # the reader thread sleeps: the node's output backs up meanwhile
            time.sleep(len(data) / rate)
        for item in self.deframer.feed(data):
            if not isinstance(item, Frame):
                self.downlink_discards += 1
                continue
            if self.log is not None:
                self.log.frame(DOWN, item.wire, t_ns)
            message = item.message
            answers: int | None = None  # the counter an authenticated answer names
            if message[:1] == b"\xd1":  # COSE_Mac0 (SPEC §10.5)
                if self.key is None:
                    self._note_bad("an authenticated message, and the ground has no key",
                                   message)
                    continue
                try:
                    message, answers = self.key.open(bytes(message))
                except OpenError as exc:
                    self._note_bad(f"authenticated message: {exc}", item.message)
                    continue
            why = profile.check(message, canonical=True, node_floats=True)
            if why is not None:
                self._note_bad(why, message)
            try:
                msg = cbor2.loads(message)
                _version, kind, seq, t_ms, ident, body = msg
            except Exception:
                self.decode_errors += 1
                self._note_bad("not a six-item message", message)
                continue
            if answers is not None and kind != KIND_VERIFICATION:
                self._note_bad("an authenticated message that is not a verification", message)
            self._note_seq(seq)
            log = self.downlink_log
            if log is not None and isinstance(seq, int):
                log.append((seq, kind if isinstance(kind, int) else -1,
                            ident if isinstance(ident, int) else -1))
            if kind == KIND_VERIFICATION:
                with self._cond:
                    cmd_seq, stage, code, result = body
                    self.verifications_seen += 1
                    self.verifications.setdefault((ident, cmd_seq), []).append(
                        (stage, code, result, t_ms, answers))
                    self._cond.notify_all()
            elif kind == KIND_EVENT and isinstance(body, list) and body \
                    and isinstance(body[0], int):
                with self._cond:
                    if ident == AUTH_REFUSED and len(body) > 2:
                        self.auth_refused.append((t_ms, body[2]))
                    self.events_seen += 1
                    self.last_event_seq = body[0]
                    if self.max_event_seq is None or body[0] > self.max_event_seq:
                        self.max_event_seq = body[0]
            elif kind == KIND_HOUSEKEEPING and ident == LINK_PACKET.id:
                with self._cond:
                    self.link_counters = dict(zip(LINK_PACKET.channels, body, strict=False))
                    self.link_time_ms = t_ms
                    self.link_seq = seq
                    self._cond.notify_all()
            elif kind == KIND_HOUSEKEEPING and ident == COMMANDING_PACKET.id:
                with self._cond:
                    self.commanding = dict(zip(COMMANDING_PACKET.channels, body, strict=False))
                    self.commanding_time_ms = t_ms
                    self._cond.notify_all()

    def clear_verifications(self) -> None:
        with self._cond:
            self.verifications.clear()

    def stages(self, cmd_id: int, seq: int) -> list[int]:
        """The stages received for (cmd_id, seq) since clear_verifications, in order."""
        with self._cond:
            return [s[0] for s in self.verifications.get((cmd_id, seq), ())]

    def answer_counters(self, cmd_id: int, seq: int) -> list[int | None]:
        """For each stage of (cmd_id, seq): the command counter its authenticated form
        answers, or None for a plain verification."""
        with self._cond:
            return [s[4] for s in self.verifications.get((cmd_id, seq), ())]

    def verification_keys(self) -> set[tuple[int, int]]:
        with self._cond:
            return set(self.verifications)

    def outcome(self, cmd_id: int, seq: int) -> str:
        """``none``, ``rej:N``, ``ok``, ``fail:N``, or ``accepted`` (no final stage yet)."""
        with self._cond:
            stages = list(self.verifications.get((cmd_id, seq), ()))
        final = next((s for s in stages if s[0] != 0), None)
        if final is None:
            return "accepted" if stages else "none"
        stage, code = final[0], final[1]
        if stage == 1:
            return f"rej:{code}"
        return "ok" if stage == 2 else f"fail:{code}"

    def accepted_count(self, keys: set[tuple[int, int]]) -> int:
        with self._cond:
            return sum(1 for k in keys if any(s[0] == 0 for s in self.verifications.get(k, ())))

    # --- sending -----------------------------------------------------------------------------

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def fresh_seq(self, cmd_id: int) -> int:
        """The next seq that no recent fuzz case used with ``cmd_id``: the node would answer a
        command of the port's own with that address from its record (SPEC §5.2), the answer
        of another moment, not counted as accepted."""
        seq = self.next_seq()
        while (cmd_id, seq) in self.case_keys:
            seq = self.next_seq()
        return seq

    def cases_sent(self, keys: Iterable[tuple[int, int]]) -> None:
        """Addresses fuzz cases carried (``fresh_seq`` avoids them for a while)."""
        known = self.case_keys
        for key in keys:
            known.pop(key, None)
            known[key] = None
        while len(known) > OWN_KEYS:
            del known[next(iter(known))]

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise LinkLost(self.url, "not open")
        if self.log is not None:
            for part in data.split(b"\x00"):
                if part:
                    self.log.frame(UP, part)
        self.transport.write(data, timeout_s=5.0)

    def wire(self, message: bytes) -> bytes:
        """A command message of the port's own on the wire: signed with the node's key when
        the port has one (a new counter for every transmission, SPEC §10.4)."""
        from ground.fuzz.case import frame_bytes

        if self.key is not None:
            message, counter = self.key.sign(message)
            if self.on_sign is not None:
                self.on_sign(counter)
        return frame_bytes(message)

    def own_command(self, cmd_id: int, args: list[Any], seq: int) -> bytes:
        """A command of the port's own on the wire, its address remembered (``own_keys``: a
        fuzz case with the same seq and id may be answered from the node's record)."""
        from ground.fuzz.encoding import command

        keys = self.own_keys
        keys[(cmd_id, seq)] = None
        while len(keys) > OWN_KEYS:
            del keys[next(iter(keys))]
        return self.wire(command(seq, cmd_id, args))

    def send_command(self, cmd_id: int, args: list[Any], seq: int | None = None) -> int:
        seq = self.fresh_seq(cmd_id) if seq is None else seq
        self.write(self.own_command(cmd_id, args, seq))
        return seq

    def wait_final(self, cmd_id: int, seq: int,
                   timeout_s: float) -> tuple[int, int, Any, int, int | None] | None:
        """The first final verification (rejected/completed/failed) of (cmd_id, seq)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for stage in self.verifications.get((cmd_id, seq), ()):
                    if stage[0] != 0:
                        return stage
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def command(self, cmd_id: int, args: list[Any], timeout_s: float = 2.0,
                retries: int = 2) -> tuple[int, int, Any, int, int | None] | None:
        """Send (re-sending with the same seq) and wait for the final verification. A
        STALE_BOOT answer (SPEC §5.1) binds the commands to the boot it names, and the command
        is sent again, bound to it, with a new seq."""
        from ground.fuzz.encoding import bind_boot

        for _bind in range(2):
            seq = self.fresh_seq(cmd_id)
            final = None
            for _ in range(retries + 1):
                self.send_command(cmd_id, args, seq)
                final = self.wait_final(cmd_id, seq, timeout_s / (retries + 1))
                if final is not None:
                    break
            if final is not None and final[0] == 1 and final[1] == STALE_BOOT \
                    and isinstance(final[2], int):
                bind_boot(final[2])
                continue
            return final
        return None

    def ping(self, timeout_s: float = 3.0) -> Status | None:
        """`status`: None if the node does not answer."""
        final = self.command(STATUS_ID, [], timeout_s)
        if final is None or final[0] != 2:
            return None
        return Status(final[2], final[3])

    def link_after(self, node_time_ms: int,
                   timeout_s: float = 2.0) -> tuple[int, dict[str, Any]] | None:
        """(downlink seq, counters) of the first link packet stamped after ``node_time_ms``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.link_time_ms <= node_time_ms:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self.link_seq, dict(self.link_counters)

    def commanding_after(self, node_time_ms: int,
                         timeout_s: float = 2.0) -> dict[str, Any] | None:
        """The channels of the first commanding packet stamped after ``node_time_ms``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.commanding_time_ms <= node_time_ms:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return dict(self.commanding)

    def counters_after(self, node_time_ms: int, timeout_s: float = 2.0) -> dict[str, Any] | None:
        """The first link housekeeping packet stamped after ``node_time_ms``.

        Strictly after: a packet from the same millisecond may have been built before the
        command that was answered then (the counters are read when a packet is built)."""
        link = self.link_after(node_time_ms, timeout_s)
        return None if link is None else link[1]

    def wait_answering(self, timeout_s: float = 15.0) -> Status | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(LinkLost):
                status = self.ping(min(1.5, max(0.1, deadline - time.monotonic())))
                if status is not None:
                    return status
            time.sleep(0.05)
        return None
