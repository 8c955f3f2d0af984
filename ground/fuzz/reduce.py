"""Shrinking a failing input: delta debugging over cases, then over bytes.

``ddmin`` is Zeller and Hildebrandt's minimising delta debugging ("Simplifying and Isolating
Failure-Inducing Input", 2002): it returns a 1-minimal subsequence that still fails (removing
any single element makes it pass), using at most ``max_tests`` calls of the oracle. The order
of the elements is kept, since a node's failure may depend on what came first.

``shrink_case`` applies it to a case's bytes while keeping its framing: a framed case is
re-framed with a correct CRC after each cut, so the shrunk reproducer still reaches the
decoder instead of dying at the CRC check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ground.fuzz.case import Case

T = TypeVar("T")


class _Budget:
    def __init__(self, max_tests: int) -> None:
        self.left = max_tests
        self.used = 0

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        self.used += 1
        return True


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool], max_tests: int = 500) -> list[T]:
    """The smallest subsequence of `items` (1-minimal within the budget) for which `fails`."""
    current = list(items)
    budget = _Budget(max_tests)
    n = 2
    while len(current) >= 2:
        size = -(-len(current) // n)  # ceil
        chunks = [current[i:i + size] for i in range(0, len(current), size)]
        reduced = False
        for i, chunk in enumerate(chunks):
            if not budget.take():
                return current
            if fails(chunk):
                current, n, reduced = chunk, 2, True
                break
            if len(chunks) == 2:  # the complement of one half is the other half
                continue
            complement = [x for j, c in enumerate(chunks) if j != i for x in c]
            if not budget.take():
                return current
            if fails(complement):
                current, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    return current


def shrink_bytes(data: bytes, fails: Callable[[bytes], bool], max_tests: int = 300) -> bytes:
    """A shorter `data` that still fails: first cut the tail, then ddmin the bytes."""
    budget = _Budget(max_tests)
    # Binary search for the shortest failing prefix: cheap and often most of the gain.
    lo, hi = 0, len(data)
    while lo < hi and budget.take():
        mid = (lo + hi) // 2
        if fails(data[:mid]):
            hi = mid
        else:
            lo = mid + 1
    data = data[:hi]
    if budget.left <= 0 or len(data) <= 1:
        return data
    kept = ddmin(list(data), lambda b: fails(bytes(b)), budget.left)
    return bytes(kept)


def shrink_case(case: Case, fails: Callable[[Case], bool], max_tests: int = 300) -> Case:
    """Shrink a case's prefix and payload (re-framed on each try) while it still fails."""
    half = max(1, max_tests // 2)
    if case.prefix:
        prefix = shrink_bytes(case.prefix, lambda p: fails(case.with_payload(case.payload, p)),
                              half)
        case = case.with_payload(case.payload, prefix)
    payload = shrink_bytes(case.payload, lambda p: fails(case.with_payload(p)), half)
    return case.with_payload(payload)


def reduce_cases(cases: Sequence[Case], fails: Callable[[list[Case]], bool],
                 max_tests: int = 400) -> list[Case]:
    """ddmin the batch down to the cases that matter, then shrink each one's bytes."""
    minimal = ddmin(cases, fails, max_tests // 2)
    per_case = max(10, (max_tests // 2) // max(1, len(minimal)))
    for i in range(len(minimal)):
        def one(candidate: Case, i: int = i) -> bool:
            return fails([*minimal[:i], candidate, *minimal[i + 1:]])
        minimal[i] = shrink_case(minimal[i], one, per_case)
    return minimal
