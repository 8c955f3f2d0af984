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
