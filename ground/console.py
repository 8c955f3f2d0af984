"""The interactive console: commands with completion and help, live telemetry and events.

Type a node command as ``name key=value ...`` (``set_mode mode=NOMINAL``). Tab completes
command names, argument names and enum values from the dictionary; the bottom toolbar shows
the link state, mode, battery charge, uptime and last event, and the arguments of the command
being typed; it redraws itself four times a second, and a node that stops answering shows as
``link LOST`` within a second or two (``ground.heartbeat``: a ``noop`` when the node is quiet).
Hazardous commands ask for confirmation. Console commands:

    help [NAME]        commands, or one command's (or console command's) arguments and help
    watch CHANNEL ...  print each new value of these channels, with its node time
    unwatch [CHANNEL]  stop watching (all, without names)
    tlm [CHANNEL ...]  the latest value of every channel (or of these)
    status             ask the node for its status
    log                where the session log is
    quit               leave (also exit, Ctrl-D)

Events print as they arrive, coloured by severity; a channel that crosses a yellow or red
limit prints in that colour. Tables fit the terminal's width. With standard input not a
terminal (``ground console < script``) the console reads one command per line and prints
plain text: no prompt, no status line, no escape codes. History is kept across sessions in
``$ILRS_CONSOLE_HISTORY``, else ``$XDG_STATE_HOME/ilrs/console_history``, else
``~/.local/state/ilrs/console_history``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Final

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console as RichConsole
from rich.text import Text

from ground import display, explain, validate, values
from ground.client import Client
from ground.errors import GroundError, UsageError
from ground.heartbeat import LOST, LinkWatch

HISTORY_ENV: Final = "ILRS_CONSOLE_HISTORY"
# name -> (usage, help): every console command answers `help NAME`.
CONSOLE_COMMANDS: Final = {
    "help": ("help [NAME]", "the commands, or one command's arguments and help"),
    "watch": (
        "watch CHANNEL ...",
        "print each new value of these channels as it arrives, with its node time",
    ),
    "unwatch": ("unwatch [CHANNEL ...]", "stop watching these channels (all, without names)"),
    "tlm": ("tlm [CHANNEL ...]", "the latest value of every channel, or of these channels"),
    "status": ("status", "ask the node for its status (mode, boot, uptime, dictionary)"),
    "log": ("log", "where the session log is"),
    "at": ("at UTC NAME [ARGS]", "queue a time-tagged command for a UTC time "
           "(at 2026-12-07T01:00:00Z set_mode mode=NOMINAL; SPEC §11)"),
    "in": ("in +HH:MM:SS NAME [ARGS]", "queue a time-tagged command this long from now "
           "(in +00:05:00 noop)"),
    "tt": ("tt list|delete ENTRY|clear|pause|resume", "the node's time-tagged queue"),
    "quit": ("quit", "leave the console (also exit, Ctrl-D)"),
    "exit": ("exit", "leave the console (also quit, Ctrl-D)"),
}
REFRESH_S: Final = 0.25  # the status line redraws itself this often
_ARG_VALUES: Final = {"bool": ("true", "false")}
_REPEAT_MS: Final = 1000  # an unchanged value within this node time is the same sample


def history_path() -> Path:
    configured = os.environ.get(HISTORY_ENV)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ilrs" / "console_history"


def ansi(renderable: Any, width: int = 120, colour: bool = True) -> str:
    """A rich renderable as a string, with ANSI colours unless ``colour`` is False."""
    buf = io.StringIO()
    RichConsole(
        file=buf,
        force_terminal=colour,
        color_system="standard" if colour else None,
        no_color=not colour,
        width=width,
        highlight=False,
    ).print(renderable, end="", soft_wrap=True)  # the terminal wraps lines, not rich
    return buf.getvalue()


class DictionaryCompleter(Completer):
    """Command names, then ``key=`` for each argument not given yet, then enum values."""

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = "" if text.endswith(" ") or not words else words[-1]
        if len(words) == 0 or (len(words) == 1 and not text.endswith(" ")):
            for name in list(validate.COMMANDS) + list(CONSOLE_COMMANDS):
                if name.startswith(current):
                    meta = (
                        CONSOLE_COMMANDS[name][1]
                        if name in CONSOLE_COMMANDS
                        else validate.COMMANDS[name].help
                    )[:60]
                    yield Completion(name, -len(current), display_meta=meta)
            return
        head = words[0]
        if head in ("watch", "unwatch", "tlm"):
            for name in validate.CHANNELS:
                if name.startswith(current):
                    yield Completion(name, -len(current), display_meta=validate.CHANNELS[name].unit)
            return
        if head == "help":
            for name in list(validate.COMMANDS) + list(CONSOLE_COMMANDS):
                if name.startswith(current):
                    yield Completion(name, -len(current))
            return
        cmd = validate.COMMANDS.get(head)
        if cmd is None:
            return
        key, sep, partial = current.partition("=")
        if sep:
            for option in self._values(cmd.name, key):
                if option.lower().startswith(partial.lower()):
                    yield Completion(option, -len(partial))
            return
        given = {w.partition("=")[0] for w in words[1:] if "=" in w}
        for arg in cmd.args:
            if arg.name not in given and arg.name.startswith(current):
                yield Completion(
                    arg.name + "=", -len(current), display_meta=validate.describe_arg(arg)
                )

    @staticmethod
    def _values(command: str, key: str) -> list[str]:
        cmd = validate.COMMANDS[command]
        arg = next((a for a in cmd.args if a.name == key), None)
        if arg is None:
            return []
        names = validate.arg_names(arg)
        if names:
            return names
        return list(_ARG_VALUES.get(arg.type, ()))


def tab_bindings() -> KeyBindings:
    """Tab that only ever moves forward: a single completion is applied and the next word's
    completions open (``o`` Tab → ``on=``, Tab → ``on=true``); several are cycled through."""
    kb = KeyBindings()

    @kb.add("tab")
    def _tab(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        state = buf.complete_state
        if state is None or not state.completions:
            buf.start_completion(insert_common_part=True)
            return
        if len(state.completions) == 1:
            buf.apply_completion(state.completions[0])
            buf.start_completion(select_first=False)
            return
        buf.complete_next()

    return kb


class ConsoleApp:
    """The console over a connected Client. ``run()`` until quit; ``handle(line)`` for one."""

    def __init__(
        self,
        client: Client,
        *,
        input: Input | None = None,
        output: Output | None = None,
        echo: Callable[[str], None] | None = None,
        assume_yes: bool = False,
        timeout: float = 5.0,
        plain: bool = False,
        link: LinkWatch | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.client = client
        self.assume_yes = assume_yes
        self.timeout = timeout
        self.plain = plain  # no terminal: plain text, no prompt, no status line
        self.watched: set[str] = set()
        self.redraws = 0  # status line draws (the refresh rate, for tests)
        self.status_line = ""  # the last one drawn
        self.link = link or LinkWatch(client)
        self._states: dict[str, str] = {}
        self._printed: dict[str, tuple[int, Any]] = {}  # channel -> (node ms, value) printed
        self._echo = echo
        self.session: PromptSession[str] | None = None
        if not plain:
            path = history_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.session = PromptSession(
                history=FileHistory(str(path)),
                completer=DictionaryCompleter(),
                complete_while_typing=True,
                bottom_toolbar=self.toolbar,
                key_bindings=tab_bindings(),
                refresh_interval=refresh_s,
                input=input,
                output=output,
            )
        self._unsubscribe = [
            client.on_telemetry(self._on_housekeeping),
            client.on_event(self._on_event),
        ]

    # --- output ------------------------------------------------------------------------

    def echo(self, text: str) -> None:
        if self._echo is not None:
            self._echo(text)
        else:
            print(text, flush=True)  # above the prompt, through patch_stdout

    def width(self) -> int:
        if self.session is not None:
            return max(20, self.session.output.get_size().columns)
        return shutil.get_terminal_size((100, 24)).columns

    def render(self, renderable: Any) -> str:
        return ansi(renderable, self.width(), colour=not self.plain)

    def _on_event(self, ev: values.EventRecord) -> None:
        self.echo(self.render(display.event_text(ev)))

    def _on_housekeeping(self, hk: values.Housekeeping) -> None:
        for v in hk.values:
            before = self._states.get(v.name)
            self._states[v.name] = v.state
            crossed = before is not None and v.state != before and v.state
            if not (v.name in self.watched or crossed) or self._repeated(v):
                continue
            self._printed[v.name] = (v.node_time_ms, v.value)
            note = f" ({v.state})" if v.state and v.state != values.NOMINAL else ""
            line = f"{v.node_time_ms / 1000:10.3f} {v.name} = {v.text} {v.unit}".rstrip() + note
            self.echo(self.render(Text(line, style=display.STATE_STYLES.get(v.state, ""))))

    def _repeated(self, v: values.ChannelValue) -> bool:
        """The same sample again: a channel is in several packets (battery_soc in `power`
        and `battery`), and an unchanged value soon after is the same reading."""
        last = self._printed.get(v.name)
        if last is None:
            return False
        t_ms, value = last
        return v.node_time_ms == t_ms or (
            v.value == value and 0 <= v.node_time_ms - t_ms < _REPEAT_MS
        )

    def link_text(self) -> str:
        state = self.link.state()
        if state == LOST:
            return (
                f"<style bg='ansired' fg='ansiwhite'>link LOST ({self.link.silent_s():.1f} s "
                "without an answer)</style>"
            )
        if state != "up":
            return f"<style bg='ansiyellow'>link {_escape(state)}</style>"
        return "link <b>up</b>"

    def toolbar(self, typed: str | None = None) -> HTML:
        """Status line, and the arguments of the command being typed (``typed``: for tests)."""
        self.redraws += 1
        c = self.client
        latest = c.downlink.latest
        mode = latest["mode"].text if "mode" in latest else (c.status.mode if c.status else "?")
        soc = latest.get("battery_soc")
        # one decimal in the status line; the telemetry views keep the full value
        soc_text = f"{soc.value:.1f} %" if soc and isinstance(soc.value, float) else (
            f"{soc.text} %" if soc else "?"
        )
        if soc and soc.state in (values.YELLOW, values.RED):
            soc_text = (
                f"<style bg='{'ansired' if soc.state == values.RED else 'ansiyellow'}'>"
                f"{soc_text}</style>"
            )
        up = latest.get("uptime_s")
        uptime = f"{up.value // 3600}h{up.value // 60 % 60:02d}m{up.value % 60:02d}s" if up else "?"
        ev = c.downlink.last_event
        last = _escape(f"{ev.name}: {ev.text}"[:50]) if ev else "-"
        line = (
            f" {self.link_text()} | mode <b>{mode}</b> | battery {soc_text} | "
            f"uptime {uptime} | last event {last}"
        )
        self.status_line = line
        if typed is None:
            typed = self.session.default_buffer.text if self.session is not None else ""
        words = typed.split()
        cmd = validate.COMMANDS.get(words[0]) if words else None
        if cmd is not None:
            flag = " (hazardous)" if cmd.hazardous else ""
            line += f"\n <b>{_escape(validate.usage(cmd))}</b>{flag}: {_escape(cmd.help)}"
        return HTML(line)

    # --- input -------------------------------------------------------------------------

    def run(self, lines: IO[str] | None = None) -> None:
        """Until quit: from the terminal, or (plain) one command per line of ``lines``."""
        self.link.start()
        try:
            if self.session is None:
                self._run_plain(lines if lines is not None else sys.stdin)
            else:
                self._run_prompt(self.session)
        finally:
            self.link.stop()
            for unsubscribe in self._unsubscribe:
                unsubscribe()

    def _run_prompt(self, session: PromptSession[str]) -> None:
        with patch_stdout(raw=True):
            self.echo(
                f"connected to {self.client.port} ({self.client.transport.device}); "
                f"log {self.client.log_path}; `help` lists commands, Tab completes"
            )
            while True:
                try:
                    line = session.prompt("ilrs> ")
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if not self.handle(line):
                    break

    def _run_plain(self, lines: IO[str]) -> None:
        for line in lines:
            if not self.handle(line):
                break

    def handle(self, line: str) -> bool:
        """Run one line; False to leave."""
        words = line.split()
        if not words:
            return True
        head, rest = words[0], words[1:]
        try:
            if head in ("quit", "exit"):
                return False
            handler = getattr(self, f"_do_{head}", None)
            if handler is not None and head in CONSOLE_COMMANDS:
                handler(rest)
            else:
                self._command(head, rest)
        except GroundError as exc:
            self.echo(self.render(Text.assemble(("error:", "bold red"), f" {exc}")))
        return True

    def _do_at(self, words: list[str]) -> None:
        from ground import timetag

        if len(words) < 2:
            raise UsageError("at UTC NAME [ARGS]: e.g. at 2026-12-07T01:00:00Z noop")
        self._command(words[1], words[2:], timetag.parse_at(words[0]))

    def _do_in(self, words: list[str]) -> None:
        from ground import timetag

        if len(words) < 2:
            raise UsageError("in +HH:MM:SS NAME [ARGS]: e.g. in +00:05:00 noop")
        self._command(words[1], words[2:],
                      timetag.parse_in(words[0], time.time_ns() // 1_000_000))

    def _do_tt(self, words: list[str]) -> None:
        action = words[0] if words else ""
        if action == "list":
            entries = self.client.tt_list(timeout=self.timeout)
            now_ms = time.time_ns() // 1_000_000
            for e in entries:
                self.echo(e.text(now_ms))
            self.echo(f"{len(entries)} queued")
        elif action == "delete" and len(words) == 2 and words[1].isdigit():
            self.client.command("tt_delete", entry=int(words[1]), timeout=self.timeout)
            self.echo(f"entry {words[1]} deleted")
        elif action == "clear":
            res = self.client.command("tt_clear", timeout=self.timeout)
            self.echo(f"{res.result} entries cleared")
        elif action in ("pause", "resume"):
            self.client.command("tt_pause", paused=action == "pause", timeout=self.timeout)
            self.echo("queue held" if action == "pause" else "queue released")
        else:
            raise UsageError("tt list | tt delete ENTRY | tt clear | tt pause | tt resume")

    def _command(self, name: str, words: list[str], at: int = 0) -> None:
        kwargs = validate.parse_assignments(name, words)
        cmd, _ = validate.prepare(name, kwargs)
        if at:
            validate.check_timetag(cmd, at)
        if cmd.hazardous and not self.assume_yes:
            if self.session is None:
                raise UsageError(
                    f"{cmd.name} is hazardous: start the console with --yes to send it"
                )
            answer = PromptSession[str](input=self.session.input, output=self.session.output)
            reply = answer.prompt(f"{cmd.name} is hazardous: {cmd.help} Type yes to send: ")
            if reply.strip().lower() != "yes":
                self.echo(f"{cmd.name}: not sent")
                return
        started = time.monotonic()
        res = self.client.command(name, timeout=self.timeout, at=at or None, **kwargs)
        ms = (time.monotonic() - started) * 1000
        if res.queued:
            from ground import timetag

            self.echo(self.render(Text.assemble(
                (f"{cmd.name} seq {res.seq}: accepted", "green"),
                f", queued for {timetag.format_utc(at)} ({ms:.0f} ms); outcome not known yet")))
            return
        fields = explain.result_text(cmd.name, res.result)
        result = "" if res.result is None else f" -> {fields}"
        stages = ", ".join(v.stage for v in res.verifications)
        retry = f", {res.attempts} attempts" if res.attempts > 1 else ""
        self.echo(
            self.render(
                Text.assemble(
                    (f"{cmd.name} seq {res.seq}: {stages}", "green"),
                    f" ({ms:.0f} ms{retry}){result}",
                )
            )
        )

    def _do_help(self, words: list[str]) -> None:
        if words and words[0] in CONSOLE_COMMANDS:
            usage, text = CONSOLE_COMMANDS[words[0]]
            self.echo(f"{usage}\n  {text} (a console command: nothing is sent to the node)")
            return
        if words:
            cmd = validate.command(words[0])
            lines = [validate.usage(cmd), f"  {cmd.help}"]
            lines += [f"  {a.name}: {validate.describe_arg(a)} - {a.help}" for a in cmd.args]
            self.echo("\n".join(lines))
            return
        names = ", ".join(validate.COMMANDS)
        local = ", ".join(CONSOLE_COMMANDS)
        self.echo(
            f"node commands: {names}\nconsole: {local}\n"
            "type `help NAME` for a command's arguments; Tab completes"
        )

    def _do_watch(self, words: list[str]) -> None:
        if not words:
            raise UsageError("watch: name the channels, e.g. watch battery_soc battery_voltage")
        for name in words:
            validate.channel(name)
        self.watched.update(words)
        self.echo(f"watching {', '.join(sorted(self.watched)) or 'nothing'}")

    def _do_unwatch(self, words: list[str]) -> None:
        for name in words:
            validate.channel(name)
        self.watched.difference_update(words or set(self.watched))
        self.echo(f"watching {', '.join(sorted(self.watched)) or 'nothing'}")

    def _do_tlm(self, words: list[str]) -> None:
        channels = [validate.channel(name).name for name in words] or None
        table = display.channel_table(self.client.channels, channels, width=self.width())
        self.echo(self.render(table))

    def _do_status(self, words: list[str]) -> None:
        st = self.client.refresh_status(self.timeout)
        self.echo(
            f"mode {st.mode}, boot {st.boot_count} ({st.reset_cause}), uptime "
            f"{st.uptime_ms / 1000:.0f} s, dictionary 0x{st.dict_hash:08x}, "
            f"event #{st.event_seq}, firmware {st.fw_version}"
            + ("" if st.node_id is None else f", node id 0x{st.node_id:08x}")
        )

    def _do_log(self, words: list[str]) -> None:
        self.echo(f"session log: {self.client.log_path}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(port: str, log: str | None = None, timeout: float = 5.0, assume_yes: bool = False,
         signer: Any = None) -> int:
    """`ground console`: connect, then run until quit (plain text when stdin is no terminal;
    commands signed with signer, if any)."""
    client = Client(port, log=log, signer=signer)
    try:
        client.connect(timeout=timeout)
        plain = not (sys.stdin.isatty() and sys.stdout.isatty())
        ConsoleApp(client, assume_yes=assume_yes, timeout=timeout, plain=plain).run()
    finally:
        client.close()
    return 0
