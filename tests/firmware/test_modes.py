"""Mode rules (SPEC §8): BOOT → SAFE → NOMINAL ↔ SCIENCE, any → SAFE, the rest INVALID_TRANSITION.

SCIENCE needs battery_soc >= science_min_soc_pct: the node fails set_mode with INHIBITED
otherwise. Leaving SCIENCE switches the payloads off.
"""

import pytest

from protocol import ids
from protocol import messages as M

pytestmark = pytest.mark.slow

SAFE, NOMINAL, SCIENCE = ids.MODE_SAFE, ids.MODE_NOMINAL, ids.MODE_SCIENCE


def mode(link):
    return link.send_and_assert_command(ids.CMD_STATUS)[0]


def set_mode(link, m):
    return link.send_and_assert_command(ids.CMD_SET_MODE, m)


def test_boot_ends_in_safe_with_mode_changed_event(link):
    assert mode(link) == SAFE
    boot_events = link.events(ids.EV_MODE_CHANGED)
    assert boot_events and boot_events[0].body[2] == [ids.MODE_BOOT, SAFE]


def test_allowed_transitions_and_events(link):
    mark = link.mark()
    set_mode(link, NOMINAL)
    set_mode(link, SCIENCE)
    set_mode(link, NOMINAL)
    set_mode(link, SCIENCE)
    set_mode(link, SAFE)
    changes = [m.body[2] for m in link.events(ids.EV_MODE_CHANGED, mark)]
    assert changes == [[SAFE, NOMINAL], [NOMINAL, SCIENCE], [SCIENCE, NOMINAL],
                       [NOMINAL, SCIENCE], [SCIENCE, SAFE]]
    link.await_telemetry(ids.PKT_POWER, lambda b: b[0] == SAFE)


@pytest.mark.parametrize(("start", "target"), [(SAFE, SCIENCE), (NOMINAL, NOMINAL),
                                               (SCIENCE, SCIENCE)])
def test_invalid_transitions_fail(link, start, target):
    for m in {SAFE: [], NOMINAL: [NOMINAL], SCIENCE: [NOMINAL, SCIENCE]}[start]:
        set_mode(link, m)
    link.assert_failed(ids.CMD_SET_MODE, target, code=M.INVALID_TRANSITION)
    assert mode(link) == start
    set_mode(link, SAFE)


def test_safe_to_safe_completes(link):
    set_mode(link, SAFE)
    assert mode(link) == SAFE


def test_science_needs_charge(link):
    set_mode(link, NOMINAL)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_SCIENCE_MIN_SOC_PCT, 90.0)
    link.assert_failed(ids.CMD_SET_MODE, SCIENCE, code=M.INHIBITED)
    assert mode(link) == NOMINAL
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_SCIENCE_MIN_SOC_PCT, 40.0)
    set_mode(link, SCIENCE)
    set_mode(link, SAFE)


def test_commands_checked_against_mode(link):
    set_mode(link, SAFE)
    link.assert_rejected(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True, code=M.WRONG_MODE)
    set_mode(link, NOMINAL)
    link.assert_rejected(ids.CMD_MAINTENANCE, code=M.WRONG_MODE)
    set_mode(link, SAFE)


def test_payloads_only_in_science_and_off_when_leaving(link):
    set_mode(link, NOMINAL)
    link.assert_failed(ids.CMD_LOAD_SWITCH, ids.LOAD_PAYLOAD_A, True, code=M.INHIBITED)
    set_mode(link, SCIENCE)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_PAYLOAD_A, True)
    link.await_telemetry(ids.PKT_POWER, lambda b: b[15] & (1 << ids.LOAD_PAYLOAD_A))
    set_mode(link, NOMINAL)
    link.await_telemetry(ids.PKT_POWER, lambda b: not b[15] & (1 << ids.LOAD_PAYLOAD_A))
    set_mode(link, SAFE)
