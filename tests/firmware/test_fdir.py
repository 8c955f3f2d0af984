"""FDIR scenarios through the link, with fault injection and an accelerated plant.

Battery drain: loads shed and SAFE forced. Over-current: the channel trips and stays off until
reset. Cold battery: the heater is forced on. A failed sensor: sensor_fault.
"""

import pytest
from nodelink import field

from protocol import ids
from protocol import messages as M

pytestmark = pytest.mark.slow

LOADS_ON = field(ids.PKT_POWER, "loads_on")
TRIPPED = field(ids.PKT_POWER, "loads_tripped")
HEATERS_ON = field(ids.PKT_POWER, "heaters_on")
SOC = field(ids.PKT_POWER, "battery_soc")
MODE = field(ids.PKT_POWER, "mode")
NONESSENTIAL = 0x03FF & ~ids.LOADS_ESSENTIAL_MASK


def bit(ch):
    return 1 << ch


def test_battery_drain_sheds_loads_and_forces_safe(fresh_node):
    _node, link = fresh_node
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)
    for ch in (ids.LOAD_SEISMOMETER, ids.LOAD_DUST_CAMERA):
        link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ch, True)
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_POWER, 10.0)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TIME_FACTOR, 2000.0)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_BATTERY_DRAIN, 0, 1000.0)
    shed = link.assert_event(ids.EV_LOADS_SHED, mark, timeout=20)
    mask, soc = shed.body[2]
    assert mask & bit(ids.LOAD_SEISMOMETER) and mask & bit(ids.LOAD_DUST_CAMERA)
    assert soc < 20.0
    link.assert_event(ids.EV_SAFE_MODE, mark)
    link.assert_event(ids.EV_MODE_CHANGED, mark, lambda a: a == [ids.MODE_NOMINAL, ids.MODE_SAFE])
    p = link.await_telemetry(ids.PKT_POWER, lambda b: b[MODE] == ids.MODE_SAFE)
    assert p.body[LOADS_ON] & NONESSENTIAL == 0
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)


def test_over_current_trip(link):
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_TRIP_CHANNEL,
                                 ids.LOAD_SEISMOMETER, 0.0)
    trip = link.assert_event(ids.EV_LOAD_TRIPPED, mark)
    assert trip.body[2][0] == ids.LOAD_SEISMOMETER and trip.body[2][1] > 0.5
    link.await_telemetry(ids.PKT_POWER, lambda b: b[TRIPPED] & bit(ids.LOAD_SEISMOMETER)
                         and not b[LOADS_ON] & bit(ids.LOAD_SEISMOMETER))
    link.assert_failed(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True, code=M.INHIBITED)
    link.send_and_assert_command(ids.CMD_LOAD_RESET_TRIP, ids.LOAD_SEISMOMETER)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True)
    link.await_telemetry(ids.PKT_POWER, lambda b: not b[TRIPPED]
                         and b[LOADS_ON] & bit(ids.LOAD_SEISMOMETER))
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, False)
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_SAFE)


def test_cold_battery_forces_heater(link):
    link.send_and_assert_command(ids.CMD_HEATER_MODE, ids.HEATER_BATTERY, 0)  # OFF
    link.await_telemetry(ids.PKT_POWER, lambda b: not b[HEATERS_ON] & 1, timeout=8)
    mark = link.mark()
    # The battery sits near +10 degC: a "cold" threshold of +20 makes it cold now.
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_BATTERY_COLD_C, 20.0)
    cold = link.assert_event(ids.EV_HEATER_ON_COLD, mark, timeout=8)
    assert cold.body[2][0] < 20.0
    link.await_telemetry(ids.PKT_POWER, lambda b: b[HEATERS_ON] & 1, timeout=8)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_BATTERY_COLD_C, -5.0)
    link.send_and_assert_command(ids.CMD_HEATER_MODE, ids.HEATER_BATTERY, 1)  # AUTO


def test_failed_sensor_detected(link):
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_SENSOR_FAIL,
                                 ids.SENSOR_ELECTRONICS_TEMP, 0.0)
    link.assert_event(ids.EV_SENSOR_FAULT, mark, lambda a: a == [ids.SENSOR_ELECTRONICS_TEMP],
                      timeout=8)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)
