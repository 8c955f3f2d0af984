"""The boot escape window (board/escape.py), run by main.py on a Pico and sim_main.py here.

Issue 10 bug 1: every command frame starts ``00 03``; with the keyboard interrupt on, a command
arriving in the window raised KeyboardInterrupt, ended main.py and left the link dead. The
simulated board models rp2's keyboard interrupt (board/sim.py), so commands sent continuously
across reboots and power cuts must find the node back every time. The window itself is
checked byte by byte on MicroPython: the interrupt off before the first read, the escapes
(Ctrl-C at the start of a line before any frame, mpremote's ``\\r\\x03``, the word REPL, the
pin), the bytes after an escape left for the REPL, and a ground's bytes kept for the link.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from ground.micropython import FIRMWARE_DIR, find_micropython, micropython_path_env
from protocol import ids
from protocol import messages as M

MP_DIR = os.path.join(os.path.dirname(__file__), "mp")

WINDOW = """
import json
from board import escape

class Fake:
    def __init__(self, data, pin_at=-1):
        self.data = data
        self.i = 0
        self.log = []
        self.pin_at = pin_at
    def kbd_intr(self, c):
        self.log.append(["kbd", c])
    def pin_low(self):
        return self.i == self.pin_at
    def read_byte(self, ms):
        if self.i >= len(self.data):
            return -1
        b = self.data[self.i]
        self.i += 1
        if not self.log or self.log[0] != ["kbd", -1]:
            self.log.append(["read with the interrupt on", b])
        return b

out = []
for data, pin_at in {cases!r}:
    con = Fake(bytes.fromhex(data), pin_at)
    w = escape.Window(con, 150)
    how = w.run()
    out.append([how, con.i, bytes(w.rx).hex(), con.log])
