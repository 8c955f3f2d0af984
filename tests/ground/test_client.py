"""The client API against the fake node: verification, retries, typed errors, subscriptions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fakenode import FakeNode

from ground.client import Client
from ground.errors import (
    EXIT_DICTIONARY,
    EXIT_TIMEOUT,
    EXIT_UNKNOWN,
    CommandFailed,
    CommandRejected,
    DictionaryMismatch,
    LinkLost,
    OutcomeUnknown,
    OutOfRange,
    UnknownName,
    VerificationTimeout,
)
from ground.log import LogReader
from protocol.node_dictionary import DICT_HASH


@pytest.fixture
def client(fake_node: FakeNode) -> Client:
    c = Client(fake_node.port, retry_interval_s=0.2)
    c.connect()
    yield c
    c.close()


def test_connect_reads_status(client: Client) -> None:
    assert client.status is not None
    assert client.status.dict_hash == DICT_HASH and client.status.mode == "SAFE"


def test_command_waits_for_completed(client: Client, fake_node: FakeNode) -> None:
    res = client.command("set_mode", mode="NOMINAL")
    assert [v.stage for v in res.verifications] == ["accepted", "completed"]
    assert res.attempts == 1 and fake_node.mode == 2
    assert client.param_get("time_factor") == 60.0


def test_lost_verification_is_retried_with_the_same_seq(
    client: Client, fake_node: FakeNode
) -> None:
    fake_node.lose_verifications = 2  # accepted and completed of the next command
    res = client.command("noop")
    assert res.attempts == 2
    sent = [m for m in fake_node.received if m[4] == 1]
    assert [m[2] for m in sent] == [res.seq, res.seq]  # same seq both times
    assert fake_node.executed[1] == 1  # executed once


def test_connect_learns_the_boot_from_a_stale_boot_answer(tmp_path: Path) -> None:
    # SPEC §5.1: not knowing the boot, the client binds status to 0; the node answers
    # STALE_BOOT with its boot, and status goes again bound to it.
    with FakeNode(hk_period_s=None) as node:
        c = Client(node.port, log=tmp_path / "s.log")
        try:
            status = c.connect()
            assert c.boot == status.boot_count == 3
            # status bound to 0, status bound to 3, then the time correlation (SPEC §11.1)
            assert [(m[4], m[6]) for m in node.received] == [(15, 0), (15, 3), (14, 3)]
            assert node.executed[15] == 1
        finally:
            c.close()


def test_a_command_after_an_unseen_reboot_is_sent_again_bound_to_the_new_boot(
    tmp_path: Path,
) -> None:
    # The one attempt bound to the old boot was refused STALE_BOOT: it did not run, so the
    # client binds it to the new boot and it runs once.
    with FakeNode(hk_period_s=None) as node:
        c = Client(node.port, log=tmp_path / "s.log", retry_interval_s=0.2)
        try:
            c.connect()
            node.reboot()
            res = c.command("noop")
            assert c.boot == 4 and node.executed[1] == 1 and res.attempts == 2
            noops = [m for m in node.received if m[4] == 1]
            assert [(m[2], m[6]) for m in noops] == [(res.seq, 3), (res.seq, 4)]
        finally:
            c.close()


@pytest.mark.parametrize("hk_period_s", [None, 0.05])
def test_a_reboot_before_the_final_verification_is_outcome_unknown(
    tmp_path: Path, hk_period_s: float | None
) -> None:
    # The command ran in boot 3, its verifications were lost, then the node rebooted: the
    # client learns it from a STALE_BOOT answer to a re-send or from housekeeping, and can
    # only say it does not know (never success, never failure, never a second run).
    with FakeNode(hk_period_s=hk_period_s) as node:
        c = Client(node.port, log=tmp_path / "s.log", retry_interval_s=0.2)
        try:
            c.connect()
            node.lose_verifications = 1000

            def reboot_after_the_run() -> None:
                while node.executed[8] == 0:
                    time.sleep(0.01)
                node.lose_verifications = 0
                node.reboot()

            t = threading.Thread(target=reboot_after_the_run, daemon=True)
            t.start()
            with pytest.raises(OutcomeUnknown) as info:
                c.command("param_set", param="test_value", value=22, timeout=5)
            t.join(5)
            err = info.value
            assert (err.boot, err.new_boot, err.exit_code, EXIT_UNKNOWN) == (3, 4, 7, 7)
            assert "UNKNOWN" in str(err) and err.log_path == c.log_path
            assert node.executed[8] == 1
            assert c.boot == 4
        finally:
            c.close()


def test_rejected_and_failed_carry_the_reason(client: Client) -> None:
    with pytest.raises(CommandFailed) as failed:
        client.command("set_mode", mode="SCIENCE")  # SAFE -> SCIENCE is not allowed
    assert failed.value.code == 18 and failed.value.reason == "INVALID_TRANSITION"
    assert "set_mode" in str(failed.value) and failed.value.exit_code == 1
    assert str(failed.value).endswith(
        "failed: INVALID_TRANSITION (18): the node cannot go from SAFE to SCIENCE directly; "
        "allowed: SAFE to NOMINAL, NOMINAL and SCIENCE either way, any mode to SAFE"
    )
    with pytest.raises(CommandFailed, match="INHIBITED") as inhibited:
        client.command("load_switch", channel="seismometer", on=True)
    assert inhibited.value.why == (
        "seismometer cannot switch now: payloads switch on only in SCIENCE, and a tripped "
        "channel must be reset first (load_reset_trip)"
    )


def test_rejection(client: Client, fake_node: FakeNode) -> None:
    fake_node.reject_next = 4
    with pytest.raises(CommandRejected) as info:
        client.command("noop")
    assert info.value.reason == "WRONG_MODE" and info.value.code == 4
    # noop is allowed in every mode: the explanation says the node differs from the dictionary
    assert str(info.value) == (
        f"noop (seq {info.value.seq}) rejected: WRONG_MODE (4): noop is allowed in SAFE, "
        "NOMINAL or SCIENCE and the node (in SAFE) still refused it: its firmware may differ "
        "from this dictionary"
    )


def test_nothing_is_sent_for_bad_input(client: Client, fake_node: FakeNode) -> None:
    before = len(fake_node.received)
    with pytest.raises(UnknownName, match="set_mode"):
        client.send("set_mod", mode=2)
    with pytest.raises(OutOfRange, match=r"0\.1 to 50 Hz"):
        client.command("hk_rate", packet=1, rate=500)
    time.sleep(0.1)
    assert len(fake_node.received) == before


def test_timeout_says_what_arrived_and_where_the_log_is(
    client: Client, fake_node: FakeNode
) -> None:
    fake_node.lose_verifications = 100
    with pytest.raises(VerificationTimeout) as info:
        client.command("noop", timeout=0.5)
    err = info.value
    assert err.exit_code == EXIT_TIMEOUT and isinstance(err, TimeoutError)
    assert err.log_path == client.log_path and err.log_path in str(err)
    assert "no verification" in str(err) and err.attempts >= 2


def test_dictionary_mismatch_names_both_hashes(tmp_path: Path) -> None:
    with FakeNode(dict_hash=0xDEADBEEF) as node:
        c = Client(node.port)
        with pytest.raises(DictionaryMismatch) as info:
            c.connect()
    err = info.value
    assert err.exit_code == EXIT_DICTIONARY
    assert "0xdeadbeef" in str(err) and f"0x{DICT_HASH:08x}" in str(err)
    assert c.link_state == "closed"


def test_silent_node_is_a_link_error() -> None:
    with FakeNode(silent=True) as node:
        c = Client(node.port, retry_interval_s=0.2)
        with pytest.raises(LinkLost, match="does not answer"):
            c.connect(timeout=0.6)


def test_telemetry_latest_and_limits(client: Client) -> None:
    packets = list(client.telemetry(count=2))
    assert len(packets) == 2 and packets[0].packet == "power"
    soc = client.latest("battery_soc")
    assert soc is not None and soc.unit == "%" and soc.state == "red"  # 12.5 % < 15 %
    volts = client.latest("battery_voltage")
    assert volts is not None and volts.state == "nominal"
    mode = client.latest("mode")
    assert mode is not None and mode.text == "SAFE" and mode.state == ""
    with pytest.raises(UnknownName):
        client.latest("battery_socc")


def test_event_subscriptions(client: Client) -> None:
    seen: list[str] = []
    unsubscribe = client.on_event(lambda ev: seen.append(ev.text))
    stream = client.subscribe("event")
    client.command("set_mode", mode="NOMINAL")
    ev = stream.get(timeout=2)
    stream.close()
    unsubscribe()
    assert ev is not None and ev.name == "mode_changed" and ev.text == "mode SAFE -> NOMINAL"
    assert seen == ["mode SAFE -> NOMINAL"]


def test_await_helpers(client: Client) -> None:
    v = client.await_telemetry("battery_voltage", lambda x: x > 20, timeout=2)
    assert v.value == 28.0
    with pytest.raises(Exception, match="no event sunrise within"):
        client.await_event("sunrise", timeout=0.3)


def test_bulk_downlinks(client: Client) -> None:
    fetched = client.fetch_dictionary()
    assert fetched.description[2] == "fake dictionary" and fetched.size > 300
    assert not fetched.matches  # the fake node's payload is not the real description
    events = client.event_log()
    assert [e.text for e in events] == ["boot 3, reset cause POWER_ON", "mode SAFE -> NOMINAL"]


def test_session_log_holds_every_frame_both_ways(fake_node: FakeNode, tmp_path: Path) -> None:
    fake_node.noise = b""
    path = tmp_path / "session.jsonl"
    with Client(fake_node.port, log=path) as c:
        c.command("noop")
        list(c.telemetry(count=1))
    records = list(LogReader(path))
    types = [r.type for r in records]
    assert types[0] == "link" and types[-1] == "link"
    # status bound to boot 0 (STALE_BOOT), status again, time_correlate (SPEC §11.1), noop
    assert types.count("up") == 4
    assert types.count("down") >= 5


def test_noise_is_logged_as_discarded(tmp_path: Path) -> None:
    # No housekeeping: the noise must be the first thing on the line after the port opens, as
    # at a real board's connect; a packet ahead of it would make it the tail of a frame.
    with FakeNode(noise=b"\r\n>>> ", hk_period_s=None) as node:
        path = tmp_path / "noise.jsonl"
        with Client(node.port, log=path):
            pass
    discards = [r for r in LogReader(path) if r.type == "discard"]
    assert discards and discards[0].data == b"\r\n>>> " and discards[0].fields["reason"] == "sync"


def test_power_cut_on_the_simulated_node_is_survived(tmp_path: Path) -> None:
    from ground.simnode import SimNode

    with SimNode(seed=3, time_factor=600.0, state_dir=tmp_path / "state") as sim:
        with Client(sim.port, log=tmp_path / "cut.jsonl") as c:
            assert c.status is not None
            boots = c.status.boot_count
            c.command("hk_rate", packet=1, rate=10.0)
            sim.power_cut()
            v = c.await_telemetry("boot_count", lambda b: b > boots, timeout=10)
            assert v.value == boots + 1
            assert c.command("noop").verifications[-1].stage == "completed"
            assert c.refresh_status().reset_cause == "POWER_ON"
            assert c.link_state == "up"
