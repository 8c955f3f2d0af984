"""Words a person can act on: why the node said no, and what a command's result means.

``why(command, args, code, node)`` turns a rejection or failure code into a sentence built
from the dictionary and what the ground knows of the node (its mode, battery charge, tripped
loads, from the latest telemetry or the status at connect):

* ``WRONG_MODE``: the node's mode and the modes the command is allowed in, and the
  ``set_mode`` that gets there;
* ``INHIBITED``: the reason the dictionary gives (payloads switch on only in SCIENCE, a tripped
  channel must be reset, SCIENCE needs battery charge above ``science_min_soc_pct``);
* ``NOT_FOUND``: on ``param_load``, no parameters were ever saved; on ``param_*``, no such
  parameter; on ``fault_inject``, no such target;
* anything else: the code's name in plain words.

``result_fields(command, result)`` labels a result the dictionary documents as a list
(``status``: ``[mode, boot_count, ...]``) and names its enum values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ground import validate, values
from protocol import dictionary as d
from protocol import dictionary_types as t

# What a code means when nothing more specific can be said.
GENERAL: Final = {
    "UNKNOWN_COMMAND": "the node does not know this command (is it running older firmware?)",
    "BAD_ARGUMENTS": "the node could not read the arguments",
    "OUT_OF_RANGE": "an argument is outside the range the node accepts",
    "WRONG_MODE": "the command is not allowed in the node's current mode",
    "BUSY": "the node is busy with another command: try again",
    "MALFORMED": "the node could not read the command message",
    "UNSUPPORTED_VERSION": "the node speaks another protocol version",
    "EXECUTION_ERROR": "the command raised an error on the node (see its events)",
    "STORAGE_ERROR": "the node's flash could not be read or written",
    "INVALID_TRANSITION": "the node cannot change between these modes directly",
    "NOT_FOUND": "what the command names does not exist on the node",
    "INHIBITED": "the node's state does not allow it now",
    "NOT_ARMED": "a hazardous command runs only right after an arm naming it with the same "
                 "arguments (SPEC §10.8): the ground arms by itself; another command came "
                 "in between, or the arm expired",
    "KEY_REFUSED": "the key change is not allowed (a generation not above the current one, "
                   "a revoked operator, or it would leave the node without a usable key)",
    "CLOCK_UNCORRELATED": "the node's clock is not correlated with UTC yet (the ground "
                          "correlates it on connect: reconnect, or wait for the next one)",
    "TIME_PAST": "the execution time is further in the past than tt_tolerance_ms allows",
    "QUEUE_FULL": "the time-tagged queue holds 64 commands: delete some (ground tt list)",
    "NOT_ALLOWED_NOW": "when it came due, the node's mode (or state) did not allow it",
    "NOT_RUN": "the queued command did not run: deleted, cleared, or found too late "
               "(see the tt_not_run event)",
}
_PAYLOADS: Final = frozenset(("payload_a", "payload_b"))  # firmware/node/commands.py
_TRANSITIONS: Final = "SAFE to NOMINAL, NOMINAL and SCIENCE either way, any mode to SAFE"


def modes_of(cmd: t.Command) -> list[str]:
    return [name for mode, name in d.MODES.items() if cmd.modes >> mode & 1]


def node_state(client: Any) -> dict[str, Any]:
    """What the ground knows of the node: the latest telemetry values by name, with the mode
    from the connect-time status when no housekeeping arrived yet."""
    known: dict[str, Any] = {n: v.value for n, v in client.downlink.latest.items()}
    status = getattr(client, "status", None)
    if "mode" not in known and status is not None:
        by_name = {name: mode for mode, name in d.MODES.items()}
        known["mode"] = by_name.get(status.mode, status.mode)
    return known


def why(command: str, args: Sequence[Any], code: int, reason: str, node: dict[str, Any]) -> str:
    """A sentence saying why ``command`` (wire ``args``) got ``code``; "" if nothing to add."""
    cmd = validate.COMMANDS.get(command)
    if cmd is None:
        return GENERAL.get(reason, "")
    mode = _mode_name(node.get("mode"))
    if reason == "WRONG_MODE":
        allowed = modes_of(cmd)
        listed = ", ".join(allowed[:-1]) + " or " + allowed[-1] if len(allowed) > 1 else allowed[0]
        if mode in allowed:
            return (
                f"{command} is allowed in {listed} and the node (in {mode}) still refused it: "
                "its firmware may differ from this dictionary"
            )
        if mode == "?":
            return f"{command} is allowed only in {listed}"
        target = next(m for m in ("NOMINAL", "SCIENCE", "SAFE") if m in allowed)
        return (
            f"the node is in {mode}; {command} is allowed only in {listed}: "
            f"`set_mode mode={target}` first"
        )
    if reason == "INHIBITED":
        return _inhibited(command, args, node, mode)
    if reason == "INVALID_TRANSITION" and command == "set_mode" and args:
        return (
            f"the node cannot go from {mode} to {_mode_name(args[0])} directly; "
            f"allowed: {_TRANSITIONS}"
        )
    if reason == "NOT_FOUND":
        if command == "param_load":
            return "no parameters were ever saved on this node: `param_save` first"
        if command in ("param_get", "param_set") and args:
            return f"the node has no parameter {args[0]} (is it running older firmware?)"
        if command == "fault_inject":
            return "the node has no such target for this fault (see `help fault_inject`)"
    return GENERAL.get(reason, "")


def _inhibited(command: str, args: Sequence[Any], node: dict[str, Any], mode: str) -> str:
    if command == "load_switch" and len(args) == 2:
        name = d.LOAD_NAMES.get(args[0], str(args[0]))
        if name in _PAYLOADS and args[1] and mode != "SCIENCE":
            return f"payloads switch on only in SCIENCE (the node is in {mode})"
        tripped = node.get("loads_tripped")
        if isinstance(tripped, int) and tripped >> args[0] & 1:
            return f"{name} is tripped: `load_reset_trip channel={name}` first"
        return (
            f"{name} cannot switch now: payloads switch on only in SCIENCE, and a tripped "
            "channel must be reset first (load_reset_trip)"
        )
    if command == "set_mode" and args and _mode_name(args[0]) == "SCIENCE":
        soc = node.get("battery_soc")
        have = f" (battery_soc is {values.format_value(soc)} %)" if soc is not None else ""
        return f"entering SCIENCE needs battery charge above science_min_soc_pct{have}"
    cmd = validate.COMMANDS[command]
    rest = cmd.help.split(". ", 1)[1:]  # the dictionary's help beyond its first sentence
    return rest[0].rstrip(".") if rest else GENERAL["INHIBITED"]


def _mode_name(mode: Any) -> str:
    if isinstance(mode, int) and not isinstance(mode, bool):
        return d.MODES.get(mode, str(mode))
    return str(mode) if mode is not None else "?"


def result_fields(command: str, result: Any) -> list[tuple[str, str]] | None:
    """``[(label, text), ...]`` for a list result the dictionary documents, else None."""
    cmd = validate.COMMANDS.get(command)
    if cmd is None or not cmd.result.startswith("[") or not isinstance(result, list | tuple):
        return None
    labels = [name.strip() for name in cmd.result.strip("[]").split(",")]
    if len(labels) != len(result):
        return None
    return [(label, _field_text(label, value)) for label, value in zip(labels, result, strict=True)]


def _field_text(label: str, value: Any) -> str:
    if label == "uptime_ms" and isinstance(value, int):
        return f"{value} ({value / 1000:.1f} s)"
    if label in ("dict_hash", "node_id") and isinstance(value, int):
        return f"0x{value & 0xFFFFFFFF:08X}"
    channel = validate.CHANNELS.get(label)
    if channel is not None and channel.enum is not None:
        return values.format_value(value, channel.enum)
    return values.format_value(value)


def result_text(command: str, result: Any) -> str:
    """One line: ``mode SAFE, boot_count 3, ...`` for a documented list, else the value."""
    fields = result_fields(command, result)
    if fields is None:
        return values.format_value(result)
    return ", ".join(f"{label} {text}" for label, text in fields)
