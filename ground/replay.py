"""Replay a session log through the same decoders, into the same displays, as a live link.

``replay(path, speed=0)`` yields ``(record, items)`` for every log record, where ``items`` is
what the ``Downlink`` produced from it (housekeeping, events, errors). ``speed`` 0 replays as
fast as possible; 1 keeps the recorded pacing; 10 is ten times faster. Uplink frames are
decoded too, so the commands sent appear in order; discarded bytes and decode errors are
reported as they were at the time. Authenticated frames (SPEC §10) are shown by what they
carry, a signed command with its key and counter; their tags are not checked again (the live
client checked them, and logged an error for any it refused).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

from ground import codec
from ground.auth import AuthError, open_unchecked, unwrap
from ground.downlink import ERROR, EVENT, HOUSEKEEPING, MAC0, Downlink
from ground.link import Frame, decode_wire
from ground.log import DISCARD, DOWN, LINK, NOTE, UP, LogReader, Record
from protocol import cose
from protocol import dictionary_lookup as lookup

_format_message: Final[Callable[[Any], str]] = lookup.format_message


class Item(NamedTuple):
    topic: str  # housekeeping | event | error | command | link | note
    value: Any  # values.Housekeeping, values.EventRecord, or a line of text
    t_ns: int


class Replay:
    """Holds the Downlink a replay feeds, so a display can read its latest values."""

    def __init__(self, path: str | Path) -> None:
        self.reader = LogReader(path)
        self.downlink = Downlink(log=None)
        self.downlink.opener = open_unchecked  # the live client checked them
        self._items: list[Item] = []
        self._t_ns = 0
        self.records = 0
        for topic in (HOUSEKEEPING, EVENT, ERROR):
            self.downlink.listen(topic, self._collector(topic))

    def _collector(self, topic: str) -> Callable[[Any], None]:
        def collect(item: Any) -> None:
            self._items.append(Item(topic, item, self._t_ns))

        return collect

    def run(self, speed: float = 0.0) -> Iterator[Item]:
        """Every item in the log, in order; paced by ``speed`` (0: no pacing)."""
        first_t: int | None = None
        start = time.monotonic()
        for record in self.reader:
            self.records += 1
            if speed > 0:
                first_t = record.t_ns if first_t is None else first_t
                due = start + (record.t_ns - first_t) / 1e9 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield from self.feed(record)

    def feed(self, record: Record) -> list[Item]:
        self._items = []
        self._t_ns = record.t_ns
        if record.type == DOWN:
            item = decode_wire(record.data)
            if isinstance(item, Frame):
                self.downlink.frame(item.wire, item.message, record.t_ns)
            else:  # a `down` record must verify: the log was edited or damaged
                self._items.append(Item(ERROR, f"logged frame fails {item.reason}", record.t_ns))
        elif record.type == DISCARD:
            reason = record.fields.get("reason", "?")
            self._items.append(
                Item(ERROR, f"discarded {len(record.data)} bytes ({reason})", record.t_ns)
            )
        elif record.type == UP:
            self._items.append(Item("command", _uplink_text(record.data), record.t_ns))
        elif record.type == LINK:
            text = f"link {record.fields.get('state')} {record.fields.get('detail', '')}"
            self._items.append(Item("link", text.strip(), record.t_ns))
        elif record.type == NOTE:
            self._items.append(Item("note", str(record.fields.get("text", "")), record.t_ns))
        # `error` records repeat what decoding the `down` frame before them reports again.
        return self._items


def _uplink_text(wire: bytes) -> str:
    item = decode_wire(wire)
    if not isinstance(item, Frame):
        return f"uplink frame fails {item.reason}"
    message, signed = item.message, ""
    if message[:1] == MAC0:  # a signed command (SPEC §10.3)
        try:
            message, operator, generation, counter = unwrap(message, cose.LABEL_COUNTER)
        except AuthError as exc:
            return f"uplink frame undecodable: {exc}"
        signed = f" (signed: key {operator:02x}{generation:02x}, counter {counter})"
    try:
        msg = codec.decode(message)
    except codec.DecodeFailure as exc:
        return f"uplink frame undecodable: {exc.reason}"
    return _format_message(msg) + signed
