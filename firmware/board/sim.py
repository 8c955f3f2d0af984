"""Simulated board for the MicroPython Unix port, run by ground/simnode.py.

The host (ground.simnode) starts `micropython -X heapsize=<192K + ROMFS image> firmware/
sim_main.py` (see sim_main.py for the deployments) with
the master side of a pty as stdin and stdout (O_NONBLOCK set by the host, so readinto
returns what is there and write returns None when the pty is full) and passes, in the
environment:

    ILRS_STATE_DIR    directory that stands in for the flash (created if missing)
    ILRS_RESET_CAUSE  reset cause of this boot (RESET_* number; default POWER_ON)
    ILRS_WDT_FD       inherited pipe fd of the simulated watchdog (absent: no watchdog)
    ILRS_SEED         plant seed override (absent: the plant_seed parameter)
    ILRS_TIME_FACTOR  time factor override (absent: the time_factor parameter)
    ILRS_ESCAPE_MS    length of the boot escape window (board/escape.py; absent or 0: none)
    ILRS_CLOCK_PPM    the node clock's error in ppm (absent: 0): ticks_ms runs that much fast

The keyboard interrupt is modelled on rp2's, which the Unix port does not have for data on
stdin: until ``kbd_intr(-1)`` (this module's, called by the escape window and link_open), a
0x03 read from the link raises KeyboardInterrupt, as a Pico's USB serial does. An entry point
that lets a command frame (``00 03 ...``) arrive with it on dies as it would on a board: the
process ends (exit 1) and the host does not restart it (the Pico would sit at the REPL).

Simulated watchdog protocol on the pipe: b"S<timeout_ms>\\n" once at start, then b"F" per
feed. The host SIGKILLs the node when no feed arrives within the timeout and starts it again
with reset cause WATCHDOG. A commanded reboot exits with EXIT_REBOOT, maintenance with
EXIT_MAINTENANCE; the host restarts the node with reset cause COMMANDED / MAINTENANCE (the
Unix port has no REPL to hand the link to).
"""

import binascii
import os
import select
import sys
import time

from micropython import const

from board import StreamTx, escape

_POLLIN = const(1)

EXIT_REBOOT = const(42)  # keep in step with ground/simnode.py
EXIT_MAINTENANCE = const(43)
EXIT_ESCAPE = const(44)  # the boot escape window saw an escape (sim_main.py)

_RESET_POWER_ON = const(0)
_RESET_MAINTENANCE = const(3)

_FEED = const(b"F")
_CTRL_C = const(3)

_kbd_char = _CTRL_C  # rp2 boots with the keyboard interrupt on


def kbd_intr(c):
    """micropython.kbd_intr as on rp2: c = 3 makes a 0x03 from the link raise
    KeyboardInterrupt, -1 lets every byte through."""
    global _kbd_char
    _kbd_char = c


def _interrupt(buf, n):
    # rp2's USB serial: a 0x03 while the keyboard interrupt is on raises KeyboardInterrupt
    if _kbd_char >= 0:
        for i in range(n):
            if buf[i] == _kbd_char:
                raise KeyboardInterrupt


class Console(escape.StreamConsole):
    """The boot escape window's console on the simulated USB serial (no escape pin)."""

    def __init__(self):
        super().__init__(sys.stdin.buffer, kbd_intr)

    def read_byte(self, timeout_ms):
        b = super().read_byte(timeout_ms)
        if b >= 0:
            self._one[0] = b
            _interrupt(self._one, 1)
        return b


def _env_int(name, default):
    v = os.getenv(name)
    return default if v is None or v == "" else int(v)


