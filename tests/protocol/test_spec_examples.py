"""The ```example blocks of protocol/SPEC.md are tests (format: SPEC §0).

Each block is checked with the node codec (protocol.cbor) and with cbor2: diag encodes to
hex, hex decodes to diag, messages decode to their kind and re-encode, framed examples match
the CRC, the wire bytes and the Deframer, hash examples match SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path
from typing import Any

import cbor2
import pytest

from protocol import cbor, messages
from protocol import dictionary_lookup as lookup
from protocol.crc import crc32
from protocol.errors import MessageError
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"
KEYS = ("diag", "hex", "kind", "error", "crc", "wire", "sha256", "hash")


def parse_examples(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, {key: value}) for every ```example block of text."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```example":
            i += 1
            continue
        start, fields, key = i + 1, {}, None
        i += 1
        while lines[i].strip() != "```":
            line = lines[i]
            i += 1
            if not line.strip() or line.startswith("#"):
                continue
            if line[0].isspace():
                assert key is not None, f"SPEC.md:{i}: continuation line without a key"
                fields[key] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            assert sep and key in KEYS, f"SPEC.md:{i}: unknown example line {line!r}"
            assert key not in fields, f"SPEC.md:{i}: {key} given twice"
            fields[key] = value.strip()
        blocks.append((start, fields))
    return blocks


# --- a parser for the diagnostic notation subset of SPEC §0 --------------------------------

_TOKEN = re.compile(r"""\s*(?:(h'[0-9a-fA-F\s]*')|("(?:[^"\\]|\\.)*")|(-?\d+\.\d+(?:e[-+]?\d+)?)
    |(-?\d+)|(true|false|null)|([\[\]{}:,]))""", re.VERBOSE)


def parse_diag(text: str) -> Any:
    tokens = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        assert m, f"cannot parse diagnostic notation at {text[pos:]!r}"
        tokens.append(m)
        pos = m.end()
    value, end = _value(tokens, 0)
    assert end == len(tokens), f"trailing tokens in {text!r}"
    return value


def _value(tokens: list[re.Match[str]], i: int) -> tuple[Any, int]:
    hexs, string, flt, integer, word, punct = tokens[i].groups()
    if hexs is not None:
        return bytes.fromhex(re.sub(r"\s", "", hexs[2:-1])), i + 1
    if string is not None:
        return string[1:-1].encode().decode("unicode_escape"), i + 1
    if flt is not None:
        return float(flt), i + 1
    if integer is not None:
        return int(integer), i + 1
    if word is not None:
        return {"true": True, "false": False, "null": None}[word], i + 1
    close = {"[": "]", "{": "}"}[punct]
    items: list[Any] = []
    i += 1
    while tokens[i].group(6) != close:
        item, i = _value(tokens, i)
        if punct == "{":
            assert tokens[i].group(6) == ":"
            value, i = _value(tokens, i + 1)
            item = (item, value)
        items.append(item)
        if tokens[i].group(6) == ",":
            i += 1
    return (items if punct == "[" else dict(items)), i + 1


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 and True from 1, through lists and maps."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


EXAMPLES = parse_examples(SPEC.read_text(encoding="utf-8"))


def _id(example: tuple[int, dict[str, str]]) -> str:
    line, fields = example
    return f"L{line}-{fields.get('kind') or fields.get('error') or 'value'}"


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_the_spec_has_examples_of_everything() -> None:
    kinds = {fields.get("kind") for _, fields in EXAMPLES}
    assert set(messages.KIND_NAMES) <= kinds, f"no example for {set(messages.KIND_NAMES) - kinds}"
    assert any("wire" in f for _, f in EXAMPLES) and any("hash" in f for _, f in EXAMPLES)
    assert any("error" in f for _, f in EXAMPLES)
    for line, fields in EXAMPLES:
        assert "hex" in fields, f"SPEC.md:{line}: example without hex"
        assert "diag" in fields or "error" in fields, f"SPEC.md:{line}: example without diag"


def test_parse_diag() -> None:
    assert parse_diag("[1, -2, 3.5, h'00ff', \"a\\\"b\", {1: null}, true, false]") == [
        1, -2, 3.5, b"\x00\xff", 'a"b', {1: None}, True, False]


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "diag" in e[1]], ids=_id)
def test_value_examples_both_ways_with_both_codecs(example: tuple[int, dict[str, str]]) -> None:
    line, fields = example
    value = parse_diag(fields["diag"])
    data = _hex(fields["hex"])
    assert cbor.dumps(value) == data, f"SPEC.md:{line}: protocol.cbor encodes differently"
    assert cbor2.dumps(value, canonical=True) == data, f"SPEC.md:{line}: cbor2 differs"
    assert strict_equal(cbor.loads(data), value), f"SPEC.md:{line}: protocol.cbor decodes"
    assert strict_equal(cbor2.loads(data), value), f"SPEC.md:{line}: cbor2 decodes"
    assert lookup.diag(value) == fields["diag"], f"SPEC.md:{line}: diag() writes otherwise"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "kind" in e[1]], ids=_id)
def test_message_examples(example: tuple[int, dict[str, str]]) -> None:
    line, fields = example
    value = parse_diag(fields["diag"])
    data = _hex(fields["hex"])
    msg = messages.decode_message(data)
    assert messages.KIND_NAMES[msg.kind] == fields["kind"], f"SPEC.md:{line}"
    assert strict_equal(msg.fields(), value), f"SPEC.md:{line}: {msg!r}"
    assert messages.encode_message(*value[1:]) == data, f"SPEC.md:{line}"
    assert msg.encode() == data


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "error" in e[1]], ids=_id)
def test_rejected_examples(example: tuple[int, dict[str, str]]) -> None:
    line, fields = example
    with pytest.raises(MessageError) as info:
        messages.decode_message(_hex(fields["hex"]))
    assert messages.REASON_NAMES[info.value.code] == fields["error"], (
        f"SPEC.md:{line}: {info.value.code} {info.value}")


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "wire" in e[1]], ids=_id)
def test_framed_examples(example: tuple[int, dict[str, str]]) -> None:
    line, fields = example
    message = _hex(fields["hex"])
    crc = _hex(fields["crc"])
    wire = _hex(fields["wire"])
    assert struct.pack("<I", crc32(message)) == crc, f"SPEC.md:{line}: CRC"
    assert encode_frame(message) == wire, f"SPEC.md:{line}: wire bytes"
    deframer = Deframer()
    assert deframer.feed(wire) == [message]
    assert deframer.discarded_bytes == 0 and deframer.frames == 1
    # one byte at a time, after some noise and twice in a row
    deframer = Deframer()
    got = [m for b in b"\x13\x37" + wire + wire for m in deframer.feed(bytes([b]))]
    assert got == [message, message] and deframer.discarded_bytes == 2
    assert messages.decode_message(got[0]).fields() == parse_diag(fields["diag"])


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "hash" in e[1]], ids=_id)
def test_hash_examples(example: tuple[int, dict[str, str]]) -> None:
    line, fields = example
    digest = hashlib.sha256(_hex(fields["hex"])).digest()
    assert digest.hex() == fields["sha256"], f"SPEC.md:{line}"
    assert int.from_bytes(digest[:4], "big") == int(fields["hash"], 16), f"SPEC.md:{line}"
