"""The node: link, dispatcher and services, plant and FDIR, on cooperative asyncio tasks.

node.app builds everything around a board (board/) and runs it; see docs/ARCHITECTURE.md.
"""

import gc

# Big modules first, each followed by a collection: the temporaries of an import then leave
# no holes between long-lived objects, so the heap keeps a large free block for the node's
# buffers. The entry points (main.py, sim_main.py) collect once more after importing node.app.
# Measured on the Unix port, the largest free block once the App is built: ROMFS 43 KB
# without preloading, 56 KB with it, 69 KB with the final collection too; .mpy files on the
# filesystem 0.7 KB, 14 KB, 29 KB.
_PRELOAD = ("protocol.node_dictionary", "protocol.envelope", "protocol.cbor_encoder",
            "protocol.cbor_decoder", "protocol.framing", "node.plant", "node.fdir", "asyncio",
            "asyncio.stream")


def preload():
    """Import the node's modules in a heap-friendly order. Call before importing node.app."""
    for name in _PRELOAD:
        __import__(name)
        gc.collect()
