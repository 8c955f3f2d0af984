"""Authenticated commanding on the simulated node (SPEC §10): forged and replayed commands are
never executed and never answered, counters and the throttled event account for every one;
authenticated verifications; policy; replays across a reboot and power cuts.

ILRS_AUTH_ATTACKS sets how many forged and how many replayed commands the attack tests send
(default 300 each; the acceptance run uses 10000).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nodelink import ACCEPTED, COMPLETED, REJECTED, NodeLink, field

from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, Signer, node_key_table
from ground.simnode import SimNode
from protocol import cose, ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.messages import encode_message

ATTACKS = int(os.environ.get("ILRS_AUTH_ATTACKS", "300"))
PARAM_TEST_VALUE = 14
COMMANDING = ids.PKT_COMMANDING
I_ACCEPTED = field(COMMANDING, "cmds_accepted")
I_REJECTED = field(COMMANDING, "cmds_rejected")
I_STATE = field(COMMANDING, "auth_state")
I_FORGED = field(COMMANDING, "auth_forged")
I_REPLAYED = field(COMMANDING, "auth_replayed")


def dev_signer() -> Signer:
    return Signer(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)


REVOKED_MASTER = bytes(range(64, 96))  # operator 1's master: provisioned, then revoked


def keyed(state: Path, runner: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    """A node holding the development key (operator 0) and operator 1's key, which the
    development key revokes for good (SPEC §10.7) before the test begins."""
    table = node_key_table([(DEV_OPERATOR, DEV_MASTER, DEV_GENERATION), (1, REVOKED_MASTER, 0)])
    with runner(state, keys=table, signer=dev_signer()) as (node, link):
        link.send_and_assert_command(ids.CMD_KEY_REVOKE, 1, 255)  # armed first, signed
        yield node, link


@pytest.fixture(scope="module")
def keyed_pair(tmp_path_factory: pytest.TempPathFactory,
               node_runner: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    yield from keyed(tmp_path_factory.mktemp("keyed"), node_runner)


@pytest.fixture
def fresh_keyed(tmp_path: Path, node_runner: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    yield from keyed(tmp_path / "state", node_runner)


def counters(link: NodeLink) -> list[Any]:
    """The commanding packet's body once the node has handled everything sent before: a
    signed noop (one more accepted command) completes first, then a packet is awaited."""
    link.send_and_assert_command(ids.CMD_NOOP)
    return list(link.await_telemetry(COMMANDING, timeout=12).body)


def relearn_boot(link: NodeLink, mark: int) -> None:
    """After a reboot: learn the boot from housekeeping, sending nothing (a command would
    raise the node's high-water mark above the replays that follow)."""
    link.await_boot(mark=mark)
    link.boot = None
    boot = link.await_telemetry(1, timeout=10).body[1]
    link.boot = boot


def answers(link: NodeLink, mark: int, seqs: set[int]) -> list[Any]:
    """Verifications since mark for any of seqs."""
    return [m for m in link.since(mark) if m.kind == M.KIND_VERIFICATION and m.body[0] in seqs]


def signed_message(link: NodeLink, cmd_id: int, args: list[Any], seq: int) -> bytes:
    assert link.signer is not None and link.boot is not None
    message = encode_message(M.KIND_COMMAND, seq, 0, cmd_id, args, link.boot)
    return link.signer.sign(message)[0]


def test_signed_commands_get_authenticated_answers(keyed_pair):
    _node, link = keyed_pair
    mark = link.mark()
    first, final = link.command(ids.CMD_NOOP)
    assert (first.body[1], final.body[1]) == (ACCEPTED, COMPLETED)
    seq = first.body[0]
    assert first.auth == final.auth == link.sent_counters[seq][-1]
    assert link.auth_bad == 0
    # nothing plain answers a signed command
    assert all(m.auth is not None for m in link.since(mark) if m.kind == M.KIND_VERIFICATION)


def test_plain_commands_are_rejected_unauthenticated(keyed_pair):
    _node, link = keyed_pair
    mark = link.mark()
    seq = link.send_command(ids.CMD_NOOP, plain=True)
    v = link.verification(seq, ids.CMD_NOOP, (ACCEPTED, REJECTED), mark=mark)
    assert (v.body[1], v.body[2], v.auth) == (REJECTED, M.UNAUTHENTICATED, None)
    body = counters(link)
    assert body[I_STATE] == 2  # ENFORCED


def test_auth_policy_only_authenticated_and_open_says_so(keyed_pair):
    _node, link = keyed_pair
    mark = link.mark()
    seq = link.send_command(ids.CMD_AUTH_POLICY, False, plain=True, arm=False)
    v = link.verification(seq, ids.CMD_AUTH_POLICY, (ACCEPTED, REJECTED), mark=mark)
    assert (v.body[1], v.body[2]) == (REJECTED, M.UNAUTHENTICATED)
    link.send_and_assert_command(ids.CMD_AUTH_POLICY, False)
    link.assert_event(ids.EV_AUTH_OPEN, mark, lambda a: a == [1])
    assert counters(link)[I_STATE] == 1
    link.send_command(ids.CMD_NOOP, plain=True)  # open by command: plain commands run
    mark = link.mark()
    seq = link.send_command(ids.CMD_NOOP, plain=True)
    assert link.verification(seq, ids.CMD_NOOP, (COMPLETED,), mark=mark).auth is None
    link.send_and_assert_command(ids.CMD_AUTH_POLICY, True)
    assert counters(link)[I_STATE] == 2


def test_out_of_order_within_the_window_is_accepted_once(keyed_pair):
    _node, link = keyed_pair
    seqs = [link.next_seq() for _ in range(3)]
    frames = [signed_message(link, ids.CMD_NOOP, [], s) for s in seqs]
    mark = link.mark()
    for i in (2, 0, 1):
        link.write(encode_frame(frames[i]))
    for s in seqs:
        link.verification(s, ids.CMD_NOOP, (COMPLETED,), mark=mark)
    before = counters(link)
    link.write(encode_frame(frames[1]))  # seen: a replay
    after = counters(link)
    assert after[I_REPLAYED] == before[I_REPLAYED] + 1
    assert after[I_ACCEPTED] == before[I_ACCEPTED] + 1  # counters()'s noop


def _flip(data: bytes, lo: int, hi: int, rng: random.Random) -> bytes:
    b = bytearray(data)
    i = rng.randrange(lo, hi)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def forgeries(link: NodeLink, n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """n forged objects of every family, each on a fresh counter and a fresh seq, for
    param_set test_value (an executed one would show in the parameter)."""
    out = []
    other = Signer(bytes(32), DEV_OPERATOR, DEV_GENERATION)  # the right kid, a wrong key
    stranger = Signer(DEV_MASTER, 7, 0)  # an operator the node does not have
    old_gen = Signer(DEV_MASTER, DEV_OPERATOR, 1)  # a generation the node does not hold
    revoked = Signer(REVOKED_MASTER, 1, 0)  # the right key of an operator revoked for good
    families = ("random_tag", "flip_head", "flip_protected", "flip_payload", "flip_tag",
                "wrong_key", "unknown_operator", "other_generation", "revoked_key",
                "truncated_tag", "altered_args")
    for i in range(n):
        family = families[i % len(families)]
        seq = link.next_seq()
        value = rng.randrange(30, 250)  # value and value + 1 both encode as 18 xx
        good = signed_message(link, ids.CMD_PARAM_SET, [PARAM_TEST_VALUE, value], seq)
        r = cose.Mac0Reader()
        assert r.parse(good, len(good), cose.LABEL_COUNTER) == cose.OK
        if family == "random_tag":
            bad = good[:r.tag] + rng.randbytes(32)
        elif family == "flip_head":
            bad = _flip(good, 0, 3, rng)
        elif family == "flip_protected":
            bad = _flip(good, 3, r.unprot, rng)
        elif family == "flip_payload":
            bad = _flip(good, r.payload, r.payload_end, rng)
        elif family == "flip_tag":
            bad = _flip(good, r.tag, len(good), rng)
        elif family in ("wrong_key", "unknown_operator", "other_generation", "revoked_key"):
            signer = {"wrong_key": other, "unknown_operator": stranger,
                      "other_generation": old_gen, "revoked_key": revoked}[family]
            signer.counter = max(signer.counter, link.signer.counter)  # type: ignore[union-attr]
            message = encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                                     [PARAM_TEST_VALUE, value], link.boot)
            bad = signer.sign(message)[0]
        elif family == "truncated_tag":
            cut = rng.randrange(1, 32)
            bad = good[:len(good) - cut]
            if rng.random() < 0.5:  # and the bstr head made to agree
                bad = bad[:r.tag - 1] + bytes((32 - cut,)) + bad[r.tag:]
        else:  # altered_args: the valid tag on another value
            message = encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                                     [PARAM_TEST_VALUE, value + 1], link.boot)
            assert len(message) == r.payload_end - r.payload
            bad = good[:r.payload] + message + good[r.payload_end:]
        assert bad != good
        out.append((family, bad))
    return out


