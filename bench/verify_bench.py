"""The node's verify path: what it allocates per command beyond hashlib's own (issue 13).

``node.auth.Auth.check`` (bench/mpy_auth_check.py), the node's whole check of an
authenticated command, on frames of every kind it meets (``cases()``): accepted in order and
out of order inside the replay window, replayed, forged (wrong tag), unknown key id, bad
layout; payloads from 1 byte to the largest, ending on and around SHA-256's 64-byte blocks.
Measured per frame with ``gc.mem_alloc()`` (no collection meanwhile), against what hashlib
alone allocates for one verification's hashing (two sha256 objects and their two digests),
on two interpreters:

- the MicroPython Unix port (64-bit: the simulated node's interpreter, viper code as on a
  Pico);
- the 32-bit MicroPython VM of the heap rows (bench/heap32.py; ``make wasm``): a Pico's object
  sizes; it has no native emitter, so it runs the viper functions' pure twins (allocation-free
  loops too).

Target: 0 B beyond hashlib's for every frame whose tag is checked, 0 B in all for the others
(refused before any hashing). The first frame, which takes the counter reservation's flash
write (once in 256 commands), is not held to it.

The signing path too: ``node.auth.Auth.wrap``, the node's signing of each answer to an
authenticated command (SPEC §10.5), on answers of the same sizes (``ANSWERS``), measured the
same way; each object it made must open with the ground's check (``ground.auth.Signer.open``)
to the very payload and counter. Target: 0 B beyond hashlib's (the same two objects and two
digests).

    python -m bench.verify_bench [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final, NamedTuple

from bench import Row, print_section, row, run_micropython_json
from bench.heap32 import VM_DIR, Heap32Error, for_the_vm, micropython_mjs, node_js
from ground.auth import DEV_MASTER, DEV_OPERATOR, AuthError, dev_signer, node_key_table
from ground.flash import sources
from ground.micropython import REPO_ROOT
from protocol import cose, cose_sign

SECTION: Final = "node verify and signing paths: allocation (issue 13)"
SCRIPT: Final = Path(__file__).resolve().with_name("mpy_auth_check.py")
ACCEPT: Final = 0  # node.auth's check() results
REFUSED: Final = 1
LARGEST: Final = cose.MAX_MESSAGE_BYTES - cose.WRAP_OVERHEAD  # the largest payload
_SIZES: Final = (1, 8, 23, 24, 37, 38, 39, 63, 64, 65, 101, 102, 103, 255, 256, 700, LARGEST)


ANSWERS: Final = _SIZES  # payload sizes of the answers Auth.wrap signs


class Case(NamedTuple):
    what: str
    mac0: bytes
    verdict: int  # what Auth.check must return
    hashed: bool  # the tag is computed (hashlib allocates); else refused before any hashing


def _key(operator: int, generation: int) -> cose.MacKey:
    kid = bytes((operator, generation))
    return cose.MacKey(kid, cose.derive_key(DEV_MASTER, kid))


def _signed(counter: int, size: int, key: cose.MacKey | None = None) -> bytes:
    payload = bytes((i * 7 + counter) & 0xFF for i in range(size))
    return cose_sign.encode_mac0(key or _key(DEV_OPERATOR, 0), cose.LABEL_COUNTER, counter, payload,
                                 cose_sign.AAD_COMMAND)


def cases() -> list[Case]:
    """The frames, in the order they are checked (the replay window's state follows them)."""
    forged = bytearray(_signed(5, 40))
    forged[-1] ^= 0x01
    out = [
        Case("first (counter reservation written)", _signed(1, 8), ACCEPT, True),
        Case("in order", _signed(3, 100), ACCEPT, True),
        Case("out of order, inside the window", _signed(2, LARGEST), ACCEPT, True),
        Case("replayed", _signed(2, LARGEST), REFUSED, True),
        Case("in order, 1-byte payload", _signed(4, 1), ACCEPT, True),
        Case("forged (tag's last bit)", bytes(forged), REFUSED, True),
        Case("the counter the forgery used", _signed(5, 40), ACCEPT, True),
        Case("past the window", _signed(40, 500), ACCEPT, True),
        Case("below the window", _signed(6, 8), REFUSED, True),
        Case("unknown operator", _signed(41, 8, _key(9, 0)), REFUSED, False),
        Case("generation not held", _signed(41, 8, _key(DEV_OPERATOR, 1)), REFUSED, False),
        Case("truncated tag", _signed(41, 8)[:-1], REFUSED, False),
    ]
    for i, counter in enumerate(range(41, 101)):
        out.append(Case(f"in order, {_SIZES[i % len(_SIZES)]} B", _signed(counter,
                        _SIZES[i % len(_SIZES)]), ACCEPT, True))
    return out


def _request(root: str, frames: list[Case]) -> dict[str, Any]:
    return {"root": root, "keys": node_key_table([(DEV_OPERATOR, DEV_MASTER, 0)]).hex(),
            "frames": [c.mac0.hex() for c in frames], "answers": list(ANSWERS)}


class Measured(NamedTuple):
    hashlib: int  # bytes hashlib allocates for one verification
    beyond: list[int]  # per frame after the first: bytes beyond hashlib's (or beyond 0)
    calls: int
    signing: list[int]  # per answer Auth.wrap signed: bytes beyond hashlib's


def judge(out: dict[str, Any], frames: list[Case]) -> Measured:
    """The figures of one run of mpy_auth_check.run; raises if a verdict is not the one
    expected or hashlib's figure was not exact."""
    if "error" in out:
        raise RuntimeError(f"mpy_auth_check failed: {out['error']}")
    verdicts = [c.verdict for c in frames]
    if out["verdict"] != verdicts:
        raise RuntimeError(f"Auth.check's verdicts {out['verdict']}, expected {verdicts}")
    if not out["exact"]:
        raise RuntimeError("hashlib's allocation per verification varied between runs")
    base = int(out["hashlib"])
    beyond = [a - (base if c.hashed else 0) for a, c in zip(out["alloc"], frames, strict=True)][1:]
    last = [cose_counter(c.mac0) for c in frames if c.verdict == ACCEPT][-1]
    opener = dev_signer()
    for size, made in zip(ANSWERS, out["wrapped"], strict=True):
        payload = bytes((j * 5 + size) & 0xFF for j in range(size))
        try:
            got = opener.open(bytes.fromhex(made))
        except AuthError as e:
            raise RuntimeError(f"Auth.wrap's {size}-byte answer does not open: {e}") from None
        if got != (payload, last):
            raise RuntimeError(f"Auth.wrap's {size}-byte answer opens to {got!r}")
    signing = [a - base for a in out["wrap_alloc"]]
    return Measured(base, beyond, len(beyond), signing)


def cose_counter(mac0: bytes) -> int:
    """The counter of a command's COSE_Mac0 object."""
    r = cose.Mac0Reader()
    if r.parse(mac0, len(mac0), cose.LABEL_COUNTER) != cose.OK:
        raise ValueError("not a command's COSE_Mac0 object")
    return r.counter


def unix() -> Measured:
    """On the MicroPython Unix port (64-bit), in a Pico-sized heap."""
    frames = cases()
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
        req = Path(tmp) / "request.json"
        req.write_text(json.dumps(_request(str(Path(tmp) / "flash"), frames)))
        return judge(run_micropython_json(SCRIPT, str(req), timeout=120), frames)


def vm32() -> Measured:
    """In the 32-bit VM (bench/heap32.py), from the node's sources as the VM runs them."""
    frames = cases()
    mjs, node = micropython_mjs(), node_js()
    with tempfile.TemporaryDirectory(prefix="verify-bench-vm-") as tmp:
        tree = Path(tmp) / "tree"
        for src, remote in sources(REPO_ROOT):
            dest = tree / f"{remote}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(for_the_vm(src, src.read_text()))
        (tree / SCRIPT.name).write_text(SCRIPT.read_text())
        req = Path(tmp) / "request.json"
        req.write_text(json.dumps(_request("/flash/state", frames)))
        done = subprocess.run([node, str(VM_DIR / "script.mjs"), str(mjs), str(tree),
                               SCRIPT.stem, str(req)], capture_output=True, text=True,
                              timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise Heap32Error(f"the VM gave no result (exit {done.returncode}): "
                          f"{done.stderr.strip()[-800:]}") from None
    return judge(out, frames)


def rows_of(where: str, m: Measured) -> list[Row]:
    worst = max(m.beyond)
    return [
        row(f"hashlib's own allocation per verification ({where})", m.hashlib, "B"),
        row(f"node.auth.check: most allocated beyond hashlib's, {m.calls} frames ({where})",
            worst, "B", "0", worst == 0),
        row(f"node.auth.wrap (signing an answer): most allocated beyond hashlib's, "
            f"{len(m.signing)} answers ({where})", max(m.signing), "B", "0",
            max(m.signing) == 0),
    ]


def run() -> list[Row]:
    out = rows_of("64-bit Unix port", unix())
    try:
        out += rows_of("32-bit VM", vm32())
    except Heap32Error as e:  # no Node.js or no `make wasm`: say so, as the heap rows do
        out.append(row(f"node.auth.check on the 32-bit VM: not measured: {e}", 0, "B", "0",
                       False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_bench", description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return print_section(SECTION, run(), args.json)


if __name__ == "__main__":
    sys.exit(main())
