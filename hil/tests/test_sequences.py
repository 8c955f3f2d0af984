"""Stored sequences (SPEC §12, issue 14): a long sequence runs to its end, a failed step does
what the sequence says, uploads resume after a lost part, a reboot and power cuts, and a
replayed upload part is refused.

The upload here is the protocol itself (begin, parts, commit), not the ground's `ground seq`
tool, so these tests check the node's side of the contract with nothing in between.
``HIL_POWER_CUTS`` sets how many cuts the upload power-cut test makes (default 5; each costs a
boot: about a minute or more on the virtual Pico).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import cbor2
import pytest

from ground import codec
from ground.link import encode_frame
from hil.vocabulary import HilAssertion, NodeApi
from protocol import ids
from protocol.node_dictionary import DICT_HASH

CUTS = int(os.environ.get("HIL_POWER_CUTS", "5"))
PART = 128
SEQ_EVENTS = ("seq_started", "seq_step", "seq_step_failed", "seq_ended", "seq_triggered",
              "seq_stored", "seq_invalid", "seq_interrupted", "safe_mode", "mode_changed")
IDLE, DONE, FAILED = 1, 3, 4
INHIBITED = 20


def image(name: str, steps: Sequence[Sequence[Any]]) -> bytes:
    return cbor2.dumps([1, DICT_HASH, name, list(steps)], canonical=True)


def image_hash(img: bytes) -> int:
    return int.from_bytes(hashlib.sha256(img).digest()[:4], "big")


def begin(node: NodeApi, slot: int, img: bytes) -> int:
    held = node.send_and_assert_command("seq_upload_begin", slot=slot, size=len(img),
                                        digest=hashlib.sha256(img).digest())
    assert isinstance(held, int) and 0 <= held <= len(img)
    return held


def send_parts(node: NodeApi, slot: int, img: bytes, start: int = 0) -> int:
    """Send the parts from ``start`` (each asserted completed); return the bytes held."""
    held = start
    for off in range(start, len(img), PART):
        held = node.send_and_assert_command("seq_upload_part", slot=slot, offset=off,
                                            data=img[off:off + PART])
    return held


def restart(node: NodeApi, slot: int, img: bytes) -> None:
    """Begin an upload of img with nothing held, whatever an earlier run left (a begin with
    another digest discards the upload in progress)."""
    node.send_and_assert_command("seq_upload_begin", slot=slot, size=len(img), digest=bytes(32))
    assert begin(node, slot, img) == 0


def upload(node: NodeApi, slot: int, img: bytes) -> int:
    """A whole upload, resuming what the node holds; returns the stored hash."""
    held = begin(node, slot, img)
    assert send_parts(node, slot, img, held) == len(img)
    stored = node.send_and_assert_command("seq_upload_commit", slot=slot)
    assert stored == image_hash(img)
    return int(stored)


def slot_record(node: NodeApi, slot: int) -> list[Any]:
    """[state, step, hash, steps, name, trigger, level] of a slot (seq_list)."""
    return list(node.send_and_assert_command("seq_list")[slot])


def seq_events(node: NodeApi, since: int) -> list[tuple[str, tuple[Any, ...]]]:
    return [(e.name, tuple(e.args)) for e in node.history.events_since(since)
            if e.name in SEQ_EVENTS]


def await_ended(node: NodeApi, slot: int, since: int, timeout: float = 30.0) -> Any:
    return node.assert_event("seq_ended", slot=slot, since=since, timeout=timeout)


def test_a_200_step_sequence_runs_to_the_end(node: NodeApi) -> None:
    steps = [[0, 0, ids.CMD_PARAM_SET, [14, i], 0] for i in range(200)]
    img = image("long", steps)
    h = upload(node, 3, img)
    assert slot_record(node, 3)[:5] == [IDLE, 0, h, 200, "long"]
    mark = node.mark()
    node.send_and_assert_command("seq_start", slot=3)
    ended = await_ended(node, 3, mark, timeout=120)
    assert tuple(ended.args) == (3, DONE, 199)
    assert node.client.param_get("test_value", timeout=node.seconds(5)) == 199
    assert slot_record(node, 3)[:4] == [DONE, 199, h, 200]
    started = [a for n, a in seq_events(node, mark) if n == "seq_started"]
    assert started == [(3, 0, h)]
    # Every step is accounted for: its seq_step event arrived, or the throttle counted it and
    # said so in an events_suppressed event (SPEC §12.6) when its window closed.
    def accounted() -> tuple[list[int], int] | None:
        events = node.history.events_since(mark)
        shown = [e.args[1] for e in events if e.name == "seq_step"]
        hidden = sum(e.args[1] for e in events if e.name == "events_suppressed"
                     and e.args[0] == ids.EV_SEQ_STEP)
        return (shown, hidden) if len(shown) + hidden == 200 else None
    got = node.history.wait(accounted, 30.0)
    assert got is not None, f"seq_step events do not account for 200 steps: {node.log_path}"
    shown, _ = got
    assert shown == sorted(set(shown)) and all(0 <= i < 200 for i in shown)


@pytest.mark.parametrize("on_fail", ["STOP", "SKIP", "SAFE"])
def test_a_failed_step_does_what_the_sequence_says(node: NodeApi, on_fail: str) -> None:
    code = {"STOP": 0, "SKIP": 1, "SAFE": 2}[on_fail]
    # In NOMINAL a payload cannot be switched on (INHIBITED): step 1 fails.
    steps = [[0, 0, ids.CMD_NOOP, [], 0], [0, 0, ids.CMD_LOAD_SWITCH, [4, True], code],
             [0, 0, ids.CMD_PARAM_SET, [14, 5], 0]]
    h = upload(node, 0, image("fail-" + on_fail, steps))
    node.send_and_assert_command("param_set", param="event_rate_limit", value=100)
    node.send_and_assert_command("set_mode", mode="NOMINAL")
    mark = node.mark()
    node.send_and_assert_command("seq_start", slot=0)
    await_ended(node, 0, mark)
    head = [("seq_started", (0, 0, h)), ("seq_step", (0, 0)),
            ("seq_step_failed", (0, 1, INHIBITED))]
    expected = {
        "STOP": head + [("seq_ended", (0, FAILED, 1))],
        "SKIP": head + [("seq_step", (0, 2)), ("seq_ended", (0, DONE, 2))],
        "SAFE": head + [("safe_mode", (3,)), ("mode_changed", (2, 1)),
                        ("seq_ended", (0, FAILED, 1))],
    }[on_fail]
    assert seq_events(node, mark) == expected, node.log_path
    status = node.status()
    assert status.mode == ("SAFE" if on_fail == "SAFE" else "NOMINAL")
    value = node.client.param_get("test_value", timeout=node.seconds(5))
    assert value == (5 if on_fail == "SKIP" else 0)
    assert slot_record(node, 0)[:2] == [DONE if on_fail == "SKIP" else FAILED,
                                        2 if on_fail == "SKIP" else 1]


def test_an_upload_resumes_after_a_lost_part(node: NodeApi) -> None:
    img = image("resume", [[0, 10, ids.CMD_NOOP, [], 1]] * 80)
    assert len(img) > 3 * PART
    restart(node, 1, img)
    assert send_parts(node, 1, img[:PART]) == PART
    # part 1 is lost: part 2 does not continue the bytes held
    node.assert_command_rejected("seq_upload_part", "UPLOAD_STATE", slot=1, offset=2 * PART,
                                 data=img[2 * PART:3 * PART])
    node.assert_command_failed("seq_upload_commit", "UPLOAD_MISMATCH", slot=1)
    assert begin(node, 1, img) == PART  # resume: the ground learns where from
    assert send_parts(node, 1, img, PART) == len(img)
    assert node.send_and_assert_command("seq_upload_commit", slot=1) == image_hash(img)
    assert slot_record(node, 1)[2:5] == [image_hash(img), 80, "resume"]


def test_an_upload_resumes_after_a_reboot(node: NodeApi,
                                          power_cycle: Callable[..., None]) -> None:
    img = image("reboot", [[1, ids.CH_MODE, 3, 1, 1000, 0]] * 60)
    assert len(img) > 3 * PART
    restart(node, 2, img)
    held = send_parts(node, 2, img[:3 * PART])
    assert held == 3 * PART
    power_cycle(node)
    assert begin(node, 2, img) == held
    assert send_parts(node, 2, img, held) == len(img)
    assert node.send_and_assert_command("seq_upload_commit", slot=2) == image_hash(img)
    assert slot_record(node, 2)[:5] == [IDLE, 0, image_hash(img), 60, "reboot"]


def generation(g: int) -> bytes:
    """Sequence image number g: its own name and length (3 to 5 parts)."""
    return image(f"gen{g}", [[0, g, ids.CMD_PARAM_SET, [14, g % 1000], 0]] * (40 + g % 25))


@pytest.mark.power_cut(reason="needs a target whose power the rig can cut")
def test_upload_power_cuts_leave_the_old_or_the_new_sequence_whole(
        node: NodeApi, power_cycle: Callable[..., None]) -> None:
    rng = random.Random(1402)
    slot = 1
    stored = generation(0)
    upload(node, slot, stored)
    outcomes = {"old": 0, "new": 0}
    for cut in range(1, CUTS + 1):
        new = generation(cut)
        held = begin(node, slot, new)
        for off in range(held, len(new), PART):  # the parts and the commit, not awaited
            node.send_command("seq_upload_part", slot=slot, offset=off, data=new[off:off + PART])
        node.send_command("seq_upload_commit", slot=slot)
        node.sleep(rng.choice((0.0, rng.uniform(0.0, 0.03), rng.uniform(0.0, 0.1))))
        power_cycle(node)
        record = slot_record(node, slot)
        whole = {image_hash(img): [IDLE, 0, image_hash(img), len(cbor2.loads(img)[3]), f"gen{g}"]
                 for g, img in ((cut - 1, stored), (cut, new))}
        if record[:5] == whole[image_hash(stored)]:
            outcomes["old"] += 1
        elif record[:5] == whole[image_hash(new)]:
            outcomes["new"] += 1
        else:
            raise HilAssertion(f"cut {cut}: slot {slot} holds {record}, neither the old "
                               f"sequence {whole[image_hash(stored)]} nor the new one "
                               f"{whole[image_hash(new)]}", node.log_path)
        upload(node, slot, new)  # the resumed (or repeated) upload completes
        assert slot_record(node, slot)[:5] == whole[image_hash(new)]
        stored = new
    node.note(f"hil: {CUTS} power cuts during sequence uploads: {outcomes}")
    print(f"{CUTS} power cuts during sequence uploads: {outcomes}")


def test_a_replayed_upload_part_is_refused(node: NodeApi) -> None:
    signer = node.client.signer
    if signer is None:
        pytest.skip("the session is not authenticated: run with --target 'sim://?key=dev'")
    first = image("replay-a", [[0, 0, ids.CMD_NOOP, [], 0]] * 30)
    second = image("replay-b", [[0, 0, ids.CMD_NOOP, [], 1]] * 30)
    restart(node, 0, first)
    # part 0 of the first image, signed once, sent twice
    seq = node.next_seq()
    boot = node.client.boot or 0
    message = codec.encode_command(seq, ids.CMD_SEQ_UPLOAD_PART, [0, 0, first[:PART]], boot)
    signer.new_boot(boot)
    signed, _counter = signer.sign(message)
    node.send_bytes(encode_frame(signed))
    node.await_verification("seq_upload_part", seq, stages=("completed",))
    assert begin(node, 0, second) == 0  # a new upload: nothing held
    before = node.await_telemetry("auth_replayed", timeout=15).value
    mark = node.mark()
    node.send_bytes(encode_frame(signed))  # the replay
    node.await_telemetry("auth_replayed", before + 1, timeout=15)
    assert begin(node, 0, second) == 0  # the replayed part wrote nothing
    assert node.verifications("seq_upload_part", seq, since=mark) == []
