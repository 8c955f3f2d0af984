"""A stand-in for the rp2 ``machine`` module, for booting board/rp2.py in the 32-bit VM.

Imported before the baseline is taken, so it costs the node nothing, like the built-in module
on a Pico. Pin objects come from a table made here, as the rp2 port's Pin(n) returns an entry
of its constant table: building the board allocates no Pin. The ADC reads 0 (as in the RP2040
emulator: the die temperature then reads 437 degC), the reset cause is power on, the unique id
a fixed 8 bytes.
"""

PWRON_RESET = 1
WDT_RESET = 3


class _Pin:
    def __init__(self, ident):
        self.ident = ident
        self.v = 1  # pulled up: GP22 (the boot escape) reads high

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class _PinClass:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self):
        self.table = {ident: _Pin(ident) for ident in ["LED"] + list(range(30))}

    def __call__(self, ident, mode=-1, pull=-1, value=None):
        pin = self.table[ident]
        if value is not None:
            pin.v = value
        return pin


Pin = _PinClass()


class _Adc:
    def read_u16(self):
        return 0


_ADC = _Adc()


def ADC(channel):
    return _ADC


class WDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass


def reset_cause():
    return PWRON_RESET


_UID = b"\xe6\x61\x38\x52\x83\x2f\x6d\x2c"  # a flash chip's 8-byte unique id


def unique_id():
    return bytes(_UID)  # a new bytes object per call, as the rp2 port's


def reset():
    pass
