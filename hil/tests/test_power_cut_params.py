"""Power cuts at random moments around a parameter save: after each boot the parameters are
all as before the save or all as after it, never a mix (SPEC: parameters persisted atomically).

On the simulated node a cut is SIGKILL of the MicroPython process; on the virtual Pico it is
SIGKILL of the emulator, and the next boot runs real littlefs on the flash as the chip had it.
``HIL_POWER_CUTS`` sets how many (default 50; each costs a boot: about a minute or more on the
virtual Pico).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from hil.vocabulary import NodeApi

CUTS = int(os.environ.get("HIL_POWER_CUTS", "50"))
SAVE_WINDOW_S = 0.05  # the random delay before the cut, sim seconds (times the time scale)
NAMES = ("test_value", "battery_setpoint", "electronics_setpoint", "heater_hysteresis",
         "dust_rate")


def generation(n: int) -> dict[str, float | int]:
    """Distinct values for every parameter in each generation, exact in single precision."""
    return {"test_value": n % 2001 - 1000, "battery_setpoint": (n % 60) * 0.5 - 10.0,
            "electronics_setpoint": -((n % 50) * 0.5), "heater_hysteresis": 0.5 + (n % 19) * 0.5,
            "dust_rate": (n % 16) / 16}


def read_all(node: NodeApi) -> dict[str, float | int]:
    return {name: node.client.param_get(name, timeout=node.seconds(5)) for name in NAMES}


@pytest.mark.power_cut(reason="needs a target whose power the rig can cut")
def test_parameters_are_all_old_or_all_new_after_power_cuts(
        node: NodeApi, power_cycle: Callable[..., None]) -> None:
    rng = random.Random(2026)
    saved = 1
    for name, value in generation(saved).items():
        node.send_and_assert_command("param_set", param=name, value=value)
    node.send_and_assert_command("param_save")
    outcomes = {"old": 0, "new": 0}
    for cut in range(CUTS):
        new = saved + 1
        for name, value in generation(new).items():
            node.send_and_assert_command("param_set", param=name, value=value)
        node.send_command("param_save")  # the cut comes while it may be writing
        # a third at once (the command may still be on its way), the rest within the window
        node.sleep(rng.choice((0.0, rng.uniform(0.0, SAVE_WINDOW_S),
                               rng.uniform(0.0, SAVE_WINDOW_S))))
        power_cycle(node)
        got = read_all(node)
        if got == generation(saved):
            outcomes["old"] += 1
        elif got == generation(new):
            outcomes["new"] += 1
            saved = new
        else:
            raise AssertionError(f"cut {cut + 1}: a mix of generation {saved} "
                                 f"{generation(saved)} and {new} {generation(new)}: {got}; "
                                 f"session log {node.log_path}")
    node.note(f"hil: {CUTS} power cuts: {outcomes['old']} all old, {outcomes['new']} all new")
    print(f"{CUTS} power cuts: {outcomes}")
