"""The firmware inlines protocol ids and codes as module-private ``_NAME = const(n)`` (free at
run time on MicroPython). Each must equal the protocol package's NAME."""

import re
from pathlib import Path

import pytest

from protocol import ids
from protocol import messages as M
from protocol.node_dictionary import FLAG_HAZARDOUS, FLAG_IMMEDIATE

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
# the whole argument of const(): a value written `const( 35)` or `const(- 2)` (as a mutation
# tool writes it) is still read and compared, and one that is not a number fails
CONST = re.compile(r"^_([A-Z][A-Z0-9_]*) = const\(([^)]*)\)", re.M)
ANY_CONST = re.compile(r"^(_?[A-Z][A-Z0-9_]*) = const\(([^)]*)\)", re.M)
SOURCES = sorted(FIRMWARE.rglob("*.py"))


def test_some_constants_are_checked():
    assert sum(len(CONST.findall(p.read_text())) for p in SOURCES) > 100


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_inlined_constants_match_protocol(path):
    for name, value in CONST.findall(path.read_text()):
        for module in (ids, M):
            if hasattr(module, name):
                assert getattr(module, name) == _number(value), f"{path.name}: _{name}"


def _number(text):
    return int(text.replace(" ", ""), 0)


def _const(path, name):
    found = dict(ANY_CONST.findall((FIRMWARE / path).read_text()))
    return _number(found[name])


# Values one firmware module inlines from another module (or from a protocol module that is
# not ids or messages): a copy that drifts breaks the pair silently, so each is compared.
SHARED = [
    ("node/dispatcher.py", "_AUTH_ACCEPT", ("node/auth.py", "_ACCEPT")),  # check() verdicts
    ("node/dispatcher.py", "_AUTH_STORE_FAILED", ("node/auth.py", "_STORE_FAILED")),
    ("node/dispatcher.py", "_ENFORCED", ("node/auth.py", "_ENFORCED")),  # auth state
    ("node/dispatcher.py", "PENDING", ("node/ttrun.py", "_PENDING")),  # a handler's "later"
    ("node/dispatcher.py", "_REPEAT", ("node/ttmanage.py", "_REPEAT")),  # admit(): queued
    ("node/dispatcher.py", "_FLAG_HAZARDOUS", FLAG_HAZARDOUS),
    ("node/dispatcher.py", "_FLAG_IMMEDIATE", FLAG_IMMEDIATE),
    ("node/dispatcher.py", "_ARM_MAX_BYTES", 64),  # SPEC §10.8: "at most 64 bytes"
    # node.boot reads at boot what the services it builds write while they run
    ("node/boot.py", "_WINDOW_MASK", ("node/auth.py", "_WINDOW_MASK")),
    ("node/boot.py", "_SLOTS", ("node/eventlog.py", "_SLOTS")),
    ("node/boot.py", "_SLOT_SIZE", ("node/eventlog.py", "_SLOT_SIZE")),
    ("node/logread.py", "_SLOTS", ("node/eventlog.py", "_SLOTS")),
    ("node/logread.py", "_SLOT_SIZE", ("node/eventlog.py", "_SLOT_SIZE")),
]


@pytest.mark.parametrize("path, name, source", SHARED, ids=lambda x: str(x))
def test_shared_firmware_constants_agree(path, name, source):
    want = _const(*source) if isinstance(source, tuple) else source
    assert _const(path, name) == want, f"{path}: {name}"


# File names node.boot reads at boot, written by the module that owns each file.
SHARED_NAMES = [
    ("node/boot.py", "_LOG_SEQ_FILE", ("node/eventlog.py", "_SEQ_FILE")),
    ("node/boot.py", "_TT_PAUSE_FILE", ("node/ttrun.py", "_PAUSE_FILE")),
]


@pytest.mark.parametrize("path, name, source", SHARED_NAMES, ids=lambda x: str(x))
def test_shared_file_names_agree(path, name, source):
    def text(p, n):
        return dict(ANY_CONST.findall((FIRMWARE / p).read_text()))[n]

    assert text(path, name) == text(*source), f"{path}: {name}"

