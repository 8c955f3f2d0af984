"""Decoded downlink values as the ground shows them: channels with unit and limit state, events.

Floats are shown with at most 7 significant digits (SPEC §4.1); enum channels by name; limit
states are ``nominal``, ``yellow`` and ``red`` from the dictionary's (low, high) limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, Final, NamedTuple

from protocol import dictionary as d
from protocol import dictionary_lookup as lookup
from protocol import dictionary_types as t

NOMINAL: Final = "nominal"
YELLOW: Final = "yellow"
RED: Final = "red"
NO_LIMITS: Final = ""  # a channel without limits
_new = tuple.__new__

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


class _Spec:
    """What the dictionary says about one channel of a packet, looked up once."""

    __slots__ = ("channel", "limited", "name", "unit")

    def __init__(self, channel: t.Channel) -> None:
        self.channel = channel
        self.name: str = channel.name
        self.unit: str = channel.unit
        self.limited = channel.yellow is not None or channel.red is not None


class Housekeeping(tuple):  # type: ignore[type-arg]
    """One housekeeping packet. The dictionary lookup is done on arrival (the id must name a
    packet and the values must fit it); the named values, with units and limit states, are
    made when read (``values``), so a packet nobody looks at costs little. A tuple, made with
    ``tuple.__new__``, because the ground makes hundreds of thousands of these a second."""

    __slots__ = ()

    packet: str = property(itemgetter(0))  # type: ignore[assignment]
    packet_id: int = property(itemgetter(1))  # type: ignore[assignment]
    seq: int = property(itemgetter(2))  # type: ignore[assignment]
    node_time_ms: int = property(itemgetter(3))  # type: ignore[assignment]
    ground_ns: int = property(itemgetter(4))  # type: ignore[assignment]
    body: list[Any] = property(itemgetter(5))  # type: ignore[assignment]
    specs: tuple[_Spec, ...] = property(itemgetter(6))  # type: ignore[assignment]

    @property
    def values(self) -> tuple[ChannelValue, ...]:
        name, _pid, _seq, t_ms, t_ns, body, specs = self
        return tuple(
            ChannelValue(
                s.name,
                v,
                s.unit,
                limit_state(s.channel, v) if s.limited else NO_LIMITS,
                t_ms,
                t_ns,
                name,
            )
            for s, v in zip(specs, body, strict=True)
        )

    def __repr__(self) -> str:
        return f"Housekeeping({self.packet}, seq {self.seq}, t {self.node_time_ms} ms)"


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


_PACKET_SPECS: Final[dict[int, tuple[str, tuple[_Spec, ...]]]] = {
    pid: (packet.name, tuple(_Spec(c) for c in channels))
    for pid, (packet, channels) in PACKETS_BY_ID.items()
}


def housekeeping(
    packet_id: int, seq: int, node_time_ms: int, ground_ns: int, body: Sequence[Any]
) -> Housekeeping:
    """Look the packet up in the dictionary; raises ValueError if the body does not fit it."""
    spec = _PACKET_SPECS.get(packet_id)
    if spec is not None and len(body) == len(spec[1]):
        return _new(Housekeeping, (spec[0], packet_id, seq, node_time_ms, ground_ns, body, spec[1]))
    if spec is None:
        raise ValueError(f"unknown housekeeping packet id {packet_id}")
    raise ValueError(f"packet {spec[0]} has {len(body)} values, the dictionary says {len(spec[1])}")


_PACKET_NAMES: Final[dict[int, str]] = {pid: name for pid, (name, _) in _PACKET_SPECS.items()}
_PACKET_CHANNELS: Final[dict[int, tuple[_Spec, ...]]] = {
    pid: specs for pid, (_, specs) in _PACKET_SPECS.items()
}
_PACKET_LENGTHS: Final[dict[int, int]] = {
    pid: len(specs) for pid, specs in _PACKET_CHANNELS.items()
}


def housekeeping_batch(
    packet_ids: Sequence[int],
    seqs: Sequence[int],
    node_times_ms: Sequence[int],
    ground_ns: int,
    bodies: Sequence[Sequence[Any]],
) -> list[Housekeeping] | None:
    """``housekeeping`` for many packets at once, given as columns (``ground.codec.Columns``):
    each lookup made across them all. None if any id is unknown or any body does not fit its
    packet; ``housekeeping`` then says which, one packet at a time."""
    try:
        lengths = list(map(_PACKET_LENGTHS.__getitem__, packet_ids))
    except KeyError:
        return None
    if lengths != list(map(len, bodies)):
        return None
    rows = zip(
        map(_PACKET_NAMES.__getitem__, packet_ids),
        packet_ids,
        seqs,
        node_times_ms,
        repeat(ground_ns),
        bodies,
        map(_PACKET_CHANNELS.__getitem__, packet_ids),
        strict=False,  # repeat() never ends
    )
    return list(map(Housekeeping, rows))


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
