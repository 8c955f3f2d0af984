"""Every command's verification: accepted/completed, every rejection reason, failures, and
idempotent re-sends (SPEC §5.2, §6)."""

from __future__ import annotations

from typing import Any

import pytest

from ground import codec, validate
from hil.vocabulary import NodeApi
from protocol import dictionary

# One valid invocation per command that completes in SAFE (the known state).
COMPLETES_IN_SAFE: list[tuple[str, dict[str, Any]]] = [
    ("noop", {}),
    ("set_mode", {"mode": "SAFE"}),
    ("load_reset_trip", {"channel": 3}),
    ("heater_mode", {"heater": 0, "mode": "AUTO"}),
    ("heater_setpoint", {"heater": 1, "setpoint": -10.0}),
    ("param_get", {"param": "test_value"}),
    ("param_set", {"param": "test_value", "value": 7}),
    ("param_save", {}),
    ("param_load", {}),
    ("param_reset", {}),
    ("hk_rate", {"packet": 2, "rate": 0.2}),
    ("hk_enable", {"packet": 2, "enabled": True}),
    ("time_correlate", {"utc_ms": 1_800_000_000_000}),
    ("status", {}),
    ("event_log_downlink", {"from_seq": 0}),
    ("clear_counters", {}),
    ("dict_downlink", {}),
    ("fault_inject", {"fault": "CLEAR", "target": 0, "value": 0.0}),
    ("tt_list", {}),
    ("tt_clear", {}),
    ("tt_pause", {"paused": False}),
    ("seq_upload_begin", {"slot": 0, "size": 10, "digest": bytes(32)}),
    ("seq_stop", {"slot": 0}),
    ("seq_trigger", {"slot": 0, "trigger": "NONE", "level": 0.0}),
    ("seq_list", {}),
    ("seq_delete", {"slot": 3}),
]
# Tested where their effect is: load_switch (test_modes, test_fdir), reboot (test_persistence),
# tt_delete (test_timetag), seq_upload_part, seq_upload_commit, seq_start (test_sequences),
# maintenance (below), fault_inject faults (test_fdir, test_watchdog); auth_policy and arm
# below (arm also before every hazardous command: the vocabulary arms them); key_rotate and
# key_revoke in tests/firmware/test_auth_keys.py and tests/ground/test_keys.py (they change
# the session's keys).


def test_the_table_covers_every_command() -> None:
    covered = {name for name, _ in COMPLETES_IN_SAFE} | {
        "load_switch", "reboot", "maintenance", "auth_policy", "tt_delete", "seq_upload_part",
        "seq_upload_commit", "seq_start", "arm", "key_rotate", "key_revoke"}
    assert covered == {c.name for c in dictionary.COMMANDS}


def test_a_hazardous_command_without_its_arm_is_not_armed(node: NodeApi) -> None:
    """SPEC §10.8: param_reset not preceded by an arm naming it is rejected NOT_ARMED; the
    arm then another command disarms; an arm for a command that is not hazardous too."""
    mark = node.mark()
    node.assert_command_rejected("param_reset", "NOT_ARMED")  # sent raw: no arm
    node.arm("param_reset")
    node.send_and_assert_command("noop")
    node.assert_event("disarmed", since=mark)
    node.assert_command_rejected("param_reset", "NOT_ARMED")  # sent raw: no arm
    node.assert_command_rejected("arm", "NOT_ARMED", command=1, arguments=b"\x80")
    node.assert_event_count("param_reset", 0, since=mark, timeout=1)


@pytest.mark.parametrize(("name", "args"), COMPLETES_IN_SAFE, ids=[n for n, _ in COMPLETES_IN_SAFE])
def test_command_is_accepted_then_completed(node: NodeApi, name: str, args: dict[str, Any]) -> None:
    seq = node.send_command(name, **args)
    node.await_verification(name, seq, ("completed",))
    stages = [codec.stage_name(m.body[1]) for m in node.verifications(name, seq)]
    assert stages[:2] == ["accepted", "completed"]


def test_auth_policy_is_taken_only_authenticated(node: NodeApi) -> None:
    """SPEC §10.6: auth_policy sent plain is rejected UNAUTHENTICATED whatever the node's
    state (a simulated node holds the development key, a board may have none); signed (the
    session signs on a keyed target) and armed, it completes."""
    if node.client.signer is not None:
        node.send_and_assert_command("auth_policy", enforce=True)  # armed and signed
        signer, node.client.signer = node.client.signer, None
        try:
            seq = node.send_command("auth_policy", enforce=True, arm=False)
            msg = node.await_verification("auth_policy", seq)
        finally:
            node.client.signer = signer
    else:
        seq = node.send_command("auth_policy", enforce=True, arm=False)
        msg = node.await_verification("auth_policy", seq)
    assert (codec.stage_name(msg.body[1]), codec.reason_name(msg.body[2])) == (
        "rejected", "UNAUTHENTICATED")


def test_unknown_command(node: NodeApi) -> None:
    seq = node.send_raw_id(200, [])
    msg = node.await_verification(200, seq)
    assert (codec.stage_name(msg.body[1]), msg.body[2]) == ("rejected", 1)


