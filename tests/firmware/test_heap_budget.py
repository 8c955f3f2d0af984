"""The node's steady-state free heap on the 64-bit simulated node with .mpy files, against the
heap budget of issues #13 and #14: at least 120 KB free on a stock Pico with .mpy files.

KB is 1024 B here (README: "120 KB"; the larger reading is the safe one): 122,880 B free of
the 241,472 B a stock Pico's MicroPython leaves at its REPL, so the node may use at most
118,592 B on 32 bits. `make bench` measures the 32-bit use itself (bench/heap32.py: the
MicroPython WebAssembly VM, needs Node.js); this test needs only the Unix port, so it runs in
every `make test` and the budget cannot be lost silently again.

The relation between the two: the node's heap use on the 64-bit Unix port (gc.mem_free() of
a process heap, less its heap_free channel) over its use on 32 bits (bench/heap32.py files_use),
measured on the same commit: RATIO_64_32 (README "The node's heap" gives both figures). The
32-bit budget times the ratio is the 64-bit budget. The node is measured in a 256K process
(the heap_free channel: collected, then gc.mem_free(), at 1 Hz), not the Pico-sized heap the
simulated node gets, so the figure is there even when a node outgrows that heap; the use
does not depend on the process heap (the channel collects first).
"""

import pytest
from nodelink import NodeLink, field

from ground.micropython import heap_bytes
from ground.simnode import MPY, SimNode
from protocol import ids

PICO_REPL_FREE = 241_472  # bench/heap32.py: MicroPython v1.28.0 RPI_PICO at a bare REPL
BUDGET_FREE_32 = 120 * 1024
BUDGET_USE_32 = PICO_REPL_FREE - BUDGET_FREE_32  # 118,592 B
# Measured on one commit (main 62ff322, after the heap rounds HEAPA/HEAPB/HEAPC of session 5):
# the node's use 170,336 B on the Unix port (256K process, heap_free 91,808 B, the same in two
# runs) and 111,776 B on 32 bits (bench/heap32.py files_use, the same in three runs, now that
# the VM harness closes the boot escape window at once): ratio 1.524. It moves between
# commits (1.441 on session 4's last, when the 32-bit figure still counted main.py's
# docstrings, which a Pico does not keep, and the escape window's polling): the figure is the
# budget's level within about 2 KB.
USE_64_MEASURED = 170_336
USE_32_MEASURED = 111_776
RATIO_64_32 = USE_64_MEASURED / USE_32_MEASURED
BUDGET_USE_64 = round(BUDGET_USE_32 * RATIO_64_32)  # 180,723 B
# The figure is the same to the byte from run to run, but the Unix port's GC scans the C
# stack conservatively: a change in the heap's layout alone moved it by 1.3 KB once (a stale
# word on the stack keeps a dead block alive). Growth beyond this fails.
MARGIN = 2048
PROCESS_HEAP = "256K"


@pytest.fixture(scope="module")
def use_64(tmp_path_factory):
    """The node's steady-state heap use on 64 bits: the highest of three heap_free samples."""
    state = tmp_path_factory.mktemp("heap") / "s"
    with SimNode(state_dir=state, seed=1, deployment=MPY, heap=PROCESS_HEAP) as node, \
            NodeLink(node.port, node.log_path) as link:
        link.send_and_assert_command(ids.CMD_NOOP, timeout=10)
        i = field(ids.PKT_LINK, "heap_free")
        free = [link.await_telemetry(ids.PKT_LINK, timeout=10).body[i] for _ in range(3)]
    return heap_bytes(PROCESS_HEAP) - min(free)


def test_steady_state_heap_is_no_worse_than_measured(use_64):
    # No new growth at all goes unnoticed, well before the budget below is reached.
    assert use_64 <= USE_64_MEASURED + MARGIN, (
        f"the node uses {use_64} B on the 64-bit sim, more than the {USE_64_MEASURED} B "
        f"measured (+{MARGIN}): load the new code only when needed (node.call / node.Lazy)")


def test_steady_state_heap_is_within_the_120_kb_budget(use_64):
    assert use_64 <= BUDGET_USE_64, (
        f"the node uses {use_64} B on the 64-bit sim: above {BUDGET_USE_64} B, the 64-bit "
        f"level of {BUDGET_USE_32} B on 32 bits (120 KB free on a stock Pico)")
