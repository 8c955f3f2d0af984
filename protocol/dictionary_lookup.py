"""The ground's index of the dictionary: records by id and by name, display, descriptions.

- ``COMMANDS``, ``CHANNELS``, ``PACKETS``, ``EVENTS``, ``PARAMS``: a ``Table`` each, indexed by
  id (int) or name (str): ``CHANNELS["battery_soc"]``, ``COMMANDS[1]``.
- Display: ``diag`` (CBOR diagnostic notation), ``format_float`` (at most 7 significant
  digits, SPEC §4.1), ``format_value`` and ``format_param`` (units, enum names, bit masks),
  ``format_event``, ``format_message`` (one line per message).
- Checks against the whole dictionary: ``command_args`` and ``encode_command`` (names or
  values in, checked and typed values out), ``check_message`` (a decoded downlink message).
- ``describe()``: the whole dictionary as JSON-ready data; ``describe_markdown()``: as Markdown.

Imports on both interpreters, but is meant for the ground: it allocates freely.
"""

from protocol import dictionary as D
from protocol import messages as M
from protocol.dictionary_types import F32, MODE_NAMES, SEVERITY_NAMES, TYPE_CODES, TYPE_RANGES
from protocol.errors import MessageError
from protocol.node_dictionary import DICT_HASH

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations are strings: MicroPython has no typing module
    from typing import Any


class Table:
    """The records of one kind (commands, channels, ...), by id and by name."""

    def __init__(self, what: str, records: "Any") -> None:
        self.what = what
        self.records = tuple(sorted(records, key=lambda r: r.id))
        self.by_id = {r.id: r for r in self.records}
        self.by_name = {r.name: r for r in self.records}

    def get(self, key: "Any", default: "Any" = None) -> "Any":
        """The record with id or name key, else default."""
        if type(key) is int:
            return self.by_id.get(key, default)
        return self.by_name.get(key, default)

    def __getitem__(self, key: "Any") -> "Any":
        record = self.get(key)
        if record is None:
            raise KeyError(f"no {self.what} {key!r} in the dictionary")
        return record

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> "Any":
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def name(self, id: int) -> str:
        """The name of record id, or the id as text if there is none."""
        record = self.by_id.get(id)
        return str(id) if record is None else record.name


COMMANDS = Table("command", D.COMMANDS)
CHANNELS = Table("channel", D.CHANNELS)
PACKETS = Table("packet", D.PACKETS)
EVENTS = Table("event", D.EVENTS)
PARAMS = Table("parameter", D.PARAMS)

HEX_CHANNELS = ("dict_hash",)
MASK_CHANNELS = {"loads_on": D.LOAD_NAMES, "loads_tripped": D.LOAD_NAMES,
                 "heaters_on": D.HEATERS}

# Event arguments shown by name: (event, argument) -> id -> name.
_CHANNEL_NAMES = {c.id: c.name for c in D.CHANNELS}
EVENT_ARG_NAMES = {
    ("boot", "reset_cause"): D.RESET_CAUSES,
    ("mode_changed", "old"): D.MODES, ("mode_changed", "new"): D.MODES,
    ("limit_yellow", "channel"): _CHANNEL_NAMES, ("limit_red", "channel"): _CHANNEL_NAMES,
    ("limit_nominal", "channel"): _CHANNEL_NAMES,
    ("load_tripped", "channel"): D.LOAD_NAMES,
    ("heater_switched", "heater"): D.HEATERS, ("heater_switched", "on"): {0: "off", 1: "on"},
    ("param_changed", "param"): {p.id: p.name for p in D.PARAMS},
    ("task_crashed", "task"): D.TASKS,
    ("fault_injected", "fault"): D.FAULTS,
    ("events_suppressed", "event"): {e.id: e.name for e in D.EVENTS},
    ("cmd_rejected", "command"): {c.id: c.name for c in D.COMMANDS},
    ("cmd_rejected", "code"): M.REASON_NAMES,
    ("cmd_failed", "command"): {c.id: c.name for c in D.COMMANDS},
    ("cmd_failed", "code"): M.REASON_NAMES,
    ("sensor_fault", "sensor"): D.SENSORS,
    ("safe_mode", "reason"): D.SAFE_REASONS,
    ("params_defaulted", "reason"): D.PARAMS_DEFAULT_REASONS,
    ("tt_executed", "command"): {c.id: c.name for c in D.COMMANDS},
    ("tt_executed", "code"): M.REASON_NAMES,
    ("tt_unknown", "command"): {c.id: c.name for c in D.COMMANDS},
    ("tt_not_run", "command"): {c.id: c.name for c in D.COMMANDS},
    ("tt_not_run", "why"): D.TT_NOT_RUN_REASONS,
    ("seq_started", "cause"): D.SEQ_CAUSES,
    ("seq_step_failed", "code"): M.REASON_NAMES,
    ("seq_ended", "state"): D.SEQ_STATES,
    ("seq_triggered", "trigger"): D.SEQ_TRIGGERS,
    ("seq_triggered", "code"): M.REASON_NAMES,
    ("seq_invalid", "problem"): D.SEQ_PROBLEMS,
}


