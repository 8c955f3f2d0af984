"""Mode transitions (SPEC §8): allowed, refused, and what they do to the loads."""

from __future__ import annotations

from hil.predicates import bit_clear, bit_set
from hil.vocabulary import NodeApi


def test_safe_nominal_science_and_back(node: NodeApi) -> None:
    # 4 mode_changed events after the reset's 2: above the default live-event rate limit
    node.send_and_assert_command("param_set", param="event_rate_limit", value=100)
    since = node.mark()
    for mode in ("NOMINAL", "SCIENCE", "NOMINAL", "SAFE"):
        node.send_and_assert_command("set_mode", mode=mode)
    events = node.await_event_sequence(["mode_changed"] * 4, since=since, timeout=3)
    assert [e.args for e in events] == [(1, 2), (2, 3), (3, 2), (2, 1)]
    node.await_telemetry("mode", 1, timeout=3)


def test_invalid_transitions_fail(node: NodeApi) -> None:
    node.assert_command_failed("set_mode", "INVALID_TRANSITION", mode=3)  # SAFE -> SCIENCE
    assert node.status().mode == "SAFE"


def test_science_needs_charge(fresh_node: NodeApi) -> None:
    """Both sides of the threshold, every run: a fresh node boots at 80 % charge, which moves
    by far less than the 5-point margins below during the test (a node that has run the
    session's other tests may be charged beyond the threshold's range)."""
    node = fresh_node
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    soc = node.await_telemetry("battery_soc", timeout=3).value
    assert 15.0 <= soc <= 85.0, f"battery_soc {soc}: the test needs 15..85 % at reset"
    node.send_and_assert_command("param_set", param="science_min_soc_pct", value=soc + 5.0)
    node.assert_command_failed("set_mode", "INHIBITED", mode=3)
    assert node.status().mode == "NOMINAL"
    node.send_and_assert_command("param_set", param="science_min_soc_pct", value=soc - 5.0)
    node.send_and_assert_command("set_mode", mode="SCIENCE")
    assert node.status().mode == "SCIENCE"


def test_leaving_science_switches_payloads_off(node: NodeApi) -> None:
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.send_and_assert_command("set_mode", mode="SCIENCE")
    node.send_and_assert_command("load_switch", channel="payload_a", on=True)
    node.await_telemetry("loads_on", bit_set(4), timeout=3)
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.await_telemetry("loads_on", bit_clear(4), timeout=3)
