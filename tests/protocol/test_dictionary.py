"""Consistency of the one dictionary (protocol/dictionary.py) and of its ground-side index."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest

from protocol import dictionary as D
from protocol import dictionary_lookup as L
from protocol import messages as M
from protocol.dictionary_types import (
    ANY,
    BOOL,
    F32,
    IN_ANY,
    MODE_NAMES,
    SEVERITY_NAMES,
    TYPE_CODES,
    TYPE_RANGES,
    TYPES,
)
from protocol.errors import MessageError

KINDS = {"command": D.COMMANDS, "channel": D.CHANNELS, "packet": D.PACKETS,
         "event": D.EVENTS, "param": D.PARAMS}


@pytest.mark.parametrize("kind", KINDS)
def test_ids_and_names_are_unique_and_well_formed(kind: str) -> None:
    records = KINDS[kind]
    ids = [r.id for r in records]
    names = [r.name for r in records]
    assert len(set(ids)) == len(ids), f"duplicate {kind} ids"
    assert len(set(names)) == len(names), f"duplicate {kind} names"
    for r in records:
        assert type(r.id) is int and 1 <= r.id <= 0xFFFF, f"{kind} {r.name}: id {r.id}"
        assert r.name.isidentifier() and r.name == r.name.lower(), f"{kind} name {r.name!r}"


def test_types_are_known_and_codes_match_messages() -> None:
    assert tuple(M.TYPE_NAMES) == TYPES
    assert TYPE_CODES == {name: code for code, name in enumerate(M.TYPE_NAMES)}
    assert tuple(SEVERITY_NAMES) == M.SEVERITY_NAMES
    for c in D.COMMANDS:
        for a in c.args:
            assert a.type in TYPES, f"{c.name}.{a.name}"
    for ch in D.CHANNELS:
        assert ch.type in TYPES and ch.type != ANY, ch.name
    for p in D.PARAMS:
        assert p.type in TYPES and p.type != ANY, p.name


def test_packet_channels_exist_and_start_with_the_header() -> None:
    channels = {ch.name for ch in D.CHANNELS}
    for p in D.PACKETS:
        assert p.channels[:3] == ("mode", "boot_count", "dict_hash"), p.name
        assert len(set(p.channels)) == len(p.channels), f"{p.name}: repeated channel"
        for name in p.channels:
            assert name in channels, f"packet {p.name}: no channel {name}"
        assert p.rate_hz > 0


def test_every_channel_is_in_some_packet() -> None:
    carried = {name for p in D.PACKETS for name in p.channels}
    assert carried == {ch.name for ch in D.CHANNELS}


def _ordered(lo: Any, hi: Any) -> bool:
    return lo is None or hi is None or lo < hi


@pytest.mark.parametrize("ch", [c for c in D.CHANNELS if c.yellow or c.red], ids=lambda c: c.name)
def test_limits_are_ordered_with_red_outside_yellow(ch: Any) -> None:
    for pair in (ch.yellow, ch.red):
        if pair is not None:
            assert len(pair) == 2 and pair != (None, None)
            assert _ordered(*pair)
    if ch.yellow and ch.red:
        (ylo, yhi), (rlo, rhi) = ch.yellow, ch.red
        assert (ylo is None) == (rlo is None) or rlo is None, "red low without yellow low"
        assert (yhi is None) == (rhi is None) or rhi is None, "red high without yellow high"
        if rlo is not None:
            assert rlo < ylo
        if rhi is not None:
            assert rhi > yhi
    if ch.type in TYPE_RANGES:
        type_lo, type_hi = TYPE_RANGES[ch.type]
        for v in (*(ch.yellow or ()), *(ch.red or ())):
            assert v is None or type_lo <= v <= type_hi


def _in_range(v: Any, lo: Any, hi: Any) -> bool:
    return (lo is None or v >= lo) and (hi is None or v <= hi)


@pytest.mark.parametrize("p", D.PARAMS, ids=lambda p: p.name)
def test_param_default_and_range_fit_the_type(p: Any) -> None:
    if p.type == BOOL:
        assert type(p.default) is bool and p.lo is None and p.hi is None
        return
    assert p.lo is not None and p.hi is not None and p.lo < p.hi
    assert _in_range(p.default, p.lo, p.hi)
    if p.type == F32:
        assert all(type(v) in (int, float) for v in (p.default, p.lo, p.hi))
    else:
        assert all(type(v) is int for v in (p.default, p.lo, p.hi))
        type_lo, type_hi = TYPE_RANGES[p.type]
        assert type_lo <= p.lo and p.hi <= type_hi


@pytest.mark.parametrize("c", D.COMMANDS, ids=lambda c: c.name)
def test_command_modes_args_and_enums(c: Any) -> None:
    assert c.modes and c.modes & ~IN_ANY == 0, "modes must be a non-empty mask of SAFE.."
    assert c.help
    names = [a.name for a in c.args]
    assert len(set(names)) == len(names)
    for a in c.args:
        assert (a.lo is None) == (a.hi is None) or a.type != F32
        if a.lo is not None:
            assert a.lo <= a.hi
        if a.type in TYPE_RANGES and a.type != BOOL and a.lo is not None:
            type_lo, type_hi = TYPE_RANGES[a.type]
            assert type_lo <= a.lo and a.hi <= type_hi
        if a.enum:
            for value in a.enum:
                assert _in_range(value, a.lo, a.hi), f"{a.name}: enum value {value}"


@pytest.mark.parametrize("ch", [c for c in D.CHANNELS if c.enum], ids=lambda c: c.name)
def test_channel_enum_values_fit_the_type(ch: Any) -> None:
    type_lo, type_hi = TYPE_RANGES[ch.type]
    assert all(type_lo <= v <= type_hi for v in ch.enum)


@pytest.mark.parametrize("e", D.EVENTS, ids=lambda e: e.name)
def test_event_formats_use_exactly_their_argument_names(e: Any) -> None:
    assert 0 <= e.severity < len(SEVERITY_NAMES)
    fields = [f for _, f, _, _ in string.Formatter().parse(e.format) if f is not None]
    assert set(fields) <= set(e.args), f"format uses {set(fields) - set(e.args)}"
    assert set(fields) == set(e.args), f"arguments not shown: {set(e.args) - set(fields)}"
    assert len(set(e.args)) == len(e.args)


def test_named_values_are_consistent() -> None:
    assert D.MODES == MODE_NAMES
    assert set(D.SETTABLE_MODES) <= set(D.MODES)
    assert [D.LOAD_NAMES[i] for i in D.HEATER_LOADS] == ["heater_battery", "heater_electronics"]
    for name, nominal, trip, _essential in D.LOADS:
        assert 0 < nominal < trip, name
        ch = L.CHANNELS["current_" + name]
        assert ch.red == (None, trip)


def test_commands_with_packet_arguments_cover_the_packets() -> None:
    packets = {p.id for p in D.PACKETS}
    for name in ("hk_rate", "hk_enable"):
        arg = L.COMMANDS[name].args[0]
        assert (arg.lo, arg.hi) == (min(packets), max(packets))
        assert arg.enum == D.PACKET_NAMES == {p.id: p.name for p in D.PACKETS}  # names typed


# --- the index ----------------------------------------------------------------------------

def test_tables_find_records_by_id_and_name() -> None:
    assert L.COMMANDS["noop"] is L.COMMANDS[1]
    assert L.CHANNELS["battery_soc"].id == 11
    assert "battery_soc" in L.CHANNELS and 999 not in L.CHANNELS
    assert L.PARAMS.name(1) == "time_factor" and L.PARAMS.name(999) == "999"
    assert len(L.EVENTS) == len(D.EVENTS)
    with pytest.raises(KeyError, match="no channel 'nope'"):
        L.CHANNELS["nope"]


@pytest.mark.parametrize(("channel", "value", "text"), [
    ("battery_voltage", 3.299999952316284, "3.3 V"),
    ("battery_soc", 87.5, "87.5 %"),
    ("battery_temp", -0.0, "0 degC"),
    ("uptime_s", 12, "12 s"),
    ("mode", 1, "SAFE"),
    ("mode", 9, "9"),
    ("reset_cause", 1, "WATCHDOG"),
    ("lunar_day", True, "true"),
    ("dict_hash", 0xA08C4832, "0xA08C4832"),
    ("loads_on", 0b1100000001, "comms_relay|heater_battery|heater_electronics"),
    ("loads_tripped", 0, "none"),
    ("heap_free", 123456, "123456 B"),
    ("radiation", 123456.789, "123456.8 uGy/h"),
])
def test_format_value(channel: str, value: Any, text: str) -> None:
    assert L.format_value(channel, value) == text


def test_format_float_keeps_seven_significant_digits() -> None:
    assert L.format_float(M.f32(25.6)) == "25.6"
    assert L.format_float(M.f32(0.1)) == "0.1"
    assert L.format_float(1234567.8) == "1234568"
    assert L.format_float(1e-7) == "1e-07"


def test_format_event_shows_names() -> None:
    assert L.format_event(1, [3, 1]) == "boot 3, reset cause WATCHDOG"
    assert L.format_event(4, [11, M.f32(12.3)]) == "channel battery_soc red: 12.3"
    assert L.format_event(22, [2, 7, 4]) == "command set_mode seq 7 rejected: WRONG_MODE"
    assert L.format_event(9, [1]) == "safe mode forced: LOW_CHARGE"
    assert L.format_event(9, [2]) == "safe mode forced: TASK_CRASH"
    assert L.format_event(9, [99]) == "safe mode forced: 99"  # reserved: shown by number
    assert L.format_event(1, [3]) == "event boot [3]"
    assert L.format_event(999, []) == "event 999 []"


def test_command_args_accept_names_and_check_like_the_node() -> None:
    assert L.command_args("set_mode", ["nominal"]) == [2]
    assert L.command_args("load_switch", ["dust_camera", True]) == [3, True]
    assert L.command_args("heater_setpoint", [0, 5]) == [0, 5.0]
    assert L.command_args("hk_rate", [1, 0.1]) == [1, M.f32(0.1)]
    for cmd, args, code in [
        ("nope", [], M.UNKNOWN_COMMAND), (999, [], M.UNKNOWN_COMMAND),
        ("noop", [1], M.BAD_ARGUMENTS), ("set_mode", ["BOOT"], M.BAD_ARGUMENTS),
        ("set_mode", [0], M.OUT_OF_RANGE), ("set_mode", [256], M.OUT_OF_RANGE),
        ("set_mode", [-1], M.BAD_ARGUMENTS), ("set_mode", [1.0], M.BAD_ARGUMENTS),
        ("load_switch", [0, 1], M.BAD_ARGUMENTS), ("hk_rate", [1, 0.05], M.OUT_OF_RANGE),
        ("heater_setpoint", [0, True], M.BAD_ARGUMENTS),
    ]:
        with pytest.raises(MessageError) as info:
            L.command_args(cmd, args)
        assert info.value.code == code, (cmd, args, info.value)


def test_describe_is_json_ready_and_complete() -> None:
    data = L.describe()
    assert json.loads(json.dumps(data)) == data
    assert [c["name"] for c in data["commands"]] == [c.name for c in D.COMMANDS]
    assert len(data["channels"]) == len(D.CHANNELS)
    assert data["commands"][1]["args"][0]["enum"] == {"1": "SAFE", "2": "NOMINAL", "3": "SCIENCE"}
    assert data["dict_hash"].startswith("0x")


def test_describe_markdown_has_a_row_per_record() -> None:
    text = L.describe_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == sum(len(records) for records in KINDS.values())
    assert "`noop`" in text and "**hazardous**" in text



def test_params_defaulted_reason_is_shown_by_name() -> None:
    from protocol import dictionary_lookup as lookup

    event = lookup.EVENTS["params_defaulted"]
    assert lookup.format_event(event.id, [1]).endswith("MISSING")
    assert lookup.format_event(event.id, [2]).endswith("CORRUPT")
