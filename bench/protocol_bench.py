"""Protocol codec on the node's interpreter: CBOR encode/decode of a housekeeping packet and of
a command, allocations, frame writing and deframer throughput, measured on MicroPython
(``-X heapsize=192K``, the Pico's free heap) by bench/mpy_protocol.py, side by side with
MicroPython's own ``json`` (C) on the same content.

Targets: housekeeping encode within 3x of ``json.dumps``; command decode within 1.5x of
``json.loads``; at most 64 bytes allocated per housekeeping encode; CBOR at most 60 % of the
compact JSON on the wire. For the bench runner: ``run(quick=False) -> list[dict]``.
"""

from __future__ import annotations

from typing import Any, Final

from bench import BENCH_DIR, Row, row, run_micropython_json

SECTION: Final = "protocol codec (MicroPython, 192K heap)"
SCRIPT: Final = BENCH_DIR / "mpy_protocol.py"
HK_ENCODE_RATIO: Final = 3.0
CMD_DECODE_RATIO: Final = 1.5
HK_ENCODE_ALLOC: Final = 64
WIRE_RATIO: Final = 0.60


def rows(m: dict[str, Any]) -> list[Row]:
    """Rows from the MicroPython measurements."""
    hk_ratio = m["hk_encode_us"] / m["hk_json_dumps_us"]
    cmd_ratio = m["cmd_decode_us"] / m["cmd_json_loads_us"]
    wire = m["hk_cbor_bytes"] / m["hk_json_bytes"]
    us = "µs"
    hk = f"HK ({m['hk_channels']} ch)"
    return [
        row(f"{hk} encode: Encoder.item, preallocated", round(m["hk_encode_us"], 2), us),
        row(f"{hk} json.dumps (compact)", round(m["hk_json_dumps_us"], 2), us),
        row(f"{hk} encode / json.dumps", round(hk_ratio, 2), "x",
            f"<= {HK_ENCODE_RATIO:g}", hk_ratio <= HK_ENCODE_RATIO),
        row(f"{hk} encode: allocated", m["hk_encode_alloc"], "bytes/op",
            f"<= {HK_ENCODE_ALLOC}", m["hk_encode_alloc"] <= HK_ENCODE_ALLOC),
        row(f"{hk} json.dumps: allocated", m["hk_json_dumps_alloc"], "bytes/op"),
        row(f"{hk} encode: cbor.dumps (allocating)", round(m["hk_dumps_us"], 2), us),
        row(f"{hk} decode: cbor.loads", round(m["hk_decode_us"], 2), us),
        row(f"{hk} json.loads", round(m["hk_json_loads_us"], 2), us),
        row(f"{hk} decode / json.loads", round(m["hk_decode_us"] / m["hk_json_loads_us"], 2), "x"),
        row(f"{hk} decode: allocated", m["hk_decode_alloc"], "bytes/op"),
        row("command encode: Encoder.item", round(m["cmd_encode_us"], 2), us),
        row("command json.dumps", round(m["cmd_json_dumps_us"], 2), us),
        row("command decode: cbor.loads", round(m["cmd_decode_us"], 2), us),
        row("command json.loads", round(m["cmd_json_loads_us"], 2), us),
        row("command decode / json.loads", round(cmd_ratio, 2), "x",
            f"<= {CMD_DECODE_RATIO:g}", cmd_ratio <= CMD_DECODE_RATIO),
        row("command decode: allocated", m["cmd_decode_alloc"], "bytes/op"),
        row("command json.loads: allocated", m["cmd_json_loads_alloc"], "bytes/op"),
        row("command decode: pull Decoder (node path)", round(m["cmd_pull_us"], 2), us),
        row("command pull Decoder: allocated", m["cmd_pull_alloc"], "bytes/op"),
        row(f"{hk} wire: CBOR", m["hk_cbor_bytes"], "bytes"),
        row(f"{hk} wire: compact JSON", m["hk_json_bytes"], "bytes"),
        row(f"{hk} wire: CBOR / JSON", round(wire, 2), "x",
            f"<= {WIRE_RATIO:.2f}", wire <= WIRE_RATIO),
        row(f"{hk} FrameWriter.frame", round(m["hk_frame_us"], 2), us),
        row(f"{hk} FrameWriter.frame: allocated", m["hk_frame_alloc"], "bytes/op"),
        row("Deframer.push, HK frames, 256 B reads", round(m["deframe_hk_bps"] / 1e6, 2), "MB/s"),
        row("Deframer.push, 1020 B messages", round(m["deframe_max_bps"] / 1e6, 2), "MB/s"),
        row("heap free after the run", m["mem_free"], "bytes"),
    ]


def run(quick: bool = False) -> list[Row]:
    measured = run_micropython_json(SCRIPT, *(["--quick"] if quick else []))
    return rows(measured)
