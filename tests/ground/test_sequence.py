"""The sequence text format: every line's problem with its line number, values typed as
`ground cmd` types them, and the canonical text that reads back as the same sequence."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground import sequence as s
from ground import validate
from ground.errors import EXIT_USAGE
from protocol import dictionary as d

HEAD = "ilrs-sequence 1\nname t\n"


def problems(text: str, path: str = "f.seq") -> list[str]:
    with pytest.raises(s.SequenceErrors) as info:
        s.parse(text, path)
    assert info.value.exit_code == EXIT_USAGE
    return [str(p) for p in info.value.problems]


def test_a_full_sequence_parses_to_typed_steps() -> None:
    text = (
        "# a comment before the header\n"
        "\n"
        "ilrs-sequence 1   # the header\n"
        "name night\n"
        "trigger BATTERY_BELOW 25.5\n"
        "modes NOMINAL SCIENCE\n"
        "+00:05:00 load_switch channel=payload_a on=false on-fail skip\n"
        "set_mode mode=SAFE                 # no delay written: none\n"
        "+1:00:00.25 heater_setpoint heater=battery setpoint=3.3 on-fail safe\n"
        "param_set param=electronics_setpoint value=-15\n"
        "wait battery_soc < 30 timeout 00:10:00\n"
        "wait mode == NOMINAL timeout 0:00:30 on-fail skip\n"
        "wait lunar_day != true timeout 100:00:00\n"
    )
    seq = s.parse(text, "night.seq")
    assert (seq.name, seq.trigger, seq.level, seq.modes) == (
        "night", 4, 25.5, frozenset({2, 3}))
    assert (seq.trigger_line, seq.modes_line) == (5, 6)
    c0, c1, c2, c3, w0, w1, w2 = seq.steps
    assert isinstance(c0, s.CommandStep)
    assert (c0.line, c0.delay_ms, c0.command.name, c0.args, c0.on_fail) == (
        7, 300_000, "load_switch", (4, False), s.SKIP)
    assert (c1.line, c1.delay_ms, c1.args, c1.on_fail) == (8, 0, (1,), s.STOP)
    assert (c2.delay_ms, c2.on_fail) == (3_600_250, s.SAFE)
    assert c2.args == tuple(validate.prepare("heater_setpoint",
                                             {"heater": "battery", "setpoint": "3.3"})[1])
    assert c3.args == (3, -15.0)  # the parameter by name, its value typed as the parameter
    assert isinstance(w0, s.WaitStep)
    assert (w0.line, w0.channel.name, s.OPS[w0.op], w0.value, w0.timeout_ms, w0.on_fail) == (
        11, "battery_soc", "<", 30.0, 600_000, s.STOP)
    assert (w1.value, w1.op, w1.timeout_ms, w1.on_fail) == (2, 2, 30_000, s.SKIP)
    assert (w2.value, w2.op, w2.timeout_ms) == (True, 5, 360_000_000)


def test_the_name_defaults_to_the_file_stem() -> None:
    assert s.parse("ilrs-sequence 1\nnoop\n", "dir/morning.seq").name == "morning"
    assert problems("ilrs-sequence 1\nnoop\n", "a_name_far_too_long.seq") == [
        "a_name_far_too_long.seq: no `name` line, and the file's stem 'a_name_far_too_long' "
        "cannot be the name (at most 16 bytes, no spaces): add `name NAME`"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("noop on-fail retry", "on-fail takes one of stop, skip, safe, at the end of the step "
                               "(got 'retry')"),
        ("noopp", "unknown command 'noopp': did you mean noop?"),
        ("set_mode mode=NOMINL", "set_mode: argument mode: unknown name 'NOMINL': one of "
                                 "NOMINAL"),
        ("hk_rate packet=power rate=80", "hk_rate: argument rate: 80.0 is out of range: "
                                         "allowed 0.1 to 50 Hz"),
        ("load_switch channel=payload_a", "load_switch: argument on: missing; load_switch "
                                          "channel=<comms_relay|seismometer|radiation_monitor|"
                                          "dust_camera|payload_a|payload_b|rover_charger|"
                                          "isru_demo|heater_battery|heater_electronics> "
                                          "on=<true|false>"),
        ("noop extra", "noop: argument extra: arguments are written key=value"),
        ("+5:00 noop", "'5:00' is not a time: write H:MM:SS or H:MM:SS.mmm (00:05:00)"),
        ("+00:61:00 noop", "'00:61:00' is not a time: write H:MM:SS or H:MM:SS.mmm (00:05:00)"),
        ("+1193:02:47.296 noop", "1193:02:47.296 is longer than the node counts "
                                 "(1193:02:47.295)"),
        ("+00:00:01", "a delay needs a command after it on the same line"),
        ("+00:00:01 wait mode == SAFE timeout 0:00:01", "a wait step has no delay: it starts "
         "when the step before it ends (write the wait on its own)"),
        ("wait battery_sco < 3 timeout 0:00:01", "wait: unknown channel 'battery_sco': did "
         "you mean battery_soc, battery_temp, battery_voltage?"),
        ("wait battery_soc =< 3 timeout 0:00:01", "wait: unknown comparison '=<': one of < "
                                                  "<= == >= > !="),
        ("wait battery_soc < 3", "write a wait as `wait CHANNEL OP VALUE timeout H:MM:SS "
                                 "[on-fail stop|skip|safe]`"),
        ("wait battery_soc < low timeout 0:00:01", "wait battery_soc: argument value: 'low' "
                                                   "is not a number"),
        ("wait mode == NORMAL timeout 0:00:01", "wait mode: argument value: unknown name "
                                                "'NORMAL': one of NOMINAL"),
        ("wait boot_count > 70000 timeout 0:00:01", "wait boot_count: argument value: "
         "'70000' is out of range: allowed 0 to 65535"),
        ("wait lunar_day == maybe timeout 0:00:01", "wait lunar_day: argument value: 'maybe' "
                                                    "is not a boolean: use true or false"),
        ("reboot", "reboot is hazardous: a stored sequence cannot run it (send it from the "
                   "ground: ground cmd reboot --yes)"),
        ("ilrs-sequence 1", "a second header line"),
    ],
)
def test_each_bad_line_is_reported_with_its_number(line: str, message: str) -> None:
    assert problems(HEAD + "noop\n" + line + "\n") == [f"f.seq:4: {message}"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = HEAD + "noop\nbogus\nnoop on-fail never\nset_mode mode=9\n"
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["4", "5", "6"]
    assert str(s.SequenceErrors([s.Problem("f.seq", 4, "x"), s.Problem("f.seq", 5, "y")])) \
        == "f.seq:4: x (and 1 more); nothing was sent"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.seq: empty: a sequence starts with the header `ilrs-sequence 1`"),
        ("# only a comment\n", "f.seq: empty: a sequence starts with the header "
                               "`ilrs-sequence 1`"),
        ("ilrs-sequence 1\nname t\n", "f.seq: no steps: a sequence has 1 to 256"),
        ("ilrs-sequence 2\nnoop\n", "f.seq:1: unsupported format '2': this ground reads "
                                    "`ilrs-sequence 1`"),
        ("noop\n", "f.seq:1: the first line must be the header `ilrs-sequence 1`, not 'noop'"),
        (HEAD + "noop\nname u\n", "f.seq:4: `name` belongs before the first step"),
        ("ilrs-sequence 1\nname a b\nnoop\n", "f.seq:2: name takes one word (no spaces)"),
        ("ilrs-sequence 1\nname seventeen_bytes__\nnoop\n",
         "f.seq:2: sequence name 'seventeen_bytes__' is 17 bytes: at most 16, without spaces"),
        ("ilrs-sequence 1\nname ÅÅÅÅÅÅÅÅÅ\nnoop\n",
         "f.seq:2: sequence name 'ÅÅÅÅÅÅÅÅÅ' is 18 bytes: at most 16, without spaces"),
        (HEAD + "trigger SUNST\nnoop\n", "f.seq:3: trigger: unknown trigger 'SUNST': one of "
                                         "SUNSET, SUNRISE"),
        (HEAD + "trigger BATTERY_BELOW\nnoop\n", "f.seq:3: trigger BATTERY_BELOW takes a "
         "level: the battery charge in % (trigger BATTERY_BELOW 25)"),
        (HEAD + "trigger BATTERY_BELOW 120\nnoop\n", "f.seq:3: trigger: argument level: "
         "120.0 is out of range: allowed 0 to 100 %"),
        (HEAD + "trigger SUNSET 3\nnoop\n", "f.seq:3: trigger SUNSET takes no level"),
        (HEAD + "trigger SUNSET\ntrigger SUNRISE\nnoop\n", "f.seq:4: a second `trigger`"),
        (HEAD + "modes NOMINAL BOOT\nnoop\n", "f.seq:3: modes: unknown mode 'BOOT': one of "
                                              "SAFE, NOMINAL, SCIENCE"),
        (HEAD + "modes\nnoop\n", "f.seq:3: modes needs at least one of SAFE, NOMINAL, "
                                 "SCIENCE"),
    ],
)
def test_header_and_directive_problems(text: str, message: str) -> None:
    assert problems(text) == [message]


def test_too_many_steps_names_the_first_one_over() -> None:
    text = HEAD + "noop\n" * 257
    assert problems(text) == ["f.seq:259: step 257: a sequence has at most 256 steps"]
    assert len(s.parse(HEAD + "noop\n" * 256).steps) == 256


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(s.SequenceErrors) as info:
        s.load(tmp_path / "missing.seq")
    assert str(info.value.problems[0]).startswith(f"{tmp_path / 'missing.seq'}: cannot read:")
    (tmp_path / "bin.seq").write_bytes(b"\xff\xfe")
    with pytest.raises(s.SequenceErrors, match="cannot read"):
        s.load(tmp_path / "bin.seq")


def test_times_round_trip() -> None:
    for ms in (0, 1, 999, 1000, 59_999, 3_600_000, 3_600_250, s.MAX_MS):
        assert s.parse_time(s.format_time(ms)) == ms
    assert s.format_time(3_600_250) == "01:00:00.250"
    assert s.parse_time("0:00:01.5") == 1500 and s.parse_time("0:00:01.05") == 1050


# --- the canonical text reads back as the same sequence ------------------------------------

_MODE = st.sampled_from(sorted(s.RUN_MODES))
_ON_FAIL = st.sampled_from((s.STOP, s.SKIP, s.SAFE))
_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


def _f32_in(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Single-precision values within [lo, hi], as validate.convert makes them."""
    return st.floats(lo, hi).map(lambda x: struct.unpack("<f", struct.pack("<f", x))[0]) \
        .filter(lambda x: lo <= x <= hi)


