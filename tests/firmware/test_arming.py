"""Hazardous commands: arm, then execute (SPEC §10.8), on the simulated node.

A hazardous command runs only as the very next command after an `arm` naming it and the exact
encoding of its arguments, within arm_timeout_ms; anything in between disarms; NOT_ARMED
otherwise, and for an arm naming a command that is not hazardous. param_reset is the
hazardous command these tests execute (harmless here: the rate limit is set again after it).
"""

from __future__ import annotations

from typing import Any

import pytest
from nodelink import ACCEPTED, COMPLETED, REJECTED, NodeLink, field

from protocol import ids
from protocol import messages as M
from protocol.dictionary import COMMANDS
from protocol.frame_writer import encode_frame

COMMANDING = ids.PKT_COMMANDING
I_ARMED = field(COMMANDING, "armed_command")
EMPTY = b"\x80"  # the encoding of no arguments: the array head alone


def hazardous_names() -> set[str]:
    return {c.name for c in COMMANDS if c.hazardous}


def test_the_hazardous_commands_are_the_documented_ones():
    assert hazardous_names() == {"reboot", "maintenance", "param_reset", "auth_policy",
                                 "key_rotate", "key_revoke"}


def restore_rate_limit(link: NodeLink) -> None:
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_EVENT_RATE_LIMIT, 100)


def reject(link: NodeLink, cmd_id: int, *args: Any) -> M.Message:
    return link.assert_rejected(cmd_id, *args, code=M.NOT_ARMED, arm=False)


def test_a_hazardous_command_without_arm_is_rejected_not_armed(link):
    mark = link.mark()
    seq = link.send_command(ids.CMD_PARAM_RESET, arm=False)
    v = link.verification(seq, ids.CMD_PARAM_RESET, (ACCEPTED, REJECTED), mark=mark)
    assert (v.body[1], v.body[2]) == (REJECTED, M.NOT_ARMED)
    assert not link.events(ids.EV_PARAM_RESET, mark)


@pytest.mark.parametrize("cmd_id", [ids.CMD_NOOP, ids.CMD_ARM, 200])
def test_an_arm_for_a_command_that_is_not_hazardous_is_rejected_not_armed(link, cmd_id):
    final = link.assert_rejected(ids.CMD_ARM, cmd_id, EMPTY, code=M.NOT_ARMED)
    assert final.body[3] is None


def test_an_arm_whose_arguments_are_not_bytes_is_bad_arguments(link):
    link.assert_rejected(ids.CMD_ARM, ids.CMD_PARAM_RESET, [], code=M.BAD_ARGUMENTS)
    link.assert_rejected(ids.CMD_ARM, ids.CMD_PARAM_RESET, bytes(65), code=M.BAD_ARGUMENTS)


def test_arm_then_execute_runs_once_and_says_so(link):
    mark = link.mark()
    link.arm(ids.CMD_PARAM_RESET, EMPTY)
    link.assert_event(ids.EV_ARMED, mark, lambda a: a == [ids.CMD_PARAM_RESET])
    body = link.await_telemetry(COMMANDING, timeout=12).body
    assert body[I_ARMED] == ids.CMD_PARAM_RESET
    link.send_and_assert_command(ids.CMD_PARAM_RESET, arm=False)
    link.assert_event(ids.EV_PARAM_RESET, mark)
    restore_rate_limit(link)
    assert link.await_telemetry(COMMANDING, timeout=12).body[I_ARMED] == 0
    # consumed: the same command again is not armed any more
    reject(link, ids.CMD_PARAM_RESET)
    assert not link.events(ids.EV_DISARMED, mark) and not link.events(ids.EV_ARM_EXPIRED, mark)


def test_any_other_command_in_between_disarms(link):
    mark = link.mark()
    link.arm(ids.CMD_PARAM_RESET, EMPTY)
    link.send_and_assert_command(ids.CMD_NOOP)
    link.assert_event(ids.EV_DISARMED, mark, lambda a: a == [ids.CMD_PARAM_RESET, ids.CMD_NOOP])
    reject(link, ids.CMD_PARAM_RESET)
    # a rejected command disarms too, and so does a second arm (the newest one counts)
    link.arm(ids.CMD_PARAM_RESET, EMPTY)
    link.assert_rejected(ids.CMD_SET_MODE, 9, code=M.OUT_OF_RANGE)
    reject(link, ids.CMD_PARAM_RESET)
    assert not link.events(ids.EV_PARAM_RESET, mark)


def test_an_arm_for_other_arguments_or_another_command_does_not_allow_it(link):
    mark = link.mark()
    link.arm(ids.CMD_PARAM_RESET, b"\x81\x00")  # [0]: not what param_reset carries
    reject(link, ids.CMD_PARAM_RESET)
    link.arm(ids.CMD_REBOOT, EMPTY)
    reject(link, ids.CMD_PARAM_RESET)
    link.assert_event(ids.EV_DISARMED, mark,
                      lambda a: a == [ids.CMD_REBOOT, ids.CMD_PARAM_RESET])
    assert not link.events(ids.EV_PARAM_RESET, mark)
    assert not link.events(ids.EV_REBOOT, mark)


def test_a_repeat_of_the_arm_keeps_it_armed(link):
    mark = link.mark()
    seq = link.send_command(ids.CMD_ARM, ids.CMD_PARAM_RESET, EMPTY)
    link.verification(seq, ids.CMD_ARM, (COMPLETED,), mark=mark)
    mark = link.mark()
    link.send_command(ids.CMD_ARM, ids.CMD_PARAM_RESET, EMPTY, seq=seq)  # the same seq again
    link.verification(seq, ids.CMD_ARM, (COMPLETED,), mark=mark)
    link.send_and_assert_command(ids.CMD_PARAM_RESET, arm=False)
    restore_rate_limit(link)
    assert not link.events(ids.EV_DISARMED, mark)


def test_the_arm_expires_after_arm_timeout_ms(link):
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_ARM_TIMEOUT_MS, 1000)
    try:
        mark = link.mark()
        link.arm(ids.CMD_PARAM_RESET, EMPTY)
        link.assert_event(ids.EV_ARM_EXPIRED, mark, lambda a: a == [ids.CMD_PARAM_RESET],
                          timeout=10)
        reject(link, ids.CMD_PARAM_RESET)
        assert not link.events(ids.EV_DISARMED, mark)
    finally:
        link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_ARM_TIMEOUT_MS, 10000)


def test_a_reboot_disarms(fresh_node):
    node, link = fresh_node
    link.arm(ids.CMD_PARAM_RESET, EMPTY)
    mark = link.mark()
    node.power_cut()
    link.await_boot(mark=mark)
    link.boot = None
    reject(link, ids.CMD_PARAM_RESET)
    assert not link.events(ids.EV_PARAM_RESET, mark)


def test_a_message_that_is_not_a_command_disarms_too(link):
    """Anything the node handles as a command message disarms, answered or only counted."""
    mark = link.mark()
    link.arm(ids.CMD_PARAM_RESET, EMPTY)
    link.write(encode_frame(b"\x81\x01"))  # not a command: counted, unanswered
    link.assert_event(ids.EV_DISARMED, mark, lambda a: a == [ids.CMD_PARAM_RESET, 0])
    reject(link, ids.CMD_PARAM_RESET)
