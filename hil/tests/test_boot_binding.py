"""Commands are bound to a boot (SPEC §5.1, issue 10 bug 7), and the envelope rules of §5
(issue 10 bugs 2, 3 and 4) on the running node.

A command re-sent with its original bytes after a commanded reboot or a power cut is rejected
STALE_BOOT (its result the node's new boot count) and never runs a second time (on a node with
a key the original signed frames are replays first, refused unanswered, and the same messages
in new transmissions are rejected STALE_BOOT); the client
reports an unknown outcome where it cannot know. Each reproducer of bugs 2-4 is answered with
exactly the code, seq and id the spec gives, or only counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from ground import codec, validate
from ground.errors import OutcomeUnknown
from hil.session import BOOT_TIMEOUT_S, HilLink
from hil.vocabulary import NodeApi

STALE_BOOT = 8
MALFORMED = 6


def _message(node: NodeApi, name: str, seq: int, **args: Any) -> bytes:
    """A command message bound to the node's current boot."""
    cmd, values = validate.prepare(name, args)
    boot = node.client.boot
    assert boot, f"the client does not know the node's boot; log {node.log_path}"
    return codec.encode_command(seq, cmd.id, values, boot)


def _frame(node: NodeApi, name: str, seq: int, **args: Any) -> bytes:
    """The frame of a command bound to the node's current boot, kept to be re-sent as is
    (signed when the session signs: SPEC §10)."""
    return _transmission(node, _message(node, name, seq, **args))


def _transmission(node: NodeApi, message: bytes) -> bytes:
    """A new transmission of message: signed with a new counter when the session signs."""
    return node.client._frame(message, cbor2.loads(message)[6])


def _bodies(node: NodeApi, name: str, seq: int, since: int) -> list[list[Any]]:
    return [m.body for m in node.verifications(name, seq, since)]


def _run_then_resend_across(node: NodeApi, restart: Callable[[int], None]) -> None:
    """Run param_set (11) from a kept frame, set 22, restart the node, re-send the frame and
    a kept reboot frame with their original bytes: each is rejected STALE_BOOT with the new
    boot, and nothing runs (no parameter change, no second reboot)."""
    boot = node.status().boot_count
    set_seq, reboot_seq = node.next_seq(), node.next_seq()
    set_message = _message(node, "param_set", set_seq, param="test_value", value=11)
    reboot_message = _message(node, "reboot", reboot_seq)
    set_frame = _transmission(node, set_message)
    reboot_frame = _transmission(node, reboot_message)
    node.send_bytes(set_frame)
    node.await_verification("param_set", set_seq, ("completed",))
    node.send_and_assert_command("param_set", param="test_value", value=22)
    restart(boot)
    new_boot = node.status().boot_count
    assert new_boot == boot + 1
    value = node.client.param_get("test_value")
    node.send_and_assert_command("hk_rate", packet=3, rate=10.0)  # counters come quickly
    signed = node.client.signer is not None
    if signed:  # the frames as they were are replays (SPEC §10.4): refused, unanswered
        node.send_and_assert_command("hk_rate", packet=9, rate=10.0)
        replayed = node.await_telemetry("auth_replayed").value
        mark = node.mark()
        node.send_bytes(set_frame)
        node.send_bytes(reboot_frame)
        node.send_and_assert_command("noop")
        assert _bodies(node, "param_set", set_seq, mark) == []
        assert _bodies(node, "reboot", reboot_seq, mark) == []
        node.await_telemetry("auth_replayed", replayed + 2, timeout=5)
        # the same messages in new transmissions (new counters) reach the boot check
        set_frame = _transmission(node, set_message)
        reboot_frame = _transmission(node, reboot_message)
    rejected = node.await_telemetry("cmds_rejected").value
    mark = node.mark()
    node.send_bytes(set_frame)
    node.send_bytes(reboot_frame)
    node.send_bytes(set_frame if not signed else _transmission(node, set_message))
    node.send_and_assert_command("noop")  # everything before it has been answered
    stale = [1, STALE_BOOT, new_boot]
    assert _bodies(node, "param_set", set_seq, mark) == [[set_seq, *stale]] * 2
    assert _bodies(node, "reboot", reboot_seq, mark) == [[reboot_seq, *stale]]
    node.await_telemetry("cmds_rejected", rejected + 3, timeout=5)
    node.assert_event_count("param_changed", 0, since=mark, timeout=1)
    assert node.client.param_get("test_value") == value
    assert node.status().boot_count == new_boot  # the reboot did not run again


def test_commands_resent_after_a_commanded_reboot_never_run_again(node: NodeApi) -> None:
    def commanded(boot: int) -> None:
        seq = node.next_seq()
        node.arm("reboot")  # hazardous: armed first (SPEC §10.8)
        node.send_bytes(_frame(node, "reboot", seq))
        node.await_verification("reboot", seq, ("completed",))
        HilLink(node.target).wait_answering(node, newer_than=boot)

    _run_then_resend_across(node, commanded)