# --- display ------------------------------------------------------------------------------

def diag(obj: "Any") -> str:
    """obj in CBOR diagnostic notation (RFC 8949 §8), as the SPEC's examples write it."""
    t = type(obj)
    if obj is None:
        return "null"
    if t is bool:
        return "true" if obj else "false"
    if t is float:
        text = repr(obj)
        return text if ("." in text or "e" in text or "n" in text) else text + ".0"
    if t is bytes or t is bytearray or t is memoryview:
        return "h'" + bytes(obj).hex() + "'"
    if t is str:
        text = str(obj).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return '"' + text + '"'
    if t is list or t is tuple:
        return "[" + ", ".join([diag(x) for x in obj]) + "]"
    if t is dict:
        return "{" + ", ".join([diag(k) + ": " + diag(v) for k, v in obj.items()]) + "}"
    return repr(obj)



def format_float(x: float) -> str:
    """x with at most 7 significant digits: 3.3, not 3.299999952316284 (SPEC §4.1)."""
    text = f"{x:.7g}"
    return "0" if text == "-0" else text


def _plain(value: "Any") -> str:
    t = type(value)
    if t is bool:
        return "true" if value else "false"
    if t is float:
        return format_float(value)
    if t is int:
        return str(value)
    if value is None:
        return "null"
    if t is str:
        return str(value)
    return diag(value)


def format_mask(mask: "Any", names: "dict[int, str]") -> str:
    """A bit mask as the names of its set bits: ``comms_relay|heater_battery``, or ``none``."""
    if type(mask) is not int:
        return _plain(mask)
    if mask == 0:
        return "none"
    shown = []
    bit = 0
    while mask >> bit:  # no int.bit_length() on MicroPython
        if mask >> bit & 1:
            shown.append(names.get(bit, f"bit{bit}"))
        bit += 1
    return "|".join(shown)


def format_value(channel: "Any", value: "Any", unit: bool = True) -> str:
    """A channel's value for display: enum name, mask, hex, or number with its unit.

    channel is a Channel record, or its id or name.
    """
    if not hasattr(channel, "unit"):
        channel = CHANNELS[channel]
    if channel.enum is not None and type(value) is int:
        return M.name(channel.enum, value)
    if channel.name in MASK_CHANNELS:
        return format_mask(value, MASK_CHANNELS[channel.name])
    if channel.name in HEX_CHANNELS and type(value) is int:
        return f"0x{value:08X}"
    text = _plain(value)
    return text + " " + channel.unit if unit and channel.unit and type(value) is not bool else text


def format_param(param: "Any", value: "Any", unit: bool = True) -> str:
    """A parameter's value for display, with its unit. param is a Param, its id or name."""
    if not hasattr(param, "default"):
        param = PARAMS[param]
    text = _plain(value)
    return text + " " + param.unit if unit and param.unit and type(value) is not bool else text


