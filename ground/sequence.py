"""Stored sequences as a person writes them: the text format, parsed and written back.

A sequence file (format version 1, docs/sequences.md)::

    ilrs-sequence 1                      # the header: first line that is not blank or a comment
    name night_entry                     # at most 16 bytes (default: the file's stem)
    trigger SUNSET                       # optional: NONE, SAFE_ENTRY, SUNSET, SUNRISE,
                                         #   BATTERY_BELOW <percent>
    modes NOMINAL SCIENCE                # optional: the modes the sequence may start in
    +00:00:00 load_switch channel=payload_a on=false  on-fail skip
    +00:00:02 heater_setpoint heater=battery setpoint=5
    wait battery_soc >= 60 timeout 48:00:00  on-fail stop

Command steps are ``[+H:MM:SS[.mmm]] COMMAND [arg=value ...] [on-fail stop|skip|safe]``: the
delay after the previous step ended (none written: no delay), then the command with its
arguments typed exactly as for ``ground cmd`` (``ground.validate``: enum names, true/false,
parameter names). Wait steps are ``wait CHANNEL OP VALUE timeout H:MM:SS[.mmm]
[on-fail ...]`` with OP one of ``< <= == >= > !=``. ``on-fail`` defaults to ``stop``. ``#``
starts a comment anywhere on a line.

``parse(text, path)`` returns a ``Sequence`` or raises ``SequenceErrors`` carrying every
problem found, each with its line; ``render(sequence)`` writes the canonical text back, which
parses to the same sequence. The mode-order check is ``ground.seqcheck``; the image the node
stores is ``ground.seqimage``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any, Final, NamedTuple

from ground import validate
from ground.errors import EXIT_USAGE, UsageError
from protocol import dictionary as d
from protocol import dictionary_types as t

HEADER: Final = "ilrs-sequence"
FORMAT_VERSION: Final = 1
MAX_NAME_BYTES: Final = 16
MAX_STEPS: Final = 256
MAX_MS: Final = 0xFFFFFFFF  # delays and timeouts are u32 node-time milliseconds

# on_fail codes of the image (the stored-sequence interface).
STOP: Final = 0
SKIP: Final = 1
SAFE: Final = 2
ON_FAIL: Final[dict[str, int]] = {name.lower(): code for code, name in d.SEQ_ON_FAIL.items()}
ON_FAIL_NAMES: Final[dict[int, str]] = {v: k for k, v in ON_FAIL.items()}

# Wait operators, in code order (SPEC §12.1).
OPS: Final[tuple[str, ...]] = tuple(d.SEQ_OPS[i] for i in range(len(d.SEQ_OPS)))

# Onboard triggers: code -> name; BATTERY_BELOW takes a level (battery charge, %; SPEC §12.5).
TRIGGERS: Final[dict[int, str]] = dict(d.SEQ_TRIGGERS)
TRIGGER_CODES: Final[dict[str, int]] = {v: k for k, v in TRIGGERS.items()}
BATTERY_BELOW: Final = 4
RUN_MODES: Final[dict[int, str]] = {m: n for m, n in t.MODE_NAMES.items() if m != t.MODE_BOOT}

_TIME = re.compile(r"(\d+):([0-5]\d):([0-5]\d)(?:\.(\d{1,3}))?")


class Problem(NamedTuple):
    path: str
    line: int  # 1-based; 0 for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else \
            f"{self.path}: {self.message}"


class SequenceErrors(UsageError):
    """A sequence file with problems: every one, with its line (``file:line: message``)."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: Seq[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else Problem("?", 0, "no problem")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}; nothing was sent")


class CommandStep(NamedTuple):
    line: int
    delay_ms: int
    command: t.Command
    args: tuple[Any, ...]  # wire values, as validate.prepare makes them
    on_fail: int


class WaitStep(NamedTuple):
    line: int
    channel: t.Channel
    op: int  # index into OPS
    value: Any
    timeout_ms: int
    on_fail: int


Step = CommandStep | WaitStep