def test_commands_resent_after_a_power_cut_never_run_again(
        node: NodeApi, power_cycle: Callable[..., None]) -> None:
    _run_then_resend_across(node, lambda boot: power_cycle(node))


@pytest.mark.power_cut(reason="stops the node's processor, then cuts its power")
def test_client_reports_unknown_when_the_node_reboots_before_a_final_verification(
        node: NodeApi, hil_link: HilLink) -> None:
    # The node stops (SIGSTOP of its process, or of the emulator: it reads nothing) while the
    # client sends param_set and re-sends it for lack of an answer; then the power is cut. The
    # client cannot know whether an attempt ran before the cut: OutcomeUnknown, not success,
    # failure or a timeout. Whatever the new boot reads of the attempts left in the port, it
    # does not run them.
    before = node.status()
    outcome: list[BaseException | Any] = []

    def command() -> None:
        try:
            outcome.append(node.client.command("param_set", param="test_value", value=33,
                                               timeout=node.seconds(BOOT_TIMEOUT_S + 10)))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    mark = node.mark()
    hil_link.freeze(node)
    try:
        t = threading.Thread(target=command, name="unknown-command", daemon=True)
        t.start()
        time.sleep(2.5 * node.client.retry_interval_s)  # the attempt and a re-send or two
    finally:
        # cut the power while it is still stopped: resumed first, it could read and run an
        # attempt in the moment before the cut, and the outcome would be known after all
        hil_link.cut_power(node)
    t.join(node.seconds(BOOT_TIMEOUT_S + 15))
    assert not t.is_alive()
    err = outcome[0]
    assert isinstance(err, OutcomeUnknown), f"{err!r}; log {node.log_path}"
    assert err.boot == before.boot_count and err.new_boot == before.boot_count + 1
    assert err.exit_code == 7 and "UNKNOWN" in str(err)
    hil_link.wait_answering(node, newer_than=before.boot_count)
    node.assert_event_count("param_changed", 0, since=mark, timeout=1)


# --- issue 10's reproducers of bugs 2, 3 and 4 (whole wire frames, delimiters included) ---

REPRODUCERS = [
    # bug 2: id 2**33 + 1 (six items then: MALFORMED now), echoed exactly
    ("00038601041903e9021b01010202010107018022e308bc00", 1001, 2**33 + 1, MALFORMED),
    # bug 3: invalid CBOR in the arguments; nesting 17 deep
    ("000386010419e81e0a03820cf47a5dbffc9b00", 59422, 3, MALFORMED),
    ("00038601041907d70a08830e07f7319df9f800", 2007, 8, MALFORMED),
    ("000386010419dbb70107821984fef9800a46e61ffb75853e09f200", 56247, 0, MALFORMED),
    ("00038601041907d1160e81818181818181818181818181818180a864064600", 2001, 14, MALFORMED),
    # bug 4: no seq or id inside the array: counted only
    ("000380010207070180f16c52b700", None, None, None),
    ("0003820102070601d31b92ad00", None, None, None),
]


@pytest.mark.parametrize(("wire", "seq", "cmd_id", "code"), REPRODUCERS,
                         ids=[w[6:22] for w, *_ in REPRODUCERS])
def test_issue_10_reproducers_get_exactly_what_the_spec_says(
        node: NodeApi, wire: str, seq: int | None, cmd_id: int | None, code: int | None) -> None:
    node.send_and_assert_command("hk_rate", packet=3, rate=10.0)  # counters come quickly
    rejected = node.await_telemetry("cmds_rejected").value
    mark = node.mark()
    node.send_bytes(bytes.fromhex(wire))
    node.send_and_assert_command("noop")  # everything before it has been answered
    answers = [(m.id, m.body) for pos, m in node.history.verifications
               if pos > mark and m.id != 1]
    assert answers == ([] if seq is None else [(cmd_id, [seq, 1, code, None])])
    node.await_telemetry("cmds_rejected", rejected + 1, timeout=5)


def test_an_id_beyond_32_bits_is_echoed_exactly(node: NodeApi) -> None:
    # bug 2 as a seven-item command bound to this boot: UNKNOWN_COMMAND for exactly that id
    # (the node's bytes are checked canonical in tests/firmware/test_node_mp.py)
    for cmd_id in (2**32, 2**33 + 1, 2**64 - 1):
        seq = node.next_seq()
        node.send_bytes(_transmission(  # signed when the session signs (SPEC §10)
            node, codec.encode_command(seq, cmd_id, [], node.client.boot or 0)))
        v = node.await_verification(cmd_id, seq, ("rejected",))
        assert v.body == [seq, 1, 1, None]
