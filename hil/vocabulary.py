"""The test vocabulary: verb-noun steps a HIL test is written in (after F Prime's test API).

A `NodeApi` wraps one `ground.client.Client` and records everything the node sends from the
moment it is made (`History`), so a test never misses an event that arrived while it was
still waiting for a verification::

    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.assert_event("mode_changed", new="NOMINAL")
    node.await_telemetry("battery_soc", less_than(15), timeout=20)
    node.assert_command_rejected("load_switch", "OUT_OF_RANGE", raw=True, channel=99, on=True)

Every wait that ends without what it wanted raises `HilTimeout` (an AssertionError, so pytest
shows it as a failed assertion) saying what was awaited, what did arrive, and where the
session log is.

Every timeout a test gives (and every default) is in the simulated node's seconds: the
NodeApi multiplies it by the target's time scale (``time_scale``, see hil/timing.py), so the
same test waits 10 s on the sim and about 340 s on the virtual Pico. ``node.seconds(s)`` and
``node.sleep(s)`` do the same for a test's own waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from ground import codec, validate
from ground.client import Client, CommandResult
from ground.errors import CommandFailed, CommandRejected, GroundError, UnknownName
from ground.link import encode_frame
from ground.log import UP
from ground.values import ChannelValue, EventRecord, Housekeeping
from hil.predicates import Predicate, anything, args_match, as_predicate
from protocol import dictionary, messages
from protocol import dictionary_lookup as lookup

DEFAULT_COMMAND_TIMEOUT_S: Final = 5.0
DEFAULT_WAIT_S: Final = 10.0
_KEEP_SAMPLES: Final = 2000  # per channel
_KEEP_EVENTS: Final = 5000
_SHOW: Final = 8  # items quoted in a timeout message


class HilTimeout(AssertionError):
    """A wait ended without what it wanted; the message says what arrived and the log path."""

    def __init__(self, what: str, timeout_s: float, arrived: str, log_path: str | None) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.arrived = arrived
        self.log_path = log_path
        super().__init__(f"timed out after {timeout_s:g} s waiting for {what}; "
                         f"received: {arrived}; session log: {log_path or 'none'}")


class HilAssertion(AssertionError):
    """A check on something that did arrive failed; the message carries the log path."""

    def __init__(self, text: str, log_path: str | None) -> None:
        self.log_path = log_path
        super().__init__(f"{text}; session log: {log_path or 'none'}")


class History:
    """Everything received, in order, with a condition to wait on. Thread-safe.

    Positions (`mark()`) count every housekeeping sample and event received, so "since a
    mark" means "arrived after it".
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale  # every wait's timeout is multiplied by it
        self._cond = threading.Condition()
        self.position = 0
        self.samples: dict[str, deque[tuple[int, ChannelValue]]] = {}
        self.events: deque[tuple[int, EventRecord]] = deque(maxlen=_KEEP_EVENTS)
        self.verifications: deque[tuple[int, codec.Message]] = deque(maxlen=_KEEP_EVENTS)
        self.housekeeping: deque[tuple[int, Housekeeping]] = deque(maxlen=_KEEP_EVENTS)
        self.packets = 0

    def on_housekeeping(self, hk: Housekeeping) -> None:
        with self._cond:
            self.packets += 1
            self.housekeeping.append((self.position, hk))
            for value in hk.values:
                self.position += 1
                queue = self.samples.setdefault(value.name, deque(maxlen=_KEEP_SAMPLES))
                queue.append((self.position, value))
            self._cond.notify_all()

    def on_event(self, event: EventRecord) -> None:
        with self._cond:
            self.position += 1
            self.events.append((self.position, event))
            self._cond.notify_all()

    def on_verification(self, msg: codec.Message) -> None:
        with self._cond:
            self.position += 1
            self.verifications.append((self.position, msg))
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return self.position

    def forget(self) -> None:
        """Drop what was received so far (positions keep counting): a node that has just
        booted fresh has no history before its boot, as a newly started simulated node has
        none. Its node times start again at 0, so an older boot's samples, events and
        packets would otherwise pass for newer ones."""
        with self._cond:
            self.samples.clear()
            self.events.clear()
            self.verifications.clear()
            self.housekeeping.clear()

    def wait(self, find: Callable[[], Any], timeout_s: float) -> Any:
        """Call ``find()`` under the lock until it returns something other than None, for
        up to ``timeout_s`` times the time scale."""
        deadline = time.monotonic() + timeout_s * self.time_scale
        with self._cond:
            while True:
                found = find()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    def channel_since(self, channel: str, since: int) -> list[ChannelValue]:
        return [v for pos, v in self.samples.get(channel, ()) if pos > since]

    def events_since(self, since: int) -> list[EventRecord]:
        return [e for pos, e in self.events if pos > since]