def _arg_value(arg: object, draw: st.DrawFn) -> object:
    from protocol import dictionary_types as t

    a = arg
    assert isinstance(a, t.Arg)
    if a.type == t.BOOL:
        return draw(st.booleans())
    if a.type == t.F32:
        return draw(_f32_in(a.lo, a.hi))
    lo, hi = t.TYPE_RANGES[a.type]
    lo = lo if a.lo is None else a.lo
    hi = hi if a.hi is None else a.hi
    return draw(st.integers(lo, hi))


@st.composite
def command_steps(draw: st.DrawFn) -> s.CommandStep:
    from protocol import dictionary_types as t

    usable = [c for c in d.COMMANDS if not c.hazardous
              and all(a.type != t.ANY for a in c.args) and c.name != "param_get"]
    cmd = draw(st.sampled_from(usable))
    args = tuple(_arg_value(a, draw) for a in cmd.args)
    return s.CommandStep(0, draw(st.integers(0, s.MAX_MS)), cmd, args, draw(_ON_FAIL))


@st.composite
def param_steps(draw: st.DrawFn) -> s.CommandStep:
    from protocol import dictionary_types as t

    par = draw(st.sampled_from([p for p in d.PARAMS]))
    if par.type == t.BOOL:
        value: object = draw(st.booleans())
    elif par.type == t.F32:
        value = draw(_f32_in(par.lo, par.hi))
    else:
        value = draw(st.integers(par.lo, par.hi))
    cmd = validate.COMMANDS["param_set"]
    return s.CommandStep(0, draw(st.integers(0, 10**6)), cmd, (par.id, value), draw(_ON_FAIL))


