"""Watchdog recovery: a hung task stops the feeding, the node resets, says WATCHDOG."""

from __future__ import annotations

import pytest

from hil.session import HilLink
from hil.vocabulary import NodeApi
from protocol import dictionary


@pytest.mark.parametrize("task", ["telemetry"])
def test_hung_task_resets_the_node_by_watchdog(node: NodeApi, task: str) -> None:
    before = node.status()
    target = next(i for i, name in dictionary.TASKS.items() if name == task)
    node.send_and_assert_command("fault_inject", fault="HANG_TASK", target=target, value=0.0)
    # default watchdog_timeout_ms 5000: the reset comes within about that
    status = HilLink(node.target).wait_answering(node, 20.0, newer_than=before.boot_count)
    assert status.reset_cause == "WATCHDOG"
    log = node.client.event_log(before.event_seq, timeout=node.seconds(5))
    # the boot says WATCHDOG (cause 1), then watchdog_reset follows it, once
    boots = [e for e in log if e.name == "boot"]
    assert [tuple(e.args) for e in boots] == [(status.boot_count, 1)], [e.text for e in log]
    resets = [e for e in log if e.name == "watchdog_reset"]
    assert len(resets) == 1 and resets[0].event_seq > boots[0].event_seq, [e.text for e in log]