class Sequence(NamedTuple):
    name: str
    steps: tuple[Step, ...]
    trigger: int | None = None  # None: the file declares none
    level: float = 0.0  # BATTERY_BELOW's level, %
    modes: frozenset[int] | None = None  # declared starting modes
    path: str = "<sequence>"
    trigger_line: int = 0  # where trigger and modes were declared (0: not declared)
    modes_line: int = 0


# --- times -------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """``H:MM:SS[.mmm]`` -> milliseconds; ValueError with the reason."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a time: write H:MM:SS or H:MM:SS.mmm (00:05:00)")
    h, mi, s, frac = m.groups()
    ms = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1000 + int((frac or "0").ljust(3, "0"))
    if ms > MAX_MS:
        raise ValueError(f"{text} is longer than the node counts ({format_time(MAX_MS)})")
    return ms


def format_time(ms: int) -> str:
    s, frac = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" + (f".{frac:03d}" if frac else "")


# --- parsing -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.name: str | None = None
        self.trigger: int | None = None
        self.level = 0.0
        self.modes: frozenset[int] | None = None
        self.trigger_line = 0
        self.modes_line = 0
        self.steps: list[Step] = []
        self.header = False

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def line(self, n: int, words: list[str]) -> None:
        if not self.header:
            if words[0] != HEADER:
                self.problem(n, f"the first line must be the header `{HEADER} "
                                f"{FORMAT_VERSION}`, not {words[0]!r}")
                self.header = True  # say it once, then read on
                self.line(n, words)  # (its own error if it is a step)
                return
            if len(words) != 2 or words[1] != str(FORMAT_VERSION):
                self.problem(n, f"unsupported format {' '.join(words[1:])!r}: this ground "
                                f"reads `{HEADER} {FORMAT_VERSION}`")
            self.header = True
            return
        head = words[0]
        if head in ("name", "trigger", "modes"):
            if self.steps:
                self.problem(n, f"`{head}` belongs before the first step")
                return
            getattr(self, "_" + head)(n, words[1:])
        elif head == HEADER:
            self.problem(n, "a second header line")
        elif head == "wait":
            self._wait(n, words[1:])
        elif head.startswith("+"):
            delay = self._time(n, head[1:])
            rest = words[1:]
            if not rest:
                self.problem(n, "a delay needs a command after it on the same line")
            elif rest[0] == "wait":
                self.problem(n, "a wait step has no delay: it starts when the step before "
                                "it ends (write the wait on its own)")
            elif delay is not None:
                self._command(n, rest, delay)
        else:
            self._command(n, words, 0)

    # directives

    def _name(self, n: int, words: list[str]) -> None:
        if len(words) != 1:
            self.problem(n, "name takes one word (no spaces)")
            return
        if self.name is not None:
            self.problem(n, "a second `name`")
        problem = name_problem(words[0])
        if problem:
            self.problem(n, problem)
        self.name = words[0]

    def _trigger(self, n: int, words: list[str]) -> None:
        if self.trigger is not None:
            self.problem(n, "a second `trigger`")
            return
        if not words or words[0] not in TRIGGER_CODES:
            hint = validate.closest(words[0], TRIGGER_CODES) if words else []
            self.problem(n, f"trigger: unknown trigger {' '.join(words)!r}: one of "
                            f"{', '.join(hint or TRIGGER_CODES)}")
            return
        code = TRIGGER_CODES[words[0]]
        if code == BATTERY_BELOW:
            if len(words) != 2:
                self.problem(n, "trigger BATTERY_BELOW takes a level: the battery charge in "
                                "% (trigger BATTERY_BELOW 25)")
                return
            try:
                self.level = validate.convert("trigger", "level", words[1], t.F32, 0.0, 100.0,
                                              "%", None)
            except UsageError as exc:
                self.problem(n, str(exc))
                return
        elif len(words) != 1:
            self.problem(n, f"trigger {words[0]} takes no level")
            return
        self.trigger = code
        self.trigger_line = n

    def _modes(self, n: int, words: list[str]) -> None:
        if self.modes is not None:
            self.problem(n, "a second `modes`")
            return
        by_name = {v: k for k, v in RUN_MODES.items()}
        modes = set()
        for w in words:
            if w not in by_name:
                self.problem(n, f"modes: unknown mode {w!r}: one of {', '.join(by_name)}")
                return
            modes.add(by_name[w])
        if not modes:
            self.problem(n, f"modes needs at least one of {', '.join(by_name)}")
            return
        self.modes = frozenset(modes)
        self.modes_line = n

    # steps

    def _time(self, n: int, text: str) -> int | None:
        try:
            return parse_time(text)
        except ValueError as exc:
            self.problem(n, str(exc))
            return None

    def _on_fail(self, n: int, words: list[str]) -> tuple[list[str], int | None]:
        """Split ``on-fail X`` off the end of a step's words."""
        if "on-fail" not in words:
            return words, STOP
        i = words.index("on-fail")
        tail = words[i + 1:]
        if len(tail) != 1 or tail[0] not in ON_FAIL:
            self.problem(n, f"on-fail takes one of {', '.join(ON_FAIL)}, at the end of the "
                            f"step (got {' '.join(tail) or 'nothing'!r})")
            return words[:i], None
        return words[:i], ON_FAIL[tail[0]]

    def _command(self, n: int, words: list[str], delay: int) -> None:
        words, on_fail = self._on_fail(n, words)
        if not words:
            self.problem(n, "a step without a command")
            return
        try:
            cmd, args = validate.prepare(
                words[0], validate.parse_assignments(words[0], words[1:]))
        except UsageError as exc:
            self.problem(n, str(exc))
            return
        if cmd.hazardous:
            self.problem(n, f"{cmd.name} is hazardous: a stored sequence cannot run it "
                            f"(send it from the ground: ground cmd {cmd.name} --yes)")
            return
        if on_fail is not None:
            self.steps.append(CommandStep(n, delay, cmd, tuple(args), on_fail))

    def _wait(self, n: int, words: list[str]) -> None:
        words, on_fail = self._on_fail(n, words)
        if len(words) != 5 or words[3] != "timeout":
            self.problem(n, "write a wait as `wait CHANNEL OP VALUE timeout H:MM:SS "
                            "[on-fail stop|skip|safe]`")
            return
        name, op, raw, _, timeout = words
        try:
            channel = validate.channel(name)
        except UsageError as exc:
            self.problem(n, f"wait: {exc}")
            return
        if op not in OPS:
            self.problem(n, f"wait: unknown comparison {op!r}: one of {' '.join(OPS)}")
            return
        try:
            value = wait_value(channel, raw)
        except UsageError as exc:
            self.problem(n, str(exc))
            return
        timeout_ms = self._time(n, timeout)
        if timeout_ms is not None and on_fail is not None:
            self.steps.append(WaitStep(n, channel, OPS.index(op), value, timeout_ms, on_fail))


