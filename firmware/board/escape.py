"""The boot escape window: stay at the REPL (for mpremote, re-flashing) instead of the node.

Run by the entry points (main.py on a Pico, sim_main.py in the simulation) before the node
starts, for ``window_ms`` after boot. The keyboard interrupt is turned off FIRST: every command
frame starts ``00 03``, so with it on a ground that sends a command in the window (retrying
after a reboot, polling status while the board re-enumerates) would raise KeyboardInterrupt,
end the entry point and leave the board at the REPL with the link dead. The escape is then
looked for in the bytes themselves:

- a Ctrl-C (0x03) before any frame delimiter (0x00) has arrived, at the start of the input or
  of a line (after CR, LF or another Ctrl-C): what ``mpremote`` sends first (``\\r\\x03``)
  and what a person at a terminal types. A ground's bytes start with a delimiter, so its
  0x03s are frame bytes, never an escape;
- the word REPL typed (a word, not one byte: a single byte can occur inside a frame);
- the escape pin held low (a Pico's GP22 jumpered to GND).

Reading stops at the escape byte, so what follows it (mpremote's ``\\r\\x01``) stays for the
REPL. Bytes that are not an escape are kept (up to _KEEP) for the link, which takes them first
(``board.boot_rx``): a command sent in the window is answered, not lost.

A console is what the window reads: ``kbd_intr(c)``, ``read_byte(timeout_ms)`` -> 0..255 or
-1, ``pin_low()``. ``StreamConsole`` is one over a pollable input stream.
"""

import select
import time

from micropython import const

NONE = const(0)
PIN = const(1)
CTRL_C = const(2)
WORD = const(3)
NAMES = ("none", "GP22 low", "Ctrl-C", "the word REPL")

_POLLIN = const(1)
_CTRL_C = const(3)
_CR = const(13)
_LF = const(10)
_KEEP = const(1024)  # bytes kept for the link (about one full frame)
_WORD = b"REPL"


class StreamConsole:
    """A console on an input stream: ``poll_obj`` is what select polls (sys.stdin on a Pico),
    ``stream`` what is read (its binary buffer); ``pin`` a machine.Pin or None."""

    def __init__(self, stream, kbd_intr, pin=None, poll_obj=None):
        self._in = stream
        self._poll = select.poll()
        self._poll.register(poll_obj if poll_obj is not None else stream, _POLLIN)
        self._one = bytearray(1)
        self.kbd_intr = kbd_intr
        self._pin = pin

    def pin_low(self):
        return self._pin is not None and self._pin.value() == 0

    def read_byte(self, timeout_ms):
        if not self._poll.poll(timeout_ms):
            return -1
        n = self._in.readinto(self._one)
        return self._one[0] if n else -1


class Window:
    """One boot escape window; ``run()`` returns NONE, PIN, CTRL_C or WORD, and ``rx`` then
    holds the bytes read that were not an escape (for the link: board.boot_rx)."""

    def __init__(self, console, window_ms):
        self.console = console
        self.window_ms = window_ms
        self.rx = bytearray()
        self.dropped = 0  # bytes beyond _KEEP

    def run(self):
        con = self.console
        con.kbd_intr(-1)  # first of all: a 0x03 must never raise KeyboardInterrupt here
        matched = 0
        framed = False  # a delimiter came: a ground is sending frames, 0x03 is frame data
        prev = -1  # the previous byte, -1 at the start
        start = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), start) < self.window_ms:
            if con.pin_low():
                return PIN
            b = con.read_byte(10)
            if b < 0:
                continue
            if b == 0:
                framed = True
            elif b == _CTRL_C and not framed and (prev < 0 or prev == _CR or prev == _LF
                                                  or prev == _CTRL_C):
                return CTRL_C
            if b == _WORD[matched]:
                matched += 1
                if matched == len(_WORD):
                    return WORD
            else:
                matched = 1 if b == _WORD[0] else 0
            if len(self.rx) < _KEEP:
                self.rx.append(b)
            else:
                self.dropped += 1
            prev = b
        return NONE
