"""Safe-mode recovery drill: a battery drain forces load shedding and SAFE; recover to NOMINAL.

    ground run examples/scripts/safe_recovery_drill.py [--port URL] [-- --drain 40]

1. NOMINAL with two science loads on; a BATTERY_DRAIN fault is injected (test-only command).
2. Fault protection sheds the non-essential loads and forces SAFE (LOW_CHARGE); the drain is
   cleared; the comms relay (essential) stayed on.
3. NOMINAL is refused while the low-charge response is latched: the node goes back to SAFE.
4. The array recharges the battery (in sunlight) past the release level (shed_soc_pct + 5 %);
   then NOMINAL holds. Run it with a fast time factor (sim://?time_factor=5000) or be patient.
"""

import argparse

from ground.script import (
    at_least,
    bit_clear,
    bit_set,
    check,
    check_telemetry,
    command,
    latest,
    no_event,
    note,
    wait_event,
    wait_telemetry,
)
from protocol import dictionary

CHANNEL = {name: channel for channel, (name, *_rest) in enumerate(dictionary.LOADS)}
RELEASE_PCT = 5.0  # above shed_soc_pct (firmware/node/fdir.py)

parser = argparse.ArgumentParser(prog="safe_recovery_drill.py")
parser.add_argument("--drain", type=float, default=40.0, help="drain current (A)")
parser.add_argument("--recovery-timeout", type=float, default=120.0,
                    help="seconds to wait for the battery to recharge")
opts = parser.parse_args()

check(latest("lunar_day"), True, "sunlight for the recovery (lunar_day)")
command("set_mode", mode="NOMINAL")
command("load_switch", channel="seismometer", on=True)
command("load_switch", channel="dust_camera", on=True)
wait_telemetry("loads_on", bit_set(CHANNEL["dust_camera"]), timeout=5)

note(f"drill: {opts.drain:g} A battery drain")
command("fault_inject", fault="BATTERY_DRAIN", target=0, value=opts.drain)
shed = wait_event("loads_shed", timeout=60)
check(shed.args[0], bit_set(CHANNEL["seismometer"]), "shed mask has the seismometer")
check(shed.args[0], bit_set(CHANNEL["dust_camera"]), "shed mask has the dust camera")
wait_event("safe_mode", reason="LOW_CHARGE", timeout=10)
command("fault_inject", fault="CLEAR", target=0, value=0.0)
loads = wait_telemetry("loads_on", bit_clear(CHANNEL["seismometer"]), timeout=5)
check(loads, bit_clear(CHANNEL["dust_camera"]), "dust camera shed")
check(loads, bit_set(CHANNEL["comms_relay"]), "comms relay (essential) kept")
check_telemetry("mode", "SAFE")

note("drill: NOMINAL too early is refused while the response is latched")
command("set_mode", mode="NOMINAL")
wait_event("mode_changed", new="SAFE", timeout=10)

shed_pct = command("param_get", param="shed_soc_pct")
note(f"drill: waiting for the battery to recharge to {shed_pct + RELEASE_PCT:g} %")
wait_telemetry("battery_soc", at_least(shed_pct + RELEASE_PCT + 0.5),
               timeout=opts.recovery_timeout)
command("set_mode", mode="NOMINAL")
wait_telemetry("mode", "NOMINAL", timeout=5)
no_event("safe_mode", during=2.0)
check_telemetry("mode", "NOMINAL")
note("drill: recovered to NOMINAL")
