"""Check a command against the dictionary before anything is sent.

``prepare(name, kwargs)`` returns the command record and its positional wire arguments, or
raises: ``UnknownName`` with the closest names (difflib), ``BadArgument`` (missing, unexpected,
wrong type, unknown enum name, listing what is allowed), ``OutOfRange`` with the range and
unit. Values may be Python values or the strings a person types (``mode=NOMINAL``,
``on=true``, ``setpoint=5.5``, ``channel=heater_battery``, ``param=time_factor``), so the
CLI and the console share one set of rules with the client API.
"""

from __future__ import annotations

import difflib
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ground.errors import BadArgument, OutOfRange, UnknownName, UsageError
from protocol import dictionary as d
from protocol import dictionary_types as t

COMMANDS: Final[dict[str, t.Command]] = {c.name: c for c in d.COMMANDS}
COMMANDS_BY_ID: Final[dict[int, t.Command]] = {c.id: c for c in d.COMMANDS}
PARAMS: Final[dict[str, t.Param]] = {p.name: p for p in d.PARAMS}
PARAMS_BY_ID: Final[dict[int, t.Param]] = {p.id: p for p in d.PARAMS}
CHANNELS: Final[dict[str, t.Channel]] = {c.name: c for c in d.CHANNELS}
EVENTS: Final[dict[str, t.Event]] = {e.name: e for e in d.EVENTS}
PACKETS: Final[dict[str, t.Packet]] = {p.name: p for p in d.PACKETS}

_TRUE: Final = frozenset(("1", "true", "on", "yes"))
_FALSE: Final = frozenset(("0", "false", "off", "no"))