def format_event(event_id: int, args: "Any") -> str:
    """An event's text: the dictionary's format with named arguments (ids shown by name)."""
    event = EVENTS.get(event_id)
    if event is None or len(args) != len(event.args):
        return f"event {EVENTS.name(event_id)} {diag(list(args))}"
    shown = {}
    for i, arg in enumerate(event.args):
        value = args[i]
        names = EVENT_ARG_NAMES.get((event.name, arg))
        shown[arg] = M.name(names, value) if names and type(value) is int else _plain(value)
    return str(event.format.format(**shown))


def format_message(msg: "M.Message") -> str:
    """One line describing a decoded Message, with names from the dictionary."""
    kind, body = msg.kind, msg.body
    if kind == M.KIND_COMMAND:
        boot = getattr(msg, "boot", None)  # the ground's codec.Message does not keep it
        text = f"command {COMMANDS.name(msg.id)} seq {msg.seq} {diag(body)}"
        return text if boot is None else f"{text} boot {boot}"
    if kind == M.KIND_VERIFICATION:
        cmd_seq, stage, code, result = body
        text = f"{COMMANDS.name(msg.id)} seq {cmd_seq} {M.name(M.STAGE_NAMES, stage)}"
        if code:
            text += " " + M.name(M.REASON_NAMES, code)
        return text if result is None else text + " -> " + diag(result)
    if kind == M.KIND_HOUSEKEEPING:
        packet = PACKETS.get(msg.id)
        if packet is None or len(packet.channels) != len(body):
            return f"housekeeping {PACKETS.name(msg.id)} {diag(body)}"
        shown = [n + "=" + format_value(n, body[i]) for i, n in enumerate(packet.channels)]
        return str(packet.name) + ": " + ", ".join(shown)
    if kind == M.KIND_EVENT:
        severity = M.name(SEVERITY_NAMES, body[1])
        return f"[{severity}] {EVENTS.name(msg.id)}: {format_event(msg.id, body[2])}"
    if kind == M.KIND_PARAMETER:
        param = PARAMS.get(msg.id)
        value = format_param(param, body[0]) if param else _plain(body[0])
        return f"parameter {PARAMS.name(msg.id)} = {value}"
    if kind == M.KIND_TIME:
        return f"time correlation: node {body[0]} ms = UTC {body[1]} ms"
    last = " (last)" if body[2] else ""
    return (f"bulk {M.name(D.BULK_TYPES, msg.id)} transfer {body[0]} part {body[1]}{last}, "
            f"{len(body[3])} bytes")


# --- checks against the dictionary --------------------------------------------------------

def _arg_value(arg: "Any", value: "Any") -> "Any":
    # A value for arg: enum names accepted, f32 integers made floats, then the node's checks.
    if type(value) is str and arg.enum:
        for number, text in arg.enum.items():
            if text.lower() == value.lower():
                return number
        raise MessageError(M.BAD_ARGUMENTS, "{}: {!r} is not one of {}".format(
            arg.name, value, ", ".join(arg.enum.values())))
    if arg.type == F32 and type(value) in (int, float):
        value = M.f32(float(value))
    lo, hi = arg.lo, arg.hi
    if arg.type in TYPE_RANGES and arg.type != "bool":
        lo = TYPE_RANGES[arg.type][0] if lo is None else lo
        hi = TYPE_RANGES[arg.type][1] if hi is None else hi
    code = M.check_arg(value, TYPE_CODES[arg.type], lo, hi)
    if code == M.BAD_ARGUMENTS:
        raise MessageError(code, f"{arg.name}: {value!r} is not a {arg.type}")
    if code:
        raise MessageError(code, f"{arg.name}: {_plain(value)} is outside "
                                 f"{_plain(lo)}..{_plain(hi)}")
    return value


def command_args(command: "Any", args: "Any") -> "list[Any]":
    """Checked argument values for a command (a Command, id or name), as the node checks them.

    args may use enum names ("SAFE", "comms_relay"). Raises MessageError UNKNOWN_COMMAND,
    BAD_ARGUMENTS or OUT_OF_RANGE.
    """
    if not hasattr(command, "args"):
        if command not in COMMANDS:
            raise MessageError(M.UNKNOWN_COMMAND, f"no command {command!r} in the dictionary")
        command = COMMANDS[command]
    if len(args) != len(command.args):
        names = ", ".join(a.name for a in command.args)
        raise MessageError(M.BAD_ARGUMENTS, f"{command.name} takes {len(command.args)} "
                                            f"argument(s) ({names}), not {len(args)}")
    return [_arg_value(arg, args[i]) for i, arg in enumerate(command.args)]