class Board(StreamTx):
    name = "sim"
    fs_sync = False  # files reach the state dir on write; a SIGKILL keeps them
    # bytes the boot escape window read (sim_main.py): the link takes them first
    boot_rx: "bytearray | None" = None

    def __init__(self):
        self.fs_root = os.getenv("ILRS_STATE_DIR") or "state"
        try:
            os.mkdir(self.fs_root)
        except OSError:
            pass  # exists
        self._cause = _env_int("ILRS_RESET_CAUSE", _RESET_POWER_ON)
        self.config = {}
        seed = os.getenv("ILRS_SEED")
        if seed:
            self.config["seed"] = int(seed)
        tf = os.getenv("ILRS_TIME_FACTOR")
        if tf:
            self.config["time_factor"] = float(tf)
        fd = _env_int("ILRS_WDT_FD", -1)
        self._wdt = open(fd, "wb") if fd >= 0 else None
        self.rx_stream = sys.stdin.buffer
        self.rx_chunks = True  # readinto returns what is there (O_NONBLOCK set by the host)
        self._in = sys.stdin.buffer
        self._tx_init(sys.stdout.buffer)
        self._pin = select.poll()
        self._pin.register(self._in, _POLLIN)
        self.led = 0
        self.load_pins = 0
        ppm = os.getenv("ILRS_CLOCK_PPM")
        # clock error: ticks_ms advances (1 + ppm/1e6) ms per real ms (integer: ppb)
        self._clock_ppb = round(float(ppm) * 1000) if ppm else 0
        self._raw = time.ticks_ms()
        self._acc = 0  # error ms * 1e9 not yet added
        self._ticks = self._raw

    # --- link ---------------------------------------------------------------------------

    def link_open(self):
        kbd_intr(-1)  # as rp2's USB link: frames carry 0x03

    def link_close(self):
        kbd_intr(_CTRL_C)

    def read_into(self, buf):
        # The host set O_NONBLOCK: readinto returns what is there, None when nothing is.
        n = self._in.readinto(buf)
        if not n:
            return 0
        _interrupt(buf, n)
        return n

    def poll_ms(self, ms):
        return bool(self._pin.poll(ms))

    # --- time and watchdog --------------------------------------------------------------

    def ticks_ms(self):
        if not self._clock_ppb:
            return time.ticks_ms()
        raw = time.ticks_ms()
        dt = time.ticks_diff(raw, self._raw)
        self._raw = raw
        self._acc += dt * self._clock_ppb
        extra = self._acc // 1000000000
        self._acc -= extra * 1000000000
        self._ticks = time.ticks_add(self._ticks, dt + extra)
        return self._ticks

    def wdt_start(self, timeout_ms):
        if self._wdt is not None:
            self._wdt.write(b"S%d\n" % timeout_ms)

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.write(_FEED)

    def reset_cause(self):
        return self._cause

    def reset(self, cause):
        if cause == _RESET_MAINTENANCE:
            sys.exit(EXIT_MAINTENANCE)
        sys.exit(EXIT_REBOOT)

    def enter_maintenance(self):
        self.reset(_RESET_MAINTENANCE)

    # --- outputs and sensors ------------------------------------------------------------

    def set_led(self, mode):
        self.led = mode

    def led_tick(self, now_ms):
        pass

    def set_load_pin(self, ch, on):
        if on:
            self.load_pins |= 1 << ch
        else:
            self.load_pins &= ~(1 << ch)

    def mcu_temp_c(self):
        return None

    def node_id(self):
        """The host's ILRS_NODE_ID (``sim://?node_id=N``), else the CRC-32 of 8 random bytes
        made at the first boot and kept in the state directory as the simulated chip's
        unique id (a Pico's id is fixed in its flash chip), 0 mapped to 1."""
        given = _env_int("ILRS_NODE_ID", 0)
        if given:
            return given
        path = self.fs_root + "/unique_id"
        try:
            with open(path, "rb") as f:
                uid = f.read()
        except OSError:
            uid = b""
        if len(uid) != 8:
            uid = os.urandom(8)
            with open(path, "wb") as f:
                f.write(uid)
        return binascii.crc32(uid) or 1

    def log_exc(self, exc):
        sys.print_exception(exc, sys.stderr)  # type: ignore[arg-type]  # node.log

    def log(self, text):
        sys.stderr.write(text)
        sys.stderr.write("\n")
