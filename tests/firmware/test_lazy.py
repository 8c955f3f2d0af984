"""Code the node imports only when needed and lets go after (node.load / drop / forget), on
the Unix port: what sys.modules holds before, during and after the work."""

from __future__ import annotations

import pytest

from protocol import ids

pytestmark = pytest.mark.micropython


def test_the_description_is_imported_for_a_dictionary_downlink_only(run_mp, tmp_path):
    out = run_mp(f"""
import sys, asyncio
import protocol
from seqrig import start, cmd
app, board = start({str(tmp_path / "s")!r})
def held():
    return ["protocol.node_description" in sys.modules, hasattr(protocol, "node_description")]
print(held())                          # after boot
cmd({ids.CMD_DICT_DOWNLINK}, [])
task = app.bulk._task
print(held(), task is not None)        # the transfer running: it holds only what it sends
asyncio.get_event_loop().run_until_complete(task)
print(held(), app.bulk.transfers, app.bulk.busy)
""")
    assert out.splitlines()[-3:] == ["[False, False]", "[False, False] True",
                                     "[False, False] 1 False"]


def test_the_plant_s_fault_injection_is_imported_for_a_fault_inject_only(run_mp, tmp_path):
    out = run_mp(f"""
import sys
import node.plant
from seqrig import start, cmd
app, board = start({str(tmp_path / "s")!r})
def held():
    return ["node.plant.inject" in sys.modules, hasattr(node.plant, "inject")]
print(held())                          # after boot
cmd({ids.CMD_FAULT_INJECT}, [{ids.FAULT_BATTERY_DRAIN}, 0, 2.5])
print(held(), app.plant._faults.drain_a)
print(app.plant.inject({ids.FAULT_TRIP_CHANNEL}, 10, 0.0), held())
""")
    assert out.splitlines()[-3:] == ["[False, False]", "[False, False] 2.5",
                                     "False [False, False]"]
