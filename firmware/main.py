"""Entry point on a Raspberry Pi Pico: the protocol on USB CDC (or UART0), unless escaped.

Escape to the REPL (for mpremote / re-flashing), looked for during the first _ESCAPE_MS after
boot, before the protocol (and the watchdog) start (board/escape.py). The keyboard interrupt
is turned off first (every command frame carries a 0x03, so a command arriving in the window
must not interrupt this script); the escapes are then read from the USB serial:
- Ctrl-C before any frame, at the start of a line: what `mpremote connect` sends first, and
  what a person at a terminal types;
- the word REPL typed on the USB serial (a word, not one byte: a single byte such as '!' can
  occur inside a ground frame sent right after a reboot);
- GP22 held low (jumper to GND);
- the previous reset was the maintenance command (reset cause MAINTENANCE).
In each case main.py ends, the keyboard interrupt is back on and the REPL stays on the USB
serial. Bytes that were not an escape (a ground's command sent in the window) go to the link.

Link: USB CDC by default; set UART_BAUD to a rate (e.g. 115200) to run the protocol on UART0
(GP0 TX, GP1 RX) and leave the USB REPL free.

Modules: from the ROMFS image at /rom when the board has one (``ground flash`` deploys it
there; MicroPython mounts it at boot and puts /rom on sys.path, and this script moves /rom to
the front, so a module left on the filesystem can never shadow it). Imports from /rom run the
bytecode in place from flash. Without ROMFS, the .mpy files on the filesystem are imported.
"""

import micropython

micropython.kbd_intr(-1)  # before anything else: a 0x03 from a ground must not stop this script

import gc  # noqa: E402
import sys  # noqa: E402

import machine  # noqa: E402

UART_BAUD = 0  # 0: USB CDC stdio; else UART0 at this baud
_ESCAPE_MS = 2000
_ESCAPE_PIN = 22
_RESET_MAINTENANCE = 3


def _repl(why):
    micropython.kbd_intr(3)
    print("ILRS node: " + why + ", REPL kept")


def main():
    if "/rom" in sys.path:  # ROMFS first: a module left on the filesystem never shadows it
        sys.path.remove("/rom")
        sys.path.insert(0, "/rom")
    from board import escape

    pin = machine.Pin(_ESCAPE_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    console = escape.StreamConsole(sys.stdin.buffer, micropython.kbd_intr, pin, sys.stdin)
    window = escape.Window(console, _ESCAPE_MS)
    how = window.run()  # the keyboard interrupt is off from its first line on
    if how != escape.NONE:
        _repl("escape at boot (" + escape.NAMES[how] + ")")
        return
    from board.rp2 import Board

    board = Board(uart_baud=UART_BAUD)
    if board.reset_cause() == _RESET_MAINTENANCE:
        _repl("maintenance")
        return
    if UART_BAUD:
        micropython.kbd_intr(3)  # the protocol is on UART0: the USB REPL stays usable
    else:
        board.boot_rx = window.rx  # a ground's bytes from the window: the link takes them first
    del window, console, escape
    import node

    node.forget("board.escape")  # needed at boot only: a collection frees its code
    node.preload()
    from node.app import run

    gc.collect()  # the imports' temporaries: the node's buffers then find room in one piece
    run(board)


main()
