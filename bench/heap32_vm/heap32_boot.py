"""Boots the node in the 32-bit MicroPython VM (WebAssembly) for the heap rows; see driver.mjs.

Run by the driver in steps, each ending in JavaScript (where this VM collects garbage):

- ``install()``: before the baseline. Imports what a Pico has built in and this VM has as
  frozen Python (os, time, ...) and the ``machine`` stand-in, so none of it is counted as the
  node's.
- ``modules()``: asyncio (frozen in both: its objects count, as on a Pico) with the harness's
  shims, then the node's imports in main.py's order (board.rp2, node, its preload, node.app).
- ``boot()``: firmware/main.py itself, compiled from source as a Pico runs it, with two
  harness-only changes made here, never in the node: nobody types during the boot escape
  window, so it is closed at once (main.py's ``_ESCAPE_MS`` 0: its 2 s of polling the VM's
  stdin, which never has a byte, left a few hundred bytes more or less held, by timing),
  and ``asyncio.run`` is a shim that runs ``app.main()`` up to its first wait (boot, heap
  sample, the six tasks created) and keeps it, then returns, so main.py returns too.
- ``step()``: one pass of the asyncio loop: each task runs up to its first wait (the link task
  builds its StreamReader and waits for input that never comes).
- ``lazy_load(name)`` / ``lazy_drop(name)``: on the booted node, each module it imports only
  when needed (``LAZY``), imported with what it imports, then let go as the node lets it go:
  what the node holds while one of those features works (its code; not the transient data).

This VM's own asyncio has no ``run`` and no streams (it is driven by JavaScript timers), hence
the shims: ``asyncio.stream`` is this module (an empty stand-in: on a Pico it is frozen code),
``asyncio.StreamReader`` a reader whose ``readinto`` waits on an event nobody sets.
"""

import sys

kept = []  # what the node's boot must keep alive (main.py's globals, app.main's coroutine)
_input = None


class _StreamReader:
    def __init__(self, stream):
        self.stream = stream

    async def readinto(self, buf):
        await _input.wait()
        return 0


def _run(coro):
    kept.append(coro)
    coro.send(None)


def install():
    # Built in on a Pico, some of them frozen Python here: imported now, they are baseline.
    for name in ("array", "binascii", "errno", "gc", "io", "math", "micropython", "os",
                 "select", "struct", "time", "machine"):  # machine: the stand-in, from here
        __import__(name)


def _asyncio_shims():
    # After the baseline: asyncio's own objects count as the node's, as the Pico's frozen
    # asyncio's do (its bytecode is in flash there, frozen here too).
    global _input
    import asyncio

    sys.modules["asyncio.stream"] = sys.modules[__name__]
    asyncio.StreamReader = _StreamReader
    asyncio.run = _run
    _input = asyncio.Event()


def modules():
    _asyncio_shims()
    import board.rp2  # noqa: F401
    import node

    node.preload()
    import node.app


def boot():
    with open("main.py") as f:
        source = f.read()
    tail = "\nmain()\n"
    if not source.endswith(tail):
        raise ValueError("main.py no longer ends with main(): update heap32_vm/heap32_boot.py")
    env = {"__name__": "__main__"}
    kept.append(env)
    exec(compile(source[: -len(tail) + 1], "main.py", "exec"), env)
    if env.get("_ESCAPE_MS") is None:
        raise ValueError("main.py has no _ESCAPE_MS: update heap32_vm/heap32_boot.py")
    env["_ESCAPE_MS"] = 0  # nobody types: the window closes at once
    env["main"]()
    if len(kept) != 2:
        raise RuntimeError("main.py returned without running the node (asyncio.run not called)")


def step():
    import asyncio

    asyncio.core._run_iter()


def held():
    """The modules the booted node holds (sys.modules), as JSON."""
    import json

    return json.dumps(sorted(sys.modules))


# The node's modules imported only when needed (node.call / node.Lazy, node.sequencer), with
# the modules each brings that the booted node does not hold (seqcmds: seqcheck; seqcmds and
# seqrun: seqstore). node.boot is imported for the boot only: its use is the boot's.
LAZY = {"paramfile": (), "admin": (), "bulkxfer": (), "ttmanage": (), "keyops": (),
        "seqcmds": ("seqcheck", "seqstore"), "seqrun": ("seqstore",), "ttrun": (),
        "logread": ()}


def lazy_names():
    import json

    return json.dumps(list(LAZY))


def lazy_load(name):
    import node

    kept.append(node.load(name))


def lazy_drop(name):
    import node

    kept.pop()
    for n in (name,) + LAZY[name]:
        node.drop(n)


def qstr_info():
    import micropython

    micropython.qstr_info()
