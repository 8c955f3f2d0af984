"""Ground decode throughput: housekeeping frames per second from a recorded session log.

The ground path is what a live session does with every read from the port,
``ground.downlink.Downlink.receive``: deframe (COBS + CRC-32, ``ground.link``), decode (cbor2 +
the SPEC profile + ``protocol.messages`` rules, ``ground.codec``), and look each packet up in
the dictionary (``ground.values``). Beside it, on the same bytes in the same run, the node's
own codec on CPython: ``protocol.framing.Deframer`` + ``protocol.cbor.loads``. Targets: at
least 50,000 frames/s, and at least 5x the node codec.

The frames come from a session log: ``--log PATH``, or one recorded here from the simulated
node (housekeeping at 50 Hz for about two seconds). They are tiled to ``--frames`` and fed in
4 KB chunks, as a serial port delivers them.

    python -m bench.ground_bench [--log PATH] [--frames N] [--json]

For the bench runner: ``run(log=None, frames=20000) -> list[dict]`` (rows with ``name``,
``value``, ``unit``, ``target``, ``ok``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench import print_section
from ground import codec, values
from ground.downlink import Downlink
from ground.link import Deframer, Frame, decode_wire
from ground.log import DOWN, LogReader
from protocol import dictionary

SECTION: Final = "ground decode"
TARGET_FPS: Final = 50_000
TARGET_RATIO: Final = 5.0
_CHUNK: Final = 4096
_KIND_HK: Final = codec.KIND_HOUSEKEEPING


def record_log(path: Path, seconds: float = 2.0) -> Path:
    """Record a session log from a fresh simulated node with fast housekeeping: an open one
    (key=none), so the frames are the protocol's messages themselves, what these rows
    measure (an authenticated node's answers are COSE objects around them, SPEC §10)."""
    from ground.client import Client

    with Client("sim://?time_factor=600&key=none", log=path) as node:
        for packet in dictionary.PACKETS:
            node.command("hk_rate", packet=packet.id, rate=50.0)
        for _ in node.telemetry(duration=seconds):
            pass
    return path


def housekeeping_frames(log: Path) -> list[bytes]:
    """The wire bytes (between delimiters) of every housekeeping frame in a log."""
    frames = []
    for record in LogReader(log):
        if record.type != DOWN:
            continue
        item = decode_wire(record.data)
        if isinstance(item, Frame) and codec.decode(item.message).kind == _KIND_HK:
            frames.append(record.data)
    return frames


def stream(frames: list[bytes], count: int) -> bytes:
    tiled = (frames * (count // len(frames) + 1))[:count]
    return b"".join(b"\x00" + f + b"\x00" for f in tiled)


def ground_path(data: bytes) -> int:
    """What ground.downlink.Downlink.feed does with each read, minus the session log, the
    counters and the listeners: ``Downlink.receive`` (deframe, decode, dictionary lookup)."""
    receive = Downlink(log=None).receive
    n = 0
    for i in range(0, len(data), _CHUNK):
        results = receive(data[i : i + _CHUNK], 0).results
        if results and set(map(type, results)) != {values.Housekeeping}:
            raise RuntimeError("a logged housekeeping frame did not decode")
        n += len(results)
    return n


def decode_path(data: bytes) -> int:
    """The deframing and decoding ``Downlink.receive`` does, without the dictionary."""
    deframe = Deframer().deframe
    n = 0
    for i in range(0, len(data), _CHUNK):
        decoded = codec.decode_columns(deframe(data[i : i + _CHUNK]).messages)
        if isinstance(decoded, codec.Columns):
            n += len(decoded.ids)
        elif all(type(msg) is codec.Message for msg in decoded):  # one frame: no Columns
            n += len(decoded)
        else:
            raise RuntimeError("a logged housekeeping frame did not decode")
    return n


def node_codec_path(data: bytes) -> int:
    from protocol import cbor
    from protocol.framing import Deframer as NodeDeframer

    deframer = NodeDeframer()
    loads = cbor.loads
    n = 0
    for i in range(0, len(data), _CHUNK):
        for message in deframer.feed(data[i : i + _CHUNK]):
            loads(message)
            n += 1
    return n


def _rates(
    paths: list[Callable[[bytes], int]], data: bytes, expected: int, rounds: int
) -> list[float]:
    """Best frames/s of each path over ``rounds``, the paths taking turns in each round so
    that a busy machine slows them alike (the ratio is what matters)."""
    best = [0.0] * len(paths)
    for _ in range(rounds):
        for i, fn in enumerate(paths):
            start = time.perf_counter()
            n = fn(data)
            elapsed = time.perf_counter() - start
            if n != expected:
                raise RuntimeError(f"path {i} decoded {n} frames, expected {expected}")
            best[i] = max(best[i], n / elapsed)
    return best


def run(log: Path | None = None, frames: int = 20_000, quick: bool = False) -> list[dict[str, Any]]:
    if quick:
        frames = min(frames, 5_000)
    if log is None:
        with tempfile.TemporaryDirectory(prefix="ground-bench-") as tmp:
            recorded = record_log(Path(tmp) / "session.jsonl", 1.0 if quick else 2.0)
            return run(recorded, frames, quick)
    found = housekeeping_frames(log)
    if not found:
        raise RuntimeError(f"{log}: no housekeeping frames to decode")
    data = stream(found, frames)
    full, bare, node = _rates(
        [ground_path, decode_path, node_codec_path],
        data,
        frames,
        rounds=3 if quick else 7,
    )
    ratio = full / node
    size = sum(len(f) for f in found) / len(found)
    return [
        {
            "name": "ground: deframe + CRC + decode + dictionary",
            "value": round(full),
            "unit": "frames/s",
            "target": f">= {TARGET_FPS}",
            "ok": full >= TARGET_FPS,
        },
        {
            "name": "ground: deframe + CRC + decode",
            "value": round(bare),
            "unit": "frames/s",
            "target": "",
            "ok": True,
        },
        {
            "name": "node codec on CPython: Deframer + cbor.loads",
            "value": round(node),
            "unit": "frames/s",
            "target": "",
            "ok": True,
        },
        {
            "name": "ground (full) / node codec",
            "value": round(ratio, 1),
            "unit": "x",
            "target": f">= {TARGET_RATIO:g}",
            "ok": ratio >= TARGET_RATIO,
        },
        {
            "name": f"input: {len(found)} logged frames tiled to {frames}",
            "value": round(size),
            "unit": "bytes/frame",
            "target": "",
            "ok": True,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ground_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log", type=Path, help="session log to take frames from")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return print_section(SECTION, run(args.log, args.frames), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
