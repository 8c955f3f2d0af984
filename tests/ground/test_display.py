"""The displays fit the terminal: every channel name whole and distinct at any width."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable

import pytest
from fakenode import FakeNode
from rich.console import Console

from ground import display, values
from protocol import dictionary

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][AB0-9]|\r")


def every_channel() -> dict[str, values.ChannelValue]:
    """One sample of every channel, from every packet of the dictionary."""
    latest: dict[str, values.ChannelValue] = {}
    for spec in dictionary.PACKETS:
        body = [1.5 if n.startswith("current_") else 0 for n in spec.channels]
        for v in values.housekeeping(spec.id, 1, 61_000, 0, body).values:
            latest[v.name] = v
    return latest


def names_in(table_text: str) -> list[str]:
    """The channel column, top to bottom (a long value may wrap onto a row of its own)."""
    rows = [row.split("│")[1].strip() for row in table_text.splitlines() if row.startswith("│")]
    return [name for name in rows if name]


@pytest.mark.parametrize("width", [50, 64, 80, 100, 120])
def test_channel_table_keeps_whole_names_at_any_width(width: int) -> None:
    latest = every_channel()
    out = Console(width=width, record=True, force_terminal=False)
    with out.capture() as capture:
        out.print(display.channel_table(latest, width=width))
    text = capture.get()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    expected = sorted(latest, key=lambda n: display.CHANNEL_ORDER[n])
    assert names_in(text) == expected and len(set(expected)) == len(dictionary.CHANNELS)
    assert "…" not in text
    header = lines[1]
    assert ("state" in header) == (width >= 60) and ("packet" in header) == (width >= 100)
    assert ("node time" in header) == (width >= 80)
    currents = [row for row in lines if "│ current_" in row]
    assert len(currents) == 10 and all(" 1.5 │" in row for row in currents)  # values whole


def _pty_run(argv: list[str], columns: int, timeout_s: float = 60) -> tuple[int, str]:
    """Run ``argv`` on a pty ``columns`` wide (TIOCSWINSZ): its exit code and what it drew."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm"}
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the pty
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")


@pytest.mark.parametrize("columns", [80, 60])
def test_tlm_on_a_real_terminal_fits_its_width(fake_node: FakeNode, columns: int) -> None:
    loads = next(p for p in dictionary.PACKETS if p.name == "loads")  # the longest names
    stop = threading.Event()

    def send_loads() -> None:
        while not stop.wait(0.05):
            body = [1 if n in ("mode", "boot_count") else 0.5 for n in loads.channels]
            body[2] = fake_node.dict_hash
            fake_node.send(2, loads.id, body, 1000)

    sender = threading.Thread(target=send_loads, daemon=True)
    sender.start()
    try:
        code, drawn = _pty_run(
            [sys.executable, "-m", "ground", "tlm", "--count", "20", "--port", fake_node.port],
            columns,
        )
    finally:
        stop.set()
        sender.join()
    assert code == 0, drawn
    text = _ANSI.sub("", drawn)
    last = text[text.rindex("┏") :]  # the final frame of the live table
    lines = [line for line in last.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= columns, last
    power = next(p for p in dictionary.PACKETS if p.id == 1)  # the fake node's own packet
    expected = set(power.channels) | set(loads.channels)
    shown = names_in(last)
    assert shown == sorted(expected, key=lambda n: display.CHANNEL_ORDER[n]), last
    assert "current_payload_a" in shown and "…" not in last


def _plain(data: bytes) -> str:
    return _ANSI.sub("", data.decode(errors="replace"))


def test_console_on_a_real_terminal_80_columns(fake_node: FakeNode) -> None:
    """The console on a pty 80 columns wide, answering cursor-position requests as a terminal
    does: the status line is drawn, `tlm` fits with whole names, and the status line is
    redrawn with no key pressed (the renderer sends only the cells that changed)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ground", "console", "--port", fake_node.port],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm"},
    )
    os.close(slave)
    drawn = b""

    def read_until(predicate: Callable[[bytes], bool], timeout_s: float = 30) -> None:
        nonlocal drawn
        deadline = time.monotonic() + timeout_s
        while not predicate(drawn) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                drawn += chunk
                for _ in range(chunk.count(b"\x1b[6n")):  # where is the cursor? as a terminal
                    os.write(master, b"\x1b[2;1R")  # answers: row 2, so the toolbar has room

    try:
        read_until(lambda b: "link up | mode SAFE | battery 12.5 %" in _plain(b))
        os.write(master, b"tlm\r")
        read_until(lambda b: "┘".encode() in b)
        read_until(lambda b: False, timeout_s=0.5)  # the prompt after the table
        mark = len(drawn)
        read_until(lambda b: len(b) > mark, timeout_s=10)  # nothing typed: the uptime moves on
        redrawn = len(drawn) > mark
        os.write(master, b"quit\r")
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = _ANSI.sub("", drawn.decode(errors="replace"))
    table = text[text.index("┏") : text.index("┘") + 1].splitlines()
    assert code == 0 and max(len(line) for line in table) <= 80
    power = next(p for p in dictionary.PACKETS if p.id == 1)
    shown = names_in("\n".join(table))
    assert shown == sorted(power.channels, key=lambda n: display.CHANNEL_ORDER[n])
    assert redrawn
