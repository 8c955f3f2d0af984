"""run a Python script against the node, every step logged (ground scripts)

    ground run SCRIPT.py [--port URL] [--time-scale X] [SCRIPT ARGS...]
    ground run checkout.py --port /dev/ttyACM0 -- --loads seismometer   (after --: the script's)

A ground script is plain Python run against one connected node. It finds the HIL vocabulary
(the very objects of ``hil.vocabulary``, so a script reads like a HIL test) as ready names,
or imports them: ``from ground.script import command, wait_telemetry, wait_event, check``::

    command("set_mode", mode="NOMINAL")              # accepted then completed, or it fails
    wait_telemetry("mode", "NOMINAL", timeout=5)     # a new sample that satisfies it
    wait_event("mode_changed", new="NOMINAL")        # since the last command was sent
    soc = wait_telemetry("battery_soc")
    check(soc, greater_than(20), "battery charge")   # a value against a predicate

Steps (each logged, see ``ground.steps``): ``command``, ``command_rejected``,
``command_failed``, ``send``, ``wait_telemetry``, ``check_telemetry``, ``wait_event``,
``wait_events``, ``no_event``, ``check``, ``sleep``, ``status``; not steps: ``note(text)``,
``telemetry(channel)`` (the latest value), ``latest(channel)`` (the latest sample, with
unit and limit state), ``mark()``, ``values_of(hk)``. Predicates:
``less_than``, ``greater_than``, ``at_most``, ``at_least``, ``within``, ``close_to``,
``equal_to``, ``not_equal_to``, ``one_of``, ``bit_set``, ``bit_clear``, ``anything``.
``node`` is the ``hil.vocabulary.NodeApi`` and ``client`` the ``ground.client.Client`` for
anything else (their calls are not steps; their frames are in the session log all the same).

Every step goes to the session log (``--log``, else ``logs/``; ``ground replay`` reads it)
with the script's file:line, and to the terminal. Waits and timeouts are multiplied by
``--time-scale`` (default 1; the virtual Pico needs about 34; ``auto`` measures the target
as the HIL rig does, ``hil.timing``, and says what it found). The script's ``sys.argv`` is
its path and the words after it (after ``--`` when one of them looks like an option of
``ground run``); ``__name__`` is ``"__main__"``, and its folder is first on ``sys.path``.

Exit codes: 0 the script ran to its end (or ``sys.exit(0)``); 8 a step failed (a check,
a command not completed, a wait that ended without what it wanted): the failing step's
message and file:line on stderr; 9 the script raised: a traceback of the script's own
frames; 3 link lost, 4 dictionary mismatch, 7 a command's outcome unknown (the node
rebooted under it); 130 Ctrl-C: a command in flight is waited for and logged with its
outcome (a second Ctrl-C: at once, logged ``unknown``), the link is closed; 2 usage (no
such script); ``sys.exit(N)`` in the script: N.
"""

from __future__ import annotations

import argparse
import builtins
import linecache
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any, Final

from ground.client import Client
from ground.errors import (
    EXIT_CHECK,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SCRIPT,
    DictionaryMismatch,
    LinkError,
    OutcomeUnknown,
    UsageError,
)
from ground.steps import StepFailed, Steps
from ground.values import ChannelValue, EventRecord
from ground.where import display_path, is_own
from hil.predicates import (
    anything,
    at_least,
    at_most,
    bit_clear,
    bit_set,
    close_to,
    equal_to,
    greater_than,
    less_than,
    not_equal_to,
    one_of,
    within,
)
from hil.vocabulary import NodeApi, values_of

_current: Steps | None = None


def _steps() -> Steps:
    if _current is None:
        raise RuntimeError("no node: run this script with `ground run SCRIPT.py`")
    return _current


# --- the vocabulary, as plain functions (each delegates to the running script's Steps) -----


def command(name: str, /, *, timeout: float | None = None, **args: Any) -> Any:
    return _steps().command(name, timeout=timeout, **args)


def command_rejected(name: str, reason: str | int, /, *, timeout: float | None = None,
                     **args: Any) -> Any:
    return _steps().command_rejected(name, reason, timeout=timeout, **args)


def command_failed(name: str, reason: str | int, /, *, timeout: float | None = None,
                   **args: Any) -> Any:
    return _steps().command_failed(name, reason, timeout=timeout, **args)


def send(name: str, /, **args: Any) -> int:
    return _steps().send(name, **args)


def wait_telemetry(channel: str, predicate: Any = None, /, *, timeout: float = 10.0,
                   ) -> ChannelValue:
    return _steps().wait_telemetry(channel, predicate, timeout=timeout)


