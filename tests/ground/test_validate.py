"""Commands are checked against the dictionary before anything is sent."""

from __future__ import annotations

import pytest

from ground import validate
from ground.errors import EXIT_USAGE, BadArgument, OutOfRange, UnknownName


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