@st.composite
def wait_steps(draw: st.DrawFn) -> s.WaitStep:
    from protocol import dictionary_types as t

    ch = draw(st.sampled_from(d.CHANNELS))
    if ch.type == t.BOOL:
        value: object = draw(st.booleans())
    elif ch.type == t.F32:
        value = draw(_F32)
    else:
        value = draw(st.integers(*t.TYPE_RANGES[ch.type]))
    return s.WaitStep(0, ch, draw(st.integers(0, len(s.OPS) - 1)), value,
                      draw(st.integers(0, s.MAX_MS)), draw(_ON_FAIL))


@st.composite
def sequences(draw: st.DrawFn) -> s.Sequence:
    name = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Z", "C")),
                        min_size=1, max_size=16).filter(lambda n: not s.name_problem(n)
                                                         and "#" not in n))
    steps = draw(st.lists(st.one_of(command_steps(), param_steps(), wait_steps()),
                          min_size=1, max_size=12))
    trigger = draw(st.none() | st.sampled_from(sorted(s.TRIGGERS)))
    level = draw(_f32_in(0.0, 100.0)) if trigger == s.BATTERY_BELOW else 0.0
    modes = draw(st.none() | st.frozensets(_MODE, min_size=1))
    return s.Sequence(name, tuple(steps), trigger, level, modes)


def _without_lines(seq: s.Sequence) -> s.Sequence:
    return seq._replace(steps=tuple(st_._replace(line=0) for st_ in seq.steps), path="",
                        trigger_line=0, modes_line=0)


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_render_then_parse_is_the_same_sequence(seq: s.Sequence) -> None:
    text = s.render(seq)
    back = s.parse(text, "x.seq")
    assert _without_lines(back) == _without_lines(seq)
    assert s.render(back) == text  # and the text is a fixed point