def encode_command(seq: int, command: "Any", args: "Any" = (), boot: int = 0,
                   time: int = 0) -> bytes:
    """The encoded command message: command_args checks, then encode_message.

    boot: the node boot count the command is bound to (SPEC §5.1); 0 (no boot) is rejected
    STALE_BOOT by every node, which answers with its boot count. time: 0 (execute now) or
    the execution time, UTC ms (a time-tagged command, SPEC §11)."""
    if not hasattr(command, "args"):
        if command not in COMMANDS:
            raise MessageError(M.UNKNOWN_COMMAND, f"no command {command!r} in the dictionary")
        command = COMMANDS[command]
    return M.encode_message(M.KIND_COMMAND, seq, time, command.id, command_args(command, args),
                            boot)


def check_message(msg: "M.Message") -> None:
    """Raise MessageError(MALFORMED) if a downlink message does not fit the dictionary."""
    kind, body = msg.kind, msg.body
    if kind == M.KIND_HOUSEKEEPING:
        packet = PACKETS.get(msg.id)
        if packet is None or len(body) != len(packet.channels):
            raise MessageError(M.MALFORMED, f"housekeeping packet {msg.id} with {len(body)} "
                                            "values does not match the dictionary")
    elif kind == M.KIND_EVENT:
        event = EVENTS.get(msg.id)
        if event is None or len(body[2]) != len(event.args):
            raise MessageError(M.MALFORMED, f"event {msg.id} with {len(body[2])} args does "
                                            "not match the dictionary")
    elif kind == M.KIND_PARAMETER and msg.id not in PARAMS.by_id:
        raise MessageError(M.MALFORMED, f"no parameter {msg.id} in the dictionary")
    elif kind == M.KIND_VERIFICATION and msg.id not in COMMANDS.by_id:
        if body[2] != M.UNKNOWN_COMMAND:
            raise MessageError(M.MALFORMED, f"verification of unknown command {msg.id}")


# --- descriptions -------------------------------------------------------------------------

def _names(mapping: "Any") -> "Any":
    return None if mapping is None else {str(k): v for k, v in mapping.items()}


def _modes(mask: int) -> "list[str]":
    return [text for mode, text in MODE_NAMES.items() if mask >> mode & 1]


def describe() -> "dict[str, Any]":
    """The whole dictionary as JSON-ready data (dicts with text keys, lists, numbers, text)."""
    return {
        "protocol_version": M.VERSION,
        "dict_hash": f"0x{DICT_HASH:08X}",
        "commands": [{
            "id": c.id, "name": c.name, "help": c.help, "modes": _modes(c.modes),
            "hazardous": c.hazardous, "test_only": c.test_only, "result": c.result,
            "immediate": c.immediate,
            "args": [{"name": a.name, "type": a.type, "min": a.lo, "max": a.hi, "unit": a.unit,
                      "help": a.help, "enum": _names(a.enum)} for a in c.args],
        } for c in COMMANDS],
        "channels": [{
            "id": ch.id, "name": ch.name, "type": ch.type, "unit": ch.unit,
            "description": ch.description, "enum": _names(ch.enum),
            "yellow": None if ch.yellow is None else list(ch.yellow),
            "red": None if ch.red is None else list(ch.red),
        } for ch in CHANNELS],
        "packets": [{"id": p.id, "name": p.name, "rate_hz": p.rate_hz,
                     "description": p.description, "channels": list(p.channels)}
                    for p in PACKETS],
        "events": [{"id": e.id, "name": e.name, "severity": SEVERITY_NAMES[e.severity],
                    "format": e.format, "args": list(e.args)} for e in EVENTS],
        "params": [{"id": p.id, "name": p.name, "type": p.type, "default": p.default,
                    "min": p.lo, "max": p.hi, "unit": p.unit, "help": p.help,
                    "persisted": p.persisted} for p in PARAMS],
        "values": {"modes": _names(D.MODES), "loads": _names(D.LOAD_NAMES),
                   "heaters": _names(D.HEATERS), "heater_modes": _names(D.HEATER_MODES),
                   "reset_causes": _names(D.RESET_CAUSES),
                   "safe_reasons": _names(D.SAFE_REASONS), "sensors": _names(D.SENSORS),
                   "faults": _names(D.FAULTS), "tasks": _names(D.TASKS),
                   "bulk_types": _names(D.BULK_TYPES)},
    }


