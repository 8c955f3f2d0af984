"""node.storage on MicroPython: a blob written with write_atomic survives a power cut at any
step of the write (every byte, the rename) as the old blob or the new one, never torn; a
missing or corrupt file is told apart; the boot count counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.micropython

CUTS = """
import json
import cutfs
from node import storage
root = {root!r}
try:
    import os
    os.mkdir(root)
except OSError:
    pass
old = b"old parameters " * 3
new = b"NEW" * 20
flash = cutfs.install(storage, None)
storage.write_atomic(root, "p.bin", new)
steps = flash.used
cutfs.uninstall(storage)
out = []
for k in range(steps + 1):
    storage.write_atomic(root, "p.bin", old)
    cutfs.install(storage, k)
    cut = False
    try:
        storage.write_atomic(root, "p.bin", new)
    except cutfs.PowerCut:
        cut = True
    cutfs.uninstall(storage)
    status, payload = storage.read_checked(root, "p.bin")
    seen = "old" if payload == old else "new" if payload == new else repr(payload)
    out.append([k, cut, status, seen])
print(json.dumps({{"steps": steps, "cuts": out}}))
"""


def test_a_power_cut_at_any_step_leaves_the_old_blob_or_the_new(run_mp, tmp_path: Path) -> None:
    res = json.loads(run_mp(CUTS.format(root=str(tmp_path / "flash"))))
    steps = res["steps"]
    cuts = res["cuts"]
    assert [c[0] for c in cuts] == list(range(steps + 1))
    for k, cut, status, seen in cuts:
        assert status == 0, (k, status, seen)  # OK: never MISSING, never CORRUPT
        if k < steps:  # cut before the rename: the old blob, whole
            assert (cut, seen) == (True, "old"), k
        else:
            assert (cut, seen) == (False, "new"), k
    assert steps == 60 + 4 + 1  # payload, CRC, the rename


def test_missing_corrupt_and_boot_count(run_mp, tmp_path: Path) -> None:
    root = str(tmp_path / "flash")
    out = run_mp(f"""
import os
from node import storage
root = {root!r}
os.mkdir(root)
print(storage.read_checked(root, "x.bin"))
storage.write_atomic(root, "x.bin", b"abc")
print(storage.read_checked(root, "x.bin"))
with open(root + "/x.bin", "r+b") as f:
    f.write(b"X")
print(storage.read_checked(root, "x.bin"))
with open(root + "/y.bin", "wb") as f:
    f.write(b"ab")
print(storage.read_checked(root, "y.bin"))
print([storage.next_boot_count(root) for _ in range(3)])
print(sorted(os.listdir(root)))
""")
    assert out.splitlines() == [
        "(1, None)", "(0, b'abc')", "(2, None)", "(2, None)", "[1, 2, 3]",
        "['boot.bin', 'x.bin', 'y.bin']",
    ]
