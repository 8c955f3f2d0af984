"""The handlers of the ``ground`` subcommands, and the options each adds (see ``ground.cli``).

Each subcommand is a pair: ``NAME_args(parser)`` adds its options, ``NAME(args) -> int`` runs
it and returns the exit code; errors are raised as ``GroundError`` and turned into one line
and an exit code by ``ground.cli.main``. Heavy modules (console, plot, flash) are imported by
their handler only, so ``ground cmd`` starts quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.live import Live

from ground import display, explain, validate, values
from ground.errors import (
    EXIT_INTERRUPTED,
    EXIT_LINK,
    EXIT_OK,
    CommandError,
    GroundError,
    UsageError,
    VerificationTimeout,
)

PORT_ENV: Final = "ILRS_PORT"


def port_of(args: argparse.Namespace) -> str:
    """``--port``, else ``$ILRS_PORT``, else the background simulated node (``ground sim
    start``) if one runs, else ``sim``: a simulated node for this command only."""
    if args.port or os.environ.get(PORT_ENV):
        return str(args.port or os.environ.get(PORT_ENV))
    from ground import background

    running = background.find()
    return running.port if running is not None else "sim"


def signer_of(args: argparse.Namespace) -> Any:
    """The Signer of ``--operator`` (or $ILRS_OPERATOR) from the key store; else, on the
    background node's pty, the development key it holds (``ground.keys.dev_key_signer``);
    else None (a ``sim`` port, or ``mqtt://...?key=dev``, signs with the development key by
    itself, unless ``sim://?key=none``)."""
    import os

    from ground.keys import KeyStore, default_store, dev_key_signer
    from ground.transport import is_sim

    operator = getattr(args, "operator", None)
    if operator is None and os.environ.get("ILRS_OPERATOR"):
        operator = int(os.environ["ILRS_OPERATOR"])
    if operator is not None:
        return KeyStore(getattr(args, "key_store", None) or default_store()).signer(operator)
    port = port_of(args)
    if is_sim(port) or port.startswith("mqtt://"):
        return None
    from ground import background

    running = background.find()
    if running is not None and running.port == port and running.key == "dev":
        return dev_key_signer()
    return None


def positive_int(text: str) -> int:
    """argparse type: a count of at least 1 (0 or less is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: seconds (or a factor) above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


@contextlib.contextmanager
def connect(
    args: argparse.Namespace, check: bool = True, before: Callable[[Any], None] | None = None
) -> Iterator[Any]:
    """A connected Client; ``before(client)`` runs before connecting (to subscribe early)."""
    from ground.client import Client

    client = Client(port_of(args), log=args.log, check_dictionary=check,
                    signer=signer_of(args))
    try:
        if before is not None:
            before(client)
        client.connect(timeout=args.timeout)
        yield client
    finally:
        client.close()


class _Console(Console):
    """rich's Console, except that a closed stdout (``ground replay log | head``) is not an
    error: rich would exit 1, the code of a rejected command; ``ground.cli`` exits 0."""

    def on_broken_pipe(self) -> None:
        with contextlib.suppress(OSError):  # nothing more reaches the reader, nor the flush
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise BrokenPipeError("stdout closed by its reader")


def new_console() -> Console:
    return _Console(highlight=False, soft_wrap=True)


# --- subcommands ---------------------------------------------------------------------------


def sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=("start", "stop", "status"),
        help="start: a node in the background that later commands use without --port (its "
        "state kept across calls), or with --nodes a station of them; stop: whatever runs; "
        "status (exit 3 when nothing runs). Without an action: run in the foreground until "
        "Ctrl-C",
    )
    p.add_argument("--nodes", type=int, metavar="N",
                   help="with start: a local station of N simulated nodes (node1..nodeN, node "
                   "ids 1..N) behind a broker on 127.0.0.1 and a gateway, in the background")
    p.add_argument("--station", help="with start --nodes: the station's name (default lab)")
    p.add_argument("--broker-port", type=int,
                   help="with start --nodes: the local broker's port (default "
                   "$ILRS_BROKER_PORT, else 1883)")
    p.add_argument("--seed", type=int, help="plant-model seed")
    p.add_argument(
        "--time-factor", type=positive_float, help="model seconds per real second (above 0)"
    )
    p.add_argument(
        "--state-dir",
        help="the node's flash directory (default: a temporary one; with start: "
        "~/.local/state/ilrs/sim-node, kept)",
    )
    p.add_argument("--verbose", action="store_true", help="show the node's stderr")


def do_sim(args: argparse.Namespace) -> int:
    from ground import simnode

    if args.action is not None:
        return sim_background(args)
    if args.nodes is not None or args.station is not None or args.broker_port is not None:
        raise UsageError("--nodes, --station and --broker-port go with `ground sim start "
                         "--nodes N`")
    argv = []
    for flag, value in (
        ("--seed", args.seed),
        ("--time-factor", args.time_factor),
        ("--state-dir", args.state_dir),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return int(simnode.main(argv + (["--verbose"] if args.verbose else [])))


def sim_background(args: argparse.Namespace) -> int:
    from ground import background

    if args.verbose:
        raise UsageError("--verbose is for the foreground node; the background one logs to "
                         "its state directory (see `ground sim status`)")
    if args.nodes is not None or args.station is not None or args.broker_port is not None:
        return station_background(args)
    if args.action == "start":
        state_dir = None if args.state_dir is None else str(Path(args.state_dir).absolute())
        running, now = background.start(args.seed, args.time_factor, state_dir)
        print(running.port)
        verb = "started" if now else "already running:"
        print(f"ground: {verb} {running.describe()}; `ground sim stop` ends it", file=sys.stderr)
        return EXIT_OK
    if args.seed is not None or args.time_factor is not None or args.state_dir is not None:
        raise UsageError(f"sim {args.action} takes no options")
    from ground import station

    if args.action == "stop":
        stopped = background.stop()
        if stopped is not None:
            print(f"ground: stopped the background simulated node (pid {stopped.pid}); "
                  f"its state is kept in {stopped.state_dir}", file=sys.stderr)
        gone = station.stop()
        if gone is not None:
            print(f"ground: stopped station {gone.station} (gateway pid {gone.pid}, broker pid "
                  f"{gone.broker_pid}, {len(gone.nodes)} nodes); their state is kept in "
                  f"{station.default_state_dir(gone.station)}", file=sys.stderr)
        if stopped is None and gone is None:
            print("ground: no background simulated node or station was running",
                  file=sys.stderr)
        return EXIT_OK
    found = background.find()
    a_station = station.find()
    if found is None and a_station is None:
        print("no background simulated node (`ground sim start` starts one) and no station "
              "(`ground sim start --nodes 3`)")
        return EXIT_LINK
    if found is not None:
        print(found.describe())
    if a_station is not None:
        print("\n".join(a_station.describe()))
    return EXIT_OK


def station_background(args: argparse.Namespace) -> int:
    """``ground sim start --nodes N [--station S] [--broker-port P] [--time-factor X]``."""
    from ground import station

    if args.action != "start" or args.nodes is None:
        raise UsageError("--nodes, --station and --broker-port go with `ground sim start "
                         "--nodes N`")
    if args.seed is not None or args.state_dir is not None or args.verbose:
        raise UsageError("a station's nodes have seeds 1..N and state directories of their "
                         "own: --seed, --state-dir and --verbose are for the single node")
    running = station.start(args.nodes, args.station or "lab",
                            args.broker_port or station.default_broker_port(), args.time_factor)
    for node in running.nodes:
        print(node["url"])
    print(f"ground: started station {running.station}: {running.broker_kind} broker on "
          f"{running.broker} (pid {running.broker_pid}), {len(running.nodes)} simulated nodes "
          f"behind a gateway (pid {running.pid}); `ground console --port URL` watches one, "
          "`ground sim stop` ends it", file=sys.stderr)
    return EXIT_OK


def console_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask before hazardous commands")


def do_console(args: argparse.Namespace) -> int:
    from ground import console

    return console.main(port_of(args), log=args.log, timeout=args.timeout, assume_yes=args.yes,
                        signer=signer_of(args))


def cmd_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="command name (see `ground dict`)")
    p.add_argument("arguments", nargs="*", metavar="key=value", help="e.g. mode=NOMINAL")
    p.add_argument("--no-wait", action="store_true", help="send and return the seq")
    p.add_argument("--yes", action="store_true", help="confirm a hazardous command")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    g = p.add_argument_group("time-tagged (SPEC §11)")
    g.add_argument("--at", metavar="UTC", help="execute at this UTC time, e.g. "
                   "2026-12-07T01:00:00Z: the node queues it and answers accepted")
    g.add_argument("--in", dest="in_", metavar="+HH:MM:SS",
                   help="execute this long from now, e.g. +00:05:00")
    g.add_argument("--outcome", action="store_true",
                   help="with --at/--in: also wait (until the time plus --timeout) for the "
                   "outcome; without, the command returns once queued")


def do_cmd(args: argparse.Namespace) -> int:
    from ground import timetag

    kwargs = validate.parse_assignments(args.name, args.arguments)
    cmd, _ = validate.prepare(args.name, kwargs)  # before connecting: bad input costs nothing
    if cmd.hazardous and not args.yes:
        raise UsageError(f"{cmd.name} is hazardous ({cmd.help.split('.')[0]}): add --yes")
    at = timetag.execution_time(args.at, args.in_, time.time_ns() // 1_000_000)
    if at:
        validate.check_timetag(cmd, at)
        if args.no_wait:
            raise UsageError("--no-wait with --at/--in: a time-tagged command returns once "
                             "queued anyway")
    out = new_console()
    with connect(args) as node:
        if args.no_wait:
            out.print(f"{cmd.name} seq {node.send(args.name, **kwargs)} sent")
            return EXIT_OK
        started = time.monotonic()
        try:
            res = node.command(args.name, timeout=args.timeout, at=at or None, **kwargs)
            if at and args.outcome:
                out.print(f"{res.command} seq {res.seq}: accepted, queued for "
                          f"{timetag.format_utc(at)}; waiting for the outcome")
                left = max(0.0, at / 1000 - time.time())
                res = node.wait_timetagged(res, left + args.timeout)
        except (CommandError, VerificationTimeout) as exc:
            if args.json:  # a script reads the outcome from stdout whatever it was
                print(json.dumps(_outcome_json(cmd.name, exc)), flush=True)
            raise
        ms = (time.monotonic() - started) * 1000
        if res.queued:  # accepted into the queue: the outcome is not known yet
            if args.json:
                print(json.dumps({"command": res.command, "seq": res.seq, "outcome": "queued",
                                  "at_utc_ms": at, "attempts": res.attempts}), flush=True)
            else:
                out.print(f"{res.command} seq {res.seq}: accepted, queued for "
                          f"{timetag.format_utc(at)} ({ms:.0f} ms); the outcome is not known "
                          "yet (ground tt list, ground events)")
            return EXIT_OK
        fields = explain.result_fields(res.command, res.result)
        if args.json:
            print(
                json.dumps(
                    {
                        "command": res.command,
                        "seq": res.seq,
                        "outcome": "completed",
                        "result": res.result,
                        "fields": dict(fields) if fields else None,
                        "attempts": res.attempts,
                        "stages": [v.stage for v in res.verifications],
                    }
                ),
                flush=True,
            )
        else:
            stages = ", ".join(v.stage for v in res.verifications)
            if fields:
                result = "".join(f"\n  {label}: {text}" for label, text in fields)
            else:
                result = "" if res.result is None else f" -> {values.format_value(res.result)}"
            out.print(f"{res.command} seq {res.seq}: {stages} ({ms:.0f} ms){result}")
    return EXIT_OK


def _outcome_json(command: str, exc: GroundError) -> dict[str, Any]:
    """A failed command as the JSON object ``cmd --json`` prints for it."""
    if isinstance(exc, CommandError):
        return {
            "command": command,
            "seq": exc.seq,
            "outcome": exc.stage_name,
            "code": exc.code,
            "reason": exc.reason,
            "why": exc.why,
            "error": str(exc),
        }
    assert isinstance(exc, VerificationTimeout)
    return {
        "command": command,
        "seq": exc.seq,
        "outcome": "timeout",
        "stages": list(exc.arrived),
        "error": str(exc),
    }


def stream_args(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("--format", choices=formats, default=formats[0])
    p.add_argument("--count", type=positive_int, help="stop after this many packets/events")
    p.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    p.add_argument("--channels", help="comma-separated channel names (default: all)")


def channel_list(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "channels", None):
        return None
    names = [c.strip() for c in args.channels.split(",") if c.strip()]
    for name in names:
        validate.channel(name)
    return names


def interrupted() -> int:
    """Ctrl-C, one rule for every subcommand: stop cleanly, summarise, exit 130."""
    print("ground: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def do_tlm(args: argparse.Namespace) -> int:
    channels = channel_list(args)
    with connect(args) as node:
        items = node.telemetry(count=args.count, duration=args.duration)
        try:
            show_telemetry(args.format, items, channels, lambda: node.channels)
        except KeyboardInterrupt:
            return interrupted()
    return EXIT_OK


def show_telemetry(
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
        out = new_console()

        def table() -> Any:  # as wide as the terminal is now (it may have been resized)
            return display.channel_table(latest(), channels, width=out.width)

        if out.is_terminal:
            with Live(table(), console=out) as live:
                for _hk in items:
                    live.update(table())
        else:
            try:
                for _hk in items:
                    pass
            finally:  # the table of the last values is the summary, Ctrl-C or not
                out.print(table())
        return
    for hk in items:
        writer.housekeeping(hk)


def events_args(p: argparse.ArgumentParser) -> None:
    stream_args(p, ("text", "jsonl"))
    p.add_argument(
        "--history",
        type=int,
        metavar="FROM_SEQ",
        help="first downlink the persistent event log from this event number "
        "(its events count towards --count)",
    )


def do_events(args: argparse.Namespace) -> int:
    """The stored log (``--history``), then live events; ``--count`` counts both. Live events
    are subscribed to before connecting, so a node's boot events are not missed."""
    from ground.downlink import EVENT

    out = new_console()
    writer: Any = (
        display.JsonlWriter(sys.stdout) if args.format == "jsonl" else display.TextWriter(out)
    )
    streams: list[Any] = []
    shown: set[int] = set()  # event_seq already printed: history and live overlap

    def done() -> bool:
        return args.count is not None and len(shown) >= args.count

    def show(ev: values.EventRecord) -> None:
        if ev.event_seq not in shown and not done():
            shown.add(ev.event_seq)
            writer.event(ev)

    with connect(args, before=lambda c: streams.append(c.subscribe(EVENT, maxlen=10000))) as node:
        live = streams[0]
        try:
            if args.history is not None:
                for ev in node.event_log(args.history, timeout=args.timeout):
                    show(ev)
            if args.history is None or args.count or args.duration:
                end = None if args.duration is None else time.monotonic() + args.duration
                try:
                    while not done():
                        left = None if end is None else end - time.monotonic()
                        if left is not None and left <= 0:
                            break
                        ev = live.get(left)
                        if ev is None:
                            break
                        show(ev)
                except KeyboardInterrupt:
                    return interrupted()
        finally:
            live.close()
    return EXIT_OK


def params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("get", "set", "save", "load", "reset"))
    p.add_argument(
        "words", nargs="*", metavar="NAME [VALUE]", help="get: names (none: all); set: NAME VALUE"
    )
    p.add_argument("--yes", action="store_true", help="confirm reset (a hazardous command)")


