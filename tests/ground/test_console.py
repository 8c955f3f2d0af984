"""The console driven headlessly: keystrokes through a pipe, the screen into a buffer."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
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

from ground import display, values
from ground.client import Client
from ground.console import CONSOLE_COMMANDS, ConsoleApp, DictionaryCompleter, history_path
from ground.heartbeat import LOST, LinkWatch
from protocol import dictionary

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


class Screen(Vt100_Output):
    """A vt100 terminal that writes into a buffer and knows its size (so toolbars render)."""

    def __init__(self, columns: int = 120) -> None:
        self.buffer = io.StringIO()
        super().__init__(
            self.buffer, lambda: Size(rows=30, columns=columns), term="xterm", enable_cpr=False
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
    """Type ``keys`` (one chunk every 0.15 s; after text or a Tab, the next chunk only once
    the line shows it or its completion, however long a busy machine takes) and return the
    output."""
    lines: list[str] = []
    screen = Screen()
    with create_pipe_input() as inp:
        app = ConsoleApp(client, input=inp, output=screen, echo=lines.append, assume_yes=assume_yes)

        def typist() -> None:
            for chunk in [*keys, "quit\r"]:
                time.sleep(0.15)
                buffer = app.session.default_buffer if app.session is not None else None
                before = buffer.text if buffer is not None else ""
                inp.send_text(chunk)
                deadline = time.monotonic() + 10.0
                while buffer is not None and time.monotonic() < deadline and (
                        buffer.text == before if chunk == "\t"
                        else chunk.isprintable() and not buffer.text.endswith(chunk)):
                    time.sleep(0.02)  # the line shows what was typed, or the completion

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
    assert ("error: unknown command 'set_mod': did you mean set_mode, heater_mode, seq_stop?"
            in lines)
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
    watched = [line for line in lines if re.fullmatch(r" *\d+\.\d{3} battery_soc = .*", line)]
    assert watched and all(line.endswith("battery_soc = 12.5 % (red)") for line in watched)
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
    watched = [line for line in lines if re.fullmatch(r" *\d+\.\d{3} battery_soc = .* %", line)]
    assert watched
    samples = [(line.split()[0], line.split()[3]) for line in watched]
    assert len(samples) == len(set(samples))  # in two packets, printed once
    assert "link up" in screen.text and "mode NOMINAL" in screen.text


# --- a console that stays live ---------------------------------------------------------------


def app_for(client: Client, columns: int = 120, **kwargs: object) -> tuple[ConsoleApp, list[str]]:
    lines: list[str] = []
    with create_pipe_input() as inp:
        app = ConsoleApp(
            client, input=inp, output=Screen(columns), echo=lines.append, **kwargs  # type: ignore[arg-type]
        )
    return app, lines


def test_help_answers_every_console_command(client: Client) -> None:
    app, lines = app_for(client)
    for name, (usage, text) in CONSOLE_COMMANDS.items():
        lines.clear()
        app.handle(f"help {name}")
        note = "(a console command: nothing is sent to the node)"
        assert plain(lines) == [f"{usage}\n  {text} {note}"]
    assert {"help", "watch", "unwatch", "tlm", "status", "log", "quit", "exit"} <= set(
        CONSOLE_COMMANDS
    )
    for name in CONSOLE_COMMANDS:  # each has a handler, or is a way out
        assert name in ("quit", "exit") or hasattr(app, f"_do_{name}")


def test_tlm_honours_its_channels_and_fits_80_columns(client: Client) -> None:
    list(client.telemetry(count=1))
    app, lines = app_for(client, columns=80)
    app.handle("tlm battery_soc mode")
    rows = [line for line in plain(lines)[0].splitlines() if "│" in line]
    names = [row.split("│")[1].strip() for row in rows]  # the header row has ┃, not │
    assert names == ["battery_soc", "mode"]
    lines.clear()
    app.handle("tlm")  # every channel the node sent: whole names, no line over 80 columns
    table = plain(lines)[0].splitlines()
    assert max(len(line) for line in table) <= 80 and "…" not in "".join(table)
    shown = [row.split("│")[1].strip() for row in table if row.startswith("│")]
    assert shown == sorted(client.channels, key=lambda n: display.CHANNEL_ORDER[n])
    lines.clear()
    app.handle("tlm batery_soc")
    assert plain(lines) == [
        "error: unknown channel 'batery_soc': did you mean battery_soc, battery_voltage, "
        "battery_current?"
    ]  # one line: the terminal wraps it, not the console


def test_watch_prints_each_sample_once_with_its_node_time() -> None:
    with FakeNode(hk_period_s=None) as quiet:  # only the packets below reach the console
        c = Client(quiet.port, write_log=False)
        c.connect()
        try:
            app, lines = app_for(c)
            _watch_once(app, lines)
        finally:
            c.close()


def _watch_once(app: ConsoleApp, lines: list[str]) -> None:
    app.handle("watch battery_soc")
    lines.clear()

    def packet(packet_id: int, t_ms: int, soc: float) -> values.Housekeeping:
        spec = next(p for p in dictionary.PACKETS if p.id == packet_id)
        body = [soc if name == "battery_soc" else 0 for name in spec.channels]
        return values.housekeeping(packet_id, 1, t_ms, 0, body)

    app._on_housekeeping(packet(1, 61_200, 55.5))  # power
    app._on_housekeeping(packet(6, 61_200, 55.5))  # battery: the same sample again
    app._on_housekeeping(packet(6, 61_700, 55.5))  # unchanged half a second later
    app._on_housekeeping(packet(1, 62_200, 55.25))  # a new value
    app._on_housekeeping(packet(6, 62_200, 55.25))
    app._on_housekeeping(packet(1, 63_300, 55.25))  # unchanged, but a second later
    assert plain(lines) == [
        "    61.200 battery_soc = 55.5 %",
        "    62.200 battery_soc = 55.25 %",
        "    63.300 battery_soc = 55.25 %",
    ]


def test_tab_never_breaks_a_command(client: Client, fake_node: FakeNode) -> None:
    fake_node.mode = 2
    # `o` Tab gives `on=`; a second Tab goes on to a value instead of back to `o`.
    lines, screen = drive(client, ["load_switch channel=seismometer o", "\t", "\t", "\r"])
    assert "ilrs> load_switch channel=seismometer on=true" in screen.text
    assert any(re.match(r"load_switch seq \d+: accepted, completed", line) for line in lines)
    assert fake_node.received[-1][4:6] == [3, [1, True]]
    assert not any(line.startswith("error") for line in lines)
    comp = DictionaryCompleter()
    assert [c.text for c in comp.get_completions(Document("tlm batt"), CompleteEvent())][:1] == [
        "battery_soc"
    ]
    assert [c.text for c in comp.get_completions(Document("help wa"), CompleteEvent())] == [
        "watch"
    ]
    typed = Document("hk_rate packet=pow")
    assert [c.text for c in comp.get_completions(typed, CompleteEvent())] == ["power"]


def test_status_line_refreshes_on_its_own(client: Client) -> None:
    """No key is pressed: the status line is redrawn, and the uptime it shows moves on."""
    screen = Screen()
    with create_pipe_input() as inp:
        app = ConsoleApp(client, input=inp, output=screen, echo=lambda s: None)
        uptimes: set[str] = set()
        started = time.monotonic()

        def watcher() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                # what the last redraw drew (the screen itself only gets the changed cells)
                uptimes.update(re.findall(r"uptime (\d+h\d\dm\d\ds)", app.status_line))
                if len(uptimes) >= 3 and app.redraws >= 8:
                    break
                time.sleep(0.05)
            inp.send_text("quit\r")

        threading.Thread(target=watcher, daemon=True).start()
        app.run()
        elapsed = time.monotonic() - started
    print(f"status line: {app.redraws} draws in {elapsed:.2f} s, {app.redraws / elapsed:.1f}/s")
    assert len(uptimes) >= 3 and app.redraws >= 8  # a keypress-only redraw gives one


def test_a_silent_node_shows_as_lost_a_quiet_one_does_not(fake_node: FakeNode) -> None:
    fake_node.hk_period_s = None  # telemetry off: only answers to commands arrive
    c = Client(fake_node.port, retry_interval_s=0.2)
    c.connect()
    try:
        watch = LinkWatch(c, period_s=0.3, lost_after_s=3.0)
        app, _ = app_for(c, link=watch)
        watch.start()
        before = fake_node.executed[1]
        deadline = time.monotonic() + 20
        while watch.heartbeats < 4 and time.monotonic() < deadline:
            assert watch.state() == "up"  # quiet, yet answering: never lost
            time.sleep(0.05)
        assert watch.heartbeats >= 4 and fake_node.executed[1] - before >= 3  # noops answered
        assert "link <b>up</b>" in app.link_text()
        fake_node.silent = True  # the node stops answering, the port stays open
        deadline = time.monotonic() + 20
        while watch.state() != LOST and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.state() == LOST and watch.silent_s() >= 3.0
        assert "link LOST" in to_plain_text(app.toolbar(""))
        watch.stop()
    finally:
        c.close()


class _Downlink:
    messages = 0


class _Client:
    """What LinkWatch reads of a client: the frame count, the link state, send()."""

    def __init__(self) -> None:
        self.downlink = _Downlink()
        self.link_state = "up"
        self.sent: list[str] = []

    def send(self, name: str) -> int:
        self.sent.append(name)
        return len(self.sent)


def test_linkwatch_heartbeat_and_lost_exactly() -> None:
    now = [100.0]
    client = _Client()
    watch = LinkWatch(client, period_s=0.5, lost_after_s=1.5, clock=lambda: now[0])

    def at(t: float, frames: int = 0) -> str:
        now[0] = 100.0 + t
        client.downlink.messages += frames
        watch.poll()
        return watch.state()

    assert at(0.4) == "up" and client.sent == []  # frames are recent enough
    assert at(0.5) == "up" and client.sent == ["noop"]  # quiet for period_s: a heartbeat
    assert at(0.9) == "up" and client.sent == ["noop"]  # one per period
    assert at(1.0, frames=1) == "up"  # the answer
    assert at(1.4) == "up" and client.sent == ["noop"]
    assert at(1.5) == "up" and client.sent == ["noop", "noop"]
    assert at(2.0) == "up" and client.sent == ["noop"] * 3
    assert at(2.49) == "up"
    assert at(2.5) == LOST and watch.silent_s() == pytest.approx(1.5)
    assert at(2.6, frames=1) == "up"  # back
    client.link_state = "reconnecting"
    assert at(9.0) == "reconnecting" and client.sent == ["noop"] * 4  # no writes into a dead port


def test_piped_console_prints_no_escape_codes(fake_node: FakeNode, tmp_path: Path) -> None:
    script = "noop\nhelp watch\ntlm battery_soc\nset_mod mode=2\nstatus\nquit\nnoop\n"
    proc = subprocess.run(
        [sys.executable, "-m", "ground", "console", "--port", fake_node.port],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x1b" not in proc.stderr
    out = proc.stdout.splitlines()
    assert re.fullmatch(r"noop seq \d+: accepted, completed \(\d+ ms\)", out[0]), out
    assert out[1:3] == [
        "watch CHANNEL ...",
        "  print each new value of these channels as it arrives, with its node time "
        "(a console command: nothing is sent to the node)",
    ]
    assert "battery_soc" in proc.stdout
    assert "error: unknown command 'set_mod': did you mean set_mode, heater_mode, seq_stop?" in out
    assert any(line.startswith("mode SAFE, boot 3") for line in out)
    assert fake_node.executed[1] >= 1  # and the noop after quit was not sent (one or more
    # heartbeats may be noops too, so count the typed ones from the output instead)
    assert len([line for line in out if line.startswith("noop seq")]) == 1