def test_forged_commands_are_never_executed_and_all_counted(keyed_pair):
    _node, link = keyed_pair
    link.send_and_assert_command(ids.CMD_PARAM_SET, PARAM_TEST_VALUE, 0)
    rng = random.Random(13)
    before = counters(link)
    forged = forgeries(link, ATTACKS, rng)
    mark = link.mark()
    for _family, bad in forged:
        link.write(encode_frame(bad))
    got = [m for m in link.since(mark) if m.kind == M.KIND_VERIFICATION
           and m.id == ids.CMD_PARAM_SET]
    assert got == [], f"forged commands were answered: {got[:3]}"
    # a flipped first byte (no tag 17) makes a plain message, not a command: counted in
    # cmds_rejected, unanswered (no address: §5); every other one is an authenticated object
    plain = sum(1 for _f, bad in forged if bad[0] != 0xD1)
    after = counters(link)  # a signed command after them still works
    assert after[I_FORGED] - before[I_FORGED] == ATTACKS - plain
    assert after[I_REPLAYED] == before[I_REPLAYED]
    assert after[I_ACCEPTED] - before[I_ACCEPTED] == 1  # counters()'s noop only
    assert after[I_REJECTED] - before[I_REJECTED] == plain
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, PARAM_TEST_VALUE) == 0
    # the throttled event ends up accounting for every refusal
    link.await_event(ids.EV_AUTH_REFUSED, lambda a: a == [after[I_FORGED], after[I_REPLAYED]],
                     timeout=15, mark=mark)
    events = link.events(ids.EV_AUTH_REFUSED, mark)
    assert len(events) <= 3, "one auth_refused event per 10 s at most"


