"""Parameters and the event log across power cycles; boot count and reset causes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hil.session import HilLink
from hil.vocabulary import NodeApi


def test_saved_parameters_survive_a_power_cycle(
        node: NodeApi, power_cycle: Callable[..., None]) -> None:
    node.send_and_assert_command("param_set", param="test_value", value=123)
    node.send_and_assert_command("param_set", param="volatile_value", value=45)
    node.send_and_assert_command("param_save")
    node.send_and_assert_command("param_set", param="test_value", value=-5)  # not saved
    before = node.status()
    power_cycle(node)
    after = node.status()
    assert after.boot_count == before.boot_count + 1
    assert node.client.param_get("test_value", timeout=node.seconds(5)) == 123
    # not persisted: its default
    assert node.client.param_get("volatile_value", timeout=node.seconds(5)) == 0


def test_event_log_survives_a_power_cycle(node: NodeApi, power_cycle: Callable[..., None]) -> None:
    node.send_and_assert_command("param_set", param="test_value", value=9)
    changed = node.assert_event("param_changed", param="test_value")
    # events reach the flash from a RAM queue: wait until the stored log has it
    deadline = time.monotonic() + node.seconds(10)
    while not node.client.event_log(changed.event_seq, timeout=node.seconds(5)):
        assert time.monotonic() < deadline, f"event never stored; log {node.log_path}"
        node.sleep(0.2)
    before = node.status()
    power_cycle(node)
    log = node.client.event_log(changed.event_seq, timeout=node.seconds(5))
    assert log and log[0].event_seq == changed.event_seq and log[0].name == "param_changed"
    assert node.status().event_seq > before.event_seq  # numbering goes on after the boot


@pytest.mark.power_cut(reason="a board without a power relay is rebooted instead")
def test_power_cut_reports_power_on(node: NodeApi, power_cycle: Callable[..., None]) -> None:
    power_cycle(node)
    assert node.status().reset_cause == "POWER_ON"


def test_reboot_command(node: NodeApi) -> None:
    before = node.status()
    node.send_and_assert_command("reboot")
    status = HilLink(node.target).wait_answering(node, newer_than=before.boot_count)
    assert status.reset_cause == "COMMANDED"
