"""Received bytes → frames → messages → named values, the same for a live link and a replay.

``Downlink.feed(data, t_ns)`` deframes, writes every frame and every discarded byte to the
session log, decodes, and hands each message to the listeners registered for its kind.
It keeps the latest value of every channel (with unit and limit state), counts what it saw,
and notices gaps in the node's downlink sequence numbers (lost messages).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final, Generic, TypeVar

from ground import codec, values
from ground.link import Deframer, Discard, Frame
from ground.log import DOWN, SessionLog

T = TypeVar("T")
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
        self._last_seq: int | None = None

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
        items = self.deframer.feed(data)
        frames = [item for item in items if type(item) is Frame]
        decoded = iter(codec.decode_batch([f.message for f in frames]))  # in one go: faster
        for item in items:
            if type(item) is Frame:
                if self.log is not None:
                    self.log.frame(DOWN, item.wire, t_ns)
                self._decoded(item.wire, next(decoded), t_ns)
            else:
                self._discard(item, t_ns)  # type: ignore[arg-type]

    def _discard(self, item: Discard, t_ns: int) -> None:
        if self.log is not None:
            self.log.discard(item.data, item.reason, t_ns)
        self._emit(ERROR, f"discarded {len(item.data)} bytes ({item.reason})")

    def frame(self, wire: bytes, message: bytes, t_ns: int) -> codec.Message | None:
        """One verified frame (live, or from a log being replayed)."""
        return self._decoded(wire, codec.decode_batch([message])[0], t_ns)

    def _decoded(
        self, wire: bytes, msg: codec.Message | codec.DecodeFailure, t_ns: int
    ) -> codec.Message | None:
        try:
            if isinstance(msg, codec.DecodeFailure):
                raise msg
            self._dispatch(msg, t_ns)
        except codec.DecodeFailure as exc:
            self.decode_errors += 1
            self.last_error = exc.reason
            if self.log is not None:
                self.log.error(wire, exc.reason, t_ns)
            self._emit(ERROR, f"undecodable frame: {exc.reason}")
            return None
        return msg

    def _dispatch(self, msg: codec.Message, t_ns: int) -> None:
        self.messages += 1
        if self._last_seq is not None:
            gap = (msg.seq - self._last_seq - 1) & 0xFFFF
            if gap < 0x8000:  # a small backwards step is a node reboot, not a loss
                self.lost_messages += gap
        self._last_seq = msg.seq
        kind = msg.kind
        if kind == codec.KIND_HOUSEKEEPING:
            try:
                hk = values.housekeeping(msg.id, msg.seq, msg.time, t_ns, msg.body)
            except ValueError as exc:
                raise codec.DecodeFailure(str(exc)) from None
            self._packets[hk.packet_id] = hk
            self._latest = None
            self._emit(HOUSEKEEPING, hk)
        elif kind == codec.KIND_EVENT:
            event_seq, severity, args = msg.body
            ev = values.event(msg.id, event_seq, severity, args, msg.time, t_ns)
            self.last_event = ev
            self._emit(EVENT, ev)
        else:
            self._emit(_KIND_TOPICS[kind], msg)


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
