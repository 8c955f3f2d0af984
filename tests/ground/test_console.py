"""The console driven headlessly: keystrokes through a pipe, the screen into a buffer."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakenode import FakeNode
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import to_plain_text
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from ground.client import Client
from ground.console import ConsoleApp, DictionaryCompleter, history_path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


class Screen(Vt100_Output):
    """A vt100 terminal that writes into a buffer and knows its size (so toolbars render)."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        super().__init__(
            self.buffer, lambda: Size(rows=30, columns=120), term="xterm", enable_cpr=False
        )

    def get_rows_below_cursor_position(self) -> int:
        return 30

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.buffer.getvalue())


def plain(lines: list[str]) -> list[str]:
    return [_ANSI.sub("", line) for line in lines]


@pytest.fixture
def client(fake_node: FakeNode) -> Iterator[Client]:
    c = Client(fake_node.port, retry_interval_s=0.2)
    c.connect()
    yield c
    c.close()


def drive(client: Client, keys: list[str], assume_yes: bool = False) -> tuple[list[str], Screen]:
    """Type ``keys`` (one chunk every 0.15 s, so completion can run) and return the output."""
    lines: list[str] = []
    screen = Screen()
    with create_pipe_input() as inp:
        app = ConsoleApp(client, input=inp, output=screen, echo=lines.append, assume_yes=assume_yes)

        def typist() -> None:
            for chunk in [*keys, "quit\r"]:
                time.sleep(0.15)
                inp.send_text(chunk)

        threading.Thread(target=typist, daemon=True).start()
        app.run()
    return plain(lines), screen


def test_commands_with_tab_completion_and_verification(client: Client, fake_node: FakeNode) -> None:
    lines, screen = drive(client, ["noo", "\t", "\r", "set_mode mode=NOM", "\t", "\r"])
    assert any(re.match(r"noop seq \d+: accepted, completed", line) for line in lines)
    assert any("set_mode seq" in line for line in lines) and fake_node.mode == 2
    assert any("mode_changed: mode SAFE -> NOMINAL" in line for line in lines)
    assert "ilrs> noop" in screen.text and "link up" in screen.text  # the status toolbar
    assert "battery" in screen.text


def test_errors_are_one_line_and_nothing_is_sent(client: Client, fake_node: FakeNode) -> None:
    before = len(fake_node.received)
    lines, _ = drive(client, ["set_mod mode=2\r", "hk_rate packet=1 rate=99\r"])
    assert "error: unknown command 'set_mod': did you mean set_mode, heater_mode?" in lines
    assert any("allowed 0.1 to 50 Hz" in line for line in lines)
    assert len(fake_node.received) == before


def test_hazardous_commands_ask_first(client: Client, fake_node: FakeNode) -> None:
    lines, _ = drive(client, ["reboot\r", "no\r"])
    assert "reboot: not sent" in lines and fake_node.executed[18] == 0
    lines, _ = drive(client, ["reboot\r", "yes\r"])
    assert fake_node.executed[18] == 1 and any("reboot seq" in line for line in lines)


def test_watch_help_tlm_status_log(client: Client) -> None:
    lines, _ = drive(
        client,
        ["watch battery_soc\r", "help set_mode\r", "tlm\r", "status\r", "log\r", "unwatch\r"],
    )
    assert "watching battery_soc" in lines
    assert any(line.startswith("battery_soc = 12.5 % (red)") for line in lines)
    assert any(line.startswith("set_mode mode=<SAFE|NOMINAL|SCIENCE>") for line in lines)
    assert any("battery_voltage" in line for line in lines)  # the tlm table
    assert any(line.startswith("mode SAFE, boot 3") for line in lines)
    assert f"session log: {client.log_path}" in lines


def test_toolbar_shows_status_and_argument_help(client: Client) -> None:
    list(client.telemetry(count=1))
    with create_pipe_input() as inp:
        app = ConsoleApp(client, input=inp, output=Screen(), echo=lambda s: None)
        text = to_plain_text(app.toolbar("heater_setpoint heater=0 "))
    assert "link up" in text and "mode SAFE" in text and "battery 12.5 %" in text
    assert "heater_setpoint heater=<battery|electronics> setpoint=<f32 -40..40 degC>" in text


def test_completer() -> None:
    comp = DictionaryCompleter()

    def names(text: str) -> list[str]:
        return [c.text for c in comp.get_completions(Document(text), CompleteEvent())]

    assert names("set_") == ["set_mode"]
    assert names("load_switch ") == ["channel=", "on="]
    assert names("load_switch channel=heater") == ["heater_battery", "heater_electronics"]
    assert names("load_switch channel=1 on=") == ["true", "false"]
    assert names("param_get param=time") == ["time_factor"]
    assert names("watch battery_s") == ["battery_soc"]
    assert "quit" in names("q")


def test_history_is_kept_across_sessions(client: Client) -> None:
    drive(client, ["noop\r"])
    assert "noop" in Path(history_path()).read_text()
    # Up arrow twice: past the previous session's `quit`, to its `noop`.
    lines, _ = drive(client, ["\x1b[A", "\x1b[A", "\r"])
    assert any(line.startswith("noop seq") for line in lines), lines


def test_console_against_the_simulated_node(sim_port: str) -> None:
    c = Client(sim_port)
    c.connect()
    try:
        lines, screen = drive(c, ["set_mode mode=NOMINAL\r", "watch battery_soc\r", "tlm\r"])
    finally:
        c.close()
    assert any(line.startswith("set_mode seq") and "completed" in line for line in lines)
    assert any(line.startswith("battery_soc = ") for line in lines)
    assert "link up" in screen.text and "mode NOMINAL" in screen.text
