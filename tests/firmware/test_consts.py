"""The firmware inlines protocol ids and codes as module-private ``_NAME = const(n)`` (free at
run time on MicroPython). Each must equal the protocol package's NAME."""

import re
from pathlib import Path

import pytest

from protocol import ids
from protocol import messages as M

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
CONST = re.compile(r"^_([A-Z][A-Z0-9_]*) = const\((-?\w+)\)", re.M)
SOURCES = sorted(FIRMWARE.rglob("*.py"))


def test_some_constants_are_checked():
    assert sum(len(CONST.findall(p.read_text())) for p in SOURCES) > 100


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_inlined_constants_match_protocol(path):
    for name, value in CONST.findall(path.read_text()):
        for module in (ids, M):
            if hasattr(module, name):
                assert getattr(module, name) == int(value, 0), f"{path.name}: _{name}"
