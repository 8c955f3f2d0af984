"""MicroPython side of tests/firmware/test_heap.py: run node hot paths under heap_lock.

build(root) makes an App on a MemBoard; locked(fn) runs fn with the heap locked and returns
None or the MemoryError text. Frames are prepared before locking.
"""

import os

import micropython
from memboard import MemBoard
from node.app import App

from protocol.frame_writer import encode_frame
from protocol.framing import Deframer
from protocol.messages import decode_message, encode_message


def build(root, tx_size=16384):
    """A booted node on an in-memory board, its flash in directory root (created if absent)."""
    try:
        os.mkdir(root)
    except OSError:  # exists
        pass
    board = MemBoard(root, tx_size=tx_size)
    app = App(board)
    app.boot()
    board.take_tx()
    _BOOT[0] = app.boot_count
    return app, board


_BOOT = [0]  # the boot count of the node build() made last: frame() binds commands to it


def frame(kind, seq, id, body, boot=-1):
    """A framed message; a command (kind 0) bound to ``boot``, by default the node's."""
    if kind == 0 and boot < 0:
        boot = _BOOT[0]
    data = encode_frame(encode_message(kind, seq, 0, id, body, boot if kind == 0 else None))
    buf = bytearray(len(data))
    buf[:] = data
    return buf


_NONE = object()


def locked(fn, a=_NONE, b=_NONE):
    # No *args: a star call allocates its argument array.
    micropython.heap_lock()
    try:
        if a is _NONE:
            fn()
        elif b is _NONE:
            fn(a)
        else:
            fn(a, b)
    except MemoryError as e:
        micropython.heap_unlock()
        return "MemoryError: " + str(e)
    micropython.heap_unlock()
    return None


def decode_all(board):
    d = Deframer()
    return [decode_message(m) for m in d.feed(board.take_tx())]
