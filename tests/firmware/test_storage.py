"""node.storage on MicroPython: a blob written with write_atomic survives a power cut at any
step of the write (every byte, the rename) as the old blob or the new one, never torn; a
missing or corrupt file is told apart; the boot count counts (node.boot.next_boot_count, a
blob too)."""

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
from node import boot, storage
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
print([boot.next_boot_count(root) for _ in range(3)])
print(sorted(os.listdir(root)))
""")
    assert out.splitlines() == [
        "(1, None)", "(0, b'abc')", "(2, None)", "(2, None)", "[1, 2, 3]",
        "['boot.bin', 'x.bin', 'y.bin']",
    ]


def test_blob_edges_and_boot_count_wrap(run_mp, tmp_path: Path) -> None:
    # An empty payload is a 4-byte file (its CRC only); 3 bytes are too short for a CRC; a
    # stored CRC below or above the payload's is corrupt either way; the
    # boot count wraps from 65535 to 1 and restarts at 1 from a boot file of the wrong length.
    root = str(tmp_path / "flash")
    out = run_mp(f"""
import os, struct
from node import boot, storage
root = {root!r}
os.mkdir(root)
storage.write_atomic(root, "e.bin", b"")
print(storage.read_checked(root, "e.bin"))
with open(root + "/t.bin", "wb") as f:
    f.write(b"abc")
print(storage.read_checked(root, "t.bin"))
for trailer in (b"\\x00" * 4, b"\\xff" * 4):  # a stored CRC below the real one, and above
    with open(root + "/c.bin", "wb") as f:
        f.write(b"abc" + trailer)
    print(storage.read_checked(root, "c.bin"))
storage.write_atomic(root, "boot.bin", struct.pack("<I", 65534))
print([boot.next_boot_count(root) for _ in range(3)])
storage.write_atomic(root, "boot.bin", b"\\x05\\x00\\x00\\x00\\x00")
print(boot.next_boot_count(root))
storage.write_atomic(root, "boot.bin", b"\\x07\\x00\\x00")
print(boot.next_boot_count(root))
""")
    assert out.splitlines() == ["(0, b'')", "(2, None)", "(2, None)", "(2, None)",
                                "[65535, 1, 2]", "1", "1"]


def test_a_flash_that_will_not_rename_over_a_file(run_mp, tmp_path: Path) -> None:
    # Some filesystems refuse a rename over an existing file: write_atomic removes the old file
    # and renames again (the window between is the only one where a cut loses the blob). A
    # rename that fails with no old file to remove still ends in the new blob. A flash that
    # refuses every write still gives a boot count (counted in RAM for this boot).
    root = str(tmp_path / "flash")
    out = run_mp(f"""
import os
from node import boot, storage
root = {root!r}
os.mkdir(root)
log = []
class NoOverwrite:
    fail_once = False
    def rename(self, a, b):
        try:
            os.stat(b)
            exists = True
        except OSError:
            exists = False
        log.append(("rename", b[len(root) + 1:], exists))
        if exists or self.fail_once:
            self.fail_once = False
            raise OSError(17)
        os.rename(a, b)
    def remove(self, p):
        log.append(("remove", p[len(root) + 1:]))
        os.remove(p)
    def __getattr__(self, name):
        return getattr(os, name)
shim = NoOverwrite()
storage.os = shim
storage.write_atomic(root, "p.bin", b"old")
storage.write_atomic(root, "p.bin", b"new")
print(storage.read_checked(root, "p.bin"), log)
log.clear()
shim.fail_once = True
storage.write_atomic(root, "q.bin", b"qq")
print(storage.read_checked(root, "q.bin"), log)
print(sorted(os.listdir(root)))
storage.os = os
def refuse(path, mode="r"):
    raise OSError(28)
storage.open = refuse
print(boot.next_boot_count(root), boot.next_boot_count(root))
""")
    assert out.splitlines() == [
        "(0, b'new') [('rename', 'p.bin', False), ('rename', 'p.bin', True), "
        "('remove', 'p.bin'), ('rename', 'p.bin', False)]",
        "(0, b'qq') [('rename', 'q.bin', False), ('remove', 'q.bin'), "
        "('rename', 'q.bin', False)]",
        "['p.bin', 'q.bin']",
        "1 1",
    ]
