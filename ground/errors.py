"""The ground's errors: one root, typed subclasses that also inherit the matching builtin.

Every error carries its data as attributes (so code can act on it) and a one-line message a
person can act on (so the CLI just prints it). Each class has the process exit code the CLI
returns for it; the table is in ``ground.cli``'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

EXIT_OK: Final = 0
EXIT_COMMAND: Final = 1  # command rejected or failed by the node
EXIT_USAGE: Final = 2  # bad command line, unknown name, bad or out-of-range argument
EXIT_LINK: Final = 3  # port unreachable, link lost, node not answering
EXIT_DICTIONARY: Final = 4  # the node's dictionary hash differs from ours
EXIT_TIMEOUT: Final = 5  # no (final) verification in time
EXIT_LOG: Final = 6  # corrupt or unreadable session log
EXIT_UNKNOWN: Final = 7  # the node rebooted before a command's outcome was known
EXIT_CHECK: Final = 8  # ground run: a step of the script failed (check, command, wait)
EXIT_SCRIPT: Final = 9  # ground run: the script raised (its traceback is printed)
EXIT_INTERNAL: Final = 70  # a bug: please report it with the session log
EXIT_INTERRUPTED: Final = 130  # Ctrl-C: stopped cleanly (128 + SIGINT)


class GroundError(Exception):
    """Root of every error the ground raises on purpose."""

    exit_code: int = EXIT_INTERNAL


# --- usage: the request is wrong, nothing was sent ---------------------------------------


class UsageError(GroundError, ValueError):
    """The request cannot be sent as given (checked before anything goes on the link)."""

    exit_code = EXIT_USAGE


class UnknownName(UsageError, LookupError):
    """A command, channel, event or parameter name the dictionary does not have."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = (
            "did you mean " + ", ".join(self.suggestions) + "?"
            if self.suggestions
            else "see `ground dict`"
        )
        super().__init__(f"unknown {kind} {name!r}: {hint}")

    def __str__(self) -> str:  # LookupError/KeyError would quote the message
        return str(self.args[0])


class BadArgument(UsageError):
    """An argument is missing, unexpected, or of the wrong type."""

    def __init__(self, command: str, argument: str, value: object, reason: str) -> None:
        self.command = command
        self.argument = argument
        self.value = value
        self.reason = reason
        super().__init__(f"{command}: argument {argument}: {reason}")


class OutOfRange(BadArgument):
    """An argument is outside the dictionary's range; the message gives range and unit."""

    def __init__(
        self, command: str, argument: str, value: object, lo: object, hi: object, unit: str
    ) -> None:
        self.lo = lo
        self.hi = hi
        self.unit = unit
        u = f" {unit}" if unit else ""
        super().__init__(
            command, argument, value, f"{value!r} is out of range: allowed {lo} to {hi}{u}"
        )


# --- link --------------------------------------------------------------------------------


class ReadOnlyPort(UsageError):
    """A read-only port (``mqtt://...?readonly=1``, a partner's view): nothing is sent on it."""

    def __init__(self, port: str, what: str) -> None:
        self.port = port
        super().__init__(f"{port} is read-only (readonly=1: a partner's view of the node): "
                         f"{what} not sent; commanding takes an operator's port and rights")


class LinkError(GroundError, ConnectionError):
    """The link to the node is not usable."""

    exit_code = EXIT_LINK


class PortUnreachable(LinkError):
    """The port could not be opened."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot open port {url}: {reason}")


class PortBusy(PortUnreachable):
    """Another program holds the port (its exclusive lock): two readers would split the stream."""

    def __init__(self, url: str, device: str) -> None:
        self.device = device
        where = "" if device == url else f" ({device})"
        super().__init__(
            url,
            f"in use by another program{where}, which would get part of every reply: "
            "close it first (one program per port)",
        )


class LinkLost(LinkError):
    """The link went down and did not come back in time."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"link to {url} lost: {reason}")


class NotConnected(LinkError):
    """The client was used before connect() or after close()."""


# --- dictionary --------------------------------------------------------------------------


class DictionaryMismatch(GroundError, RuntimeError):
    """The node was built from a different dictionary: refuse to command it (SPEC §7)."""

    exit_code = EXIT_DICTIONARY

    def __init__(self, ground_hash: int, node_hash: int) -> None:
        self.ground_hash = ground_hash
        self.node_hash = node_hash
        super().__init__(
            f"dictionary mismatch: node has 0x{node_hash:08x}, ground has 0x{ground_hash:08x}; "
            "flash the node from this tree (`make flash PORT=...`) or use the matching ground"
        )


