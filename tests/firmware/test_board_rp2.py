"""board/rp2.py on the Unix port against a stand-in `machine` module (tests/firmware/mp/
fake_machine.py) with the UART link: the parts that are logic rather than hardware (reset
cause marker, UART reads and writes, watchdog clamp, load pins, LED pattern, ADC scaling).
The real thing runs in the HIL suite on a Pico."""

import pytest

pytestmark = pytest.mark.micropython

PRELUDE = """
import sys, os
import fake_machine as machine
sys.modules["machine"] = machine
from board.rp2 import Board
root = {root!r}
def boot(cause):
    machine.cause = cause
    return Board(uart_baud=115200, fs_root=root)
"""


def run(run_mp, tmp_path, body):
    out = run_mp(PRELUDE.format(root=str(tmp_path / "flash")) + body)
    return [line for line in out.splitlines() if line]


def test_reset_cause_marker(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
P, W = machine.PWRON_RESET, machine.WDT_RESET
b = boot(P)
print(b.reset_cause())
b.reset(2)  # writes the marker, then machine.reset()
print(len(machine.resets), boot(W).reset_cause(), 'reset_marker' in os.listdir(root))
print(boot(W).reset_cause())
b.reset(2)
print(boot(P).reset_cause())  # the reset did not happen: a power cut came first
print(boot(W).reset_cause())
""")
    assert lines == [
        "0",  # power on
        "1 2 False",  # machine.reset() after a reboot command: COMMANDED, marker consumed
        "1",  # no marker: a real watchdog reset
        "0",  # power cut after the marker was written: POWER_ON, marker removed...
        "1",  # ...so a later watchdog reset is not taken for a commanded one
    ]


def test_uart_link_wdt_pins_led_adc(run_mp, tmp_path):
    lines = run(run_mp, tmp_path, """
b = boot(machine.PWRON_RESET)
buf = bytearray(8)
print(b.rx_chunks, b.read_into(buf))
b._uart.rx += b'abc'
print(b.read_into(buf), bytes(buf[:3]))
print(b.write(bytearray(b'xyz!'), 0, 3), bytes(b._uart.tx))
b.wdt_start(10000)
b.wdt_feed()
print(machine.wdts[-1].timeout, machine.wdts[-1].feeds)
b.set_load_pin(3, True)
b.set_load_pin(12, True)  # no such channel: ignored
print([machine.Pin.pins[2 + i].v for i in range(10)])
b.set_led(2)
pattern = []
for t in (0, 150, 300, 450, 600, 1900):
    b.led_tick(t)
    pattern.append(machine.Pin.pins['LED'].v)
print(pattern)
print(round(b.mcu_temp_c()))
""")
    assert lines == [
        "True 0",
        "3 b'abc'",
        "3 b'xyz'",
        "8388 1",  # clamped to the RP2040's maximum
        "[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]",
        "[1, 0, 1, 0, 0, 0]",  # NOMINAL: two 100 ms blinks per 2 s cycle
        "27",
    ]