def closest(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The closest names by edit similarity, then any that contain what was typed."""
    pool = list(names)
    found = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    for candidate in pool:
        if len(found) >= n:
            break
        if name and name.lower() in candidate.lower() and candidate not in found:
            found.append(candidate)
    return found


def command(name: str) -> t.Command:
    try:
        return COMMANDS[name]
    except KeyError:
        raise UnknownName("command", name, closest(name, COMMANDS)) from None


def param(name_or_id: str | int) -> t.Param:
    """A parameter by name or id (an int, or a string of digits)."""
    key = name_or_id
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool):
        if key in PARAMS_BY_ID:
            return PARAMS_BY_ID[key]
        raise UnknownName("parameter id", str(key), [f"{p.id} ({p.name})" for p in d.PARAMS][:3])
    if isinstance(key, str) and key in PARAMS:
        return PARAMS[key]
    raise UnknownName("parameter", str(key), closest(str(key), PARAMS))


def channel(name: str) -> t.Channel:
    try:
        return CHANNELS[name]
    except KeyError:
        raise UnknownName("channel", name, closest(name, CHANNELS)) from None


def check_timetag(cmd: t.Command, at_utc_ms: int) -> None:
    """Raise UsageError unless ``cmd`` may be sent with execution time ``at_utc_ms``
    (SPEC §11.2: a uint, and not a command marked immediate)."""
    if cmd.immediate:
        raise UsageError(f"{cmd.name} cannot be time-tagged: it runs only when it arrives "
                         "(SPEC §11.2)")
    if type(at_utc_ms) is not int or at_utc_ms < 0 or at_utc_ms >= 2**64:
        raise UsageError(f"execution time {at_utc_ms!r}: UTC milliseconds since 1970, a uint")


def prepare(name: str, kwargs: Mapping[str, Any]) -> tuple[t.Command, list[Any]]:
    """Validate and convert the arguments of command ``name``: (record, wire arguments)."""
    cmd = command(name)
    expected = [a.name for a in cmd.args]
    for key in kwargs:
        if key not in expected:
            hint = closest(key, expected)
            allowed = ", ".join(expected) if expected else "none"
            raise BadArgument(
                name,
                key,
                kwargs[key],
                "unexpected"
                + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                + f"; {name} takes: {allowed}",
            )
    values: list[Any] = []
    target: t.Param | None = None
    for arg in cmd.args:
        if arg.name not in kwargs:
            raise BadArgument(name, arg.name, None, f"missing; {usage(cmd)}")
        raw = kwargs[arg.name]
        if arg.name == "param" and cmd.name in ("param_get", "param_set"):
            try:
                target = param(raw)
            except UnknownName as exc:
                raise BadArgument(name, arg.name, raw, str(exc)) from None
            values.append(target.id)
        elif arg.type == t.ANY and target is not None:
            values.append(
                convert(name, arg.name, raw, target.type, target.lo, target.hi, target.unit, None)
            )
        else:
            values.append(
                convert(name, arg.name, raw, arg.type, arg.lo, arg.hi, arg.unit, arg.enum)
            )
    return cmd, values


def convert(
    command: str,
    name: str,
    raw: Any,
    type_: str,
    lo: Any,
    hi: Any,
    unit: str,
    enum: Mapping[int, str] | None,
) -> Any:
    """One value: parse a string if need be, check the type and the range, round f32."""
    if type_ == t.BOOL:
        return _bool(command, name, raw)
    if type_ == t.F32:
        value = _float(command, name, raw)
        value = struct.unpack("<f", struct.pack("<f", value))[0]  # what the node will hold
        _range(command, name, value, lo, hi, unit)
        return value
    if type_ == t.ANY:
        return _any(raw)
    value_i = _int(command, name, raw, enum)
    type_lo, type_hi = t.TYPE_RANGES[type_]
    lo = type_lo if lo is None else lo
    hi = type_hi if hi is None else hi
    if not lo <= value_i <= hi:
        names = f" ({', '.join(enum.values())})" if enum else ""
        raise OutOfRange(command, name, raw, lo, f"{hi}{names}", unit)
    return value_i


def _range(command: str, name: str, value: float, lo: Any, hi: Any, unit: str) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise OutOfRange(command, name, value, _fmt(lo), _fmt(hi), unit)


def _fmt(x: Any) -> str:
    if x is None:
        return "unbounded"
    return f"{x:.7g}" if isinstance(x, float) else str(x)


def _bool(command: str, name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadArgument(command, name, raw, f"{raw!r} is not a boolean: use true or false")


def _float(command: str, name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise BadArgument(command, name, raw, "expected a number, got a boolean")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadArgument(command, name, raw, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BadArgument(command, name, raw, "must be a finite number")
    return value


def _int(command: str, name: str, raw: Any, enum: Mapping[int, str] | None) -> int:
    if isinstance(raw, bool):
        raise BadArgument(command, name, raw, "expected an integer, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if enum:
            by_name = {v.lower(): k for k, v in enum.items()}
            if text.lower() in by_name:
                return by_name[text.lower()]
        try:
            return int(text, 0)
        except ValueError:
            pass
        if enum:
            names = list(enum.values())
            hint = closest(text, names) or names
            raise BadArgument(
                command, name, raw, f"unknown name {text!r}: one of {', '.join(hint)}"
            )
    raise BadArgument(command, name, raw, f"{raw!r} is not an integer")


def _any(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def usage(cmd: t.Command) -> str:
    """``set_mode mode=<SAFE|NOMINAL|SCIENCE>`` style, for messages and completion help."""
    return " ".join([cmd.name] + [f"{a.name}=<{describe_arg(a)}>" for a in cmd.args])


def arg_names(arg: t.Arg) -> list[str]:
    """The names a person may type for an argument (enum names, parameter names), or []."""
    if arg.name == "param":
        return list(PARAMS)
    return list(arg.enum.values()) if arg.enum else []


def describe_arg(arg: t.Arg) -> str:
    if arg.enum:
        return "|".join(arg.enum.values())
    if arg.type == t.BOOL:
        return "true|false"
    if arg.name == "param":
        return "parameter name or id"
    lo, hi = arg.lo, arg.hi
    if arg.type in t.TYPE_RANGES and arg.type != t.BOOL:
        type_lo, type_hi = t.TYPE_RANGES[arg.type]
        lo = type_lo if lo is None else lo
        hi = type_hi if hi is None else hi
    if lo is None and hi is None:
        return str(arg.type) + (f" {arg.unit}" if arg.unit else "")
    return f"{arg.type} {_fmt(lo)}..{_fmt(hi)}" + (f" {arg.unit}" if arg.unit else "")


def parse_assignments(command: str, words: Sequence[str]) -> dict[str, str]:
    """``["mode=NOMINAL", "on=true"]`` → ``{"mode": "NOMINAL", "on": "true"}``."""
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BadArgument(command, word, word, "arguments are written key=value")
        out[key] = value
    return out
