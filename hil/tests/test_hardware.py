"""What only a real Pico has: GPIO mirroring of the loads, the RP2040 temperature sensor, USB
re-enumeration. Skipped, with the reason, on the simulated node.

GPIO mirroring needs a second board (or a logic analyser) on the load pins; the rig reads
them through the ``HIL_GPIO_PROBE`` pyserial URL of a probe that answers ``?`` with the pin
levels as a hex mask. Without a probe that test is skipped too.
"""

from __future__ import annotations

import os
import time

import pytest
import serial

from hil.session import HilLink
from hil.vocabulary import NodeApi
from protocol import dictionary


@pytest.mark.hardware(reason="RP2040 internal temperature sensor (ADC 4)")
def test_mcu_temperature_is_plausible_and_moves(node: NodeApi) -> None:
    node.send_and_assert_command("hk_rate", packet=2, rate=5.0)
    samples = [node.await_telemetry("mcu_temp", timeout=3, since=node.mark()).value
               for _ in range(10)]
    assert all(5.0 < t < 70.0 for t in samples), samples  # a die on a desk
    assert len(set(samples)) > 1, "ADC 4 reads noise: identical samples mean a stub"


@pytest.mark.hardware(reason="USB CDC re-enumeration after a reset")
def test_usb_reenumerates_after_reboot(node: NodeApi) -> None:
    before = node.status()
    node.send_and_assert_command("reboot")
    status = HilLink(node.target).wait_answering(node, 20.0, newer_than=before.boot_count)
    assert status.reset_cause == "COMMANDED"
    assert node.client.transport.reconnects >= 1  # the port went away and came back


@pytest.mark.hardware(reason="load channels mirrored on GPIO pins")
def test_loads_are_mirrored_on_gpio(node: NodeApi) -> None:
    probe_url = os.environ.get("HIL_GPIO_PROBE")
    if not probe_url:
        pytest.skip("set HIL_GPIO_PROBE to the pyserial URL of a GPIO probe")
    with serial.serial_for_url(probe_url, timeout=1.0) as probe:
        def levels() -> int:
            probe.reset_input_buffer()
            probe.write(b"?")
            return int(probe.readline().strip() or b"0", 16)

        node.send_and_assert_command("set_mode", mode="NOMINAL")
        for channel in range(1, 4):
            node.send_and_assert_command("load_switch", channel=channel, on=True)
            time.sleep(0.05)
            assert levels() >> channel & 1, dictionary.LOAD_NAMES[channel]
            node.send_and_assert_command("load_switch", channel=channel, on=False)
            time.sleep(0.05)
            assert not levels() >> channel & 1, dictionary.LOAD_NAMES[channel]


def test_mcu_temperature_on_the_emulator_is_adc_zero(node: NodeApi) -> None:
    """The virtual Pico's expected value: rp2040py's ADC reads 0, so the real firmware's
    conversion of ADC 4 gives 27 + 0.706 / 0.001721 = 437.2 degC (single precision)."""
    if not getattr(node.target, "is_vpico", False):
        pytest.skip("the virtual Pico's ADC reads 0; elsewhere the die temperature is real")
    node.send_and_assert_command("hk_rate", packet=2, rate=5.0)
    value = node.await_telemetry("mcu_temp", timeout=3, since=node.mark()).value
    assert value == pytest.approx(27.0 + 0.706 / 0.001721, abs=0.1)
