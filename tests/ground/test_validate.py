"""Commands are checked against the dictionary before anything is sent."""

from __future__ import annotations

import struct

import pytest

from ground import validate
from ground.errors import EXIT_USAGE, BadArgument, OutOfRange, UnknownName, UsageError
from protocol import dictionary as d
from protocol import dictionary_types as t


def test_enum_names_and_strings_convert() -> None:
    cmd, args = validate.prepare("set_mode", {"mode": "NOMINAL"})
    assert cmd.id == 2 and args == [2]
    _, args = validate.prepare("load_switch", {"channel": "heater_battery", "on": "true"})
    assert args == [8, True]
    _, args = validate.prepare("heater_setpoint", {"heater": "battery", "setpoint": "3.3"})
    assert args[1] == pytest.approx(3.3) and args[1] != 3.3  # rounded to single precision


def test_param_by_name_checks_the_value_against_the_parameter() -> None:
    _, args = validate.prepare("param_set", {"param": "battery_setpoint", "value": "4.5"})
    assert args == [2, 4.5]
    with pytest.raises(OutOfRange, match=r"-40 to 40 degC"):
        validate.prepare("param_set", {"param": "battery_setpoint", "value": 99})
    with pytest.raises(BadArgument, match="time_factor"):
        validate.prepare("param_get", {"param": "time_factr"})


def test_unknown_command_names_the_closest() -> None:
    with pytest.raises(UnknownName) as info:
        validate.prepare("set_mod", {})
    assert info.value.suggestions[0] == "set_mode"
    assert "did you mean set_mode" in str(info.value)
    assert info.value.exit_code == EXIT_USAGE and isinstance(info.value, LookupError)


def test_out_of_range_gives_range_and_unit() -> None:
    with pytest.raises(OutOfRange) as info:
        validate.prepare("hk_rate", {"packet": 1, "rate": 80})
    assert "0.1 to 50 Hz" in str(info.value)
    assert (info.value.lo, info.value.unit) == ("0.1", "Hz")
    with pytest.raises(OutOfRange, match=r"1 to 3 \(SAFE, NOMINAL, SCIENCE\)"):
        validate.prepare("set_mode", {"mode": 7})


