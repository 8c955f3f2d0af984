"""Entry point on a Raspberry Pi Pico: the protocol on USB CDC (or UART0), unless escaped.

Escape to the REPL (for mpremote / re-flashing), checked during the first _ESCAPE_MS after
boot, before the protocol (and the watchdog) start:
- Ctrl-C on the USB serial interrupts this script (the keyboard interrupt is still on), which
  is what `mpremote connect` sends first;
- the word REPL typed on the USB serial (a word, not one byte: a single byte such as '!' can
  occur inside a ground frame sent right after a reboot);
- GP22 held low (jumper to GND);
- the previous reset was the maintenance command (reset cause MAINTENANCE).
In each case main.py ends and the REPL stays on the USB serial.

Link: USB CDC by default; set UART_BAUD to a rate (e.g. 115200) to run the protocol on UART0
(GP0 TX, GP1 RX) and leave the USB REPL free.

Modules: from the ROMFS image at /rom when the board has one (``ground flash`` deploys it
there; MicroPython mounts it at boot and puts /rom on sys.path, and this script moves /rom to
the front, so a module left on the filesystem can never shadow it). Imports from /rom run the
bytecode in place from flash. Without ROMFS, the .mpy files on the filesystem are imported.
"""

import gc
import select
import sys
import time

import machine

UART_BAUD = 0  # 0: USB CDC stdio; else UART0 at this baud
_ESCAPE_MS = 2000
_ESCAPE_PIN = 22
_ESCAPE_WORD = b"REPL"
_RESET_MAINTENANCE = 3


def _escape_requested():
    pin = machine.Pin(_ESCAPE_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    stdin = sys.stdin.buffer
    matched = 0
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < _ESCAPE_MS:
        if pin.value() == 0:
            return True
        if poll.poll(10):
            byte = stdin.read(1)[0]
            if byte == _ESCAPE_WORD[matched]:
                matched += 1
                if matched == len(_ESCAPE_WORD):
                    return True
            else:
                matched = 1 if byte == _ESCAPE_WORD[0] else 0
    return False


def _rom_first():
    if "/rom" in sys.path:
        sys.path.remove("/rom")
        sys.path.insert(0, "/rom")


def main():
    _rom_first()
    if _escape_requested():
        print("ILRS node: escape at boot, REPL kept")
        return
    from board.rp2 import Board

    board = Board(uart_baud=UART_BAUD)
    if board.reset_cause() == _RESET_MAINTENANCE:
        print("ILRS node: maintenance, REPL kept")
        return
    import node

    node.preload()
    from node.app import run

    gc.collect()  # the imports' temporaries: the node's buffers then find room in one piece
    run(board)


main()