def test_replays_same_and_older_counters_and_after_a_reboot(fresh_keyed):
    node, link = fresh_keyed
    before = counters(link)
    sent = []
    seqs = set()
    for _ in range(40):
        seq = link.next_seq()
        seqs.add(seq)
        sent.append(signed_message(link, ids.CMD_NOOP, [], seq))
        mark = link.mark()
        link.write(encode_frame(sent[-1]))
        link.verification(seq, ids.CMD_NOOP, (COMPLETED,), mark=mark)
    n = max(ATTACKS // 2, len(sent))
    # the newest first (the same counter as the highest accepted), then older ones, in and
    # beyond the window
    replays = [sent[-1 - i % len(sent)] for i in range(n)]
    mark = link.mark()
    for frame in replays:
        link.write(encode_frame(frame))
    after = counters(link)
    assert after[I_REPLAYED] - before[I_REPLAYED] == n
    assert after[I_ACCEPTED] == before[I_ACCEPTED] + 1 + len(sent)
    assert after[I_FORGED] == before[I_FORGED]
    assert not answers(link, mark, seqs)
    # a reboot (signed), then the same frames, the reboot's own among them
    mark = link.mark()
    seq = link.next_seq()
    seqs.add(seq)
    link.arm(ids.CMD_REBOOT, b"\x80")  # hazardous: armed first (SPEC §10.8)
    reboot = signed_message(link, ids.CMD_REBOOT, [], seq)
    link.write(encode_frame(reboot))
    relearn_boot(link, mark)
    mark = link.mark()
    for frame in [*replays[: n - 1], reboot]:
        link.write(encode_frame(frame))
    body = counters(link)
    assert body[I_REPLAYED] == n  # counters restart at boot: every one of them
    assert body[I_ACCEPTED] == 1  # counters()'s noop only
    assert not answers(link, mark, seqs)
    assert node.boots == 2


def test_replays_after_power_cuts_during_reservation_writes(fresh_keyed):
    """Commands stream across reservation boundaries; power is cut at random moments; every
    frame that was answered before a cut is then replayed: none runs again."""
    node, link = fresh_keyed
    rng = random.Random(7)
    executed: list[bytes] = []
    for cut in range(3):
        stream = []
        for _ in range(rng.randrange(200, 320)):
            seq = link.next_seq()
            stream.append((seq, signed_message(link, ids.CMD_NOOP, [], seq)))
        mark = link.mark()
        half = len(stream) // 2
        for _seq, frame in stream:
            link.write(encode_frame(frame))
        # cut once half of them ran, at a random moment while the rest are handled (the
        # stream crosses a reservation boundary every 256 counters)
        link.verification(stream[half][0], ids.CMD_NOOP, (ACCEPTED,), mark=mark)
        time.sleep(rng.random() * 0.05)
        node.power_cut()
        answered = {m.body[0] for m in link.since(mark) if m.kind == M.KIND_VERIFICATION
                    and m.body[1] == ACCEPTED}
        executed += [(s, f) for s, f in stream if s in answered]
        node.wait_boots(cut + 2)
        relearn_boot(link, mark)
    # nothing sent since the boot: a packet is settled (a command would raise the node's
    # high-water mark above the replays)
    before = list(link.await_telemetry(COMMANDING, timeout=12).body)
    mark = link.mark()
    for _seq, frame in executed:
        link.write(encode_frame(frame))
    after = counters(link)  # and the ground's next counter works after the cuts
    assert executed, "no command ran before the cuts: the test proves nothing"
    assert after[I_REPLAYED] - before[I_REPLAYED] == len(executed)
    assert after[I_ACCEPTED] == before[I_ACCEPTED] + 1  # counters()'s noop only
    assert not answers(link, mark, {s for s, _f in executed})
