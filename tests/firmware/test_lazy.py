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


_BOOT_ONLY = ["node.boot", "node.seqcmds", "node.seqcheck", "node.seqstore", "node.ttmanage",
              "node.keyops", "node.logread", "node.seqrun", "node.ttrun", "node.admin"]


def test_boot_code_is_let_go_after_the_boot(run_mp, tmp_path):
    # node.boot builds the services, reads the keys and scans the log; node.seqcmds (with
    # node.seqcheck, node.seqstore) reads the slots; node.ttmanage the queue: none is held.
    out = run_mp(f"""
import sys
import node
from seqrig import start
app, board = start({str(tmp_path / "s")!r})
print([m for m in {_BOOT_ONLY!r} if m in sys.modules or hasattr(node, m[5:])])
print(app.auth.state, app.events.seq > 0, app.log._f is not None)  # node.boot's work
""")
    assert out.splitlines()[-2:] == ["[]", "0 True True"]


def test_the_sequence_files_go_with_the_commands_and_the_log_reader_with_the_transfer(
        run_mp, tmp_path):
    out = run_mp(f"""
import sys, asyncio
from seqrig import start, cmd
app, board = start({str(tmp_path / "s")!r})
def held():
    return [m for m in {_BOOT_ONLY!r} if m in sys.modules]
cmd({ids.CMD_SEQ_LIST}, [])
print(held())                          # node.seqcmds, node.seqcheck and node.seqstore let go
cmd({ids.CMD_EVENT_LOG_DOWNLINK}, [0])
task = app.bulk._task
asyncio.get_event_loop().run_until_complete(task)
print(held(), app.bulk.transfers)      # node.bulkxfer's reading of the log let go after it
""")
    assert out.splitlines()[-2:] == ["[]", "[] 1"]


def test_a_call_leaves_a_module_its_caller_loaded_to_that_caller(run_mp):
    # node.call imports a module for the call and lets it go, unless it was loaded already:
    # then whoever loaded it lets it go (a nested call must not pull it from under them).
    out = run_mp("""
import sys
import node
print(node.call("ttrun", "entry_name", 3), "node.ttrun" in sys.modules)
run = node.load("ttrun")
print(node.call("ttrun", "entry_name", 4), "node.ttrun" in sys.modules)
node.drop("ttrun")
print("node.ttrun" in sys.modules)
""")
    assert out.splitlines()[-3:] == ["tt03.bin False", "tt04.bin True", "False"]
