"""How the node is deployed and what it imports: the ROMFS image the simulated node runs from,
the heap the host gives it (a Pico's 241,472 B once the image is in), the filesystem .mpy mode, and
the modules the node imports (only the node-facing protocol modules, never the ground's)."""

import os
import subprocess
import time

import pytest
from nodelink import NodeLink

from bench import mpy_layout
from ground.micropython import PICO_HEAP, find_micropython
from ground.simnode import MPY, ROMFS, SimNode, build_mpy, build_romfs, romfs_heap_bytes
from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame

NODE_PROTOCOL = {
    "protocol", "protocol.compat", "protocol.errors", "protocol.crc", "protocol.cobs",
    "protocol.framing", "protocol.cbor_encoder", "protocol.cbor_decoder", "protocol.envelope",
    "protocol.node_dictionary", "protocol.cose",
}
_BLOCK = 32  # the Unix port's GC block (64-bit)


def _pool(heap: str, image_size: int) -> int:
    """The GC pool (free + used) of a micropython process, less a bytearray of image_size."""
    script = (f"import gc\nb = bytearray({image_size})\ngc.collect()\n"
              "print(gc.mem_free() + gc.mem_alloc())\n")
    done = subprocess.run([find_micropython(), "-X", f"heapsize={heap}", "-c", script],
                          capture_output=True, text=True, timeout=60, check=True)
    image_blocks = (_BLOCK + image_size + _BLOCK - 1) // _BLOCK if image_size else 0
    return int(done.stdout) - image_blocks * _BLOCK


@pytest.mark.micropython
@pytest.mark.parametrize("image_size", [1000, 50000, 79814, 104390, 131072])
def test_romfs_heap_leaves_the_node_a_pico_heap(image_size):
    pico = _pool(PICO_HEAP, 0)
    node = _pool(str(romfs_heap_bytes(image_size)), image_size)
    assert pico <= node <= pico + 7 * _BLOCK


@pytest.mark.micropython
def test_node_imports_only_the_node_protocol_modules(run_mp, tmp_path):
    out = run_mp(f"""
import os, sys
import node
node.preload()
from memboard import MemBoard
from node.app import App
os.mkdir({str(tmp_path / "state")!r})
app = App(MemBoard({str(tmp_path / "state")!r}, tx_size=16384))
app.boot()
app.step_plant()
app.check_fdir()
print(sorted(m for m in sys.modules if m.startswith("protocol")))
""")
    assert set(eval(out.splitlines()[-1])) == NODE_PROTOCOL


def test_romfs_image_is_rebuilt_when_the_tree_changes(tmp_path):
    tree = build_mpy(tmp_path / "mpy")
    # each module named by its path in the tree, as ground flash names them
    assert mpy_layout.parse((tree / "node" / "app.mpy").read_bytes()).qstrs[0] == b"node/app.mpy"
    image = build_romfs(tree, tmp_path / "node.romfs")
    assert image.read_bytes()[:3] == b"\xd2\xcd\x31"
    first = image.stat().st_mtime_ns
    assert build_romfs(tree, image).stat().st_mtime_ns == first  # up to date: kept
    changed = tree / "node" / "app.mpy"
    later = time.time() + 5
    os.utime(changed, (later, later))
    assert build_romfs(tree, image).stat().st_mtime_ns != first


@pytest.mark.slow
@pytest.mark.parametrize("deployment", [ROMFS, MPY])
def test_node_runs_and_takes_a_largest_message(tmp_path, deployment):
    with SimNode(state_dir=tmp_path / "s", seed=1, deployment=deployment) as node:
        assert node.deployment == deployment
        if deployment == ROMFS:
            assert node.romfs_image is not None
            assert int(node.process_heap) == romfs_heap_bytes(node.romfs_image.stat().st_size)
        else:
            assert node.process_heap == PICO_HEAP
        with NodeLink(node.port, node.log_path) as link:
            link.send_and_assert_command(ids.CMD_STATUS, timeout=10)
            # A command that fills the 1020-byte message limit: decoded and answered.
            mark = link.mark()
            seq = link.next_seq()
            boot = link.current_boot()
            pad = 1006 - len(M.encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                                              [ids.PARAM_TEST_VALUE, bytes(1006)], boot)) + 1020
            message = M.encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                                       [ids.PARAM_TEST_VALUE, bytes(pad)], boot)
            assert len(message) == 1020
            link.write(encode_frame(message))
            v = link.verification(seq, ids.CMD_PARAM_SET, [M.STAGE_REJECTED], mark=mark)
            assert v.body[2] == M.BAD_ARGUMENTS
            link.send_and_assert_command(ids.CMD_NOOP)
        log = node.log_path.read_text()
        assert "MemoryError" not in log and "Traceback" not in log
        assert node.boots == 1
