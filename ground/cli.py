"""``ground``: the command line of the ground tool (also ``python -m ground``).

    ground [SUBCOMMAND] --help           help on any subcommand
    ground cmd set_mode mode=NOMINAL     send a command, wait for its verification
    ground tlm --format jsonl --count 5  telemetry (a live table on a terminal)

Every subcommand that talks to a node takes ``--port URL``: a serial device
(``/dev/ttyACM0``, ``COM3``), any pyserial URL (``socket://host:port``, ``rfc2217://``), or
``sim`` / ``sim://?seed=7&time_factor=600&state_dir=DIR`` (start a simulated node for this
command only). Without ``--port``: ``$ILRS_PORT``, else the background simulated node if one runs
(``ground sim start``, see ``ground.background``), else ``sim``. Every session writes a session log
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
7   outcome unknown: the node rebooted before the command's final verification (SPEC §5.1)
8   ``ground run``: a step of the script failed (a check, a command not completed, a wait)
9   ``ground run``: the script raised an exception (its own frames are printed)
70  internal error (a bug: please report it with the session log)
130 interrupted (Ctrl-C): the subcommand stopped cleanly and printed its summary, if it has one
129 SIGHUP, 143 SIGTERM: stopped cleanly as for Ctrl-C (simulated node stopped, folders removed)
==  ==========================================================================

Errors are one line on stderr: ``ground: error: <what happened and what to do>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any, Final, NoReturn

from ground import subcommands as sc
from ground.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, GroundError
from ground.lifetime import Terminated, terminate_on_signals
from ground.subcommands import PORT_ENV

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line and the usage exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# name → (handler, add_arguments, help). --port/--log/--timeout are added to every one.
SUBCOMMANDS: Final[dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str]]] = {
    "sim": (sc.do_sim, sc.sim_args, "run the simulated node; prints its pty path first"),
    "console": (sc.do_console, sc.console_args, "interactive console (completion, live status)"),
    "cmd": (sc.do_cmd, sc.cmd_args, "send a command and wait for its verification"),
    "tlm": (sc.do_tlm, lambda p: sc.stream_args(p, ("table", "jsonl", "csv")), "show telemetry"),
    "events": (sc.do_events, sc.events_args, "show events as they arrive (and the stored log)"),
    "params": (sc.do_params, sc.params_args, "get, set, save, load or reset parameters"),
    "dict": (sc.do_dict, sc.dict_args, "print the dictionary (Markdown or JSON)"),
    "record": (sc.do_record, sc.record_args, "record a session log"),
    "replay": (sc.do_replay, sc.replay_args, "replay a session log through the decoders"),
    "plot": (sc.do_plot, sc.plot_args, "plot channels from a session log to a PNG"),
    "flash": (sc.do_flash, sc.flash_args, "precompile and copy the firmware to a Pico"),
}


def _add_external(sub: Any) -> None:
    """Subcommands other modules provide: ``add_arguments(parser)`` and ``run(args)``."""
    import importlib

    for name, module in (("fuzz", "ground.fuzz.cli"), ("keys", "ground.keys"),
                         ("gateway", "ground.gateway_cli"), ("tt", "ground.tt_cli"),
                         ("seq", "ground.seqcli"), ("run", "ground.script")):
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
        f"(default: ${PORT_ENV}, else the background node of `ground sim start`, else sim)",
    )
    g.add_argument("--log", metavar="PATH", help="session log to write (default: logs/)")
    g.add_argument("--operator", type=int, metavar="N", default=None,
                   help="sign commands with operator N's key from the key store "
                   "(default: $ILRS_OPERATOR; none: unsigned, or the development key on "
                   "a sim or vpico port unless ...?key=none, on the background node and "
                   "on mqtt://...?key=dev)")
    g.add_argument("--key-store", metavar="PATH",
                   help="key store (default: $ILRS_KEYS, else ~/.config/ilrs/keys.json)")
    g.add_argument(
        "--timeout",
        type=sc.positive_float,
        default=5.0,
        metavar="S",
        help="seconds to wait for verifications (default 5)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ground",
        description="Ground tool for the ILRS station node.",
        epilog="Exit codes: 0 ok, 1 rejected/failed, 2 usage, 3 link, "
        "4 dictionary mismatch, 5 timeout, 6 corrupt log, 7 outcome unknown, "
        "8 a script's step failed, 9 a script raised, 130 Ctrl-C.",
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
        with terminate_on_signals():  # SIGTERM/SIGHUP unwind like Ctrl-C: nothing is left behind
            return int(args.handler(args))
    except GroundError as exc:
        print(f"ground: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ground: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as exc:
        print(f"ground: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
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