def do_params(args: argparse.Namespace) -> int:
    out = new_console()
    if args.action == "set" and len(args.words) != 2:
        raise UsageError("params set takes NAME VALUE, e.g. params set battery_setpoint 4.5")
    names = [validate.param(w).name for w in args.words[: 1 if args.action == "set" else None]]
    if args.action == "set":
        validate.prepare("param_set", {"param": names[0], "value": args.words[1]})
    elif args.action != "get" and args.words:
        raise UsageError(f"params {args.action} takes no names")
    if args.action == "reset" and not args.yes:  # param_reset is hazardous (SPEC §10.8)
        raise UsageError("params reset is hazardous (every parameter to its default): "
                         "add --yes")
    with connect(args) as node:
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


def dict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument(
        "--node",
        action="store_true",
        help="also fetch the node's compact dictionary and check its hash",
    )


def do_dict(args: argparse.Namespace) -> int:
    from protocol import dictionary_lookup as lookup

    if args.node:
        with connect(args, check=False) as node:
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


def record_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--duration", type=positive_float, help="seconds to record (default: until Ctrl-C)"
    )
    p.add_argument("--count", type=positive_int, help="stop after this many housekeeping packets")


def do_record(args: argparse.Namespace) -> int:
    out = new_console()
    with connect(args) as node:
        n = 0
        stopped = False
        try:
            out.print(f"recording to {node.log_path} (Ctrl-C ends it)", style="dim")
            for _ in node.telemetry(count=args.count, duration=args.duration):
                n += 1
        except KeyboardInterrupt:  # the way to end an open recording: summary, then 130
            stopped = True
        out.print(
            f"{n} housekeeping packets, {node.downlink.messages} messages recorded "
            f"in {node.log_path}"
        )
    return interrupted() if stopped else EXIT_OK


def replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("logfile", metavar="LOG", help="a session log (.jsonl)")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="1 = as recorded, 10 = ten times faster, 0 = at once (default)",
    )
    p.add_argument("--format", choices=("table", "jsonl", "text"), default="table")
    p.add_argument("--channels", help="comma-separated channel names (default: all)")


def do_replay(args: argparse.Namespace) -> int:
    from ground.replay import Replay

    channels = channel_list(args)
    rp = Replay(args.logfile)
    out = new_console()
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


def plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("logfile", metavar="LOG", help="a session log (.jsonl)")
    p.add_argument("--channels", required=True, help="comma-separated channel names")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument(
        "--time-axis",
        choices=("wall", "node", "model"),
        default="wall",
        help="x axis: wall (ground clock, default), node (node time since boot) or model "
        "(plant-model hours)",
    )
    p.add_argument(
        "--time-factor",
        type=positive_float,
        help="model seconds per real second, for --time-axis model (default: from the log)",
    )


def do_plot(args: argparse.Namespace) -> int:
    from ground import plot

    result = plot.plot_log(
        args.logfile,
        channel_list(args) or [],
        args.out,
        axis=args.time_axis,
        time_factor=args.time_factor,
    )
    print(
        f"{args.out}: {len(result.series)} series, {len(result.limit_lines)} limit lines, "
        f"{len(result.mode_changes)} mode changes"
    )
    return EXIT_OK


def flash_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--yes", action="store_true", help="do not ask before sending the node to maintenance"
    )
    p.add_argument("--build-only", action="store_true", help="only precompile into build/")
    p.add_argument(
        "--no-maintenance",
        action="store_true",
        help="the board is already at the REPL (fresh MicroPython)",
    )
    p.add_argument(
        "--no-romfs",
        action="store_true",
        help="copy .mpy files to the filesystem even if the board has a ROMFS partition",
    )


def do_flash(args: argparse.Namespace) -> int:
    from ground import flash

    port = args.port or os.environ.get(PORT_ENV)  # flash asks for a port: never the sim's key
    return flash.main(args, signer=signer_of(args) if port else None)
