"""The steps of a ground script: the HIL vocabulary's verbs, each logged with its file:line.

A `Steps` wraps one `hil.vocabulary.NodeApi` (the very object a HIL test gets as ``node``) and
turns each verb into a *step*: a ``begin`` record in the session log before it starts, an
``end`` record with its outcome after, a line on the terminal, and the script's file:line for
both. ``ground.script`` runs a script with these verbs as plain functions.

Session log records (``note`` records of format ``ilrs-ground-log`` 1, so ``ground replay``
shows their ``text``; the ``step`` object is for programs)::

    {"t_ns": …, "type": "note", "text": "step 3 begin checkout.py:12 command set_mode mode=NOMINAL",
     "step": {"n": 3, "phase": "begin", "at": "checkout.py:12", "verb": "command",
              "what": "set_mode mode=NOMINAL"}}
    {"t_ns": …, "type": "note", "text": "step 3 passed checkout.py:12 command set_mode …: …",
     "step": {"n": 3, "phase": "end", "at": …, "verb": …, "what": …, "outcome": "passed",
              "detail": "accepted, completed (seq 4711)", "seq": 4711}}

``outcome`` is one of ``passed``, ``failed`` (a check was false, a command was not completed,
a wait ended without what it wanted), ``interrupted`` (Ctrl-C, SIGTERM), ``unknown`` (a
command whose final verification never came: the node may or may not have run it) or
``error`` (the step raised something else: a bad name, the link lost). ``seq`` is in the
records of command steps once the command was sent. ``note(text)`` writes a ``note`` record
with ``script_note`` (``at``, ``text``).

Ctrl-C during a command does not abandon it half-sent: the first Ctrl-C is held until the
command's verification arrives (or its timeout ends), the step is logged with that outcome,
and then the script stops; a second Ctrl-C stops at once and the step is logged ``unknown``
with what did arrive.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final

from rich.console import Console
from rich.markup import escape

from ground import codec, validate, values
from ground.client import STALE_BOOT
from ground.errors import (
    CommandError,
    GroundError,
    OutcomeUnknown,
    UsageError,
    VerificationTimeout,
)
from ground.lifetime import first_interrupt_held
from ground.log import SessionLog
from ground.values import ChannelValue, EventRecord
from ground.where import first_argument, location, script_frame
from hil.predicates import Predicate, as_predicate
from hil.vocabulary import NodeApi

PASSED: Final = "passed"
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"
UNKNOWN: Final = "unknown"
ERROR: Final = "error"

_STYLE: Final = {PASSED: "green", FAILED: "bold red", INTERRUPTED: "yellow",
                 UNKNOWN: "bold yellow", ERROR: "bold red"}
_MARK: Final = {PASSED: "ok", FAILED: "FAILED", INTERRUPTED: "interrupted",
                UNKNOWN: "UNKNOWN", ERROR: "error"}
_TRUE: Final = Predicate(bool, "is true")


class StepFailed(AssertionError):
    """A step failed: a check was false, a command was not completed, a wait timed out.

    ``at`` is the script's file:line, ``step`` its number; the message says what was
    expected and what came (and where the session log is)."""

    def __init__(self, n: int, at: str, verb: str, message: str) -> None:
        self.n = n
        self.at = at
        self.verb = verb
        self.message = message
        super().__init__(f"step {n} at {at}: {verb} failed: {message}")


class Step:
    """One step in progress; ``detail`` and ``seq`` are filled in as it goes."""

    def __init__(self, n: int, at: str, verb: str, what: str) -> None:
        self.n = n
        self.at = at
        self.verb = verb
        self.what = what
        self.detail = ""
        self.seq: int | None = None
        self.outcome = ""


def describe_args(args: dict[str, Any]) -> str:
    return " ".join(f"{k}={values.format_value(v)}" for k, v in args.items())


class Steps:
    """The script vocabulary over one NodeApi; every verb is a logged step."""

    def __init__(self, api: NodeApi, out: Console, log: SessionLog | None) -> None:
        self.api = api
        self.out = out
        self.log = log
        self.count = 0
        self.failed: Step | None = None  # the step that ended the script, if one did
        self.last: Step | None = None
        self._since = 0  # wait_event looks at events after the last command was sent

    # --- the step machinery -----------------------------------------------------------------

    def _record(self, step: Step, phase: str) -> None:
        fields: dict[str, Any] = {"n": step.n, "phase": phase, "at": step.at, "verb": step.verb,
                                  "what": step.what}
        if phase == "begin":
            text = f"step {step.n} begin {step.at} {step.verb} {step.what}".rstrip()
        else:
            fields.update(outcome=step.outcome, detail=step.detail)
            if step.seq is not None:
                fields["seq"] = step.seq
            text = (f"step {step.n} {step.outcome} {step.at} {step.verb} {step.what}".rstrip()
                    + (f": {step.detail}" if step.detail else ""))
        if self.log is not None:
            self.log.note(text, step=fields)

    def _show(self, step: Step) -> None:
        style = _STYLE[step.outcome]
        detail = f"  {escape(step.detail)}" if step.detail else ""
        self.out.print(f"[dim]{step.n:>3} {escape(step.at)}[/dim]  {step.verb} "
                       f"{escape(step.what)}  [{style}]{_MARK[step.outcome]}[/{style}]{detail}")

    @contextmanager
    def step(self, verb: str, what: str, frame: FrameType | None = None) -> Iterator[Step]:
        """Log ``verb what`` as a step around the body; the outcome follows what it raises."""
        self.count += 1
        step = Step(self.count, location(script_frame(frame or sys._getframe(1))), verb, what)
        self.last = step
        self._record(step, "begin")
        try:
            with self._running(step):
                yield step
        except StepFailed as exc:
            self._end(step, FAILED, exc.message)
            raise
        except AssertionError as exc:  # the vocabulary's HilTimeout / HilAssertion
            self._end(step, FAILED, str(exc))
            raise StepFailed(step.n, step.at, verb, str(exc)) from None
        except (KeyboardInterrupt, SystemExit) as exc:
            self._end(step, step.outcome or INTERRUPTED, step.detail or _interruption(exc))
            raise
        except BaseException as exc:  # lifetime.Terminated, GroundError, a bug
            if type(exc).__name__ == "Terminated":
                self._end(step, step.outcome or INTERRUPTED, step.detail or f"stopped by {exc}")
            else:
                self._end(step, step.outcome or ERROR,
                          step.detail or f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._end(step, step.outcome or PASSED, step.detail)

    def _running(self, step: Step) -> contextlib.AbstractContextManager[Any]:
        """On a terminal, the step being run under a spinner until its line is printed."""
        if not self.out.is_terminal:
            return contextlib.nullcontext()
        return self.out.status(f"[dim]{step.n:>3} {escape(step.at)}[/dim]  {step.verb} "
                               f"{escape(step.what)}")

    def _end(self, step: Step, outcome: str, detail: str) -> None:
        step.outcome = outcome
        step.detail = detail
        if outcome != PASSED:
            self.failed = step
        self._record(step, "end")
        self._show(step)

    # --- commands ---------------------------------------------------------------------------

    def _command_step(self, verb: str, name: str, args: dict[str, Any],
                      send: Callable[[], Any], describe: Callable[[Any], str] = lambda _r: "",
                      ) -> Any:
        what = f"{name} {describe_args(args)}".rstrip()
        with self.step(verb, what, sys._getframe(1)) as step:
            cmd = validate.command(name)  # a bad name: this step's error
            mark = self._since = self.api.mark()

            def on_hold() -> None:
                sys.stderr.write(f"ground: Ctrl-C: waiting for the verification of step "
                                 f"{step.n} ({step.what}); Ctrl-C again stops at once, its "
                                 "outcome unknown\n")
                sys.stderr.flush()

            held: list[int] = []
            try:
                with first_interrupt_held(on_hold) as held:
                    result = send()
            except BaseException as exc:
                stages, step.seq = self._verifications(cmd.id, mark)
                if isinstance(exc, AssertionError) and not held:
                    cause = exc.__context__
                    if isinstance(cause, GroundError) and not isinstance(
                            cause, CommandError | VerificationTimeout):
                        # the link, or a reboot that leaves the outcome unknown: not a
                        # failed step but what the ground says it is (exit 3, 7, ...)
                        step.outcome = UNKNOWN if isinstance(cause, OutcomeUnknown) else ERROR
                        step.detail = str(cause)
                        raise cause from None
                    raise  # rejected, failed, no final verification: step() says failed
                # Ctrl-C (held, or a second one at once), SIGTERM: say what is known
                step.outcome = _final_outcome(stages)
                step.detail = (_stages_text(stages, step.seq) or "nothing received for it") \
                    + (", then Ctrl-C" if held else "")
                if held:
                    raise KeyboardInterrupt from None
                raise
            stages, step.seq = self._verifications(cmd.id, mark)
            step.detail = _stages_text(stages, step.seq) + describe(result)
            if held:  # the outcome is logged with the step, then the script stops
                step.outcome = PASSED
                step.detail += ", then Ctrl-C"
                raise KeyboardInterrupt
            return result

    def _verifications(self, cmd_id: int, mark: int) -> tuple[list[str], int | None]:
        """The stages received for the command sent after ``mark`` (the script's only one in
        flight), as text, and its seq."""
        found = [m for pos, m in list(self.api.history.verifications)
                 if pos > mark and m.id == cmd_id]
        if not found:
            return [], None
        seq = found[-1].body[0]
        stages = []
        for m in found:
            if m.body[0] != seq:
                continue
            stage = codec.stage_name(m.body[1])
            if stage == "rejected" and m.body[2] == STALE_BOOT and m is not found[-1]:
                continue  # an attempt bound to a boot not known yet: re-sent bound (§5.1)
            text = stage if m.body[2] == 0 else f"{stage} {codec.reason_name(m.body[2])}"
            if text not in stages:
                stages.append(text)
        return stages, int(seq)

    def command(self, name: str, /, *, timeout: float | None = None, **args: Any) -> Any:
        """Send a command; the step passes when it is accepted then completed. Returns what
        `completed` carried (``param_get``: the value)."""
        def describe(result: Any) -> str:
            return "" if result is None else f" -> {values.format_value(result)}"

        return self._command_step("command", name, args, lambda: self.api.send_and_assert_command(
            name, timeout=timeout, **args), describe)

    def command_rejected(self, name: str, reason: str | int, /, *, timeout: float | None = None,
                         **args: Any) -> codec.Message:
        """Send exactly these arguments; the step passes when the node rejects them with
        ``reason``."""
        return self._command_step(  # type: ignore[no-any-return]
            "command_rejected", name, args, lambda: self.api.assert_command_rejected(
                name, reason, timeout=timeout, **args))

    def command_failed(self, name: str, reason: str | int, /, *, timeout: float | None = None,
                       **args: Any) -> codec.Message:
        """Send; the step passes when the node accepts it and then fails it with ``reason``."""
        return self._command_step(  # type: ignore[no-any-return]
            "command_failed", name, args, lambda: self.api.assert_command_failed(
                name, reason, timeout=timeout, **args))

    def send(self, name: str, /, **args: Any) -> int:
        """Send a command without waiting for its verification; returns its seq."""
        with self.step("send", f"{name} {describe_args(args)}".rstrip()) as step:
            self._since = self.api.mark()
            step.seq = self.api.send_command(name, **args)
            step.detail = f"sent (seq {step.seq})"
            return step.seq

    # --- telemetry and events ---------------------------------------------------------------

    def wait_telemetry(self, channel: str, predicate: Any = None, /, *, timeout: float = 10.0,
                       ) -> ChannelValue:
        """Wait for a new sample of ``channel`` satisfying ``predicate`` (a predicate, a
        callable, or a value to equal; none: any new sample); returns it."""
        predicate = _named(channel, predicate)
        pred = "any value" if predicate is None else str(as_predicate(predicate))
        with self.step("wait_telemetry", f"{channel} {pred} (within {timeout:g} s)") as step:
            started = time.monotonic()
            value = self.api.await_telemetry(channel, predicate, timeout=timeout)
            step.detail = f"{channel} = {_text(value)} after {time.monotonic() - started:.1f} s"
            return value

    def check_telemetry(self, channel: str, predicate: Any, /, *, timeout: float = 10.0,
                        ) -> ChannelValue:
        """The next sample of ``channel`` satisfies ``predicate`` (fails at once if not)."""
        predicate = _named(channel, predicate)
        with self.step("check_telemetry", f"{channel} {as_predicate(predicate)}") as step:
            value = self.api.assert_telemetry(channel, predicate, timeout=timeout)
            step.detail = f"{channel} = {_text(value)}"
            return value

    def wait_event(self, name: str, /, *, timeout: float = 10.0, since: int | None = None,
                   **args: Any) -> EventRecord:
        """Wait for event ``name`` whose arguments match ``args`` (values or predicates).

        It looks at the events received since the last command step began (``command``,
        ``command_rejected``, ``command_failed``, ``send``; before any: since the script
        began), so an event a command caused is found even if it came with the command's
        verification, and one from before that command is not; ``since=mark()`` looks only
        at events after that mark."""
        what = f"{name} {describe_args(args)}".rstrip() + f" (within {timeout:g} s)"
        with self.step("wait_event", what) as step:
            start = self._since if since is None else since
            event = self.api.assert_event(name, timeout=timeout, since=start, **args)
            step.detail = f"{event.name}: {event.text} (event {event.event_seq})"
            return event

    def wait_events(self, *names: str, timeout: float = 10.0) -> list[EventRecord]:
        """Wait for these events in this order (others may come between), received since the
        last command step began."""
        with self.step("wait_events", " -> ".join(names) + f" (within {timeout:g} s)") as step:
            found = self.api.await_event_sequence(names, timeout=timeout, since=self._since)
            step.detail = ", ".join(f"{e.name} (event {e.event_seq})" for e in found)
            return found

    def no_event(self, name: str, /, *, during: float = 1.0) -> None:
        """No event ``name`` arrives within ``during`` seconds from now."""
        with self.step("no_event", f"{name} during {during:g} s") as step:
            self.api.assert_no_event(name, during=during)
            step.detail = f"no {name}"

    # --- checks and the rest ----------------------------------------------------------------

    def check(self, value: Any, expected: Any = None, /,
              what: str | None = None) -> Any:
        """Check ``value`` against ``expected`` (a predicate, a callable, or a value to
        equal; none: true); the step fails if it does not hold. Returns the value."""
        pred = _TRUE if expected is None else as_predicate(expected)
        frame = script_frame(sys._getframe(1))
        label = what or (first_argument(frame, "check") if frame is not None else "") \
            or "value"
        with self.step("check", f"{label} {pred}", frame) as step:
            shown = _text(value) if isinstance(value, ChannelValue) \
                else values.format_value(value)
            raw = value.value if isinstance(value, ChannelValue) else value
            step.detail = f"{label} = {shown}"
            if not pred(raw):
                raise StepFailed(step.n, step.at, "check",
                                 f"{label} = {shown}, expected {pred}")
            return value

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (times the time scale)."""
        with self.step("sleep", f"{seconds:g} s"):
            self.api.sleep(seconds)

    def status(self) -> Any:
        """The node's status, asked now (mode, boot_count, reset_cause, uptime_ms, …)."""
        with self.step("status", "") as step:
            st = self.api.status()
            step.detail = f"mode {st.mode}, boot {st.boot_count}, uptime {st.uptime_ms} ms"
            return st

    def note(self, text: str) -> None:
        """A remark in the session log and on the terminal (not a step)."""
        at = location(script_frame(sys._getframe(1)))
        if self.log is not None:
            self.log.note(f"{at} {text}", script_note={"at": at, "text": text})
        self.out.print(f"[dim]    {escape(at)}[/dim]  [cyan]{escape(text)}[/cyan]")