def check_telemetry(channel: str, predicate: Any, /, *, timeout: float = 10.0) -> ChannelValue:
    return _steps().check_telemetry(channel, predicate, timeout=timeout)


def wait_event(name: str, /, *, timeout: float = 10.0, since: int | None = None,
               **args: Any) -> EventRecord:
    return _steps().wait_event(name, timeout=timeout, since=since, **args)


def wait_events(*names: str, timeout: float = 10.0) -> list[EventRecord]:
    return _steps().wait_events(*names, timeout=timeout)


def no_event(name: str, /, *, during: float = 1.0) -> None:
    _steps().no_event(name, during=during)


def check(value: Any, expected: Any = None, /, what: str | None = None) -> Any:
    return _steps().check(value, expected, what)


def sleep(seconds: float) -> None:
    _steps().sleep(seconds)


def status() -> Any:
    return _steps().status()


def note(text: str) -> None:
    _steps().note(text)


def telemetry(channel: str) -> Any:
    """The latest value of a channel (None before its first sample); not a step."""
    return _steps().api.telemetry(channel)


def latest(channel: str) -> ChannelValue | None:
    """The latest sample of a channel (value, unit, limit state; None before the first), as
    ``check`` shows it by name; not a step."""
    return _steps().api.client.latest(channel)


def mark() -> int:
    """A point in what was received: ``wait_event(..., since=mark())`` looks only later."""
    return _steps().api.mark()


VOCABULARY: Final[dict[str, Any]] = {f.__name__: f for f in (
    command, command_rejected, command_failed, send, wait_telemetry, check_telemetry,
    wait_event, wait_events, no_event, check, sleep, status, note, telemetry, latest, mark,
    values_of,
    anything, at_least, at_most, bit_clear, bit_set, close_to, equal_to, greater_than,
    less_than, not_equal_to, one_of, within)}


# --- the subcommand ---------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n", 1)[1] if __doc__ else None
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("script", metavar="SCRIPT.py", help="the script to run")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="the script's own arguments (its sys.argv[1:])")
    _own_options(p)


def _own_options(p: argparse.ArgumentParser) -> None:
    from ground.subcommands import positive_float

    def scale(text: str) -> float | str:
        return "auto" if text == "auto" else positive_float(text)

    p.add_argument("--time-scale", type=scale, default=1.0, metavar="X",
                   help="multiply every wait and timeout by X (default 1; the virtual Pico: "
                   "about 34; auto: measure the target first, as the HIL rig does)")


