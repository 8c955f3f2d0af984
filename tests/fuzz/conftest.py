"""Fixtures for the fuzzer's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ground.fuzz.encoding import bind_boot, bound_boot


@pytest.fixture
def boot_zero() -> Iterator[None]:
    """Commands built in the test are bound to boot 0, the model's default node boot; the
    binding is module state (a campaign binds it to its node's boot), put back after."""
    before = bound_boot()
    bind_boot(0)
    yield
    bind_boot(before)