def _text(value: ChannelValue) -> str:
    """A sample as a person reads it: value, unit, and its limit state when not nominal."""
    text = f"{value.text} {value.unit}".rstrip()
    return text + (f" ({value.state})" if value.state in ("yellow", "red") else "")


def _named(channel: str, predicate: Any) -> Any:
    """A name given for an enum channel's value (``"NOMINAL"`` for ``mode``) means its
    number, shown by name; anything else is as given."""
    enum = validate.channel(channel).enum
    if isinstance(predicate, str) and enum:
        number = next((k for k, v in enum.items() if v == predicate.upper()), None)
        if number is None:
            raise UsageError(f"{channel} has no value {predicate!r}: one of "
                             f"{', '.join(enum.values())}")
        return Predicate(lambda v: v == number, f"== {enum[number]}")
    return predicate


def _interruption(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r})"
    return "Ctrl-C"


def _stages_text(stages: Sequence[str], seq: int | None) -> str:
    text = ", ".join(stages)
    return f"{text} (seq {seq})" if seq is not None and text else text


def _final_outcome(stages: Sequence[str]) -> str:
    """A command's outcome from its stages: unknown without a final one."""
    if not stages or stages[-1] == "accepted":
        return UNKNOWN
    return PASSED if stages[-1] == "completed" else FAILED