print(json.dumps(out))
"""

FRAME = "000386010202070180f9a95ce300"  # a command frame (noop seq 2), delimiters included
CASES = [
    (FRAME * 3, -1),  # a ground polling: no escape, every byte kept for the link
    ("0d03" + "0d01", -1),  # mpremote: \r Ctrl-C, then \r Ctrl-A for the REPL
    ("03", -1),  # Ctrl-C typed at a terminal
    ("0d0a03", -1),  # at the start of a line
    ("616203", -1),  # in the middle of a line: not an escape
    (FRAME + "0d03", -1),  # after a frame: a ground's byte, not an escape
    ("78524550" + "4c" + "00", -1),  # xREPL
    ("52450052", -1),  # RE, a delimiter, R: not the word
    ("0000", 1),  # the pin, held low after one byte
]


@pytest.mark.micropython
def test_the_window_turns_the_interrupt_off_first_and_reads_the_escapes(run_mp) -> None:
    got = json.loads(run_mp(WINDOW.format(cases=CASES)))
    frames = FRAME * 3
    assert got == [
        [0, len(frames) // 2, frames, [["kbd", -1]]],
        [2, 2, "0d", [["kbd", -1]]],  # stops at the Ctrl-C: "\r\x01" stays for the REPL
        [2, 1, "", [["kbd", -1]]],
        [2, 3, "0d0a", [["kbd", -1]]],
        [0, 3, "616203", [["kbd", -1]]],
        [0, len(FRAME) // 2 + 2, FRAME + "0d03", [["kbd", -1]]],
        [3, 5, "78524550", [["kbd", -1]]],
        [0, 4, "52450052", [["kbd", -1]]],
        [1, 1, "00", [["kbd", -1]]],
    ]


MAIN = """
import sys
import fake_machine
sys.modules["machine"] = fake_machine
import micropython
exec(open({main!r}).read())
print("left for the REPL:", sys.stdin.buffer.read())
"""


@pytest.mark.micropython
@pytest.mark.parametrize(("sent", "why", "left"), [
    (b"\r\x03\r\x01", "Ctrl-C", b"\r\x01"),  # mpremote connecting
    (bytes.fromhex(FRAME) + b"REPL\r\n", "the word REPL", b"\r\n"),
])
def test_main_py_escapes_and_leaves_the_rest_for_the_repl(sent: bytes, why: str,
                                                           left: bytes) -> None:
    # main.py itself (stand-in machine module, stdin a pipe): the escape ends it before the
    # node starts, and the bytes after the escape are still there for the REPL.
    env = micropython_path_env()
    env["MICROPYPATH"] = os.pathsep.join([MP_DIR, env["MICROPYPATH"], ".frozen"])
    script = MAIN.format(main=str(FIRMWARE_DIR / "main.py"))
    done = subprocess.run([find_micropython(), "-c", script], input=sent, env=env,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        f"ILRS node: escape at boot ({why}), REPL kept", f"left for the REPL: {left!r}"]


def _noop_frame(seq: int) -> bytes:
    """A noop frame bound to boot 0 (SPEC §5.1): the node answers it with a STALE_BOOT
    rejection, whatever its boot, which is an answer all the same."""
    from protocol.frame_writer import encode_frame
    from protocol.messages import encode_message

    return encode_frame(encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], 0))


def _flood_until(link, node, mark, pred, what: str, seqs, timeout_s: float = 20.0):
    """Send noops every 10 ms until a message since mark satisfies pred; return it."""
    deadline = time.monotonic() + timeout_s
    seen = mark
    while time.monotonic() < deadline:
        link.write(_noop_frame(next(seqs)))
        for m in link.since(seen):
            if pred(m):
                return m
        seen = mark
        assert not node.exited, f"the node died (exit {node.returncode}); log {node.log_path}"
        time.sleep(0.01)
    raise AssertionError(f"no {what} within {timeout_s} s while flooding; log {node.log_path}")


@pytest.mark.slow
def test_commands_sent_continuously_across_reboots_find_the_node_back(fresh_node) -> None:
    node, link = fresh_node
    seqs = iter(range(20000, 60000))
    for n, how in enumerate(["reboot", "power cut", "reboot", "power cut", "reboot"]):
        boots = node.boots
        mark = link.mark()
        if how == "reboot":
            link.write(_noop_frame(next(seqs)))
            link.send_command(ids.CMD_REBOOT)
        else:
            node.power_cut()
        boot = _flood_until(link, node, mark, lambda m: m.kind == M.KIND_EVENT
                            and m.id == ids.EV_BOOT, f"boot event after {how} {n}", seqs)
        after = link.mark()
        first = next(seqs)
        link.write(_noop_frame(first))
        # any answer to a command sent after the boot: the link is alive (a command bound
        # to an older boot is answered too, with a rejection)
        _flood_until(link, node, after, lambda m, first=first: m.kind == M.KIND_VERIFICATION
                     and m.body[0] >= first, f"an answer after {how} {n}", seqs)
        assert node.boots == boots + 1 and not node.exited
        assert boot.body[2][1] == (ids.RESET_COMMANDED if how == "reboot" else ids.RESET_POWER_ON)


@pytest.mark.slow
def test_a_lone_ctrl_c_at_boot_escapes_and_a_power_cut_brings_the_node_back(tmp_path) -> None:
    # mpremote's "\r\x03" in the window: the simulated node escapes (exit 44, nothing to
    # restart it, as a Pico stays at the REPL); a power cut boots it again.
    import serial

    from ground.simnode import EXIT_ESCAPE, SimNode

    with SimNode(seed=1, state_dir=tmp_path / "state", escape_ms=3000) as node:
        port = serial.serial_for_url(node.port, timeout=0.1)
        try:
            port.write(b"\r\x03\r\x01")
            assert node.wait_exit(20.0) == EXIT_ESCAPE
            assert "escape at boot (Ctrl-C)" in node.log_path.read_text()
        finally:
            port.close()
        node.escape_ms = 0
        node.power_cut()
        from nodelink import NodeLink

        with NodeLink(node.port, node.log_path) as link:
            status = link.send_and_assert_command(ids.CMD_STATUS, timeout=20)
            assert status[2] == ids.RESET_POWER_ON
            assert not node.exited and node.boots == 2
