"""Heater test: each heater forced ON draws its current, forced OFF stops, AUTO follows its
thermostat; a setpoint change is read back as its parameter.

    ground run examples/scripts/heater_test.py [--port URL] [-- --heaters battery]

Each heater ends in AUTO with its setpoint as it was.
"""

import argparse

from ground.script import (
    at_most,
    bit_clear,
    bit_set,
    check,
    close_to,
    command,
    note,
    wait_event,
    wait_telemetry,
    within,
)
from protocol import dictionary

HEATERS = {name: number for number, name in dictionary.HEATERS.items()}
# heater number -> (its load channel's name, nominal current A)
LOAD = {number: dictionary.LOADS[channel][:2]
        for number, channel in enumerate(dictionary.HEATER_LOADS)}

parser = argparse.ArgumentParser(prog="heater_test.py")
parser.add_argument("--heaters", default=",".join(HEATERS), help="comma-separated heaters")
opts = parser.parse_args()

for name in opts.heaters.split(","):
    heater = HEATERS[name]
    load, nominal = LOAD[heater]
    note(f"heater {name} (load {load}, {nominal} A)")
    setpoint = command("param_get", param=f"{name}_setpoint")
    command("heater_mode", heater=name, mode="ON")
    wait_telemetry("heaters_on", bit_set(heater), timeout=5)
    current = wait_telemetry(f"current_{load}", at_most(nominal * 3), timeout=5)
    check(current, within(nominal * 0.8, nominal * 1.2), f"{name} heater current")
    command("heater_mode", heater=name, mode="OFF")
    wait_telemetry("heaters_on", bit_clear(heater), timeout=5)
    wait_telemetry(f"current_{load}", at_most(0.01), timeout=5)
    trial = round(setpoint - 1.5, 1)
    command("heater_setpoint", heater=name, setpoint=trial)
    wait_event("param_changed", param=f"{name}_setpoint")
    check(command("param_get", param=f"{name}_setpoint"), close_to(trial, abs_tol=1e-3),
          f"{name}_setpoint read back")
    command("heater_setpoint", heater=name, setpoint=setpoint)
    command("heater_mode", heater=name, mode="AUTO")
    check(command("param_get", param=f"{name}_setpoint"), close_to(setpoint, abs_tol=1e-3),
          f"{name}_setpoint restored")
note("heater test passed")
