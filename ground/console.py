"""The interactive console: commands with completion and help, live telemetry and events.

Type a node command as ``name key=value ...`` (``set_mode mode=NOMINAL``). Tab completes
command names, argument names and enum values from the dictionary; the bottom toolbar shows
the link state, mode, battery charge, uptime and last event, and the arguments of the command
being typed. Hazardous commands ask for confirmation. Console commands:

    help [NAME]        commands, or one command's arguments and help
    watch CHANNEL ...  print these channels as they arrive (unwatch [CHANNEL ...] stops)
    tlm                the latest value of every channel
    status             ask the node for its status
    log                where the session log is
    quit               leave (also exit, Ctrl-D)

Events print as they arrive, coloured by severity; a channel that crosses a yellow or red
limit prints in that colour. History is kept across sessions in ``$ILRS_CONSOLE_HISTORY``,
else ``$XDG_STATE_HOME/ilrs/console_history``, else ``~/.local/state/ilrs/console_history``.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console as RichConsole
from rich.text import Text

from ground import display, validate, values
from ground.client import Client
from ground.errors import GroundError

HISTORY_ENV: Final = "ILRS_CONSOLE_HISTORY"
CONSOLE_COMMANDS: Final = {
    "help": "commands, or `help NAME` for one command",
    "watch": "print channels as they arrive: watch CHANNEL ...",
    "unwatch": "stop printing channels: unwatch [CHANNEL ...]",
    "tlm": "the latest value of every channel",
    "status": "ask the node for its status",
    "log": "where the session log is",
    "quit": "leave the console",
    "exit": "leave the console",
}
_ARG_VALUES: Final = {"bool": ("true", "false")}


def history_path() -> Path:
    configured = os.environ.get(HISTORY_ENV)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ilrs" / "console_history"


def ansi(renderable: Any, width: int = 120) -> str:
    """A rich renderable as a string with ANSI colours (printed above the prompt)."""
    buf = io.StringIO()
    RichConsole(
        file=buf, force_terminal=True, color_system="standard", width=width, highlight=False
    ).print(renderable, end="")
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
                    meta = (CONSOLE_COMMANDS.get(name) or validate.COMMANDS[name].help)[:60]
                    yield Completion(name, -len(current), display_meta=meta)
            return
        head = words[0]
        if head in ("watch", "unwatch"):
            for name in validate.CHANNELS:
                if name.startswith(current):
                    yield Completion(name, -len(current), display_meta=validate.CHANNELS[name].unit)
            return
        if head == "help":
            for name in validate.COMMANDS:
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
        if arg.name == "param":
            return list(validate.PARAMS)
        if arg.enum:
            return list(arg.enum.values())
        return list(_ARG_VALUES.get(arg.type, ()))


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
    ) -> None:
        self.client = client
        self.assume_yes = assume_yes
        self.timeout = timeout
        self.watched: set[str] = set()
        self._states: dict[str, str] = {}
        self._echo = echo
        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(str(path)),
            completer=DictionaryCompleter(),
            complete_while_typing=True,
            bottom_toolbar=self.toolbar,
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

    def _on_event(self, ev: values.EventRecord) -> None:
        self.echo(ansi(display.event_text(ev)))

    def _on_housekeeping(self, hk: values.Housekeeping) -> None:
        for v in hk.values:
            before = self._states.get(v.name)
            self._states[v.name] = v.state
            crossed = before is not None and v.state != before and v.state
            if v.name in self.watched or crossed:
                note = f" ({v.state})" if v.state and v.state != values.NOMINAL else ""
                line = f"{v.name} = {v.text} {v.unit}".rstrip() + note
                self.echo(ansi(Text(line, style=display.STATE_STYLES.get(v.state, ""))))

    def toolbar(self, typed: str | None = None) -> HTML:
        """Status line, and the arguments of the command being typed (``typed``: for tests)."""
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
            f" link <b>{c.link_state}</b> | mode <b>{mode}</b> | battery {soc_text} | "
            f"uptime {uptime} | last event {last}"
        )
        if typed is None:
            typed = self.session.default_buffer.text if hasattr(self, "session") else ""
        words = typed.split()
        cmd = validate.COMMANDS.get(words[0]) if words else None
        if cmd is not None:
            flag = " (hazardous)" if cmd.hazardous else ""
            line += f"\n <b>{_escape(validate.usage(cmd))}</b>{flag}: {_escape(cmd.help)}"
        return HTML(line)

    # --- input -------------------------------------------------------------------------

    def run(self) -> None:
        with patch_stdout(raw=True):
            self.echo(
                f"connected to {self.client.port} ({self.client.transport.device}); "
                f"log {self.client.log_path}; `help` lists commands, Tab completes"
            )
            while True:
                try:
                    line = self.session.prompt("ilrs> ")
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if not self.handle(line):
                    break
        for unsubscribe in self._unsubscribe:
            unsubscribe()

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
            self.echo(ansi(f"[bold red]error:[/] {_rich_escape(str(exc))}"))
        return True

    def _command(self, name: str, words: list[str]) -> None:
        kwargs = validate.parse_assignments(name, words)
        cmd, _ = validate.prepare(name, kwargs)
        if cmd.hazardous and not self.assume_yes:
            answer = PromptSession[str](input=self.session.input, output=self.session.output)
            reply = answer.prompt(f"{cmd.name} is hazardous: {cmd.help} Type yes to send: ")
            if reply.strip().lower() != "yes":
                self.echo(f"{cmd.name}: not sent")
                return
        started = time.monotonic()
        res = self.client.command(name, timeout=self.timeout, **kwargs)
        ms = (time.monotonic() - started) * 1000
        result = "" if res.result is None else f" -> {res.result!r}"
        stages = ", ".join(v.stage for v in res.verifications)
        retry = f", {res.attempts} attempts" if res.attempts > 1 else ""
        self.echo(
            ansi(
                f"[green]{cmd.name} seq {res.seq}: {stages}[/] ({ms:.0f} ms{retry})"
                f"{_rich_escape(result)}"
            )
        )

    def _do_help(self, words: list[str]) -> None:
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
        for name in words:
            validate.channel(name)
        self.watched.update(words)
        self.echo(f"watching {', '.join(sorted(self.watched)) or 'nothing'}")

    def _do_unwatch(self, words: list[str]) -> None:
        self.watched.difference_update(words or set(self.watched))
        self.echo(f"watching {', '.join(sorted(self.watched)) or 'nothing'}")

    def _do_tlm(self, words: list[str]) -> None:
        self.echo(ansi(display.channel_table(self.client.channels)))

    def _do_status(self, words: list[str]) -> None:
        st = self.client.refresh_status(self.timeout)
        self.echo(
            f"mode {st.mode}, boot {st.boot_count} ({st.reset_cause}), uptime "
            f"{st.uptime_ms / 1000:.0f} s, dictionary 0x{st.dict_hash:08x}, "
            f"event #{st.event_seq}, firmware {st.fw_version}"
        )

    def _do_log(self, words: list[str]) -> None:
        self.echo(f"session log: {self.client.log_path}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rich_escape(text: str) -> str:
    return text.replace("[", r"\[")


def main(port: str, log: str | None = None, timeout: float = 5.0, assume_yes: bool = False,
         signer: Any = None) -> int:
    """`ground console`: connect, then run until quit (signing with signer, if any)."""
    client = Client(port, log=log, signer=signer)
    try:
        client.connect(timeout=timeout)
        ConsoleApp(client, assume_yes=assume_yes, timeout=timeout).run()
    finally:
        client.close()
    return 0
