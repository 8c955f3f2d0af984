"""Received bytes → frames → messages → named values, the same for a live link and a replay.

``Downlink.feed(data, t_ns)`` deframes, decodes and looks housekeeping up in the dictionary
(``receive``, all of a read at once), then writes every frame and every discarded byte to the
session log and hands each message to the listeners registered for its kind.
It keeps the latest value of every channel (with unit and limit state), counts what it saw,
and notices gaps in the node's downlink sequence numbers (lost messages) and in its event
numbers (``lost_events``, each gap also reported on the ERROR topic: events lost on the link,
or numbers the node skipped after a power cut, SPEC §5.4).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Generic, NamedTuple, TypeVar

from ground import codec, values
from ground.auth import AuthError
from ground.link import Deframer, Discard
from ground.log import DOWN, SessionLog

T = TypeVar("T")
MAC0: Final = b"\xd1"  # the first byte of a COSE_Mac0 object (tag 17)
Listener = Callable[[Any], None]

# What listeners receive, per kind.
HOUSEKEEPING: Final = "housekeeping"  # values.Housekeeping
EVENT: Final = "event"  # values.EventRecord
VERIFICATION: Final = "verification"  # codec.Message
PARAMETER: Final = "parameter"  # codec.Message
TIME: Final = "time"  # codec.Message
BULK: Final = "bulk"  # codec.Message
ERROR: Final = "error"  # str: a frame that could not be decoded, or discarded bytes
_KIND_TOPICS: Final = {
    codec.KIND_VERIFICATION: VERIFICATION,
    codec.KIND_PARAMETER: PARAMETER,
    codec.KIND_TIME: TIME,
    codec.KIND_BULK: BULK,
}


# A received frame, decoded: housekeeping with its names, any other message, or why not.
Result = values.Housekeeping | codec.Message | codec.DecodeFailure


class Received(NamedTuple):
    """What one read delivered (``Downlink.receive``): the verified frames' COBS bytes and,
    for each, its Result; and the discards, each after how many of those frames."""

    wires: list[bytes]
    results: Sequence[Result]
    discards: list[tuple[int, Discard]]


class Downlink:
    def __init__(self, log: SessionLog | None = None) -> None:
        self.log = log
        self.deframer = Deframer()
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = {}
        self._packets: dict[int, values.Housekeeping] = {}  # the newest of each packet
        self._latest: dict[str, values.ChannelValue] | None = None
        self.messages = 0
        self.decode_errors = 0
        self.lost_messages = 0  # from gaps in the downlink sequence
        self.last_error = ""
        self.last_event: values.EventRecord | None = None
        self.lost_events = 0  # from gaps in event_seq
        self._last_seq: int | None = None
        # SPEC §10.5: opens an authenticated message -> (payload, answered counter) or raises
        # AuthError; set by the client that holds a key
        self.opener: Callable[[bytes], tuple[bytes, int]] | None = None
        self.auth_errors = 0  # authenticated messages that did not check out

    @property
    def latest(self) -> dict[str, values.ChannelValue]:
        """The newest value of every channel seen, made from the newest packet of each id."""
        latest = self._latest
        if latest is None:
            latest = {}
            for hk in sorted(list(self._packets.values()), key=lambda p: (p.ground_ns, p.seq)):
                for value in hk.values:
                    latest[value.name] = value
            self._latest = latest
        return latest

    # --- listeners ---------------------------------------------------------------------

    def listen(self, topic: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(item)`` for each item of ``topic``; returns the unsubscribe."""
        with self._lock:
            self._listeners.setdefault(topic, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners.get(topic, []):
                    self._listeners[topic].remove(listener)

        return unsubscribe

    def _emit(self, topic: str, item: Any) -> None:
        for listener in tuple(self._listeners.get(topic, ())):
            try:
                listener(item)
            except Exception as exc:  # one broken display must not stop the others
                self.last_error = f"{topic} listener failed: {exc!r}"

    # --- input -------------------------------------------------------------------------

    def reset(self) -> None:
        """The link was re-opened: drop a partial frame, forget the sequence."""
        self.deframer.reset()
        self._last_seq = None

    def feed(self, data: bytes, t_ns: int) -> None:
        wires, results, discards = self.receive(data, t_ns)
        done = 0
        for before, discard in discards:
            self._frames(wires, results, done, before, t_ns)
            self._discard(discard, t_ns)
            done = before
        self._frames(wires, results, done, len(wires), t_ns)

    def receive(self, data: bytes, t_ns: int) -> Received:
        """What ``feed`` makes of ``data`` before it logs, counts and tells the listeners:
        deframed, decoded and, for housekeeping, looked up in the dictionary."""
        wires, messages, discards = self.deframer.deframe(data)
        answers: dict[int, int] = {}
        failures: dict[int, codec.DecodeFailure] = {}
        for i, raw in enumerate(messages):
            if raw[:1] == MAC0:  # an authenticated verification (SPEC §10.5)
                opened = self._open(raw)
                if isinstance(opened, codec.DecodeFailure):
                    failures[i] = opened
                else:
                    messages[i], answers[i] = opened
        if answers or failures:
            each = codec.decode_batch(messages)
            for i, counter in answers.items():
                each[i] = _answering(each[i], counter)
            for i, failure in failures.items():
                each[i] = failure
            return Received(wires, [_named(msg, t_ns) for msg in each], discards)
        decoded = codec.decode_columns(messages)  # all at once: much faster
        if isinstance(decoded, codec.Columns):
            named = values.housekeeping_batch(
                decoded.ids, decoded.seqs, decoded.times, t_ns, decoded.bodies
            )
            if named is not None:
                return Received(wires, named, discards)
            found: Sequence[codec.Message | codec.DecodeFailure] = decoded.messages()
        else:
            found = decoded
        return Received(wires, [_named(msg, t_ns) for msg in found], discards)

    def _frames(
        self, wires: list[bytes], results: Sequence[Result], start: int, end: int, t_ns: int
    ) -> None:
        log = self.log
        for i in range(start, end):
            if log is not None:
                log.frame(DOWN, wires[i], t_ns)
            self._decoded(wires[i], results[i], t_ns)

    def _discard(self, item: Discard, t_ns: int) -> None:
        if self.log is not None:
            self.log.discard(item.data, item.reason, t_ns)
        self._emit(ERROR, f"discarded {len(item.data)} bytes ({item.reason})")

    def frame(self, wire: bytes, message: bytes, t_ns: int) -> codec.Message | None:
        """One verified frame (live, or from a log being replayed)."""
        counter = None
        if message[:1] == MAC0:
            opened = self._open(message)
            if isinstance(opened, codec.DecodeFailure):
                self._decoded(wire, opened, t_ns)
                return None
            message, counter = opened
        msg = codec.decode_batch([message])[0]
        if counter is not None:
            msg = _answering(msg, counter)
        return msg if self._decoded(wire, msg, t_ns) and isinstance(msg, codec.Message) else None

    def _open(self, raw: bytes) -> tuple[bytes, int] | codec.DecodeFailure:
        """An authenticated verification's message and the command counter it answers, or
        why not (SPEC §10.5)."""
        if self.opener is None:
            return codec.DecodeFailure("an authenticated message, and no key configured to "
                                       "check it")
        try:
            return self.opener(raw)
        except AuthError as exc:
            self.auth_errors += 1
            return codec.DecodeFailure(f"authenticated message refused: {exc}")

    def _decoded(self, wire: bytes, result: Result, t_ns: int) -> bool:
        """Count, keep and hand on a decoded frame; False if it could not be decoded."""
        try:
            if isinstance(result, codec.DecodeFailure):
                raise result
            if isinstance(result, values.Housekeeping):
                self._count(result.seq)
                self._housekeeping(result)
            else:
                self._dispatch(result, t_ns)
        except codec.DecodeFailure as exc:
            self.decode_errors += 1
            self.last_error = exc.reason
            if self.log is not None:
                self.log.error(wire, exc.reason, t_ns)
            self._emit(ERROR, f"undecodable frame: {exc.reason}")
            return False
        return True

    def _count(self, seq: int) -> None:
        self.messages += 1
        if self._last_seq is not None:
            gap = (seq - self._last_seq - 1) & 0xFFFF
            if gap < 0x8000:  # a small backwards step is a node reboot, not a loss
                self.lost_messages += gap
        self._last_seq = seq

    def _dispatch(self, msg: codec.Message, t_ns: int) -> None:
        self._count(msg.seq)
        kind = msg.kind
        if kind == codec.KIND_HOUSEKEEPING:
            try:
                hk = values.housekeeping(msg.id, msg.seq, msg.time, t_ns, msg.body)
            except ValueError as exc:
                raise codec.DecodeFailure(str(exc)) from None
            self._housekeeping(hk)
        elif kind == codec.KIND_EVENT:
            event_seq, severity, args = msg.body
            ev = values.event(msg.id, event_seq, severity, args, msg.time, t_ns)
            self._event_gap(event_seq)
            self.last_event = ev
            self._emit(EVENT, ev)
        elif kind in _KIND_TOPICS:
            self._emit(_KIND_TOPICS[kind], msg)
        else:  # a valid message of a kind only the ground sends (a command, from the node?)
            raise codec.DecodeFailure(f"a {codec.kind_name(kind)} message is not downlink")

    def _event_gap(self, event_seq: int) -> None:
        last = self.last_event
        if last is None or event_seq <= last.event_seq + 1:
            return  # the first event, the next one, or a node whose log was wiped
        first, missed = last.event_seq + 1, event_seq - last.event_seq - 1
        self.lost_events += missed
        which = f"#{first}" if missed == 1 else f"#{first}..#{event_seq - 1}"
        self._emit(ERROR, f"event gap: {which} not received ({missed} lost on the link or "
                          "skipped by the node after a power cut)")

    def _housekeeping(self, hk: values.Housekeeping) -> None:
        self._packets[hk.packet_id] = hk
        self._latest = None
        self._emit(HOUSEKEEPING, hk)


def _answering(msg: codec.Message | codec.DecodeFailure,
               counter: int) -> codec.Message | codec.DecodeFailure:
    """msg as the AuthenticatedMessage it arrived as, answering command counter ``counter``."""
    if not isinstance(msg, codec.Message):
        return msg
    auth = codec.AuthenticatedMessage(*msg)
    auth.answers = counter
    return auth


def _named(msg: codec.Message | codec.DecodeFailure, t_ns: int) -> Result:
    """A housekeeping message looked up in the dictionary, if it can be; anything else as it
    is (``Downlink._dispatch`` reports a failed lookup, once it has counted the message)."""
    if isinstance(msg, codec.Message) and msg.kind == codec.KIND_HOUSEKEEPING:
        try:
            return values.housekeeping(msg.id, msg.seq, msg.time, t_ns, msg.body)
        except ValueError:
            pass
    return msg


class Stream(Generic[T]):
    """A bounded queue fed by a listener; iterating blocks. Drops the oldest when full."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, unsubscribe: Callable[[], None]) -> None:
        self._unsubscribe = unsubscribe

    def put(self, item: T) -> None:
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, or None when ``timeout`` passed or the stream was closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.closed, timeout):
                return None
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
