"""Predicates for the test vocabulary: callables that also say what they test.

Each predicate prints as what it checks (``< 15``, ``bit 3 set``), so a timeout message reads
"waited 10 s for battery_soc < 15". A plain value passed where a predicate is expected means
"equal to"; a plain callable is used as it is and shown by its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


class Predicate:
    """A named test of one value."""

    def __init__(self, test: Callable[[Any], bool], text: str) -> None:
        self._test = test
        self.text = text

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self._test(value))
        except TypeError:  # e.g. comparing None with a number: simply not satisfied
            return False

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def __and__(self, other: Predicate) -> Predicate:
        return Predicate(lambda v: self(v) and other(v), f"{self} and {other}")

    def __or__(self, other: Predicate) -> Predicate:
        return Predicate(lambda v: self(v) or other(v), f"{self} or {other}")

    def __invert__(self) -> Predicate:
        return Predicate(lambda v: not self(v), f"not ({self})")


def as_predicate(spec: Any) -> Predicate:
    """A Predicate from a Predicate, a callable, or a value (meaning equal to it)."""
    if isinstance(spec, Predicate):
        return spec
    if callable(spec):
        return Predicate(spec, getattr(spec, "__name__", repr(spec)))
    return equal_to(spec)


def anything() -> Predicate:
    return Predicate(lambda v: True, "any value")


def equal_to(expected: Any) -> Predicate:
    return Predicate(lambda v: v == expected, f"== {expected!r}")


def not_equal_to(other: Any) -> Predicate:
    return Predicate(lambda v: v != other, f"!= {other!r}")


def less_than(limit: float) -> Predicate:
    return Predicate(lambda v: v < limit, f"< {limit:g}")


def greater_than(limit: float) -> Predicate:
    return Predicate(lambda v: v > limit, f"> {limit:g}")


def at_most(limit: float) -> Predicate:
    return Predicate(lambda v: v <= limit, f"<= {limit:g}")


def at_least(limit: float) -> Predicate:
    return Predicate(lambda v: v >= limit, f">= {limit:g}")


def within(lo: float, hi: float) -> Predicate:
    return Predicate(lambda v: lo <= v <= hi, f"within {lo:g}..{hi:g}")


def close_to(expected: float, rel: float = 1e-6, abs_tol: float = 1e-6) -> Predicate:
    return Predicate(lambda v: math.isclose(v, expected, rel_tol=rel, abs_tol=abs_tol),
                     f"≈ {expected:g}")


def bit_set(bit: int) -> Predicate:
    return Predicate(lambda v: bool(int(v) >> bit & 1), f"bit {bit} set")


def bit_clear(bit: int) -> Predicate:
    return Predicate(lambda v: not int(v) >> bit & 1, f"bit {bit} clear")


def one_of(*values: Any) -> Predicate:
    return Predicate(lambda v: v in values, f"one of {values!r}")


def args_match(**expected: Any) -> Predicate:
    """For events: each named argument satisfies its predicate (or equals its value).

    The predicate is given a dict of argument name -> value, or -> (raw, display name).
    """
    preds = {name: as_predicate(spec) for name, spec in expected.items()}
    text = ", ".join(f"{name} {pred}" for name, pred in preds.items())

    def test(args: dict[str, Any]) -> bool:
        # An argument may come as a tuple of candidates (raw value, display name): any fits.
        def fits(pred: Predicate, value: Any) -> bool:
            candidates = value if isinstance(value, tuple) else (value,)
            return any(pred(candidate) for candidate in candidates)

        return all(name in args and fits(pred, args[name]) for name, pred in preds.items())

    return Predicate(test, text or "any arguments")