@pytest.mark.parametrize(
    ("name", "kwargs", "text"),
    [
        ("set_mode", {}, "missing"),
        ("set_mode", {"mode": "NOMINL"}, "NOMINAL"),
        ("set_mode", {"mode": 2, "extra": 1}, "unexpected"),
        ("load_switch", {"channel": 1, "on": "maybe"}, "not a boolean"),
        ("heater_setpoint", {"heater": 0, "setpoint": "warm"}, "not a number"),
        ("heater_setpoint", {"heater": 0, "setpoint": float("inf")}, "finite"),
        ("noop", {"x": 1}, "takes: none"),
    ],
)
def test_bad_arguments(name: str, kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(BadArgument, match=text):
        validate.prepare(name, kwargs)


def test_usage_and_assignments() -> None:
    assert validate.usage(validate.command("set_mode")) == "set_mode mode=<SAFE|NOMINAL|SCIENCE>"
    assert "-40..40 degC" in validate.usage(validate.command("heater_setpoint"))
    assert validate.parse_assignments("x", ["a=1", "b=c=d"]) == {"a": "1", "b": "c=d"}
    with pytest.raises(BadArgument, match="key=value"):
        validate.parse_assignments("x", ["oops"])


def _f32_next(x: float, up: bool) -> float:
    """The single-precision neighbour of ``x`` (an f32 value) above or below it."""
    (bits,) = struct.unpack("<i", struct.pack("<f", x))
    step = 1 if (x >= 0) == up else -1
    if x == 0.0:
        return 1.401298464324817e-45 if up else -1.401298464324817e-45
    (out,) = struct.unpack("<f", struct.pack("<i", bits + step))
    return float(out)


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _bounded_values() -> list[tuple[str, str, str, object, object]]:
    """(command, argument, type, lo, hi) for every range-checked argument and parameter, with
    the type's width where the dictionary gives no bound."""
    out: list[tuple[str, str, str, object, object]] = []
    for cmd in d.COMMANDS:
        for arg in cmd.args:
            if arg.type in (t.BOOL, t.ANY) or arg.name == "param":
                continue  # bool has no range; the param argument is looked up by name or id
            lo, hi = arg.lo, arg.hi
            if arg.type in t.TYPE_RANGES:
                type_lo, type_hi = t.TYPE_RANGES[arg.type]
                lo = type_lo if lo is None else lo
                hi = type_hi if hi is None else hi
            out.append((cmd.name, arg.name, arg.type, lo, hi))
    for p in d.PARAMS:
        if p.type != t.BOOL:
            out.append(("param_set", p.name, p.type, p.lo, p.hi))
    return out


def _kwargs(cmd_name: str, arg_name: str, value: object) -> dict[str, object]:
    """Valid arguments for ``cmd_name`` with ``arg_name`` (or, for param_set, the parameter
    named ``arg_name``) set to ``value``."""
    if cmd_name == "param_set":
        return {"param": arg_name, "value": value}
    cmd = validate.command(cmd_name)
    kwargs: dict[str, object] = {}
    for arg in cmd.args:
        if arg.type == t.BOOL:
            kwargs[arg.name] = True
        elif arg.type == t.ANY:
            kwargs[arg.name] = 1
        else:
            kwargs[arg.name] = arg.lo if arg.lo is not None else 0
    kwargs[arg_name] = value
    return kwargs


def _wire_value(cmd_name: str, arg_name: str, args: list[object]) -> object:
    if cmd_name == "param_set":
        return args[1]
    names = [a.name for a in validate.command(cmd_name).args]
    return args[names.index(arg_name)]


BOUNDED = _bounded_values()


@pytest.mark.parametrize(("cmd_name", "arg_name", "type_", "lo", "hi"), BOUNDED,
                         ids=[f"{c}.{a}" for c, a, *_ in BOUNDED])
def test_both_range_ends_are_inside_and_one_step_beyond_is_out(
        cmd_name: str, arg_name: str, type_: str, lo: object, hi: object) -> None:
    """Exactly at each end is accepted; the next value the type holds beyond it is refused."""
    assert lo is not None and hi is not None
    if type_ == t.F32:
        ends = [_f32(float(lo)), _f32(float(hi))]  # type: ignore[arg-type]
        # an end that rounds inwards: the single-precision value just outside the real bound
        below = _f32_next(ends[0], up=False) if ends[0] >= float(lo) else ends[0]  # type: ignore[arg-type]
        above = _f32_next(ends[1], up=True) if ends[1] <= float(hi) else ends[1]  # type: ignore[arg-type]
        if ends[0] < float(lo):  # type: ignore[arg-type]
            ends[0] = _f32_next(ends[0], up=True)
        if ends[1] > float(hi):  # type: ignore[arg-type]
            ends[1] = _f32_next(ends[1], up=False)
        outside: list[object] = [below, above]
    else:
        ends = [lo, hi]
        outside = [int(lo) - 1, int(hi) + 1]  # type: ignore[call-overload]
    for value in ends:
        _, args = validate.prepare(cmd_name, _kwargs(cmd_name, arg_name, value))
        assert _wire_value(cmd_name, arg_name, args) == value
    for value in outside:
        with pytest.raises(OutOfRange) as info:
            validate.prepare(cmd_name, _kwargs(cmd_name, arg_name, value))
        assert info.value.argument == ("value" if cmd_name == "param_set" else arg_name)


@pytest.mark.parametrize(("cmd_name", "arg_name", "type_", "lo", "hi"), BOUNDED,
                         ids=[f"{c}.{a}" for c, a, *_ in BOUNDED])
def test_range_ends_typed_as_text_convert_the_same(
        cmd_name: str, arg_name: str, type_: str, lo: object, hi: object) -> None:
    if type_ == t.F32:
        return  # text floats: rounding covered by test_enum_names_and_strings_convert
    assert lo is not None and hi is not None
    for value in (lo, hi):
        _, args = validate.prepare(cmd_name, _kwargs(cmd_name, arg_name, str(value)))
        assert _wire_value(cmd_name, arg_name, args) == value
    for value in (int(lo) - 1, int(hi) + 1):  # type: ignore[call-overload]
        with pytest.raises(OutOfRange):
            validate.prepare(cmd_name, _kwargs(cmd_name, arg_name, str(value)))


@pytest.mark.parametrize("raw", [True, False, "true", "ON", "yes", "1", "false", "off", "no", "0"])
def test_bool_accepts_its_spellings(raw: object) -> None:
    _, args = validate.prepare("load_switch", {"channel": 0, "on": raw})
    assert args == [0, str(raw).lower() in ("true", "on", "yes", "1")]


@pytest.mark.parametrize("raw", [2, "2", "maybe", None, 1.0])
def test_bool_refuses_anything_else(raw: object) -> None:
    with pytest.raises(BadArgument, match="not a boolean"):
        validate.prepare("load_switch", {"channel": 0, "on": raw})


_CHANNELS = ("comms_relay|seismometer|radiation_monitor|dust_camera|payload_a|payload_b|"
             "rover_charger|isru_demo|heater_battery|heater_electronics")
_PACKETS = ("power|environment|link|loads|thermal|battery|solar|load_status|commanding|time|"
            "sequence")
USAGE = {
    'noop': 'noop',
    'set_mode': 'set_mode mode=<SAFE|NOMINAL|SCIENCE>',
    'load_switch': f'load_switch channel=<{_CHANNELS}> on=<true|false>',
    'load_reset_trip': f'load_reset_trip channel=<{_CHANNELS}>',
    'heater_mode': 'heater_mode heater=<battery|electronics> mode=<OFF|AUTO|ON>',
    'heater_setpoint': 'heater_setpoint heater=<battery|electronics> setpoint=<f32 -40..40 degC>',
    'param_get': 'param_get param=<parameter name or id>',
    'param_set': 'param_set param=<parameter name or id> value=<any>',
    'param_save': 'param_save',
    'param_load': 'param_load',
    'param_reset': 'param_reset',
    'hk_rate': f'hk_rate packet=<{_PACKETS}> rate=<f32 0.1..50 Hz>',
    'hk_enable': f'hk_enable packet=<{_PACKETS}> enabled=<true|false>',
    'time_correlate': 'time_correlate utc_ms=<any ms>',
    'status': 'status',
    'event_log_downlink': 'event_log_downlink from_seq=<u32 0..4294967295>',
    'clear_counters': 'clear_counters',
    'reboot': 'reboot',
    'maintenance': 'maintenance',
    'dict_downlink': 'dict_downlink',
    'fault_inject': ('fault_inject fault=<CLEAR|SENSOR_FAIL|SENSOR_STUCK|BATTERY_DRAIN|'
                     'TRIP_CHANNEL|HANG_TASK> target=<u8 0..15> value=<f32 -1000..1000>'),
    'seq_upload_begin': 'seq_upload_begin slot=<u8 0..3> size=<u16 1..4096 B> digest=<any>',
    'seq_upload_part': 'seq_upload_part slot=<u8 0..3> offset=<u16 0..4095 B> data=<any>',
    'seq_upload_commit': 'seq_upload_commit slot=<u8 0..3>',
    'seq_start': 'seq_start slot=<u8 0..3>',
    'seq_stop': 'seq_stop slot=<u8 0..3>',
    'seq_trigger': ('seq_trigger slot=<u8 0..3> trigger=<NONE|SAFE_ENTRY|SUNSET|SUNRISE|'
                    'BATTERY_BELOW> level=<f32 0..100 %>'),
    'seq_list': 'seq_list',
    'seq_delete': 'seq_delete slot=<u8 0..3>',
}


@pytest.mark.parametrize("name", list(USAGE))
def test_usage_of_every_command(name: str) -> None:
    """What ``ground`` prints for a command's arguments: enum names, bool spellings, the
    parameter lookup, integer ranges from the type's width where the dictionary has none,
    float ranges with their unit, ``any`` with its unit."""
    assert validate.usage(validate.command(name)) == USAGE[name]


@pytest.mark.parametrize(("raw", "value"), [
    ("true", True), (" FALSE ", False), ("12", 12), ("-3", -3), ("1.5", 1.5),
    ("abc", "abc"), (" x y ", "x y"), (7, 7), (2.5, 2.5), (None, None),
])
def test_any_values_typed_as_text_become_what_they_say(raw: object, value: object) -> None:
    got = validate.convert("time_correlate", "utc_ms", raw, t.ANY, None, None, "ms", None)
    assert got == value and type(got) is type(value)


def test_parameters_by_id_name_or_digits() -> None:
    assert validate.param(2).name == "battery_setpoint"
    assert validate.param(" 2 ").name == "battery_setpoint"
    assert validate.param("battery_setpoint").id == 2
    with pytest.raises(UnknownName, match="unknown parameter id '999'"):
        validate.param(999)
    with pytest.raises(UnknownName, match="unknown parameter 'batery_setpoint'"):
        validate.param("batery_setpoint")


def test_channels_by_name_and_the_closest_names() -> None:
    assert validate.channel("battery_soc").name == "battery_soc"
    with pytest.raises(UnknownName) as info:
        validate.channel("battery_sco")
    assert info.value.kind == "channel" and info.value.suggestions[0] == "battery_soc"
    assert validate.closest("soc", validate.CHANNELS) == ["battery_soc"]
    assert validate.closest("set", validate.COMMANDS) == ["set_mode", "seq_stop", "seq_list"]
    # "arm" (SPEC §10.8) is all in "param": difflib ranks it first
    assert validate.closest("param", validate.COMMANDS, n=3) == ["arm", "param_set",
                                                                 "param_get"]
    assert validate.closest("", validate.COMMANDS) == []


def test_an_unknown_enum_name_suggests_the_closest_only() -> None:
    with pytest.raises(BadArgument) as info:
        validate.prepare("set_mode", {"mode": "NOMINL"})
    assert str(info.value) == "set_mode: argument mode: unknown name 'NOMINL': one of NOMINAL"
    with pytest.raises(BadArgument) as info:
        validate.prepare("set_mode", {"mode": "zzz"})
    assert str(info.value).endswith("unknown name 'zzz': one of SAFE, NOMINAL, SCIENCE")


def test_an_unknown_parameter_id_lists_the_first_three() -> None:
    with pytest.raises(UnknownName) as info:
        validate.param(999)
    assert info.value.suggestions == ("1 (time_factor)", "2 (battery_setpoint)",
                                      "3 (electronics_setpoint)")


def test_an_unexpected_argument_names_the_closest_expected_one() -> None:
    with pytest.raises(BadArgument) as info:
        validate.prepare("set_mode", {"mdoe": 2})
    assert str(info.value) == ("set_mode: argument mdoe: unexpected (did you mean mode?); "
                               "set_mode takes: mode")
    with pytest.raises(BadArgument) as info:
        validate.prepare("set_mode", {"zzz": 2})
    assert str(info.value) == "set_mode: argument zzz: unexpected; set_mode takes: mode"


def test_the_names_a_person_may_type_for_each_argument() -> None:
    # Completion (ground console): a parameter argument offers the parameter names, an enum
    # its names, anything else none; whatever the argument's name sorts against "param".
    set_mode = validate.command("set_mode")
    assert validate.arg_names(set_mode.args[0]) == list(set_mode.args[0].enum.values())
    assert validate.arg_names(validate.command("param_get").args[0]) == list(validate.PARAMS)
    heater_mode = validate.command("heater_mode")
    assert validate.arg_names(heater_mode.args[0]) == list(heater_mode.args[0].enum.values())
    for name, i in (("heater_setpoint", 1), ("hk_rate", 1), ("event_log_downlink", 0)):
        assert validate.arg_names(validate.command(name).args[i]) == [], name


@pytest.mark.parametrize("at", [0, 1, 2**64 - 1])
def test_a_time_tag_may_be_any_uint64(at: int) -> None:
    validate.check_timetag(validate.command("status"), at)  # returns: nothing to say


@pytest.mark.parametrize("at", [-1, 2**64, 2**65, True, 1.0, "5", None])
def test_a_time_tag_outside_uint64_or_not_an_int_is_refused(at: object) -> None:
    with pytest.raises(UsageError) as info:
        validate.check_timetag(validate.command("status"), at)  # type: ignore[arg-type]
    assert str(info.value) == (f"execution time {at!r}: UTC milliseconds since 1970, a uint")


def test_an_immediate_command_cannot_be_time_tagged() -> None:
    cmd = validate.command("event_log_downlink")
    assert cmd.immediate
    with pytest.raises(UsageError) as info:
        validate.check_timetag(cmd, 5)
    assert str(info.value) == ("event_log_downlink cannot be time-tagged: it runs only when it "
                               "arrives (SPEC §11.2)")