# Event arguments that carry a named value: compare with the number or with the name.
_ARG_NAMES: Final[dict[str, dict[Any, str]]] = {
    "old": dict(dictionary.MODES), "new": dict(dictionary.MODES),
    "reset_cause": dict(dictionary.RESET_CAUSES), "fault": dict(dictionary.FAULTS),
    "task": dict(dictionary.TASKS), "heater": dict(dictionary.HEATERS),
    "code": dict(messages.REASON_NAMES),
    "command": {c.id: c.name for c in dictionary.COMMANDS},
    "param": {p.id: p.name for p in dictionary.PARAMS},
    "sensor": dict(dictionary.SENSORS),
}


def event_args(event: EventRecord) -> dict[str, tuple[Any, ...]]:
    """An event's arguments by name, each as (raw value,) or (raw value, display name)."""
    spec = validate.EVENTS[event.name] if event.name in validate.EVENTS else None
    names = spec.args if spec is not None else ()
    out: dict[str, tuple[Any, ...]] = {}
    for name, value in zip(names, event.args, strict=False):
        table = lookup.EVENT_ARG_NAMES.get((event.name, name)) or _ARG_NAMES.get(name, {})
        named = table.get(value) if isinstance(value, int) else None
        out[name] = (value,) if named is None else (value, named)
    return out


def _describe_events(events: Sequence[EventRecord]) -> str:
    if not events:
        return "no events"
    shown = [f"{e.name}({', '.join(repr(a) for a in e.args)})" for e in events[-_SHOW:]]
    more = f"{len(events) - _SHOW} earlier, then " if len(events) > _SHOW else ""
    return f"{len(events)} event(s): {more}" + ", ".join(shown)


def values_of(hk: Housekeeping) -> dict[str, Any]:
    """A housekeeping packet's values by channel name."""
    return {v.name: v.value for v in hk.values}


