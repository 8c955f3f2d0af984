"""The client API: connect, command with verification, telemetry, events, parameters.

::

    with Client("sim://?time_factor=600") as node:      # connect() checks the dictionary hash
        node.command("set_mode", mode="NOMINAL")         # waits for completed, or raises
        node.command("load_switch", channel="seismometer", on=True)
        print(node.latest("battery_soc"))                # value, unit, limit state
        for hk in node.telemetry(count=3): ...           # housekeeping as it arrives
        node.await_event("mode_changed", timeout=5)

* ``send(name, **args)`` validates against the dictionary first (``ground.validate``) and
  returns the sequence number; nothing is sent for an unknown name or a bad argument.
  ``send_raw(cmd_id, args)`` skips those checks (tests of the node's own checking), and
  ``next_seq()`` hands out a sequence number for a message built by other means.
* ``command(name, timeout=, **args)`` also waits: ``accepted`` then ``completed`` returns a
  ``CommandResult``; ``rejected`` raises ``CommandRejected``, ``failed`` raises
  ``CommandFailed`` (with the node's reason code and name); no final stage in time raises
  ``VerificationTimeout`` saying what did arrive and where the log is. A frame lost on the way
  is recovered by re-sending the command with the SAME sequence number: the node remembers the
  last 32 (seq, id) pairs and answers a repeat with the recorded verifications instead of
  executing it again (SPEC §5.2).
* Every command is bound to the node's boot (SPEC §5.1): ``boot`` is the node's boot count as
  last learned (from ``status``, any housekeeping packet, or a STALE_BOOT rejection, which
  carries it), None when not known; a command is then bound to boot 0, which no node runs,
  and its STALE_BOOT answer teaches the boot, so it is re-sent bound to it. When the node
  reboots while a command that may have run has no final verification (more than one attempt
  reached out, or it was accepted), ``command`` stops retrying and raises ``OutcomeUnknown``:
  the command ran once or not at all, and only the node's state can tell. After ``reboot`` or
  ``maintenance`` completes, the boot is forgotten until the node is heard from again.
* Sequence numbers start from the millisecond clock, not from 1, so two sessions in a row do
  not reuse a pair the node still remembers.
* Every session writes a session log (``ground.log``); ``log_path`` says where.
* Time (SPEC §11.1): ``connect`` correlates the node's clock with this machine's UTC
  (``time_correlate``) right after ``status``, and a background thread keeps it correlated:
  every ``CORRELATE_PERIOD_S`` (60 s) and at once when the client learns that the node is in
  a new boot (a reset loses the correlation). ``correlate=False`` turns this off, and
  ``hold_correlation()`` keeps only the correlations asked for (tests that count commands
  exactly, or send frames signed ahead); a refusal (an ENFORCED node and no key) is logged,
  not raised.
* Time-tagged commands (SPEC §11): ``command(name, at=UTC_MS, ...)`` sends the command with
  that execution time and returns once it is *accepted* (queued): the ``CommandResult`` then
  has ``queued=True`` and says nothing of the outcome. ``wait_timetagged(result, timeout)``
  waits for its final verification: it returns on ``completed``, raises ``CommandFailed`` on
  ``failed`` (NOT_ALLOWED_NOW, NOT_RUN, ...) and ``OutcomeUnknown`` on a ``tt_unknown`` event
  (a reset cut it while it ran); success is reported only from a completed verification
  (authenticated when the command was), never from an event.
* Authentication (SPEC §10): with ``signer`` (a ``ground.auth.Signer``) every command
  transmission is a COSE_Mac0 object with a new counter (a re-send too), and a command's
  verifications count only if they are authenticated under that key and answer one of the
  counters its transmissions used; a plain or wrongly tagged one is logged and ignored, so a
  forged downlink cannot make ``command`` report an outcome. A ``sim`` port holds the
  development key unless ``sim://?key=none``, and the client then signs with it by itself;
  so does ``mqtt://...?key=dev`` (a keyed simulated node behind a gateway), continuing the
  key's counters from ``ground.keys.dev_store()``.
* Hazardous commands (SPEC §10.8: the dictionary's ``hazardous`` flag) are sent in two
  steps by ``command`` itself: ``arm`` naming the command and the exact bytes of its
  argument array, then, once the arm completed, the command; a rejected or failed arm
  raises and the command is not sent. While a hazardous command is in these two steps,
  ``command`` calls from other threads wait, since any command in between would disarm.
  ``send``/``send_raw`` send exactly what they are given (no arm).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from ground import bulk, codec, explain, validate, values
from ground.auth import Signer, dev_signer
from ground.downlink import (
    EVENT,
    HOUSEKEEPING,
    PARAMETER,
    TIME,
    VERIFICATION,
    Downlink,
    Stream,
)
from ground.errors import (
    CommandFailed,
    CommandRejected,
    DictionaryMismatch,
    GroundError,
    LinkLost,
    NotConnected,
    OutcomeUnknown,
    ReadOnlyPort,
    UnknownName,
    VerificationTimeout,
    WaitTimeout,
)
from ground.link import encode_frame
from ground.log import UP, SessionLog, default_log_path
from ground.transport import (
    DEFAULT_UPLINK_BYTES_PER_S,
    Transport,
    is_read_only,
    is_sim,
    mqtt_dev_key,
    seq_range,
    sim_options,
)
from ground.vpico import is_vpico
from ground.vpico import url_signer as vpico_url_signer
from protocol.messages import command_arguments
from protocol.node_dictionary import DICT_HASH

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_RETRY_S: Final = 1.0
DEFAULT_RETRIES: Final = 3
CORRELATE_PERIOD_S: Final = 60.0  # the ground re-correlates the node's clock this often


class Verification(NamedTuple):
    stage: str  # accepted | rejected | completed | failed
    code: int
    reason: str  # the code's name
    result: Any
    node_time_ms: int


class CommandResult(NamedTuple):
    command: str
    seq: int
    result: Any  # what `completed` carried (None for most commands)
    verifications: tuple[Verification, ...]
    attempts: int
    queued: bool = False  # a time-tagged command: accepted into the queue, outcome not yet
    command_id: int = 0
    at_utc_ms: int = 0


class NodeStatus(NamedTuple):
    mode: str
    boot_count: int
    reset_cause: str
    uptime_ms: int
    dict_hash: int
    event_seq: int
    fw_version: Any
    node_id: int | None  # SPEC §5.3; None from a node older than revision 1.4


class NodeDictionary(NamedTuple):
    description: Any  # the decoded compact dictionary (SPEC §7)
    size: int  # bytes of its CBOR encoding
    hash: int  # first 4 bytes of its SHA-256, big-endian: the dictionary hash
    matches: bool  # equal to the ground's hash


STALE_BOOT: Final = 8  # SPEC §6: the command was bound to another boot (result: the node's)
ARM_ID: Final = validate.COMMANDS["arm"].id  # SPEC §10.8
_REBOOTING: Final = frozenset({"reboot", "maintenance"})
_MAX_REBINDS: Final = 3


class _Pending:
    def __init__(self, name: str, command_id: int, boot: int) -> None:
        self.name = name
        self.command_id = command_id
        self.boot = boot  # the boot the frame being sent is bound to (0: none, never runs)
        self.sent = 0  # attempts sent bound to self.boot
        self.rebind = False  # send again, bound to the client's current boot
        self.unknown: int | None = None  # the node's new boot: the outcome is unknown
        self.suspect: int | None = None  # the node's new boot, seen before our one answer
        self.counters: set[int] | None = None  # signed: the counters of its transmissions
        self.tagged = False  # time-tagged: done at accepted (the outcome comes much later)
        self.stages: list[Verification] = []
        self.done = threading.Event()

    def may_have_run(self) -> bool:
        """Whether an attempt of this command may have run in boot self.boot."""
        return self.boot != 0 and (self.sent > 1 or bool(self.stages))


class Client:
    """A session with one node over one transport."""

    def __init__(
        self,
        port: str = "sim",
        *,
        log: SessionLog | str | Path | None = None,
        write_log: bool = True,
        expected_hash: int | None = None,
        check_dictionary: bool = True,
        retries: int = DEFAULT_RETRIES,
        retry_interval_s: float = DEFAULT_RETRY_S,
        uplink_bytes_per_s: float | None = DEFAULT_UPLINK_BYTES_PER_S,
        signer: Signer | None = None,
        correlate: bool = True,
        correlate_period_s: float = CORRELATE_PERIOD_S,
    ) -> None:
        self.port = port
        self.correlate_clock = correlate
        self.correlate_period_s = correlate_period_s
        self._correlator: threading.Thread | None = None
        self._correlate_now = threading.Event()
        self._correlation_held = False
        self._closing = threading.Event()
        # time-tagged commands waited on: (seq, command id) -> final verifications / events
        self._tt_waits: dict[tuple[int, int], list[Any]] = {}
        self._tt_cond = threading.Condition()
        if signer is None and is_sim(port) and sim_options(port).get("dev_key"):
            signer = dev_signer()  # sim (key=dev by default): the node holds the dev key
        elif signer is None and is_vpico(port):
            signer = vpico_url_signer(port)  # key=dev by default, as for sim
        elif signer is None and mqtt_dev_key(port):
            from ground.keys import dev_key_signer

            signer = dev_key_signer()  # a node behind a gateway outlives this session
        self.signer = signer
        self.expected_hash = DICT_HASH if expected_hash is None else expected_hash
        self.check_dictionary = check_dictionary
        self.retries = retries
        self.retry_interval_s = retry_interval_s
        if isinstance(log, SessionLog):
            self.log: SessionLog | None = log
        elif write_log:
            self.log = SessionLog(log or default_log_path(), self.expected_hash, port)
        else:
            self.log = None
        self.downlink = Downlink(self.log)
        if signer is not None:
            self.downlink.opener = signer.open
        self.transport = Transport(
            port, self.downlink.feed, self._on_link, uplink_bytes_per_s=uplink_bytes_per_s
        )
        self.link_state = "closed"
        self.status: NodeStatus | None = None
        self.boot: int | None = None  # the node's boot count as last learned (SPEC §5.1)
        self._left_boot: int | None = None  # a boot the node is leaving (reboot completed)
        self._lock = threading.Lock()
        self._arming = threading.RLock()  # held from a hazardous command's arm to its end
        # Through a broker an operator may own a range of sequence numbers (transport.seq_range).
        self._seq_first, self._seq_count = seq_range(port)
        self.read_only = is_read_only(port)  # a partner's view: nothing is ever sent
        self._first_hk = threading.Event()
        self._first_hk_body: list[Any] = []
        self._seq = (time.time_ns() // 1_000_000) % self._seq_count
        self._pending: dict[int, _Pending] = {}
        self._bulk = bulk.BulkTransfers(self.downlink)
        self.downlink.listen(VERIFICATION, self._on_verification)
        self.downlink.listen(HOUSEKEEPING, self._on_housekeeping)
        self.downlink.listen(EVENT, self._on_tt_event)
        self.correlation: tuple[int, int] | None = None  # the node's newest (node_ms, utc_ms)
        self.downlink.listen(TIME, self._on_time)

    @property
    def log_path(self) -> str | None:
        return str(self.log.path) if self.log is not None else None

    # --- connection --------------------------------------------------------------------

    def connect(self, timeout: float = DEFAULT_TIMEOUT_S) -> NodeStatus:
        """Open the link, ask for `status`, and compare the dictionary hash (SPEC §7)."""
        try:
            self.transport.open()
        except GroundError:
            self.close()
            raise
        self.link_state = "up"
        if self.log is not None:
            self.log.link("up", self.transport.device)
        try:
            if self.read_only:  # asks nothing, correlates nothing: a partner's view
                return self._status_from_housekeeping(timeout)
            status = self.refresh_status(timeout)
        except GroundError:
            self.close()
            raise
        if self.correlate_clock:
            self.correlate(timeout)
            self._correlate_now.clear()
            self._closing.clear()
            self._correlator = threading.Thread(target=self._keep_correlated,
                                                name="ground-correlator", daemon=True)
            self._correlator.start()
        return status

    # --- time (SPEC §11.1) -------------------------------------------------------------

    def correlate(self, timeout: float = DEFAULT_TIMEOUT_S) -> int | None:
        """Send ``time_correlate`` with this machine's UTC now and wait for it: the node's
        clock drift then in use (ppb, SPEC §11.1), or None (and a note in the session log)
        when the node did not take it. ``self.correlation`` is then the node's answer,
        ``(node_ms, utc_ms)``."""
        try:
            res = self._command("time_correlate", {"utc_ms": time.time_ns() // 1_000_000},
                                timeout)
        except GroundError as exc:
            if self.log is not None:
                self.log.note(f"time correlation not taken: {exc}")
            return None
        return res.result if type(res.result) is int else 0

    def set_correlate_period(self, period_s: float) -> None:
        """Correlate every period_s from now on (the next one at once)."""
        self.correlate_period_s = period_s
        self._correlate_now.set()

    def hold_correlation(self, held: bool = True) -> None:
        """While held, the clock is correlated only when asked (``correlate``): not every
        period and not at a new boot. For a stream of commands that must be exactly the
        caller's: counting every execution, or frames signed ahead of sending (a correlation
        signed in between would make them replays, SPEC §10.4)."""
        self._correlation_held = held

    def _on_time(self, msg: codec.Message) -> None:
        body = msg.body
        if len(body) == 2 and all(type(v) is int for v in body):
            self.correlation = (body[0], body[1])

    def _keep_correlated(self) -> None:
        while not self._closing.is_set():
            self._correlate_now.wait(self.correlate_period_s)
            if self._closing.is_set():
                return
            self._correlate_now.clear()
            if (self.link_state == "up" and not self._closing.is_set()
                    and not self._correlation_held):
                self.correlate()

    def _status_from_housekeeping(self, timeout: float) -> NodeStatus:
        """A read-only port asks nothing: the node's state from its first packet (every
        packet begins mode, boot_count, dict_hash, node_id: SPEC §5.3)."""
        if not self._first_hk.wait(timeout):
            raise WaitTimeout("housekeeping on the read-only port", timeout,
                              "nothing arrived: is the node up, and may this user read its "
                              "tm topic?", self.log_path)
        r = (list(self._first_hk_body) + [None] * 4)[:4]
        node_hash = r[2] if isinstance(r[2], int) else -1
        self.status = NodeStatus(
            values.format_value(r[0], validate.CHANNELS["mode"].enum),
            r[1] if isinstance(r[1], int) else 0, "?", 0, node_hash & 0xFFFFFFFF, 0, None,
            r[3] if isinstance(r[3], int) and not isinstance(r[3], bool) else None,
        )
        if self.check_dictionary and node_hash != self.expected_hash:
            raise DictionaryMismatch(self.expected_hash, node_hash & 0xFFFFFFFF)
        return self.status

    def refresh_status(self, timeout: float = DEFAULT_TIMEOUT_S) -> NodeStatus:
        try:
            try:
                res = self._command("status", {}, timeout)
            except OutcomeUnknown:  # status changes nothing: ask the new boot
                res = self._command("status", {}, timeout)
        except VerificationTimeout as exc:
            if self.downlink.messages == 0:
                raise LinkLost(
                    self.port,
                    f"the node does not answer (no frames in {timeout:g} s): is it running "
                    "the firmware, not the REPL? log: " + (self.log_path or "none"),
                ) from None
            raise exc from None
        r = list(res.result) if isinstance(res.result, list | tuple) else []
        r += [None] * (8 - len(r))
        node_hash = r[4] if isinstance(r[4], int) else -1
        self.status = NodeStatus(
            values.format_value(r[0], validate.CHANNELS["mode"].enum),
            r[1] if isinstance(r[1], int) else 0,
            values.format_value(r[2], validate.CHANNELS["reset_cause"].enum),
            r[3] if isinstance(r[3], int) else 0,
            node_hash & 0xFFFFFFFF,
            r[5] if isinstance(r[5], int) else 0,
            r[6],
            r[7] if isinstance(r[7], int) and not isinstance(r[7], bool) else None,
        )
        if isinstance(r[1], int):
            self._learn_boot(r[1])
        if self.check_dictionary and node_hash != self.expected_hash:
            raise DictionaryMismatch(self.expected_hash, node_hash & 0xFFFFFFFF)
        return self.status

    def _check_sim(self) -> None:
        """A simulated node that exited for good will not answer: say so at once."""
        sim = self.transport.sim
        code = getattr(sim, "returncode", None) if sim is not None else None
        if code is not None:
            raise LinkLost(
                self.port,
                f"the simulated node exited (code {code}); its log: "
                f"{getattr(sim, 'log_path', '?')}",
            )

    def close(self) -> None:
        self._closing.set()
        self._correlate_now.set()
        correlator = self._correlator
        if correlator is not None and correlator is not threading.current_thread():
            correlator.join(timeout=DEFAULT_TIMEOUT_S + 1)
        self._correlator = None
        self.transport.close()
        if self.link_state != "closed" and self.log is not None:
            self.log.link("closed", "")
        self.link_state = "closed"
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_link(self, state: str, detail: str) -> None:
        self.link_state = state
        if state == "up":
            self.downlink.reset()
        if self.log is not None:
            self.log.link(state, detail)

    # --- commanding --------------------------------------------------------------------

    def next_seq(self) -> int:
        """Take the next command sequence number (for a command sent by other means)."""
        with self._lock:
            self._seq = (self._seq + 1) % self._seq_count
            return self._seq_first + self._seq

    def send(self, name: str, /, **kwargs: Any) -> int:
        """Validate and send a command without waiting; returns its sequence number."""
        cmd, args = validate.prepare(name, kwargs)
        with self._arming:  # not between another thread's arm and its hazardous command
            pass
        return self.send_raw(cmd.id, args)

    def send_raw(self, cmd_id: int, args: Sequence[Any] = (), boot: int | None = None) -> int:
        """Send command ``cmd_id`` with ``args`` exactly as given, unchecked, without waiting;
        returns its sequence number. For tests that want the node to do the checking. Bound
        to ``boot``, by default the node's boot as known (0 when not known)."""
        seq = self.next_seq()
        if boot is None:
            boot = self.boot or 0
        self._transmit(self._frame(codec.encode_command(seq, cmd_id, list(args), boot), boot))
        return seq

    def _frame(self, message: bytes, boot: int, pending: _Pending | None = None) -> bytes:
        """The frame of one transmission of a command message: signed with a new counter
        when there is a signer (SPEC §10.4), the counter noted in pending."""
        signer = self.signer
        if signer is None:
            return encode_frame(message)
        with self._lock:
            signer.new_boot(boot)
            signed, counter = signer.sign(message)
            if pending is not None:
                if pending.counters is None:
                    pending.counters = set()
                pending.counters.add(counter)
        return encode_frame(signed)

    def _transmit(self, frame: bytes) -> None:
        if self.read_only:
            raise ReadOnlyPort(self.port, "a command is")
        if self.link_state == "closed":
            raise NotConnected(f"not connected to {self.port}: call connect() first")
        if self.log is not None:
            self.log.frame(UP, frame[1:-1])
        self.transport.write(frame)

    def command(
        self,
        name: str,
        /,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        at: int | None = None,
        **kwargs: Any,
    ) -> CommandResult:
        """Send a command and wait for its final verification (see the module docstring);
        with ``at`` (UTC ms, not 0) a time-tagged command, returned once queued."""
        return self._command(name, kwargs, timeout, at or 0)

    def _command(self, name: str, kwargs: dict[str, Any], timeout: float,
                 at: int = 0) -> CommandResult:
        cmd, args = validate.prepare(name, kwargs)
        if at:
            validate.check_timetag(cmd, at)
        if cmd.hazardous:
            with self._arming:  # nothing of ours between the arm and the command
                self._arm(cmd.id, args, timeout)
                return self._send_and_wait(name, args, cmd.id, timeout, at)
        with self._arming:  # a hazardous command in its two steps goes first
            pass
        return self._send_and_wait(name, args, cmd.id, timeout, at)

    def arm(self, name: str, /, *, timeout: float = DEFAULT_TIMEOUT_S,
            **kwargs: Any) -> CommandResult:
        """Only the `arm` for hazardous command ``name`` with these arguments (SPEC §10.8),
        for a caller that sends the command itself next (``send``); ``command`` arms by
        itself."""
        cmd, args = validate.prepare(name, kwargs)
        return self._arm(cmd.id, args, timeout)

    def _arm(self, cmd_id: int, args: list[Any], timeout: float) -> CommandResult:
        arguments = command_arguments(codec.encode_command(0, cmd_id, args, 0))
        return self._send_and_wait("arm", validate.prepare(
            "arm", {"command": cmd_id, "arguments": arguments})[1], ARM_ID, timeout)

    def _send_and_wait(self, name: str, args: list[Any], cmd_id: int,
                       timeout: float, at: int = 0) -> CommandResult:
        seq = self.next_seq()
        with self._lock:
            pending = _Pending(name, cmd_id, self.boot or 0)
            pending.tagged = bool(at)
            self._pending[seq] = pending
        if at:
            with self._tt_cond:
                self._tt_waits[(seq, cmd_id)] = []
        message = codec.encode_command(seq, cmd_id, args, pending.boot, at)
        attempts = 0
        tries = 0  # attempts bound to the current boot
        rebinds = 0
        deadline = time.monotonic() + timeout
        try:
            while True:
                now = time.monotonic()
                if pending.rebind and rebinds < _MAX_REBINDS:
                    # Nothing sent so far can have run (SPEC §5.1): bind to the boot learned.
                    rebinds += 1
                    with self._lock:
                        pending.rebind = False
                        pending.boot = self.boot or 0
                        pending.sent = 0
                        pending.done.clear()
                    message = codec.encode_command(seq, cmd_id, args, pending.boot, at)
                    tries = 0
                if tries <= self.retries and pending.suspect is None:
                    with self._lock:
                        pending.sent += 1
                    # a re-send keeps the seq: never executed twice (signed: a new counter)
                    self._transmit(self._frame(message, pending.boot, pending))
                    attempts += 1
                    tries += 1
                    wait = min(self.retry_interval_s, deadline - now)
                else:
                    wait = deadline - now
                if pending.done.wait(max(0.0, wait)):
                    if pending.rebind and rebinds < _MAX_REBINDS:
                        continue
                    break
                self._check_sim()
                if time.monotonic() >= deadline and pending.suspect is not None:
                    pending.unknown = pending.suspect  # our one attempt was never answered
                    break
                if time.monotonic() >= deadline:
                    raise VerificationTimeout(
                        name,
                        seq,
                        timeout,
                        [f"{v.stage}" for v in pending.stages],
                        self.log_path,
                        attempts,
                    )
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        if not pending.stages and pending.unknown is None:  # rebinds exhausted: rebooting
            raise VerificationTimeout(name, seq, timeout, [], self.log_path, attempts)
        if pending.unknown is not None:
            raise OutcomeUnknown(name, seq, pending.boot, pending.unknown,
                                 [v.stage for v in pending.stages], self.log_path)
        final = pending.stages[-1]
        if final.stage in ("rejected", "failed"):
            if at:
                with self._tt_cond:
                    self._tt_waits.pop((seq, cmd_id), None)
            why = explain.why(name, args, final.code, final.reason, explain.node_state(self))
            error = CommandRejected if final.stage == "rejected" else CommandFailed
            raise error(name, seq, final.code, final.reason, why)
        return CommandResult(name, seq, final.result, tuple(pending.stages), attempts,
                             bool(at) and final.stage == "accepted", cmd_id, at)

    def wait_timetagged(self, result: CommandResult,
                        timeout: float = DEFAULT_TIMEOUT_S) -> CommandResult:
        """Wait for the outcome of a time-tagged command ``command(..., at=)`` queued.

        Returns on its ``completed`` verification; raises CommandFailed on ``failed``,
        OutcomeUnknown on a tt_unknown event, WaitTimeout when nothing came in time (the
        outcome is then not known here: ``ground tt list`` and the event log tell)."""
        key = (result.seq, result.command_id)
        deadline = time.monotonic() + timeout
        with self._tt_cond:
            if key not in self._tt_waits:
                self._tt_waits[key] = []
            while True:
                seen = self._tt_waits[key]
                if seen:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(f"the outcome of time-tagged {result.command} seq "
                                      f"{result.seq}", timeout, "nothing yet", self.log_path)
                self._tt_cond.wait(left)
            self._tt_waits.pop(key, None)
        got = seen[0]
        if isinstance(got, Verification):
            if got.stage == "completed":
                return result._replace(result=got.result, queued=False,
                                       verifications=result.verifications + (got,))
            raise CommandFailed(result.command, result.seq, got.code, got.reason,
                                explain.GENERAL.get(got.reason, ""))
        raise OutcomeUnknown(result.command, result.seq, self.boot or 0, self.boot or 0,
                             ["accepted"], self.log_path)

    def _on_tt_event(self, ev: values.EventRecord) -> None:
        if ev.name != "tt_unknown" or len(ev.args) < 2:
            return
        key = (ev.args[0], ev.args[1])
        with self._tt_cond:
            if key in self._tt_waits:
                self._tt_waits[key].append(ev)
                self._tt_cond.notify_all()

    def _on_verification(self, msg: codec.Message) -> None:
        cmd_seq, stage, code, result = msg.body
        stale = stage == codec.STAGE_REJECTED and code == STALE_BOOT and type(result) is int
        if stage in (codec.STAGE_COMPLETED, codec.STAGE_FAILED) and self._tt_waits:
            self._tt_final(msg)
        with self._lock:
            pending = self._pending.get(cmd_seq)
            if pending is not None and pending.counters is not None and not (
                    isinstance(msg, codec.AuthenticatedMessage)
                    and msg.answers in pending.counters):
                # signed, so only an authenticated answer to one of its transmissions counts
                if self.log is not None:
                    self.log.note(f"ignored an unauthenticated verification for seq {cmd_seq}")
                return
            if (stale and pending is not None and pending.command_id == msg.id
                    and not pending.done.is_set()):
                if pending.boot == result:
                    pass  # an answer to an attempt bound to an older boot: ours is current
                elif pending.boot == 0 or (pending.sent == 1 and not pending.stages):
                    pending.rebind = True  # the one attempt that could run was refused
                    pending.suspect = None
                    pending.done.set()
                else:
                    pending.unknown = result
                    pending.done.set()
                pending = None
            if stale:  # before the waiting thread rebinds: it reads self.boot
                self._boot_is(result)
        if pending is None or pending.command_id != msg.id or pending.done.is_set():
            return  # an answer to another session, or a repeat after a retry
        v = Verification(codec.stage_name(stage), code, codec.reason_name(code), result, msg.time)
        if stage == codec.STAGE_ACCEPTED and any(s.stage == "accepted" for s in pending.stages):
            return  # the node repeats `accepted` when a retry reaches it
        pending.stages.append(v)
        if pending.tagged and stage == codec.STAGE_ACCEPTED:
            pending.done.set()  # queued: the outcome comes when it runs (wait_timetagged)
        if stage != codec.STAGE_ACCEPTED:
            if stage == codec.STAGE_COMPLETED and pending.name in _REBOOTING:
                with self._lock:  # the node is leaving this boot: do not bind to it again
                    self._left_boot = pending.boot
                    self.boot = None
            pending.done.set()

    def _tt_final(self, msg: codec.Message) -> None:
        cmd_seq, stage, code, result = msg.body
        key = (cmd_seq, msg.id)
        if self.signer is not None and not isinstance(msg, codec.AuthenticatedMessage):
            return  # signed commands: only an authenticated outcome counts (SPEC §10.5)
        v = Verification(codec.stage_name(stage), code, codec.reason_name(code), result, msg.time)
        with self._tt_cond:
            if key in self._tt_waits:
                self._tt_waits[key].append(v)
                self._tt_cond.notify_all()

    def _on_housekeeping(self, hk: values.Housekeeping) -> None:
        body = hk.body
        if not self._first_hk.is_set():
            self._first_hk_body = list(body[:4])
            self._first_hk.set()
        if len(body) > 1 and type(body[1]) is int:  # every packet's 2nd value: boot_count
            self._learn_boot(body[1])

    def _learn_boot(self, boot: int) -> None:
        """The node is in boot ``boot``: commands bound to another one cannot run now."""
        with self._lock:
            self._boot_is(boot)

    def _boot_is(self, boot: int) -> None:
        # _learn_boot with the lock held.
        if boot == self.boot or boot == self._left_boot:
            return
        if self.boot is not None or self._left_boot is not None:
            self._correlate_now.set()  # a new boot has lost its correlation: correlate again
        self.boot = boot
        self._left_boot = None
        for pending in self._pending.values():
            if pending.done.is_set() or pending.boot == boot:
                continue
            if pending.boot == 0:
                pending.rebind = True  # nothing bound to boot 0 runs: send it bound now
            elif pending.may_have_run():
                pending.unknown = boot
            else:  # one attempt, unanswered: its STALE_BOOT answer may still come
                pending.suspect = boot
                continue
            pending.done.set()

    # --- bulk downlinks ----------------------------------------------------------------

    def _bulk_transfer(self, name: str, bulk_type: int, timeout: float, **kwargs: Any) -> bytes:
        res = self._command(name, kwargs, timeout)
        return self._bulk.wait(bulk_type, res.seq, timeout, name, self.log_path)

    def fetch_dictionary(self, timeout: float = DEFAULT_TIMEOUT_S) -> NodeDictionary:
        """The node's compact dictionary (bulk type 2), decoded, with its hash checked."""
        payload = self._bulk_transfer("dict_downlink", bulk.DICTIONARY, timeout)
        node_hash = bulk.dictionary_hash(payload)
        return NodeDictionary(
            bulk.decode_payload("dict_downlink", payload),
            len(payload),
            node_hash,
            node_hash == self.expected_hash,
        )

    def event_log(self, from_seq: int = 0, timeout: float = DEFAULT_TIMEOUT_S) -> list[Any]:
        """The node's persistent event log from ``from_seq``, as EventRecords."""
        payload = self._bulk_transfer(
            "event_log_downlink", bulk.EVENT_LOG, timeout, from_seq=from_seq
        )
        records = bulk.decode_payload("event_log_downlink", payload)
        out = []
        for rec in records if isinstance(records, list) else []:
            event_seq, t_ms, event_id, severity, args = rec
            out.append(values.event(event_id, event_seq, severity, args, t_ms, 0))
        return out

    def tt_list(self, timeout: float = DEFAULT_TIMEOUT_S) -> list[Any]:
        """The node's time-tagged queue (tt_list, bulk type 4) as ground.timetag Entries,
        in run order."""
        from ground import timetag

        payload = self._bulk_transfer("tt_list", bulk.TT_QUEUE, timeout)
        return timetag.decode_list(bulk.decode_payload("tt_list", payload))

    # --- parameters --------------------------------------------------------------------

    def param_get(self, name: str | int, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
        return self.command("param_get", param=name, timeout=timeout).result

    def param_set(self, name: str | int, value: Any, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.command("param_set", param=name, value=value, timeout=timeout)

    # --- telemetry and events ----------------------------------------------------------

    def latest(self, channel: str) -> values.ChannelValue | None:
        """The newest sample of a channel (value, unit, limit state), or None so far."""
        validate.channel(channel)
        return self.downlink.latest.get(channel)

    @property
    def channels(self) -> dict[str, values.ChannelValue]:
        return dict(self.downlink.latest)

    def on_telemetry(self, callback: Callable[[values.Housekeeping], None]) -> Callable[[], None]:
        return self.downlink.listen(HOUSEKEEPING, callback)

    def on_event(self, callback: Callable[[values.EventRecord], None]) -> Callable[[], None]:
        return self.downlink.listen(EVENT, callback)

    def on_parameter(self, callback: Callable[[codec.Message], None]) -> Callable[[], None]:
        return self.downlink.listen(PARAMETER, callback)

    def subscribe(self, topic: str, maxlen: int = 1000) -> Stream[Any]:
        """A Stream (iterator) of ``housekeeping`` or ``event`` items; close() it when done."""
        stream: Stream[Any] = Stream(maxlen)
        stream.attach(self.downlink.listen(topic, stream.put))
        return stream

    def telemetry(
        self, count: int | None = None, duration: float | None = None
    ) -> Iterator[values.Housekeeping]:
        yield from self._collect(HOUSEKEEPING, count, duration)

    def events(
        self, count: int | None = None, duration: float | None = None
    ) -> Iterator[values.EventRecord]:
        yield from self._collect(EVENT, count, duration)

    def _collect(self, topic: str, count: int | None, duration: float | None) -> Iterator[Any]:
        end = None if duration is None else time.monotonic() + duration
        n = 0
        with self.subscribe(topic) as stream:
            while count is None or n < count:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return
                item = stream.get(left)
                if item is None:
                    return
                n += 1
                yield item

    def await_telemetry(
        self,
        channel: str,
        predicate: Callable[[Any], bool] = lambda _v: True,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> values.ChannelValue:
        """Wait for a new sample of ``channel`` whose value satisfies ``predicate``."""
        validate.channel(channel)
        seen: list[str] = []
        for hk in self.telemetry(duration=timeout):
            for v in hk.values:
                if v.name == channel:
                    if predicate(v.value):
                        return v
                    seen.append(v.text)
        got = f"last values {', '.join(seen[-5:])}" if seen else "no sample arrived"
        raise WaitTimeout(f"{channel} matching the condition", timeout, got, self.log_path)

    def await_event(
        self,
        name: str,
        predicate: Callable[[values.EventRecord], bool] = lambda _e: True,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> values.EventRecord:
        if name not in validate.EVENTS:
            raise UnknownName("event", name, validate.closest(name, validate.EVENTS))
        seen: list[str] = []
        for ev in self.events(duration=timeout):
            if ev.name == name and predicate(ev):
                return ev
            seen.append(ev.name)
        got = f"events seen: {', '.join(seen[-5:])}" if seen else "no event arrived"
        raise WaitTimeout(f"event {name}", timeout, got, self.log_path)
