"""Power bus checkout: each load channel in turn on, its current near nominal, then off.

    ground run examples/scripts/power_checkout.py [--port URL] [-- --loads a,b --tolerance 0.2]

For each load (default: every channel that switches outside SCIENCE and is not essential):
switch it on, see its bit in ``loads_on``, its current within the tolerance of its nominal
current and the bus current up by as much; switch it off, see both fall back. The node
starts and ends in SAFE; the loads packet runs at 5 Hz meanwhile, then back to its rate.
"""

import argparse

from ground.script import (
    at_most,
    bit_clear,
    bit_set,
    check,
    command,
    latest,
    note,
    wait_telemetry,
    within,
)
from protocol import dictionary

LOADS = {name: (channel, nominal) for channel, (name, nominal, _trip, _essential)
         in enumerate(dictionary.LOADS)}
PAYLOADS = ("payload_a", "payload_b")  # only in SCIENCE
DEFAULT = [name for name, _nominal, _trip, essential in dictionary.LOADS
           if not essential and name not in PAYLOADS]
LOADS_RATE_HZ = next(p.rate_hz for p in dictionary.PACKETS if p.name == "loads")

parser = argparse.ArgumentParser(prog="power_checkout.py")
parser.add_argument("--loads", default=",".join(DEFAULT), help="comma-separated load names")
parser.add_argument("--tolerance", type=float, default=0.2,
                    help="allowed deviation from nominal current, as a fraction (0.2: 20 %%)")
opts = parser.parse_args()
loads = [name.strip() for name in opts.loads.split(",") if name.strip()]
for name in loads:
    if name not in LOADS or name in PAYLOADS:
        parser.error(f"{name!r} is not a load this checkout switches: one of {', '.join(DEFAULT)}")

note(f"power bus checkout of {len(loads)} loads, tolerance {opts.tolerance:.0%}")
command("set_mode", mode="NOMINAL")
wait_telemetry("mode", "NOMINAL", timeout=5)
command("hk_rate", packet="loads", rate=5.0)
for name in loads:
    channel, nominal = LOADS[name]
    check(latest("loads_on"), bit_clear(channel), f"{name} off before")
    base = wait_telemetry("bus_current").value
    command("load_switch", channel=name, on=True)
    wait_telemetry("loads_on", bit_set(channel), timeout=5)
    current = wait_telemetry(f"current_{name}", at_most(nominal * 3), timeout=5)
    check(current, within(nominal * (1 - opts.tolerance), nominal * (1 + opts.tolerance)),
          f"{name} current")
    bus = wait_telemetry("bus_current", timeout=5)
    check(bus.value - base, within(nominal * (1 - opts.tolerance), nominal * 2),
          f"bus current rise with {name} (A)")
    check(latest("loads_tripped"), bit_clear(channel), f"{name} not tripped")
    command("load_switch", channel=name, on=False)
    wait_telemetry("loads_on", bit_clear(channel), timeout=5)
    wait_telemetry(f"current_{name}", at_most(0.01), timeout=5)
command("hk_rate", packet="loads", rate=LOADS_RATE_HZ)
command("set_mode", mode="SAFE")
wait_telemetry("mode", "SAFE", timeout=5)
note("power bus checkout passed")