class NodeApi:
    """The vocabulary over one connected client. ``client`` stays usable directly."""

    def __init__(self, client: Client, target: Any = None,
                 command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
                 time_scale: float = 1.0) -> None:
        self.client = client
        self.target = target
        self.command_timeout_s = command_timeout_s
        self.time_scale = time_scale
        self.history = History(time_scale)
        self._unsubscribe = [
            client.on_telemetry(self.history.on_housekeeping),
            client.on_event(self.history.on_event),
            client.downlink.listen("verification", self.history.on_verification),
        ]

    @property
    def log_path(self) -> str | None:
        return self.client.log_path

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def seconds(self, seconds: float) -> float:
        """Wall seconds for a wait of ``seconds`` on the simulated node (times the scale)."""
        return seconds * self.time_scale

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of the simulated node's time (times the scale)."""
        time.sleep(self.seconds(seconds))

    def mark(self) -> int:
        """A point in the received history: ``since=node.mark()`` waits for newer items."""
        return self.history.mark()

    def note(self, text: str) -> None:
        """A remark in the session log (what the test is about to do)."""
        if self.client.log is not None:
            self.client.log.note(text)

    # --- commands --------------------------------------------------------------------------

    def send_command(self, name: str, /, *, raw: bool = False, arm: bool = True,
                     **args: Any) -> int:
        """Send without waiting; returns the sequence number. ``raw`` skips ground checks. A
        hazardous command is armed first (SPEC §10.8; the arm awaited) unless ``raw`` or
        ``arm`` is false."""
        if raw:
            return self._send_raw(name, args)
        if arm and validate.command(name).hazardous:
            self.arm(name, **args)
        return self.client.send(name, **args)

    def arm(self, name: str, /, **args: Any) -> None:
        """The `arm` for hazardous command ``name`` with these arguments, completed."""
        try:
            self.client.arm(name, timeout=self.seconds(self.command_timeout_s), **args)
        except GroundError as exc:
            raise HilAssertion(f"arm {name}: {exc}", self.log_path) from None

    def _send_raw(self, name: str, args: dict[str, Any]) -> int:
        """Encode the arguments as given, in dictionary order, so the node does the checking."""
        cmd = validate.command(name)
        order = [a.name for a in cmd.args]
        values = [args[n] for n in order if n in args] + [
            v for k, v in args.items() if k not in order]
        return self.send_raw_id(cmd.id, values)

    def send_raw_id(self, cmd_id: int, args: Sequence[Any] = ()) -> int:
        """Send a command by number with arguments exactly as given; returns its seq."""
        return self.client.send_raw(cmd_id, args)

    def send_message(self, message: bytes) -> None:
        """Frame (with a good CRC) and send a message exactly as given."""
        self.send_bytes(encode_frame(message))

    def send_bytes(self, data: bytes) -> None:
        """Put bytes on the link as they are (logged as uplink frames)."""
        if self.client.log is not None:
            for part in data.split(b"\x00"):
                if part:
                    self.client.log.frame(UP, part)
        self.client.transport.write(data)

    def next_seq(self) -> int:
        return self.client.next_seq()

    def verifications(self, name: str | int, seq: int, since: int = 0) -> list[codec.Message]:
        """Verifications received for (command, seq), oldest first."""
        cmd_id = name if isinstance(name, int) else validate.command(name).id
        return [m for pos, m in self.history.verifications
                if pos > since and m.id == cmd_id and m.body[0] == seq]

    def await_verification(self, name: str | int, seq: int, stages: Iterable[str] = (
            "rejected", "completed", "failed"), timeout: float | None = None) -> codec.Message:
        """Wait for a verification of (name, seq) in one of ``stages``; return it."""
        wanted = {codec.stage_name(s) if isinstance(s, int) else s for s in stages}
        timeout_s = self.command_timeout_s if timeout is None else timeout

        def find() -> codec.Message | None:
            for msg in self.verifications(name, seq):
                if codec.stage_name(msg.body[1]) in wanted:
                    return msg
            return None

        found = self.history.wait(find, timeout_s)
        if found is None:
            got = [f"{codec.stage_name(m.body[1])} {codec.reason_name(m.body[2])}"
                   for m in self.verifications(name, seq)]
            raise HilTimeout(f"{name} (seq {seq}) {'/'.join(sorted(wanted))}",
                             self.seconds(timeout_s),
                             ", ".join(got) or "no verification for it", self.log_path)
        return found  # type: ignore[no-any-return]

    def send_and_assert_command(self, name: str, /, *, timeout: float | None = None,
                                raw: bool = False, **args: Any) -> Any:
        """Send, and assert accepted then completed; returns what `completed` carried."""
        timeout_s = self.command_timeout_s if timeout is None else timeout
        if not raw:
            try:
                res: CommandResult = self.client.command(name, timeout=self.seconds(timeout_s),
                                                         **args)
            except (CommandRejected, CommandFailed) as exc:
                raise HilAssertion(f"{name} was not completed: {exc}", self.log_path) from None
            except GroundError as exc:  # VerificationTimeout says what arrived and the log
                raise HilAssertion(f"{name}: {exc}", self.log_path) from None
            return res.result
        seq = self._send_raw(name, args)
        msg = self.await_verification(name, seq, timeout=timeout_s)
        stage = codec.stage_name(msg.body[1])
        if stage != "completed":
            raise HilAssertion(f"{name} (seq {seq}) {stage}: {codec.reason_name(msg.body[2])}",
                               self.log_path)
        return msg.body[3]

    def _assert_final(self, stage: str, name: str, reason: str | int, timeout: float | None,
                      args: dict[str, Any], raw: bool | None = None) -> codec.Message:
        code = reason if isinstance(reason, int) else _reason_code(reason)
        # A rejection test sends its arguments raw (the ground would refuse bad ones itself);
        # a failure usually has valid arguments, so names (mode="SCIENCE") are converted.
        if raw is None:
            raw = stage == "rejected"
        seq = self._send_raw(name, args) if raw else self.send_command(name, **args)
        msg = self.await_verification(name, seq, timeout=timeout)
        got_stage = codec.stage_name(msg.body[1])
        if got_stage != stage or msg.body[2] != code:
            raise HilAssertion(
                f"{name}{args} (seq {seq}): expected {stage} {codec.reason_name(code)}, got "
                f"{got_stage} {codec.reason_name(msg.body[2])}", self.log_path)
        return msg

    def assert_command_rejected(self, name: str, reason: str | int, /, *,
                                timeout: float | None = None, **args: Any) -> codec.Message:
        """Send exactly these arguments; assert the node rejects them with ``reason``."""
        return self._assert_final("rejected", name, reason, timeout, args)

    def assert_command_failed(self, name: str, reason: str | int, /, *,
                              timeout: float | None = None, raw: bool = False,
                              **args: Any) -> codec.Message:
        """Send (checked by the ground unless ``raw``); assert accepted then failed."""
        return self._assert_final("failed", name, reason, timeout, args, raw)

    # --- telemetry -------------------------------------------------------------------------

    def telemetry(self, channel: str) -> Any:
        """The latest value of a channel (None before its first sample)."""
        latest: ChannelValue | None = self.client.latest(channel)
        return None if latest is None else latest.value

    def await_telemetry(self, channel: str, predicate: Any = None, timeout: float =
                        DEFAULT_WAIT_S, since: int | None = None) -> ChannelValue:
        """Wait for a sample of ``channel`` newer than ``since`` (default: now) that satisfies
        ``predicate`` (a Predicate, a callable, or a value to equal); return it."""
        validate.channel(channel)
        pred = anything() if predicate is None else as_predicate(predicate)
        start = self.mark() if since is None else since

        def find() -> ChannelValue | None:
            for value in self.history.channel_since(channel, start):
                if pred(value.value):
                    return value
            return None

        found = self.history.wait(find, timeout)
        if found is None:
            seen = self.history.channel_since(channel, start)
            arrived = (f"{len(seen)} {channel} sample(s), last: "
                       + ", ".join(v.text for v in seen[-_SHOW:])) if seen else \
                f"no {channel} sample ({self.history.packets} housekeeping packets in all)"
            raise HilTimeout(f"{channel} {pred}", self.seconds(timeout), arrived, self.log_path)
        return found  # type: ignore[no-any-return]

    def await_housekeeping(self, packet: str, *, newer_than_ms: int = -1,
                           timeout: float = DEFAULT_WAIT_S, since: int = 0) -> Housekeeping:
        """Wait for a whole packet of the newest boot heard, stamped after node time
        ``newer_than_ms`` (and received after position ``since``); ``values_of(hk)`` gives
        its values by channel name."""
        def find() -> Housekeeping | None:
            # node time is per boot: a packet of another boot than the newest one heard is
            # not "after" anything of this boot, whatever its time tag says (a packet of the
            # boot before a reboot can arrive late through a broker, or stay in the history)
            packets = [hk for pos, hk in self.history.housekeeping if pos >= since]
            boot = packets[-1].body[1] if packets else None
            return next((hk for hk in packets
                         if hk.packet == packet and hk.body[1] == boot
                         and hk.node_time_ms > newer_than_ms), None)

        found = self.history.wait(find, timeout)
        if found is None:
            seen = [f"{hk.packet}@{hk.node_time_ms}" for _, hk in self.history.housekeeping]
            raise HilTimeout(f"packet {packet} after node time {newer_than_ms} ms",
                             self.seconds(timeout),
                             ", ".join(seen[-_SHOW:]) or "no housekeeping", self.log_path)
        return found  # type: ignore[no-any-return]

    def assert_telemetry(self, channel: str, predicate: Any, timeout: float = DEFAULT_WAIT_S,
                         ) -> ChannelValue:
        """The next sample of ``channel`` (waiting for one) satisfies ``predicate``."""
        pred = as_predicate(predicate)
        value = self.await_telemetry(channel, None, timeout)
        if not pred(value.value):
            raise HilAssertion(f"{channel} = {value.text}, expected {pred}", self.log_path)
        return value

    # --- events ----------------------------------------------------------------------------

    def assert_event(self, name: str, /, *, timeout: float = DEFAULT_WAIT_S,
                     since: int = 0, **args: Any) -> EventRecord:
        """Wait for event ``name`` (received since ``since``: default the start of the test)
        whose named arguments match ``args`` (values or predicates); return it."""
        if name not in validate.EVENTS:
            raise UnknownName("event", name, validate.closest(name, validate.EVENTS))
        pred = args_match(**args)

        def find() -> EventRecord | None:
            for event in self.history.events_since(since):
                if event.name == name and pred(event_args(event)):
                    return event
            return None

        found = self.history.wait(find, timeout)
        if found is None:
            what = f"event {name}" + (f" with {pred}" if args else "")
            raise HilTimeout(what, self.seconds(timeout),
                             _describe_events(self.history.events_since(since)),
                             self.log_path)
        return found  # type: ignore[no-any-return]

    def assert_event_count(self, name: str, count: int, /, *, since: int = 0,
                           timeout: float = DEFAULT_WAIT_S) -> list[EventRecord]:
        """Wait until exactly ``count`` events ``name`` arrived since ``since``."""
        def matching() -> list[EventRecord]:
            return [e for e in self.history.events_since(since) if e.name == name]

        found = self.history.wait(lambda: matching() if len(matching()) >= count else None,
                                  timeout)
        got = matching()
        if found is None or len(got) != count:
            raise HilTimeout(f"{count} event(s) {name}", self.seconds(timeout),
                             f"{len(got)} of them; " + _describe_events(
                                 self.history.events_since(since)), self.log_path)
        return got

    def assert_no_event(self, name: str, /, *, during: float = 1.0, since: int | None = None,
                        ) -> None:
        """No event ``name`` arrives within ``during`` seconds (from ``since``: now)."""
        start = self.mark() if since is None else since
        found = self.history.wait(
            lambda: next((e for e in self.history.events_since(start) if e.name == name),
                         None), during)
        if found is not None:
            raise HilAssertion(f"unexpected event {found.name}{found.args}: {found.text}",
                               self.log_path)

    def await_event_sequence(self, names: Sequence[str], /, *, timeout: float = DEFAULT_WAIT_S,
                             since: int = 0) -> list[EventRecord]:
        """Wait for events in this order (others may come between); return them."""
        def find() -> list[EventRecord] | None:
            got: list[EventRecord] = []
            for event in self.history.events_since(since):
                if len(got) < len(names) and event.name == names[len(got)]:
                    got.append(event)
            return got if len(got) == len(names) else None

        found = self.history.wait(find, timeout)
        if found is None:
            raise HilTimeout("event sequence " + " -> ".join(names), self.seconds(timeout),
                             _describe_events(self.history.events_since(since)), self.log_path)
        return found  # type: ignore[no-any-return]

    # --- status ----------------------------------------------------------------------------

    def status(self) -> Any:
        """The node's `status`, refreshed now (a NodeStatus)."""
        return self.client.refresh_status(self.seconds(self.command_timeout_s))


def _reason_code(reason: str) -> int:
    for code, name in messages.REASON_NAMES.items():
        if name == reason.upper():
            return int(code)
    raise ValueError(f"unknown reason {reason!r}: one of {sorted(messages.REASON_NAMES.values())}")


def predicate_text(spec: Any) -> str:
    """How a predicate spec reads in a message (for callers building their own waits)."""
    return str(spec if isinstance(spec, Predicate) else as_predicate(spec))
