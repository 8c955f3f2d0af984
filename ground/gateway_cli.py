"""bridge node links to an MQTT broker (ground gateway; topics in docs/station.md)

    ground gateway --broker mqtt://host:1883 --station lab pcu1=/dev/ttyACM0 pcu2=sim://?seed=2
    ground gateway --broker local --sims 3          # a local station: broker + 3 simulated nodes

Runs in the foreground until Ctrl-C (exit 130) or SIGTERM/SIGHUP (128 + the signal), printing
each node's port URL (for --port of cmd, tlm, console ...) on stdout first. Every node link is
closed and its status published ``down`` before the gateway leaves; a local broker it started
is stopped by its pid.
"""

from __future__ import annotations

import argparse
import sys
import threading

from ground.errors import EXIT_OK, UsageError
from ground.lifetime import shielded

LOCAL: str = "local"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "nodes", nargs="*", metavar="NAME[@ID]=PORT",
        help="a node and its port (serial device, pyserial URL, sim[://?seed=N&node_id=I]); "
        "@ID: the node_id the node must show (else the first one seen is held to)",
    )
    p.add_argument(
        "--broker", default=LOCAL, metavar="URL",
        help="mqtt://[user:password@]host[:port] of the broker, or 'local': start one on "
        "127.0.0.1 (Mosquitto when installed, else amqtt) for as long as the gateway runs "
        "(default local)",
    )
    p.add_argument("--broker-port", type=int, default=1883, help="port of a local broker")
    p.add_argument("--station", default="lab", help="station name, one topic level (default lab)")
    p.add_argument("--sims", type=int, default=0, metavar="N",
                   help="also bridge N simulated nodes named node1..nodeN (seeds and node "
                   "ids 1..N)")
    p.add_argument("--time-factor", type=float, default=None,
                   help="model seconds per real second for the --sims nodes")


def run(args: argparse.Namespace) -> int:
    from ground.broker import Broker
    from ground.gateway import Gateway, parse_node_words

    nodes, node_ids = parse_node_words(list(args.nodes))
    if args.sims < 0 or args.sims > 200:
        raise UsageError("--sims: give 0 to 200 simulated nodes")
    for i in range(1, args.sims + 1):
        name = f"node{i}"
        if name in nodes:
            raise UsageError(f"node {name!r} is named twice (given, and made by --sims)")
        query = f"seed={i}&node_id={i}" + (
            f"&time_factor={args.time_factor}" if args.time_factor else "")
        nodes[name] = f"sim://?{query}"
        node_ids[name] = i
    broker = None
    url = args.broker
    if url == LOCAL:
        broker = Broker(args.broker_port)
        broker.start()
        url = broker.url
        print(f"ground: {broker.kind} broker on {url} (pid {broker.pid})", file=sys.stderr)
    try:
        gateway = Gateway(url, args.station, nodes, node_ids=node_ids)
        gateway.start()
        try:
            for bridge in gateway.bridges:
                print(f"{url}/{args.station}/{bridge.node}", flush=True)
            print(f"ground: gateway {gateway.name} bridges {len(nodes)} node(s); Ctrl-C stops it",
                  file=sys.stderr)
            threading.Event().wait()
        finally:
            with shielded():
                gateway.stop()
    finally:
        if broker is not None:
            with shielded():
                broker.stop()
    return EXIT_OK
