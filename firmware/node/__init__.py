"""The node: link, dispatcher and services, plant and FDIR, on cooperative asyncio tasks.

node.app builds everything around a board (board/) and runs it; see docs/ARCHITECTURE.md.
"""

import gc

# Big modules first, each followed by a collection: the temporaries of an import then leave
# no holes between long-lived objects, so the heap keeps a large free block for the node's
# buffers (on the Unix port at 192K, about 22 KB in one piece instead of under 2 KB).
_PRELOAD = ("protocol.node_dictionary", "protocol.messages", "protocol.cbor",
            "protocol.framing", "node.plant", "node.fdir", "asyncio")


def preload():
    """Import the node's modules in a heap-friendly order. Call before importing node.app."""
    for name in _PRELOAD:
        __import__(name)
        gc.collect()
