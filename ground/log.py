"""The session log: every byte the ground received or sent, one JSON object per line.

Format ``ilrs-ground-log`` version 1 (JSON Lines, UTF-8, one record per ``\\n``-terminated
line). The first line is the header::

    {"type": "header", "format": "ilrs-ground-log", "version": 1, "tool": "ground 0.1.0",
     "dict_hash": "0x1a2b3c4d", "port": "sim", "t_ns": 1700000000000000000,
     "utc": "2026-01-01T12:00:00Z"}

Every other line is a record with ``t_ns``, the ground's wall clock (``time.time_ns()``, ns
since 1970 UTC) when the record was made, and ``type``:

==========  =================================================================================
type        fields
==========  =================================================================================
``down``    ``hex``: a downlink frame whose CRC verified, as the COBS bytes between the two
            0x00 delimiters (decode with COBS, drop the 4-byte little-endian CRC-32, CBOR).
``up``      ``hex``: an uplink frame as sent, same encoding. A re-sent command appears again.
``discard`` ``hex`` and ``reason`` (``sync``, ``crc``, ``truncated``, ``oversize``): received
            bytes that were not a verified frame, without the delimiters.
``error``   ``hex`` and ``reason``: a frame whose CRC verified but whose CBOR or message shape
            is invalid (it also has its own ``down`` record just before).
``link``    ``state`` (``up``, ``lost``, ``closed``) and ``detail``: the link changed.
``note``    ``text``: a remark from the tool (command line, user notes). Other fields may
            come with it: the steps of a ground script carry ``step`` or ``script``
            (``ground.steps``, ``ground.script``); a reader that does not know them shows
            ``text``.
==========  =================================================================================

So the log holds every received byte except delimiters, in order: replay feeds the ``down``
frames through the same decoders as a live session. Each line is written with one ``write``
and flushed at once, so a crash loses nothing already received; a reader skips (and reports)
an unterminated last line, which only a crash in the middle of a write leaves behind.

Default location: ``$ILRS_LOG_DIR``, else ``logs/`` at the top of the repository, file
``ground-YYYYmmddTHHMMSS-PID.jsonl``; ``--log PATH`` chooses another.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

from ground.errors import CorruptLog, LogError
from ground.micropython import REPO_ROOT

FORMAT: Final = "ilrs-ground-log"
VERSION: Final = 1
TOOL_VERSION: Final = "ground 0.1.0"
LOG_DIR_ENV: Final = "ILRS_LOG_DIR"

DOWN: Final = "down"
UP: Final = "up"
DISCARD: Final = "discard"
ERROR: Final = "error"
LINK: Final = "link"
NOTE: Final = "note"
_TYPES: Final = frozenset((DOWN, UP, DISCARD, ERROR, LINK, NOTE))
_NEEDS_HEX: Final = frozenset((DOWN, UP, DISCARD, ERROR))


def default_log_dir() -> Path:
    configured = os.environ.get(LOG_DIR_ENV)
    return Path(configured) if configured else REPO_ROOT / "logs"


def default_log_path() -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return default_log_dir() / f"ground-{stamp}-{os.getpid()}.jsonl"


class SessionLog:
    """Appends records to a log file; thread-safe; every record reaches the OS at once."""

    def __init__(self, path: str | Path, dict_hash: int, port: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.records = 0
        try:
            self._file: IO[str] | None = open(self.path, "w", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise LogError(f"cannot write session log {self.path}: {exc.strerror}") from None
        now = time.time_ns()
        self._write(
            json.dumps(
                {
                    "type": "header",
                    "format": FORMAT,
                    "version": VERSION,
                    "tool": TOOL_VERSION,
                    "dict_hash": f"0x{dict_hash:08x}",
                    "port": port,
                    "t_ns": now,
                    "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1e9)),
                }
            )
        )

    def _write(self, line: str) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(line + "\n")  # line-buffered: one write, flushed at the newline
            self.records += 1

    # Hot path (every downlink frame): format by hand, hex and ints need no escaping.
    def frame(self, direction: str, wire: bytes, t_ns: int | None = None) -> None:
        t = time.time_ns() if t_ns is None else t_ns
        self._write(f'{{"t_ns":{t},"type":"{direction}","hex":"{wire.hex()}"}}')

    def discard(self, data: bytes, reason: str, t_ns: int | None = None) -> None:
        self._record(DISCARD, t_ns, hex=data.hex(), reason=reason)

    def error(self, wire: bytes, reason: str, t_ns: int | None = None) -> None:
        self._record(ERROR, t_ns, hex=wire.hex(), reason=reason)

    def link(self, state: str, detail: str = "") -> None:
        self._record(LINK, None, state=state, detail=detail)

    def note(self, text: str, **fields: Any) -> None:
        """A remark; ``fields`` (JSON values) go in the record beside ``text``."""
        self._record(NOTE, None, text=text, **fields)

    def _record(self, kind: str, t_ns: int | None, **fields: Any) -> None:
        t = time.time_ns() if t_ns is None else t_ns
        self._write(json.dumps({"t_ns": t, "type": kind, **fields}))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Record(NamedTuple):
    line: int
    t_ns: int
    type: str
    data: bytes  # the frame or discarded bytes; b"" for link and note records
    fields: dict[str, Any]


class LogReader:
    """Reads a session log, checking every line; raises CorruptLog naming the line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.header: dict[str, Any] = {}
        self.warnings: list[str] = []

    @property
    def dict_hash(self) -> int:
        return int(str(self.header.get("dict_hash", "0x0")), 16)

    def __iter__(self) -> Iterator[Record]:
        try:
            f = open(self.path, encoding="utf-8", newline="\n")
        except OSError as exc:
            raise LogError(f"cannot read session log {self.path}: {exc.strerror}") from None
        number = 0
        with f:
            try:
                first = f.readline()
                self.header = self._header(first)
                number = 1
                for text in f:
                    number += 1
                    if not text.endswith("\n"):
                        try:
                            record = self._record(number, text)
                        except CorruptLog:
                            # Only a crash mid-write leaves this: say so, keep the rest.
                            self.warnings.append(
                                f"{self.path}:{number}: unterminated last line skipped"
                            )
                            return
                        yield record
                        return
                    yield self._record(number, text)
            except UnicodeDecodeError as exc:
                raise CorruptLog(str(self.path), number + 1, f"not UTF-8 ({exc.reason})") from None

    def _header(self, text: str) -> dict[str, Any]:
        try:
            header = json.loads(text)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CorruptLog(str(self.path), 1, f"no {FORMAT} header: not a ground session log")
        if header.get("version") != VERSION:
            raise CorruptLog(
                str(self.path), 1, f"format version {header.get('version')!r}, expected {VERSION}"
            )
        return header

    def _record(self, number: int, text: str) -> Record:
        path = str(self.path)
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise CorruptLog(path, number, f"not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise CorruptLog(path, number, "not a JSON object")
        kind = obj.get("type")
        t_ns = obj.get("t_ns")
        if kind not in _TYPES:
            raise CorruptLog(path, number, f"unknown record type {kind!r}")
        if not isinstance(t_ns, int):
            raise CorruptLog(path, number, "t_ns missing or not an integer")
        data = b""
        if kind in _NEEDS_HEX:
            try:
                data = bytes.fromhex(obj["hex"])
            except (KeyError, TypeError, ValueError):
                raise CorruptLog(path, number, "hex missing or not hexadecimal") from None
        return Record(number, t_ns, str(kind), data, obj)


def read_header(path: str | Path) -> dict[str, Any]:
    reader = LogReader(path)
    for _ in reader:  # the header is checked when iteration starts
        break
    return reader.header
