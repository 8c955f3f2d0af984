"""The node: link, dispatcher and services, plant and FDIR, on cooperative asyncio tasks.

node.app builds everything around a board (board/) and runs it; see docs/ARCHITECTURE.md.

Rarely used code is imported only when needed and let go afterwards (``call``, ``Lazy``,
``drop``): on a stock Pico every imported .mpy module's bytecode lives in the heap, so a
module kept for a command sent once a week costs the steady state its whole size. After
``drop`` nothing refers to the module any more and the next collection frees it.
"""

import gc
import sys

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


def load(name):
    """The module node.<name>, imported now if it is not loaded; ``drop(name)`` lets it go."""
    return __import__("node." + name, None, None, ("_",))


def drop(name):
    """Forget node.<name>: once no object of it is alive, a collection frees its code."""
    forget("node." + name)


def forget(module):
    """Forget a module by its full name (``drop`` for one outside node, such as
    protocol.node_description): out of sys.modules and off its package."""
    sys.modules.pop(module, None)
    package, _, leaf = module.rpartition(".")
    package = sys.modules.get(package)
    if package is not None and hasattr(package, leaf):
        delattr(package, leaf)  # the package's attribute, set by the import


def call(name, fn, *args):
    """node.<name>.<fn>(*args) from a module imported for this call only (a call made while
    the module is loaded, from inside it, leaves it to the one that loaded it)."""
    loaded = "node." + name in sys.modules
    try:
        return getattr(load(name), fn)(*args)
    finally:
        if not loaded:
            drop(name)


class Lazy:
    """The command handler of a module imported per command: ``Lazy(ctx, "x")`` runs
    node.x.handle(ctx, d) for a command d (the module switches on d.cmd_id), then lets node.x
    go. One object per module, registered for each of its commands."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name

    def __call__(self, d):
        return call(self.name, "handle", self.ctx, d)
