"""Decoded downlink values as the ground shows them: channels with unit and limit state, events.

Floats are shown with at most 7 significant digits (SPEC §4.1); enum channels by name; limit
states are ``nominal``, ``yellow`` and ``red`` from the dictionary's (low, high) limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from protocol import dictionary as d
from protocol import dictionary_lookup as lookup
from protocol import dictionary_types as t

NOMINAL: Final = "nominal"
YELLOW: Final = "yellow"
RED: Final = "red"
NO_LIMITS: Final = ""  # a channel without limits

_CHANNELS_BY_NAME: Final[dict[str, t.Channel]] = {c.name: c for c in d.CHANNELS}
PACKETS_BY_ID: Final[dict[int, tuple[t.Packet, tuple[t.Channel, ...]]]] = {
    p.id: (p, tuple(_CHANNELS_BY_NAME[n] for n in p.channels)) for p in d.PACKETS
}
EVENTS_BY_ID: Final[dict[int, t.Event]] = {e.id: e for e in d.EVENTS}

# Typed views of the shared (unannotated) protocol helpers.
_format_float: Callable[[float], str] = lookup.format_float
_format_channel: Callable[[t.Channel, Any, bool], str] = lookup.format_value
_format_event: Callable[[int, Sequence[Any]], str] = lookup.format_event


def format_float(x: float) -> str:
    """At most 7 significant digits: 3.3, not 3.299999952316284 (SPEC §4.1)."""
    return _format_float(x)


def format_value(value: Any, enum: dict[int, str] | None = None) -> str:
    """A bare value: enum name, true/false, or a number with at most 7 significant digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if enum is not None and isinstance(value, int) and value in enum:
        return enum[value]
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def format_channel(name: str, value: Any, unit: bool = False) -> str:
    """A channel's value as the dictionary shows it: enum names, load masks, hex hash."""
    return _format_channel(_CHANNELS_BY_NAME[name], value, unit)


def _outside(value: float, limits: tuple[Any, Any] | None) -> bool:
    if limits is None:
        return False
    lo, hi = limits
    return (lo is not None and value < lo) or (hi is not None and value > hi)


def limit_state(channel: t.Channel, value: Any) -> str:
    if channel.yellow is None and channel.red is None:
        return NO_LIMITS
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NOMINAL
    if _outside(value, channel.red):
        return RED
    if _outside(value, channel.yellow):
        return YELLOW
    return NOMINAL


class ChannelValue(NamedTuple):
    """The latest sample of a channel."""

    name: str
    value: Any
    unit: str
    state: str  # nominal | yellow | red | "" (no limits)
    node_time_ms: int
    ground_ns: int
    packet: str

    @property
    def text(self) -> str:
        return format_channel(self.name, self.value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.name,
            "value": self.value,
            "text": self.text,
            "unit": self.unit,
            "state": self.state,
            "node_time_ms": self.node_time_ms,
            "ground_ns": self.ground_ns,
            "packet": self.packet,
        }


class Housekeeping(NamedTuple):
    packet: str
    packet_id: int
    seq: int
    node_time_ms: int
    ground_ns: int
    values: tuple[ChannelValue, ...]


class EventRecord(NamedTuple):
    name: str
    event_id: int
    event_seq: int
    severity: str
    args: tuple[Any, ...]
    text: str
    node_time_ms: int
    ground_ns: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "id": self.event_id,
            "event_seq": self.event_seq,
            "severity": self.severity,
            "args": list(self.args),
            "text": self.text,
            "node_time_ms": self.node_time_ms,
            "ground_ns": self.ground_ns,
        }


def housekeeping(
    packet_id: int, seq: int, node_time_ms: int, ground_ns: int, body: Sequence[Any]
) -> Housekeeping:
    """Name the values of a housekeeping body; raises ValueError if it does not fit."""
    try:
        packet, channels = PACKETS_BY_ID[packet_id]
    except KeyError:
        raise ValueError(f"unknown housekeeping packet id {packet_id}") from None
    if len(body) != len(channels):
        raise ValueError(
            f"packet {packet.name} has {len(body)} values, the dictionary says {len(channels)}"
        )
    values = tuple(
        ChannelValue(ch.name, v, ch.unit, limit_state(ch, v), node_time_ms, ground_ns, packet.name)
        for ch, v in zip(channels, body, strict=True)
    )
    return Housekeeping(packet.name, packet_id, seq, node_time_ms, ground_ns, values)


def event(
    event_id: int,
    event_seq: int,
    severity: int,
    args: Sequence[Any],
    node_time_ms: int,
    ground_ns: int,
) -> EventRecord:
    ev = EVENTS_BY_ID.get(event_id)
    sev = t.SEVERITY_NAMES[severity] if 0 <= severity < len(t.SEVERITY_NAMES) else str(severity)
    if ev is None:
        text = f"unknown event {event_id} {list(args)}"
        return EventRecord(
            f"event_{event_id}",
            event_id,
            event_seq,
            sev,
            tuple(args),
            text,
            node_time_ms,
            ground_ns,
        )
    try:
        text = _format_event(event_id, args)
    except (KeyError, IndexError, ValueError):
        text = f"{ev.name} {list(args)}"
    return EventRecord(
        ev.name, event_id, event_seq, sev, tuple(args), text, node_time_ms, ground_ns
    )
