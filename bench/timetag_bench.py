"""Time-tagged commands (SPEC §11): how close to its time a queued command runs.

Against a fresh simulated node (or a board with ``--port``): correlate, queue 64
``param_set`` commands tagged 60 ms apart (queued in a shuffled order), and take each
completed verification's node time against the node time its tag maps to (SPEC §11.1, the
node's own correlation and drift). The spread is that difference: the target is within one
scheduler tick (0..100 ms) for every entry, and in tag order.

    python -m bench.timetag_bench [--port PORT]
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any, Final

from bench import Row, row
from ground.client import Client
from ground.downlink import VERIFICATION
from protocol import ids

SECTION: Final = "time-tagged commands (64 queued, spread of run time against tag)"
N: Final = 64
SPACING_MS: Final = 60
TICK_MS: Final = 100
_PPB: Final = 10**9


def _node_of(u: int, n0: int, u0: int, ppb: int) -> int:
    du = u - u0
    return n0 + du + du * ppb // _PPB


def _utc_for(n: int, n0: int, u0: int, ppb: int) -> int:
    u = u0 + (n - n0) * _PPB // (_PPB + ppb)
    while _node_of(u, n0, u0, ppb) < n:
        u += 1
    return u


def measure(client: Client) -> dict[str, Any]:
    client.set_correlate_period(1e9)
    time.sleep(0.05)
    ppb = client.correlate(10.0)
    assert ppb is not None and client.correlation is not None
    n0, u0 = client.correlation
    finals: dict[int, int] = {}
    done = threading.Event()

    def on_verification(msg: Any) -> None:
        if msg.id == ids.CMD_PARAM_SET and msg.body[1] in (2, 3):
            finals[msg.body[0]] = msg.time if msg.body[1] == 2 else -1
            if len(finals) >= N:
                done.set()

    unlisten = client.downlink.listen(VERIFICATION, on_verification)
    try:
        margin = 1000 + N * 50
        order = list(range(N))
        random.Random(14).shuffle(order)
        due: dict[int, int] = {}
        for k in order:
            n = n0 + margin + SPACING_MS * k
            tag = _utc_for(n, n0, u0, ppb)
            res = client.command("param_set", param="volatile_value", value=k, at=tag,
                                 timeout=10.0)
            due[res.seq] = _node_of(tag, n0, u0, ppb)
        done.wait((margin + N * SPACING_MS) / 1000 * 40 + 30)
    finally:
        unlisten()
    late = [finals[s] - due[s] for s in due if finals.get(s, -1) >= 0]
    ran = sorted((finals[s], due[s]) for s in due if finals.get(s, -1) >= 0)
    in_order = [d for _, d in ran] == sorted(d for _, d in ran)
    return {"late": late, "missing": N - len(late), "in_order": in_order}


def run(quick: bool = False, port: str | None = None) -> list[Row]:
    url = port or "sim"
    with Client(url, write_log=False) as client:
        m = measure(client)
    late = m["late"] or [0]
    where = "board" if port else "sim"
    ok = not m["missing"] and all(0 <= x <= TICK_MS for x in late) and m["in_order"]
    return [
        row(f"entries that ran ({where})", N - m["missing"], "", f"{N}", not m["missing"]),
        row("run time - tag, minimum", min(late), "ms", "0..100", 0 <= min(late) <= TICK_MS),
        row("run time - tag, median", statistics.median(late), "ms"),
        row("run time - tag, maximum (spread)", max(late), "ms", "<= 100 (one tick)",
            max(late) <= TICK_MS),
        row("ran in tag order", int(m["in_order"]), "", "1", m["in_order"]),
        row("all within one scheduler tick", int(ok), "", "1", ok),
    ]


if __name__ == "__main__":
    for r in run():
        verdict = "ok" if r["ok"] else "MISSED"
        print(f"{r['name']}: {r['value']} {r['unit']} {r['target']} {verdict}")
