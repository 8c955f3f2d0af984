"""ground/fuzz/reduce.py: ddmin finds 1-minimal failing inputs within its budget."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ground.fuzz import cases as fc
from ground.fuzz.reduce import ddmin, reduce_cases, shrink_bytes, shrink_case


def test_ddmin_finds_the_single_culprit() -> None:
    items = list(range(100))
    assert ddmin(items, lambda xs: 37 in xs) == [37]


def test_ddmin_finds_a_pair_and_keeps_order() -> None:
    items = list(range(64))
    assert ddmin(items, lambda xs: 5 in xs and 50 in xs) == [5, 50]


def test_ddmin_order_dependent_failure() -> None:
    """A failure that needs 3 before 9 (state left by an earlier case)."""
    items = [9, 1, 3, 4, 9, 2]

    def fails(xs: list[int]) -> bool:
        return 3 in xs and 9 in xs[xs.index(3):]

    assert ddmin(items, fails) == [3, 9]


@given(st.sets(st.integers(0, 199), min_size=1, max_size=4), st.randoms())
@settings(max_examples=60, deadline=None)
def test_ddmin_result_is_one_minimal(culprits: set[int], rnd: random.Random) -> None:
    items = list(range(200))
    rnd.shuffle(items)

    def fails(xs: list[int]) -> bool:
        return culprits <= set(xs)

    result = ddmin(items, fails, max_tests=5000)
    assert set(result) == culprits
    for i in range(len(result)):  # 1-minimal: no single element can go
        assert not fails(result[:i] + result[i + 1:])


def test_ddmin_respects_its_budget() -> None:
    calls = []

    def fails(xs: list[int]) -> bool:
        calls.append(1)
        return 1 in xs and 99 in xs

    ddmin(list(range(100)), fails, max_tests=10)
    assert len(calls) <= 10


def test_shrink_bytes_keeps_the_needle() -> None:
    data = bytes(random.Random(1).randrange(1, 256) for _ in range(500)) + b"\xde\xad" + b"x" * 50
    assert shrink_bytes(data, lambda b: b"\xde\xad" in b) == b"\xde\xad"


def test_shrink_case_reframes_with_a_good_crc() -> None:
    """A framed case is shrunk in its payload and framed again, so its CRC stays valid."""
    payload = b"\x86" + b"\x01" * 40 + b"\xf7" + b"\x02" * 40
    case = fc.Case("malformed_cbor", "undefined", payload)
    seen_wires: list[bytes] = []

    def fails(c: fc.Case) -> bool:
        seen_wires.append(c.wire)
        return b"\xf7" in c.payload

    small = shrink_case(case, fails)
    assert small.payload == b"\xf7"
    assert small.wire == fc.frame_bytes(b"\xf7")


def test_reduce_cases_batch_then_bytes() -> None:
    batch = [fc.generate(1, i, i) for i in range(50)]
    culprit = fc.Case("noise", "x", b"\x01\x02\xffCRASH\x03", framing=fc.RAW)
    batch.insert(17, culprit)

    def fails(cases: list[fc.Case]) -> bool:
        return any(b"CRASH" in c.wire for c in cases)

    out = reduce_cases(batch, fails)
    assert len(out) == 1 and out[0].payload == b"CRASH"