def _split_options(args: argparse.Namespace) -> list[str]:
    """``ground run`` options written after SCRIPT (``ground run s.py --port sim a b``) are
    taken up to the first word that is not one of them, or up to ``--``; the rest is the
    script's."""
    from ground.cli import _common

    options = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    _common(options)
    _own_options(options)
    words = list(args.script_args)
    known = options._option_string_actions
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if name not in known:
            break
        i += 1 if "=" in word or known[name].nargs == 0 else 2
    mine, rest = words[:i], words[i:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if mine:
        try:
            options.parse_args(mine, namespace=args)
        except (argparse.ArgumentError, SystemExit) as exc:
            raise UsageError(f"run: {exc}") from None
    return rest


def run(args: argparse.Namespace) -> int:
    from ground.subcommands import connect, new_console

    argv = _split_options(args)
    path = Path(args.script)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read script {args.script}: {exc.strerror}") from None
    try:
        code = compile(source, args.script, "exec")
    except (SyntaxError, ValueError) as exc:  # before connecting: a broken script costs nothing
        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        print(f"ground: error: the script does not compile: {exc} (exit {EXIT_SCRIPT})",
              file=sys.stderr)
        return EXIT_SCRIPT
    # the source as it runs, for tracebacks and check()'s labels, whatever the file becomes
    text = source.decode("utf-8", "replace")
    linecache.cache[args.script] = (len(source), None, text.splitlines(True), args.script)
    out = new_console()
    apis: list[NodeApi] = []

    def attach(client: Client) -> None:  # before connecting: nothing the node says is missed
        apis.append(NodeApi(client, command_timeout_s=args.timeout,
                            time_scale=1.0 if args.time_scale == "auto" else args.time_scale))

    with connect(args, before=attach) as client:
        if args.time_scale == "auto":
            _measure_scale(apis[0], client, out)
        steps = Steps(apis[0], out, client.log)
        return _execute(code, path, argv, steps, client)


def _measure_scale(api: NodeApi, client: Client, out: Any) -> None:
    """``--time-scale auto``: measure the target as the HIL rig does (hil.timing)."""
    from hil import timing

    scale = timing.measure(client)
    api.time_scale = api.history.time_scale = scale.factor
    if client.log is not None:
        client.log.note(scale.describe())
    out.print(scale.describe(), style="dim")


def _execute(code: CodeType, path: Path, argv: Sequence[str], steps: Steps,
             client: Client) -> int:
    global _current
    log, out = client.log, steps.out
    shown = display_path(str(path))
    if log is not None:
        log.note(f"script {shown} begin {' '.join(argv)}".rstrip(),
                 script={"phase": "begin", "path": shown, "args": list(argv)})
    out.print(f"[bold]{shown}[/bold] on {client.port} (session log {client.log_path})",
              highlight=False)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path),
                                 "__builtins__": builtins, "node": steps.api,
                                 "client": client, **VOCABULARY}
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.resolve().parent))
    _current = steps
    started = time.monotonic()
    outcome, exit_code = "passed", EXIT_OK
    try:
        exec(code, namespace)
    except StepFailed as exc:
        outcome, exit_code = "failed", EXIT_CHECK
        print(f"ground: {exc.verb} failed at {exc.at} (step {exc.n}): {exc.message}",
              file=sys.stderr)
    except SystemExit as exc:
        exit_code = _exit_code(exc)
        outcome = "passed" if exit_code == EXIT_OK else "exited"
    except KeyboardInterrupt:
        outcome, exit_code = "interrupted", EXIT_INTERRUPTED
        last = steps.last
        where = f" at step {last.n} ({last.at} {last.verb})" if last is not None else ""
        print(f"ground: interrupted{where}", file=sys.stderr)
    except (LinkError, DictionaryMismatch, OutcomeUnknown) as exc:
        outcome, exit_code = "error", exc.exit_code
        print(f"ground: error at {_where(exc.__traceback__)}: {exc}", file=sys.stderr)
    except Exception as exc:  # the script's own error, or bad input it gave a step
        outcome, exit_code = "error", EXIT_SCRIPT
        sys.stderr.write(script_traceback(exc))
        print(f"ground: error: the script raised {type(exc).__name__} at "
              f"{_where(exc.__traceback__)} (exit {EXIT_SCRIPT})", file=sys.stderr)
    except BaseException:  # SIGTERM, SIGHUP (ground.lifetime): logged, then unwound
        outcome, exit_code = "interrupted", -1
        raise
    finally:
        _current = None
        sys.argv, sys.path[:] = saved_argv, saved_path
        seconds = time.monotonic() - started
        failed = steps.failed
        end: dict[str, Any] = {"phase": "end", "path": shown, "outcome": outcome,
                               "exit": exit_code, "steps": steps.count,
                               "seconds": round(seconds, 3)}
        if failed is not None and outcome != "passed":
            end["at"] = failed.at
        if log is not None:
            log.note(f"script {shown} end: {outcome}, exit {exit_code}, {steps.count} steps",
                     script=end)
        style = "green" if outcome == "passed" else "bold red"
        out.print(f"[bold]{shown}[/bold]: [{style}]{outcome}[/{style}] after {steps.count} "
                  f"steps ({seconds:.1f} s), exit {exit_code}; session log {client.log_path}",
                  highlight=False)
    return exit_code


def _exit_code(exc: SystemExit) -> int:
    """As Python exits for ``sys.exit(value)``: None 0, an int itself, else 1 (printed)."""
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


_LIBRARY_DIRS: Final = tuple(
    os.path.realpath(p) + "/" for p in {sysconfig.get_paths()[k] for k in
                                        ("stdlib", "platstdlib", "purelib", "platlib")})


def _is_script_frame(filename: str) -> bool:
    """A frame of the script or of modules it brought (not the ground's, nor libraries')."""
    return not (is_own(filename) or filename.startswith("<frozen ")
                or os.path.realpath(filename).startswith(_LIBRARY_DIRS))


def script_traceback(exc: BaseException) -> str:
    """The traceback of an exception with the script's frames only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if _is_script_frame(f.filename)]
    lines = ["Traceback (most recent call last; the script's frames):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _where(tb: TracebackType | None) -> str:
    """file:line of the innermost script frame of a traceback."""
    last: Any = None
    while tb is not None:
        if _is_script_frame(tb.tb_frame.f_code.co_filename):
            last = tb
        tb = tb.tb_next
    if last is None:
        return "?"
    return f"{display_path(last.tb_frame.f_code.co_filename)}:{last.tb_lineno}"


__all__ = [*VOCABULARY, "StepFailed", "add_arguments", "run", "script_traceback"]