def name_problem(name: str) -> str:
    """Why a sequence name is not acceptable, or ''."""
    size = len(name.encode())
    if size == 0:
        return "the sequence name is empty"
    if size > MAX_NAME_BYTES or any(c.isspace() for c in name):
        return (f"sequence name {name!r} is {size} bytes: at most {MAX_NAME_BYTES}, "
                "without spaces")
    return ""


def wait_value(channel: t.Channel, raw: Any) -> Any:
    """A wait's value, typed as the channel (enum names, true/false, numbers in range)."""
    what = f"wait {channel.name}"
    if channel.type == t.BOOL:
        return validate.convert(what, "value", raw, t.BOOL, None, None, "", None)
    if channel.type == t.F32:
        return validate.convert(what, "value", raw, t.F32, None, None, channel.unit, None)
    return validate.convert(what, "value", raw, channel.type, None, None, channel.unit,
                            channel.enum)


def _words(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def parse(text: str, path: str = "<sequence>") -> Sequence:
    """The sequence in ``text``; SequenceErrors with every problem (file:line: message)."""
    p = _Parser(path)
    for n, line in enumerate(text.splitlines(), 1):
        words = _words(line)
        if words:
            p.line(n, words)
    if not p.header:
        p.problem(0, f"empty: a sequence starts with the header `{HEADER} {FORMAT_VERSION}`")
    elif not p.steps and not p.problems:
        p.problem(0, "no steps: a sequence has 1 to 256")
    if len(p.steps) > MAX_STEPS:
        p.problem(p.steps[MAX_STEPS].line, f"step {MAX_STEPS + 1}: a sequence has at most "
                                           f"{MAX_STEPS} steps")
    name = p.name if p.name is not None else Path(path).stem
    if p.name is None and name_problem(name):
        p.problem(0, f"no `name` line, and the file's stem {name!r} cannot be the name "
                     f"(at most {MAX_NAME_BYTES} bytes, no spaces): add `name NAME`")
    if p.problems:
        raise SequenceErrors(p.problems)
    return Sequence(name, tuple(p.steps), p.trigger, p.level, p.modes, path, p.trigger_line,
                    p.modes_line)


def load(path: str | Path) -> Sequence:
    """Read and parse a sequence file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SequenceErrors([Problem(str(path), 0, f"cannot read: {exc}")]) from None
    return parse(text, str(path))


# --- writing back ------------------------------------------------------------------------


def format_number(x: float) -> str:
    """The shortest text that reads back as the same single-precision value."""
    for digits in range(6, 18):
        text = f"{x:.{digits}g}"
        if struct.pack("<f", float(text)) == struct.pack("<f", x):
            return text
    return repr(x)


def _value(value: Any, type_: str, enum: dict[int, str] | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if enum and isinstance(value, int) and value in enum:
        return enum[value]
    if isinstance(value, float) and type_ == t.F32:
        return format_number(value)
    return repr(value) if isinstance(value, float) else str(value)


def render_args(cmd: t.Command, args: Iterable[Any]) -> list[str]:
    """``key=value`` words that validate.prepare reads back as ``args``."""
    out = []
    target: t.Param | None = None
    for arg, value in zip(cmd.args, args, strict=True):
        if arg.name == "param" and cmd.name in ("param_get", "param_set"):
            target = validate.PARAMS_BY_ID.get(value)
            out.append(f"param={target.name if target else value}")
        elif arg.type == t.ANY and target is not None:
            out.append(f"{arg.name}={_value(value, target.type, None)}")
        else:
            out.append(f"{arg.name}={_value(value, arg.type, arg.enum)}")
    return out


def render_step(step: Step) -> str:
    fail = "" if step.on_fail == STOP else f" on-fail {ON_FAIL_NAMES[step.on_fail]}"
    if isinstance(step, WaitStep):
        ch = step.channel
        return (f"wait {ch.name} {OPS[step.op]} {_value(step.value, ch.type, ch.enum)} "
                f"timeout {format_time(step.timeout_ms)}{fail}")
    words = [f"+{format_time(step.delay_ms)}", step.command.name,
             *render_args(step.command, step.args)]
    return " ".join(words) + fail


def render(seq: Sequence) -> str:
    """The canonical text of ``seq``: ``parse`` reads it back as the same sequence."""
    lines = [f"{HEADER} {FORMAT_VERSION}", f"name {seq.name}"]
    if seq.trigger is not None:
        level = f" {format_number(seq.level)}" if seq.trigger == BATTERY_BELOW else ""
        lines.append(f"trigger {TRIGGERS[seq.trigger]}{level}")
    if seq.modes is not None:
        lines.append("modes " + " ".join(RUN_MODES[m] for m in sorted(seq.modes)))
    lines += [render_step(s) for s in seq.steps]
    return "\n".join(lines) + "\n"


def describe_modes(modes: Iterable[int]) -> str:
    names = [d.MODES[m] for m in sorted(modes)]
    return " or ".join(names) if names else "no mode"
