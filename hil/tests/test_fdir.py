"""Fault protection (FDIR) with injected faults, each on a fresh node so the plant is known.

A high time factor (model seconds per real second) makes the plant's slow physics quick.
"""

from __future__ import annotations

from hil.predicates import bit_clear, bit_set, less_than
from hil.vocabulary import NodeApi, values_of

FAST = 1000.0  # time_factor


def test_battery_drain_sheds_loads_and_forces_safe(fresh_node: NodeApi) -> None:
    node = fresh_node
    node.send_and_assert_command("param_set", param="time_factor", value=FAST)
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.send_and_assert_command("load_switch", channel="seismometer", on=True)
    node.send_and_assert_command("load_switch", channel="dust_camera", on=True)
    # 300 A more, 1000 times faster: 80 % to 15 % of 600 Ah in about 5 s
    node.send_and_assert_command("fault_inject", fault="BATTERY_DRAIN", target=0, value=300.0)
    node.assert_event("fault_injected", fault="BATTERY_DRAIN")
    shed = node.assert_event("loads_shed", timeout=30)
    node.send_and_assert_command("fault_inject", fault="CLEAR", target=0, value=0.0)
    assert shed.args[0] & (1 << 1) and shed.args[0] & (1 << 3)  # seismometer, dust camera
    safe = node.assert_event("safe_mode", reason="LOW_CHARGE", timeout=5)
    hk = values_of(node.await_housekeeping("power", newer_than_ms=safe.node_time_ms, timeout=5))
    assert hk["mode"] == 1 and not hk["loads_on"] & 0b1010, hk
    assert hk["loads_on"] & 1, f"the comms relay (essential) was shed too: {hk}"
    assert hk["battery_soc"] <= 15.5, hk  # at shed_soc_pct (15 %) or below
    # while latched, NOMINAL is not kept
    node.client.command("set_mode", mode="NOMINAL", timeout=node.seconds(5))
    node.await_telemetry("mode", 1, timeout=5)


def test_over_current_trips_the_channel(fresh_node: NodeApi) -> None:
    node = fresh_node
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.send_and_assert_command("load_switch", channel="radiation_monitor", on=True)
    node.send_and_assert_command("fault_inject", fault="TRIP_CHANNEL", target=2, value=0.0)
    tripped = node.assert_event("load_tripped", timeout=10)
    assert tripped.args[0] == 2
    node.await_telemetry("loads_tripped", bit_set(2), timeout=5)
    node.await_telemetry("loads_on", bit_clear(2), timeout=5)
    node.assert_command_failed("load_switch", "INHIBITED", channel=2, on=True)
    node.send_and_assert_command("load_reset_trip", channel="radiation_monitor")
    node.await_telemetry("loads_tripped", bit_clear(2), timeout=5)
    node.send_and_assert_command("load_switch", channel="radiation_monitor", on=True)
    node.await_telemetry("loads_on", bit_set(2), timeout=5)


def test_cold_battery_forces_its_heater_on(fresh_node: NodeApi) -> None:
    node = fresh_node
    node.send_and_assert_command("heater_mode", heater="battery", mode="OFF")
    temp = node.await_telemetry("battery_temp", timeout=5).value
    # make the present temperature "cold": the limit is a parameter (max 20 degC)
    cold = min(20.0, temp + 5.0)
    node.send_and_assert_command("param_set", param="battery_cold_c", value=cold)
    event = node.assert_event("heater_on_cold", timeout=10)
    assert event.args[0] < cold
    node.await_telemetry("heaters_on", bit_set(0), timeout=5)


def test_failed_sensor_is_detected(fresh_node: NodeApi) -> None:
    node = fresh_node
    node.send_and_assert_command("fault_inject", fault="SENSOR_FAIL", target=1, value=0.0)
    node.assert_event("sensor_fault", sensor="battery_temp", timeout=10)
    node.await_telemetry("battery_temp", less_than(-900), timeout=5)