def _cell(value: "Any") -> str:
    text = "" if value is None else _plain(value)
    return text.replace("|", "\\|")


def _limit(pair: "Any") -> str:
    if pair is None:
        return ""
    lo, hi = pair
    return ("" if lo is None else _plain(lo)) + " … " + ("" if hi is None else _plain(hi))


def _span(lo: "Any", hi: "Any", sep: str) -> str:
    return "" if lo is None else _plain(lo) + sep + _plain(hi)


def _arg_values(arg: "Any") -> str:
    # The names a person types (SAFE|NOMINAL|SCIENCE), else the range.
    if arg.enum:
        return "|".join(arg.enum.values())
    return _span(arg.lo, arg.hi, "…")


def _channel_type(ch: "Any") -> str:
    # u8 BOOT|SAFE|NOMINAL|SCIENCE; u16 mask of comms_relay, ...; else the type alone.
    if ch.enum:
        return ch.type + " " + "|".join(ch.enum.values())
    if ch.name in MASK_CHANNELS:
        return ch.type + " mask of " + ", ".join(MASK_CHANNELS[ch.name].values())
    return ch.type


def describe_markdown() -> str:
    """The whole dictionary as Markdown: one table per kind of record."""
    out = ["# Dictionary", "", f"Dictionary hash `0x{DICT_HASH:08X}`, protocol version "
           f"{M.VERSION}.", "", "## Commands", "",
        "| id | name | arguments | modes | help |", "|---|---|---|---|---|"]
    for c in COMMANDS:
        args = ", ".join(f"{a.name}: {a.type} {_arg_values(a)}".rstrip() for a in c.args)
        flags = (" **hazardous**" if c.hazardous else "") + (" *test only*" if c.test_only
                                                             else "") \
            + (" *immediate*" if c.immediate else "")
        modes = " ".join(_modes(c.modes))
        out.append(f"| {c.id} | `{c.name}`{flags} | {_cell(args)} | {modes} | {_cell(c.help)} |")
    out += ["", "## Telemetry channels", "",
            "| id | name | type | unit | yellow | red | description |",
            "|---|---|---|---|---|---|---|"]
    for ch in CHANNELS:
        out.append(f"| {ch.id} | `{ch.name}` | {_cell(_channel_type(ch))} | {ch.unit} | "
                   f"{_limit(ch.yellow)} | "
                   f"{_limit(ch.red)} | {_cell(ch.description)} |")
    out += ["", "## Housekeeping packets", "", "| id | name | rate | channels |",
            "|---|---|---|---|"]
    for p in PACKETS:
        out.append(f"| {p.id} | `{p.name}` | {_plain(p.rate_hz)} Hz | {', '.join(p.channels)} |")
    out += ["", "## Events", "", "| id | name | severity | text |", "|---|---|---|---|"]
    for e in EVENTS:
        severity = SEVERITY_NAMES[e.severity]
        out.append(f"| {e.id} | `{e.name}` | {severity} | {_cell(e.format)} |")
    out += ["", "## Parameters", "", "| id | name | type | default | range | unit | help |",
            "|---|---|---|---|---|---|---|"]
    for p in PARAMS:
        out.append(f"| {p.id} | `{p.name}` | {p.type} | {_plain(p.default)} | "
                   f"{_span(p.lo, p.hi, ' … ')} | {p.unit} | {_cell(p.help)} |")
    return "\n".join(out) + "\n"
