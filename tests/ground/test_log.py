"""The session log: header, records, crash safety, and corrupt logs named by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ground.errors import EXIT_LOG, CorruptLog, LogError
from ground.log import DOWN, FORMAT, UP, LogReader, SessionLog, default_log_path, read_header


def _write(path: Path) -> None:
    with SessionLog(path, 0x1234ABCD, "loop://") as log:
        log.frame(UP, b"\x01\x02", t_ns=10)
        log.frame(DOWN, b"\x03\x04", t_ns=20)
        log.discard(b"\r\n", "sync", t_ns=30)
        log.error(b"\x05", "not CBOR", t_ns=40)
        log.link("lost", "EIO")
        log.note("hello")


def test_header_and_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _write(path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == FORMAT and header["version"] == 1
    assert header["dict_hash"] == "0x1234abcd" and header["tool"].startswith("ground ")
    reader = LogReader(path)
    records = list(reader)
    assert [r.type for r in records] == ["up", "down", "discard", "error", "link", "note"]
    assert records[0].data == b"\x01\x02" and records[0].t_ns == 10
    assert records[2].fields["reason"] == "sync"
    assert reader.dict_hash == 0x1234ABCD
    assert read_header(path)["port"] == "loop://"


def test_every_record_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = SessionLog(path, 1)
    log.frame(DOWN, b"\xaa")
    # No close(): what a crash would leave behind must already be readable.
    assert [r.data for r in LogReader(path)] == [b"\xaa"]
    log.close()


def test_unterminated_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _write(path)
    with path.open("a") as f:
        f.write('{"t_ns": 5, "type": "do')
    reader = LogReader(path)
    assert len(list(reader)) == 6
    assert "unterminated" in reader.warnings[0]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage\n", "not JSON"),
        ('{"t_ns": 1, "type": "down", "hex": "zz"}\n', "hexadecimal"),
        ('{"t_ns": "x", "type": "down", "hex": "00"}\n', "t_ns"),
        ('{"t_ns": 1, "type": "weird"}\n', "unknown record type"),
        ("[1, 2]\n", "not a JSON object"),
    ],
)
def test_corrupt_line_is_named(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "s.jsonl"
    _write(path)
    with path.open("a") as f:
        f.write(line)
        f.write('{"t_ns": 1, "type": "note", "text": "after"}\n')
    with pytest.raises(CorruptLog) as info:
        list(LogReader(path))
    assert info.value.line == 8 and reason in str(info.value)
    assert info.value.exit_code == EXIT_LOG and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_not_a_log(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(CorruptLog, match=":1: corrupt session log: not UTF-8"):
        list(LogReader(path))
    path.write_text('{"hello": 1}\n')
    with pytest.raises(CorruptLog, match="not a ground session log"):
        list(LogReader(path))
    with pytest.raises(LogError, match="cannot read"):
        list(LogReader(tmp_path / "missing.jsonl"))


def test_default_location_follows_the_environment(tmp_path: Path) -> None:
    assert default_log_path().parent == tmp_path / "logs"  # conftest sets ILRS_LOG_DIR
