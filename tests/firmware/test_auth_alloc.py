"""The node's whole verify path, node.auth.Auth.check, allocates nothing beyond what hashlib
itself does (issue 13), measured exactly, frame by frame, on the real MicroPython and, when
``make wasm`` installed it, on the 32-bit VM: the measurement ``make bench`` reports
(bench/verify_bench.py runs bench/mpy_auth_check.py). Not timed.

Every kind of frame the node checks (bench.verify_bench.cases()): accepted in order and out
of order inside the window, replayed, forged, past and below the window, and the refusals
made before any hashing (unknown key id, a generation not held, a truncated tag), with
payloads from 1 byte to the largest around each 64-byte block. The checked frames allocate
exactly hashlib's two sha256 objects and two digests; the others nothing at all. The signing
path likewise: node.auth.Auth.wrap signs answers of the same sizes with exactly hashlib's
allocation, and each opens with the ground's check to its payload and counter (judge raises
otherwise).
"""

from __future__ import annotations

import pytest

from bench import verify_bench
from bench.heap32 import Heap32Error, micropython_mjs, node_js

pytestmark = pytest.mark.micropython


def test_the_cases_cover_every_verdict_and_both_paths() -> None:
    cases = verify_bench.cases()
    assert {(c.verdict, c.hashed) for c in cases} == {
        (verify_bench.ACCEPT, True), (verify_bench.REFUSED, True), (verify_bench.REFUSED, False)}


def _assert_only_hashlib(m: verify_bench.Measured) -> None:
    assert m.calls == len(verify_bench.cases()) - 1
    assert m.hashlib >= 4 * 16  # two sha256 objects and two digests: never nothing
    assert m.beyond == [0] * m.calls
    assert m.signing == [0] * len(verify_bench.ANSWERS)


def test_auth_check_allocates_only_hashlibs_own_on_the_unix_port() -> None:
    _assert_only_hashlib(verify_bench.unix())


def test_auth_check_allocates_only_hashlibs_own_on_32_bits() -> None:
    try:
        micropython_mjs()
        node_js()
    except Heap32Error as e:
        pytest.skip(str(e))
    _assert_only_hashlib(verify_bench.vm32())