# --- commands ----------------------------------------------------------------------------


class CommandError(GroundError, RuntimeError):
    """The node answered a command with a negative verification."""

    exit_code = EXIT_COMMAND
    stage_name = "?"

    def __init__(self, command: str, seq: int, code: int, reason: str, why: str = "") -> None:
        self.command = command
        self.seq = seq
        self.code = code
        self.reason = reason
        self.why = why  # the reason in words a person can act on (ground.explain)
        because = f": {why}" if why else ""
        super().__init__(f"{command} (seq {seq}) {self.stage_name}: {reason} ({code}){because}")


class CommandRejected(CommandError):
    """Verification stage `rejected`: the command was not executed."""

    stage_name = "rejected"


class CommandFailed(CommandError):
    """Verification stage `failed`: the command was accepted but did not complete."""

    stage_name = "failed"


class VerificationTimeout(GroundError, TimeoutError):
    """No final verification in time; says what did arrive and where the log is."""

    exit_code = EXIT_TIMEOUT

    def __init__(
        self,
        command: str,
        seq: int,
        timeout_s: float,
        arrived: Sequence[str],
        log_path: str | None,
        attempts: int = 1,
    ) -> None:
        self.command = command
        self.seq = seq
        self.timeout_s = timeout_s
        self.arrived = tuple(arrived)
        self.log_path = log_path
        self.attempts = attempts
        got = ", ".join(self.arrived) if self.arrived else "no verification"
        where = f"; log: {log_path}" if log_path else ""
        super().__init__(
            f"{command} (seq {seq}): no final verification after {timeout_s:g} s and "
            f"{attempts} attempt(s); got {got}{where}"
        )


class OutcomeUnknown(GroundError, RuntimeError):
    """The node rebooted while a command it may have executed had no final verification.

    Commands are bound to the boot they were sent to (SPEC §5.1): a re-send after the reboot
    is rejected STALE_BOOT and never executed, so whether the command ran before the reboot
    cannot be known. Check the node's state (or its event log) before sending it again.
    """

    exit_code = EXIT_UNKNOWN

    def __init__(self, command: str, seq: int, boot: int, new_boot: int | None,
                 arrived: Sequence[str], log_path: str | None) -> None:
        self.command = command
        self.seq = seq
        self.boot = boot
        self.new_boot = new_boot
        self.arrived = tuple(arrived)
        self.log_path = log_path
        got = ", ".join(self.arrived) if self.arrived else "no verification"
        now = f"boot {new_boot}" if new_boot is not None else "a new boot"
        where = f"; log: {log_path}" if log_path else ""
        super().__init__(
            f"{command} (seq {seq}): outcome UNKNOWN: the node went from boot {boot} to {now} "
            f"before a final verification (got {got}); it may or may not have run: check the "
            f"node's state before sending it again{where}"
        )


class WaitTimeout(GroundError, TimeoutError):
    """A wait for telemetry, an event or a bulk transfer ended without what was wanted."""

    exit_code = EXIT_TIMEOUT

    def __init__(self, what: str, timeout_s: float, seen: str, log_path: str | None) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.seen = seen
        self.log_path = log_path
        where = f"; log: {log_path}" if log_path else ""
        super().__init__(f"no {what} within {timeout_s:g} s; {seen}{where}")


# --- session logs ------------------------------------------------------------------------


class LogError(GroundError, ValueError):
    """A session log cannot be read."""

    exit_code = EXIT_LOG


class CorruptLog(LogError):
    """A session log line is not a valid record."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: corrupt session log: {reason}")


# --- flashing ----------------------------------------------------------------------------


class FlashError(GroundError, RuntimeError):
    """Building or copying the firmware failed; the message names the step."""

    exit_code = EXIT_LINK

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"flash: {step}: {reason}")


class FlashTimeout(FlashError):
    """mpremote gave no answer in time (a slow or busy port): a link problem, not a bug."""

    def __init__(self, step: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            step,
            f"mpremote gave no answer within {timeout_s:g} s: the port is slow or the board is "
            "busy (check the cable, that no other program has the port open, and that the "
            "board is at the REPL; then flash again)",
        )
