"""Commanding through an impaired link: every command completes exactly once, no wrong
command executes, and the node's link counters account for every frame the proxy spoiled.

1% of the bytes corrupted (one run) or dropped (another), both directions. The execution
count comes from the node: cmds_accepted counts executions (a re-sent command that the node
recognises is answered, not executed or counted, SPEC §5.2), and param_set test_value to a
new value each time leaves the last value behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

import pytest

from hil.vocabulary import NodeApi, values_of
from protocol import dictionary

pytestmark = [
    pytest.mark.byte_link(reason="damaged bytes counted by the node"),
    pytest.mark.slow_target(
        reason="1,000 commands each way through a 1 % impaired link: hours at a 34x slower clock"),
]

# 1,000 commands each way (make hil, make soak); make test sends 200
N_COMMANDS: Final = int(os.environ.get("HIL_IMPAIRED_COMMANDS", "1000"))
TEST_VALUE: Final = next(p for p in dictionary.PARAMS if p.name == "test_value")


def _link_counters(node: NodeApi) -> dict[str, int]:
    """The link packet's counters, from a packet sent after everything before it."""
    status = node.status()  # answered after all earlier commands
    return values_of(node.await_housekeeping("link", newer_than_ms=status.uptime_ms, timeout=5))


@pytest.mark.parametrize(("impairment", "seed"), [({"corrupt": 0.01}, 1), ({"drop": 0.01}, 2)],
                         ids=["corrupt-1pct", "drop-1pct"])
def test_commands_complete_exactly_once(
        impaired_link: Callable[..., NodeApi], impairment: dict[str, float], seed: int) -> None:
    node = impaired_link(seed=seed, **impairment)
    proxy = node.proxy  # type: ignore[attr-defined]
    node.client.retry_interval_s = 0.03  # a pty answers in about a millisecond
    node.client.retries = 100
    node.send_and_assert_command("hk_rate", packet=3, rate=20.0, timeout=10)
    attempts = 0
    for i in range(N_COMMANDS):
        value = i % 2001 - 1000
        result = node.client.command("param_set", param=TEST_VALUE.id, value=value, timeout=10)
        attempts += result.attempts
    assert node.client.param_get(TEST_VALUE.id, timeout=10) == (N_COMMANDS - 1) % 2001 - 1000

    proxy.impairing = False  # read the counters over a clean link
    # ... with the status they follow sent once: a re-send of it still in flight when the
    # packet is made would be counted by the proxy and not yet by the node (every frame
    # sent before the status is read before it)
    node.client.retry_interval_s = 5.0
    counters = _link_counters(node)
    stats = proxy.stats()
    expected = proxy.expected_node_counts()
    detail = f"proxy: {proxy.describe()}; node: {counters}; log {node.log_path}"
    assert stats["up"].damaged_bytes > 0 and attempts > N_COMMANDS, detail
    # hk_rate + N param_set + param_get + status, each executed exactly once
    assert counters["cmds_accepted"] == N_COMMANDS + 3, detail
    assert counters["cmds_rejected"] == 0, detail  # no damaged frame ever passed as a command
    assert counters["frames_in"] == expected.frames, detail
    assert counters["crc_errors"] == expected.crc_errors, detail
    assert counters["frame_errors"] == expected.frame_errors, detail
    assert counters["discarded_bytes"] == expected.discarded_bytes, detail
    # the ground's deframer saw what the downlink proxy delivered
    down = proxy.expected_ground_counts()
    assert down.bad_frames > 0 or stats["down"].damaged_bytes == 0, detail
