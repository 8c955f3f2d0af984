"""A stand-in for the rp2 `machine` module, enough to run board/rp2.py on the Unix port.

Install with ``sys.modules["machine"] = fake_machine`` before importing board.rp2."""

import io

PWRON_RESET = 1
WDT_RESET = 3
cause = PWRON_RESET
wdts = []
resets = []


def reset_cause():
    return cause


def reset():
    resets.append(1)


class Pin:
    OUT = 1
    IN = 0
    PULL_UP = 1
    pins = {}

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.v = value if value is not None else 1 if pull == Pin.PULL_UP else 0
        Pin.pins[id] = self

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class ADC:
    def __init__(self, ch):
        self.ch = ch

    def read_u16(self):
        return 14020  # 0.706 V: 27 degC


class WDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        wdts.append(self)

    def feed(self):
        self.feeds += 1


class UART(io.IOBase):
    # io.IOBase with ioctl: a stream select.poll accepts, like the real machine.UART.
    def __init__(self, n, baudrate=9600, **kw):
        self.rx = bytearray()
        self.tx = bytearray()
        self.kw = kw

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        if not n:
            return None
        buf[0:n] = self.rx[0:n]
        self.rx = self.rx[n:]
        return n

    def write(self, buf, off=0, n=-1):
        if n < 0:
            n = len(buf) - off
        self.tx += bytes(buf[off:off + n])
        return n

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            return (arg & 1 if self.rx else 0) | (arg & 4)
        return 0
