"""Raspberry Pi Pico (RP2040) board.

Pins:
    LED ("LED", GP25 on a Pico)  shows the mode by blink pattern in a 2 s cycle:
                                 BOOT steady on, SAFE 1 blink, NOMINAL 2, SCIENCE 3.
    GP2..GP11                    load channels 0..9 mirrored (high = switched on), so a rig
                                 can observe switching.
    GP0 (TX), GP1 (RX)           UART0, when the link is configured as UART (main.py).
    GP22                         boot escape (main.py): held low at boot, the node does not
                                 start and the REPL stays available.
    ADC 4                        the RP2040 die temperature sensor.

Link: USB CDC stdio by default. sys.stdin.buffer.read(n) blocks until n bytes arrive, so
read_into polls and takes single bytes while poll(0) says more are ready; the keyboard
interrupt is disabled while the protocol runs (frames may contain 0x03). With a UART,
readinto returns what is there.

Maintenance: a started machine.WDT cannot be stopped, so enter_maintenance resets with the
MAINTENANCE marker and main.py, seeing that cause, leaves the board in the REPL without
starting the protocol (or the watchdog). The reset after maintenance is `mpremote reset`, a
machine.reset(): `ground flash` writes the COMMANDED marker first (ground/flash.py
reset_steps), else the next boot would report WATCHDOG.

Reset cause: machine.reset() also reports WDT_RESET on the rp2, so reset(cause) first writes
a marker file naming the intended cause; the next boot reads and deletes it.
"""

import binascii
import os
import select
import sys
import time

import machine
import micropython
from micropython import const

from board import StreamTx

_POLLIN = const(1)
_WDT_MAX_MS = const(8388)
_LED_CYCLE_MS = const(2000)
_LOAD_PIN0 = const(2)
_LOADS = const(10)
_MARKER = "/reset_marker"  # in fs_root

_RESET_POWER_ON = const(0)
_RESET_WATCHDOG = const(1)
_RESET_MAINTENANCE = const(3)
_RESET_SOFT = const(4)


class Board(StreamTx):
    name = "rp2"
    fs_sync = True  # littlefs commits on flush/close
    # bytes the boot escape window read (main.py): the link takes them first
    boot_rx: "bytearray | None" = None

    def __init__(self, uart_baud=0, fs_root="/data"):
        self.fs_root = fs_root
        self._marker = fs_root + _MARKER
        try:
            os.mkdir(self.fs_root)
        except OSError:
            pass  # exists
        self.config = {}
        self._cause = self._read_cause()
        self._uart = None
        if uart_baud:
            self._uart = machine.UART(0, baudrate=uart_baud, tx=machine.Pin(0),
                                      rx=machine.Pin(1), rxbuf=2048, txbuf=2048, timeout=0)
            self.rx_stream = self._uart
            self.rx_chunks = True  # UART readinto returns what is there
            self._in = self._uart
            self._tx_init(self._uart)
        else:
            self.rx_stream = sys.stdin.buffer
            self.rx_chunks = False  # USB CDC readinto blocks until the buffer is full
            self._in = sys.stdin.buffer
            self._tx_init(sys.stdout.buffer)
        self._pin = select.poll()
        self._pin.register(self.rx_stream, _POLLIN)
        self._one = bytearray(1)
        self._wdt = None
        self._led = machine.Pin("LED", machine.Pin.OUT)
        self._mode = 0
        for i in range(_LOADS):  # outputs, low (set_load_pin takes each by number)
            machine.Pin(_LOAD_PIN0 + i, machine.Pin.OUT, value=0)
        self._adc = machine.ADC(4)

    def _read_cause(self):
        # The marker is read and removed whatever the cause, so a stale one (a reset that
        # turned out to be a power cut) never names a later watchdog reset.
        intended = -1
        try:
            with open(self._marker, "rb") as f:
                data = f.read(1)
            os.remove(self._marker)
            if data:
                intended = data[0]
        except OSError:
            pass
        cause = machine.reset_cause()
        if cause == machine.WDT_RESET:
            return intended if intended >= 0 else _RESET_WATCHDOG
        return _RESET_POWER_ON if cause == machine.PWRON_RESET else _RESET_SOFT

    # --- link ---------------------------------------------------------------------------

    def link_open(self):
        if self._uart is None:
            micropython.kbd_intr(-1)

    def link_close(self):
        if self._uart is None:
            micropython.kbd_intr(3)

    def read_into(self, buf):
        if self._uart is not None:
            n = self._uart.readinto(buf)
            return n if n else 0
        # USB CDC: readinto(buf) would block until buf is full; take bytes one by one.
        n = 0
        size = len(buf)
        one = self._one
        read = self._in.readinto
        while n < size and self._ready():
            if not read(one):
                break
            buf[n] = one[0]
            n += 1
        return n

    def _ready(self):
        # ipoll, not poll: poll() returns a new list on every call
        for _ in self._pin.ipoll(0):
            return True
        return False

    def poll_ms(self, ms):
        for _ in self._pin.ipoll(ms):
            return True
        return False

    # --- time and watchdog --------------------------------------------------------------

    def ticks_ms(self):
        return time.ticks_ms()

    def wdt_start(self, timeout_ms):
        self._wdt = machine.WDT(timeout=min(timeout_ms, _WDT_MAX_MS))

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def reset_cause(self):
        return self._cause

    def reset(self, cause):
        try:
            with open(self._marker, "wb") as f:
                f.write(bytes((cause,)))
        except OSError:
            pass  # the next boot then reports WATCHDOG
        time.sleep_ms(50)  # let the last frames leave
        machine.reset()

    def enter_maintenance(self):
        # A running machine.WDT cannot be stopped, so the REPL cannot simply follow the
        # protocol: reset with the MAINTENANCE marker; main.py then stays in the REPL.
        self.link_close()
        self.reset(_RESET_MAINTENANCE)

    # --- outputs and sensors ------------------------------------------------------------

    def set_led(self, mode):
        self._mode = mode

    def led_tick(self, now_ms):
        mode = self._mode
        if mode == 0:
            self._led.value(1)
            return
        phase = now_ms % _LED_CYCLE_MS
        # mode n: n blinks of 100 ms on / 200 ms off at the start of each cycle
        self._led.value(1 if phase < mode * 300 and phase % 300 < 100 else 0)

    def set_load_pin(self, ch, on):
        if 0 <= ch < _LOADS:
            machine.Pin(_LOAD_PIN0 + ch).value(1 if on else 0)  # Pin(n): as it is, no new object

    def mcu_temp_c(self):
        volts = self._adc.read_u16() * 3.3 / 65535
        return 27.0 - (volts - 0.706) / 0.001721

    def node_id(self):
        """CRC-32 of the flash chip's unique id (8 bytes), 0 mapped to 1: one per board."""
        return binascii.crc32(machine.unique_id()) or 1

    def log_exc(self, exc):
        self.last_exc = exc  # stdout is the link: nothing is printed while it runs

    def log(self, text):
        pass
