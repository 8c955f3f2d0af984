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


def test_a_deployment_names_its_reset_commanded(run_mp, tmp_path):
    # `ground flash` ends with `mpremote reset`, a machine.reset(): without the marker the
    # node's first boot after every deployment reported WATCHDOG and raised watchdog_reset
    from ground import flash

    name, reset = flash.reset_steps(["mpremote", "connect", "/dev/ttyACM0"])
    assert name.argv[3] == "exec" and reset.argv[3:] == ["reset"]
    marker, folder = flash.RESET_MARKER, flash.RESET_MARKER.rsplit("/", 1)[0]
    script = name.argv[4]
    assert script.count(repr(marker)) == 1 and script.count(repr(folder)) == 1
    root = str(tmp_path / "flash")  # the board's /data, here
    script = script.replace(repr(marker), repr(root + "/reset_marker"))
    script = script.replace(repr(folder), repr(root))
    lines = run(run_mp, tmp_path, script + """
print(boot(machine.WDT_RESET).reset_cause(), 'reset_marker' in os.listdir(root))
print(boot(machine.WDT_RESET).reset_cause())
""")
    assert lines == ["2 False", "1"]  # COMMANDED, the marker consumed; then a real watchdog


def test_the_ground_writes_the_reset_marker_where_the_board_reads_it():
    import ast
    from pathlib import Path

    from ground import flash

    tree = ast.parse((Path(flash.REPO_ROOT) / "firmware" / "board" / "rp2.py").read_text())
    consts = {n.targets[0].id: n.value for n in tree.body if isinstance(n, ast.Assign)
              and isinstance(n.targets[0], ast.Name)}
    marker = ast.literal_eval(consts["_MARKER"])
    (board,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Board"]
    (init,) = [n for n in board.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    names = [a.arg for a in init.args.args][-len(init.args.defaults):]
    fs_root = ast.literal_eval(init.args.defaults[names.index("fs_root")])
    assert fs_root + marker == flash.RESET_MARKER == "/data/reset_marker"


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