@pytest.mark.parametrize(("name", "args", "reason"), [
    ("set_mode", {"mode": "NOMINAL", "extra": 1}, "BAD_ARGUMENTS"),
    ("set_mode", {}, "BAD_ARGUMENTS"),
    ("set_mode", {"mode": 2.0}, "BAD_ARGUMENTS"),
    ("set_mode", {"mode": -1}, "BAD_ARGUMENTS"),
    ("hk_enable", {"packet": 1, "enabled": 1}, "BAD_ARGUMENTS"),
    ("time_correlate", {"utc_ms": "now"}, "BAD_ARGUMENTS"),
    ("set_mode", {"mode": 0}, "OUT_OF_RANGE"),
    ("set_mode", {"mode": 4}, "OUT_OF_RANGE"),
    ("hk_rate", {"packet": 1, "rate": 50.5}, "OUT_OF_RANGE"),
    ("param_set", {"param": "test_value", "value": 1001}, "OUT_OF_RANGE"),
    ("param_set", {"param": "test_value", "value": 1.5}, "BAD_ARGUMENTS"),
    ("fault_inject", {"fault": 6, "target": 0, "value": 0.0}, "OUT_OF_RANGE"),
    ("load_switch", {"channel": 1, "on": True}, "WRONG_MODE"),
    ("maintenance", {"extra": 0}, "BAD_ARGUMENTS"),
])
def test_rejections(node: NodeApi, name: str, args: dict[str, Any], reason: str) -> None:
    if name == "param_set":
        args = {"param": dictionary.PARAMS[13].id, "value": args["value"]}
    node.assert_command_rejected(name, reason, **args)


def test_wrong_mode_then_allowed(node: NodeApi) -> None:
    node.assert_command_rejected("load_switch", "WRONG_MODE", channel=1, on=True)
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.send_and_assert_command("load_switch", channel=1, on=True)


def test_malformed_and_unsupported_version(node: NodeApi) -> None:
    noop = next(c.id for c in dictionary.COMMANDS if c.name == "noop")
    seq = node.next_seq()
    node.send_message(codec.encode(codec.KIND_EVENT, seq, 0, noop, []))  # not a command
    msg = node.await_verification(noop, seq)
    assert (msg.body[1], msg.body[2]) == (1, 6)  # rejected MALFORMED
    seq = node.next_seq()
    import cbor2

    node.send_message(cbor2.dumps([2, 0, seq, 0, noop, []]))
    msg = node.await_verification(noop, seq)
    assert (msg.body[1], msg.body[2]) == (1, 7)  # rejected UNSUPPORTED_VERSION


def test_busy_while_a_bulk_transfer_runs(node: NodeApi) -> None:
    # The two downlinks go in one write, so the node reads the second while the first runs
    # however late a loaded host gets round to writing.
    client = node.client
    codes = []
    for _ in range(5):
        boot = client.boot or 0
        frames, seqs = b"", []
        for name, args in (("event_log_downlink", {"from_seq": 0}), ("dict_downlink", {})):
            cmd, values = validate.prepare(name, args)
            seq = client.next_seq()
            seqs.append(seq)
            frames += client._frame(codec.encode_command(seq, cmd.id, list(values), boot), boot)
        node.send_bytes(frames)
        node.await_verification("event_log_downlink", seqs[0])
        msg = node.await_verification("dict_downlink", seqs[1])
        codes.append((msg.body[1], msg.body[2]))
        if codes[-1] == (1, 5):
            return
    pytest.fail(f"no BUSY rejection in 5 tries: {codes}; log {node.log_path}")


@pytest.mark.parametrize(("name", "args", "reason"), [
    ("set_mode", {"mode": "SCIENCE"}, "INVALID_TRANSITION"),
    ("param_get", {"param": 99, "raw": True}, "NOT_FOUND"),  # the ground knows it's unknown
    ("param_set", {"param": 99, "value": 1, "raw": True}, "NOT_FOUND"),
    ("fault_inject", {"fault": "HANG_TASK", "target": 15, "value": 0.0}, "NOT_FOUND"),
])
def test_failures(node: NodeApi, name: str, args: dict[str, Any], reason: str) -> None:
    node.assert_command_failed(name, reason, **args)
    node.assert_event("cmd_failed", code=reason)


def test_inhibited_payload_outside_science(node: NodeApi) -> None:
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    node.assert_command_failed("load_switch", "INHIBITED", channel=4, on=True)


def test_repeated_seq_is_answered_but_not_executed_again(node: NodeApi) -> None:
    """SPEC §5.2: the same (seq, id) again gets the recorded verifications only."""
    param = next(p.id for p in dictionary.PARAMS if p.name == "test_value")
    seq = node.next_seq()
    frame_args = [param, 11]
    cmd_id = next(c.id for c in dictionary.COMMANDS if c.name == "param_set")
    boot = node.client.boot or 0
    message = codec.encode_command(seq, cmd_id, frame_args, boot)
    node.send_and_assert_command("hk_rate", packet=3, rate=10.0)  # counters come quickly
    mark = node.mark()
    for _ in range(3):  # the same message; signed, each transmission has its own counter
        node.send_bytes(node.client._frame(message, boot))
    node.await_verification(cmd_id, seq, ("completed",))
    node.send_and_assert_command("noop")  # everything before it has been answered
    stages = [codec.stage_name(m.body[1]) for m in node.verifications(cmd_id, seq)]
    assert stages.count("completed") == 3 and stages.count("accepted") == 3
    node.assert_event_count("param_changed", 1, since=mark, timeout=1)
    # hk_rate, param_set once, noop (the reset ended by clearing the counters)
    node.await_telemetry("cmds_accepted", 3, timeout=2)
