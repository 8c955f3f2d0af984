"""``ground``: the command line of the ground tool (also ``python -m ground``).

    ground [SUBCOMMAND] --help           help on any subcommand
    ground cmd set_mode mode=NOMINAL     send a command, wait for its verification
    ground tlm --format jsonl --count 5  telemetry (a live table on a terminal)

Every subcommand that talks to a node takes ``--port URL``: a serial device
(``/dev/ttyACM0``, ``COM3``), any pyserial URL (``socket://host:port``, ``rfc2217://``), or
``sim`` / ``sim://?seed=7&time_factor=600&state_dir=DIR`` (start the simulated node). Without
``--port``, ``$ILRS_PORT`` is used, else ``sim``. Every session writes a session log
(``--log PATH``; default ``logs/``, see ``ground.log``).

Exit codes:

==  ==========================================================================
0   success
1   the node rejected the command, or it failed (reason code and name printed)
2   usage: bad command line, unknown name, bad or out-of-range argument
3   link: port unreachable, link lost, node not answering, flashing failed
4   dictionary mismatch: the node was built from another dictionary
5   timeout: no (final) verification, or nothing arrived in time
6   corrupt or unreadable session log
70  internal error (a bug: please report it with the session log)
130 interrupted (Ctrl-C)
==  ==========================================================================

Errors are one line on stderr: ``ground: error: <what happened and what to do>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Final, NoReturn

from rich.console import Console
from rich.live import Live

from ground import display, validate, values
from ground.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, GroundError, UsageError

PORT_ENV: Final = "ILRS_PORT"
Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line and the usage exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(args: argparse.Namespace) -> str:
    return str(args.port or os.environ.get(PORT_ENV) or "sim")


@contextlib.contextmanager
def _client(args: argparse.Namespace, check: bool = True) -> Iterator[Any]:
    from ground.client import Client

    client = Client(_port(args), log=args.log, check_dictionary=check)
    try:
        client.connect(timeout=args.timeout)
        yield client
    finally:
        client.close()


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


# --- subcommands ---------------------------------------------------------------------------


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, help="plant-model seed")
    p.add_argument("--time-factor", type=float, help="model seconds per real second")
    p.add_argument("--state-dir", help="the node's flash directory (default: a temp dir)")
    p.add_argument("--verbose", action="store_true", help="show the node's stderr")


def _sim(args: argparse.Namespace) -> int:
    from ground import simnode

    argv = []
    for flag, value in (
        ("--seed", args.seed),
        ("--time-factor", args.time_factor),
        ("--state-dir", args.state_dir),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return int(simnode.main(argv + (["--verbose"] if args.verbose else [])))


def _console_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask before hazardous commands")


def _console(args: argparse.Namespace) -> int:
    from ground import console

    return console.main(_port(args), log=args.log, timeout=args.timeout, assume_yes=args.yes)


def _cmd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="command name (see `ground dict`)")
    p.add_argument("arguments", nargs="*", metavar="key=value", help="e.g. mode=NOMINAL")
    p.add_argument("--no-wait", action="store_true", help="send and return the seq")
    p.add_argument("--yes", action="store_true", help="confirm a hazardous command")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _cmd(args: argparse.Namespace) -> int:
    kwargs = validate.parse_assignments(args.name, args.arguments)
    cmd, _ = validate.prepare(args.name, kwargs)  # before connecting: bad input costs nothing
    if cmd.hazardous and not args.yes:
        raise UsageError(f"{cmd.name} is hazardous ({cmd.help.split('.')[0]}): add --yes")
    out = _out()
    with _client(args) as node:
        if args.no_wait:
            out.print(f"{cmd.name} seq {node.send(args.name, **kwargs)} sent")
            return EXIT_OK
        started = time.monotonic()
        res = node.command(args.name, timeout=args.timeout, **kwargs)
        ms = (time.monotonic() - started) * 1000
        if args.json:
            out.print_json(
                json.dumps(
                    {
                        "command": res.command,
                        "seq": res.seq,
                        "result": res.result,
                        "attempts": res.attempts,
                        "stages": [v.stage for v in res.verifications],
                    }
                )
            )
        else:
            stages = ", ".join(v.stage for v in res.verifications)
            result = "" if res.result is None else f" -> {res.result!r}"
            out.print(f"{res.command} seq {res.seq}: {stages} ({ms:.0f} ms){result}")
    return EXIT_OK


def _stream_args(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("--format", choices=formats, default=formats[0])
    p.add_argument("--count", type=int, help="stop after this many packets/events")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--channels", help="comma-separated channel names (default: all)")


def _channels(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "channels", None):
        return None
    names = [c.strip() for c in args.channels.split(",") if c.strip()]
    for name in names:
        validate.channel(name)
    return names


def _tlm(args: argparse.Namespace) -> int:
    channels = _channels(args)
    with _client(args) as node:
        items = node.telemetry(count=args.count, duration=args.duration)
        _show_telemetry(args.format, items, channels, lambda: node.channels)
    return EXIT_OK


def _show_telemetry(
    fmt: str,
    items: Iterator[Any],
    channels: list[str] | None,
    latest: Callable[[], dict[str, Any]],
) -> None:
    if fmt == "jsonl":
        writer: Any = display.JsonlWriter(sys.stdout, channels)
    elif fmt == "csv":
        writer = display.CsvWriter(sys.stdout, channels)
    else:
        out = _out()
        if out.is_terminal:
            with Live(display.channel_table(latest(), channels), console=out) as live:
                for _hk in items:
                    live.update(display.channel_table(latest(), channels))
        else:
            for _hk in items:
                pass
            out.print(display.channel_table(latest(), channels))
        return
    for hk in items:
        writer.housekeeping(hk)


def _events_args(p: argparse.ArgumentParser) -> None:
    _stream_args(p, ("text", "jsonl"))
    p.add_argument(
        "--history",
        type=int,
        metavar="FROM_SEQ",
        help="first downlink the persistent event log from this event number",
    )


def _events(args: argparse.Namespace) -> int:
    out = _out()
    writer: Any = (
        display.JsonlWriter(sys.stdout) if args.format == "jsonl" else display.TextWriter(out)
    )
    with _client(args) as node:
        if args.history is not None:
            for ev in node.event_log(args.history, timeout=args.timeout):
                writer.event(ev)
        if args.count != 0 and (args.history is None or args.count or args.duration):
            for ev in node.events(count=args.count, duration=args.duration):
                writer.event(ev)
    return EXIT_OK


def _params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("get", "set", "save", "load", "reset"))
    p.add_argument(
        "words", nargs="*", metavar="NAME [VALUE]", help="get: names (none: all); set: NAME VALUE"
    )


def _params(args: argparse.Namespace) -> int:
    out = _out()
    if args.action == "set" and len(args.words) != 2:
        raise UsageError("params set takes NAME VALUE, e.g. params set battery_setpoint 4.5")
    names = [validate.param(w).name for w in args.words[: 1 if args.action == "set" else None]]
    if args.action == "set":
        validate.prepare("param_set", {"param": names[0], "value": args.words[1]})
    elif args.action != "get" and args.words:
        raise UsageError(f"params {args.action} takes no names")
    with _client(args) as node:
        if args.action == "get":
            for name in names or [p.name for p in validate.PARAMS_BY_ID.values()]:
                value = node.param_get(name, timeout=args.timeout)
                par = validate.param(name)
                out.print(f"{name} = {values.format_value(value)} {par.unit}".rstrip())
        elif args.action == "set":
            node.param_set(names[0], args.words[1], timeout=args.timeout)
            out.print(f"{names[0]} set (param_save to persist)")
        else:
            node.command(f"param_{args.action}", timeout=args.timeout)
            out.print(f"param_{args.action}: completed")
    return EXIT_OK


def _dict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument(
        "--node",
        action="store_true",
        help="also fetch the node's compact dictionary and check its hash",
    )


def _dict(args: argparse.Namespace) -> int:
    from protocol import dictionary_lookup as lookup

    if args.node:
        with _client(args, check=False) as node:
            fetched = node.fetch_dictionary(timeout=args.timeout)
            print(
                f"node dictionary: {fetched.size} bytes, hash 0x{fetched.hash:08x}, "
                f"{'matches' if fetched.matches else 'DIFFERS FROM'} the ground's "
                f"0x{node.expected_hash:08x}",
                file=sys.stderr,
            )
    describe: Callable[[], Any] = lookup.describe
    describe_markdown: Callable[[], str] = lookup.describe_markdown
    if args.format == "json":
        print(json.dumps(describe(), indent=1))
    else:
        sys.stdout.write(describe_markdown())
    return EXIT_OK


def _record_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    p.add_argument("--count", type=int, help="stop after this many housekeeping packets")


def _record(args: argparse.Namespace) -> int:
    out = _out()
    with _client(args) as node:
        out.print(f"recording to {node.log_path}", style="dim")
        n = sum(1 for _ in node.telemetry(count=args.count, duration=args.duration))
        out.print(
            f"{n} housekeeping packets, {node.downlink.messages} messages recorded "
            f"in {node.log_path}"
        )
    return EXIT_OK


def _replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("logfile", metavar="LOG", help="a session log (.jsonl)")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="1 = as recorded, 10 = ten times faster, 0 = at once (default)",
    )
    p.add_argument("--format", choices=("table", "jsonl", "text"), default="table")
    p.add_argument("--channels", help="comma-separated channel names (default: all)")


def _replay(args: argparse.Namespace) -> int:
    from ground.replay import Replay

    channels = _channels(args)
    rp = Replay(args.logfile)
    out = _out()
    writer: Any = (
        display.JsonlWriter(sys.stdout, channels)
        if args.format == "jsonl"
        else display.TextWriter(out, channels)
    )
    for item in rp.run(args.speed):
        if item.topic == "housekeeping":
            if args.format != "table":
                writer.housekeeping(item.value)
        elif item.topic == "event":
            writer.event(item.value)
        elif args.format != "jsonl":
            out.print(f"{display.stamp_ns(item.t_ns)} {item.topic}: {item.value}", style="dim")
    if args.format == "table":
        out.print(
            display.channel_table(
                rp.downlink.latest, channels, title=f"{args.logfile} (last values)"
            )
        )
    for warning in rp.reader.warnings:
        print(f"ground: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("logfile", metavar="LOG", help="a session log (.jsonl)")
    p.add_argument("--channels", required=True, help="comma-separated channel names")
    p.add_argument("--out", required=True, help="the PNG to write")


def _plot(args: argparse.Namespace) -> int:
    from ground import plot

    result = plot.plot_log(args.logfile, _channels(args) or [], args.out)
    print(
        f"{args.out}: {len(result.series)} series, {len(result.limit_lines)} limit lines, "
        f"{len(result.mode_changes)} mode changes"
    )
    return EXIT_OK


def _flash_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--yes", action="store_true", help="do not ask before sending the node to maintenance"
    )
    p.add_argument("--build-only", action="store_true", help="only precompile into build/")
    p.add_argument(
        "--no-maintenance",
        action="store_true",
        help="the board is already at the REPL (fresh MicroPython)",
    )


def _flash(args: argparse.Namespace) -> int:
    from ground import flash

    return flash.main(args)


# name → (handler, add_arguments, help). --port/--log/--timeout are added to every one.
SUBCOMMANDS: Final[dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str]]] = {
    "sim": (_sim, _sim_args, "run the simulated node; prints its pty path first"),
    "console": (_console, _console_args, "interactive console (completion, live status)"),
    "cmd": (_cmd, _cmd_args, "send a command and wait for its verification"),
    "tlm": (_tlm, lambda p: _stream_args(p, ("table", "jsonl", "csv")), "show telemetry"),
    "events": (_events, _events_args, "show events as they arrive (and the stored log)"),
    "params": (_params, _params_args, "get, set, save, load or reset parameters"),
    "dict": (_dict, _dict_args, "print the dictionary (Markdown or JSON)"),
    "record": (_record, _record_args, "record a session log"),
    "replay": (_replay, _replay_args, "replay a session log through the decoders"),
    "plot": (_plot, _plot_args, "plot channels from a session log to a PNG"),
    "flash": (_flash, _flash_args, "precompile and copy the firmware to a Pico"),
}


def _add_external(sub: Any) -> None:
    """Subcommands other modules provide: ``add_arguments(parser)`` and ``run(args)``."""
    import importlib

    for name, module in (("fuzz", "ground.fuzz.cli"),):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        p = sub.add_parser(name, help=(mod.__doc__ or name).splitlines()[0])
        _common(p)
        mod.add_arguments(p)
        p.set_defaults(handler=mod.run)


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("link")
    g.add_argument(
        "--port",
        metavar="URL",
        help=f"serial device or pyserial URL, or sim[://?seed=N&time_factor=X] "
        f"(default: ${PORT_ENV}, else sim)",
    )
    g.add_argument("--log", metavar="PATH", help="session log to write (default: logs/)")
    g.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for verifications (default 5)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ground",
        description="Ground tool for the ILRS station node.",
        epilog="Exit codes: 0 ok, 1 rejected/failed, 2 usage, 3 link, "
        "4 dictionary mismatch, 5 timeout, 6 corrupt log.",
    )
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
    for name, (handler, add_arguments, text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        _common(p)
        add_arguments(p)
        p.set_defaults(handler=handler)
    _add_external(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.subcommand is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except GroundError as exc:
        print(f"ground: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ground: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ground tlm --format jsonl | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except Exception as exc:  # a bug: one line, the exit code says so
        print(
            f"ground: internal error: {type(exc).__name__}: {exc} "
            "(please report it with the session log)",
            file=sys.stderr,
        )
        if os.environ.get("ILRS_DEBUG"):
            raise
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
