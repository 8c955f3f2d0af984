"""``make run`` (``python -m ground.run``): the console against the simulated node.

On a terminal this is ``ground console --port sim``. Without one (stdin not a tty: CI, a
pipe) it runs a short scripted demo instead and exits 0: start the simulated node, show the
dictionary hash check, send a few commands with their verification (noop, set_mode NOMINAL,
load_switch, param_get), stream a few housekeeping packets as a table, list the events seen.

    python -m ground.run [--port URL] [--demo] [--packets N]

(This replaces the first placeholder, which printed the dictionary and example frames:
``ground dict`` prints the dictionary, and ``ground replay LOG --format text`` shows frames.)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Final

from rich.console import Console

from ground import display
from ground.client import Client
from ground.errors import GroundError
from protocol.node_dictionary import DICT_HASH

DEMO_PORT: Final = "sim://?time_factor=600"
DEMO_COMMANDS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("noop", {}),
    ("set_mode", {"mode": "NOMINAL"}),
    ("load_switch", {"channel": "seismometer", "on": True}),
    ("param_get", {"param": "time_factor"}),
)
DEMO_CHANNELS: Final = (
    "mode",
    "uptime_s",
    "sun_elevation",
    "solar_current",
    "battery_soc",
    "battery_voltage",
    "battery_temp",
    "bus_current",
    "loads_on",
)


def demo(port: str = DEMO_PORT, packets: int = 3, out: Console | None = None) -> int:
    out = out or Console(highlight=False)
    out.rule("ILRS station node: scripted demo (in a terminal, `make run` opens the console)")
    with Client(port) as node:
        status = node.status
        assert status is not None
        out.print(
            f"node on {node.transport.device}: mode {status.mode}, boot "
            f"{status.boot_count} ({status.reset_cause}), firmware {status.fw_version}"
        )
        verdict = "matches" if status.dict_hash == DICT_HASH else "DIFFERS"
        out.print(
            f"dictionary hash: node 0x{status.dict_hash:08x}, ground 0x{DICT_HASH:08x}: {verdict}"
        )
        events = node.subscribe("event")
        for name, kwargs in DEMO_COMMANDS:
            args = " ".join(f"{k}={v}" for k, v in kwargs.items())
            started = time.monotonic()
            res = node.command(name, **kwargs)
            ms = (time.monotonic() - started) * 1000
            stages = " -> ".join(v.stage for v in res.verifications)
            result = "" if res.result is None else f", result {res.result!r}"
            out.print(
                f"[bold]{name} {args}[/]  seq {res.seq}: [green]{stages}[/] ({ms:.0f} ms{result})"
            )
        seen = []
        for hk in node.telemetry(duration=10.0):
            if hk.packet == "power":
                seen.append(hk)
            if len(seen) >= packets:
                break
        out.print(display.packet_table(seen, DEMO_CHANNELS))
        events.close()
        for ev in iter(lambda: events.get(timeout=0), None):
            out.print(display.event_text(ev))
        out.print(f"session log: {node.log_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ground.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", help="node to use (default: the simulated node)")
    parser.add_argument("--demo", action="store_true", help="the scripted demo, even on a tty")
    parser.add_argument("--packets", type=int, default=3, help="housekeeping packets to show")
    args = parser.parse_args(argv)
    try:
        if args.demo or not (sys.stdin.isatty() and sys.stdout.isatty()):
            return demo(args.port or DEMO_PORT, args.packets)
        from ground import console

        return console.main(args.port or "sim")
    except GroundError as exc:
        print(f"ground: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
