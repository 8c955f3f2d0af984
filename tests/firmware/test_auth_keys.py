"""key_rotate and key_revoke on the simulated node (SPEC §10.7): no key material on the link,
the old generation works until the new one is used, revocation persists across power cuts,
the node never ends without a usable key; hazardous commands armed under the key (§10.8).

The node holds two operators: the development key (operator 0) and operator 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nodelink import ACCEPTED, COMPLETED, NodeLink, field

from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, Signer, node_key_table
from ground.simnode import SimNode
from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.messages import encode_message

MASTER_1 = bytes(range(100, 132))
COMMANDING = ids.PKT_COMMANDING
I_FORGED = field(COMMANDING, "auth_forged")


@pytest.fixture
def two_keys(tmp_path: Path, node_runner: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    table = node_key_table([(DEV_OPERATOR, DEV_MASTER, DEV_GENERATION), (1, MASTER_1, 0)])
    with node_runner(tmp_path / "state", keys=table,
                     signer=Signer(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)) as pair:
        yield pair


def use(link: NodeLink, signer: Signer) -> Signer:
    """Sign with signer from now on, its counters continuing the operator's."""
    old = link.signer
    if old is not None and old.operator == signer.operator:
        signer.counter = old.counter
        signer.boot = old.boot
    link.signer = signer
    return signer


def counters(link: NodeLink) -> list[Any]:
    link.send_and_assert_command(ids.CMD_NOOP)
    return list(link.await_telemetry(COMMANDING, timeout=12).body)


def refused(link: NodeLink, signer: Signer) -> None:
    """A noop under signer is refused: unanswered, counted as forged."""
    before = counters(link)
    mine = link.signer
    use(link, signer)
    mark = link.mark()
    seq = link.send_command(ids.CMD_NOOP)
    use(link, mine)  # type: ignore[arg-type]
    after = counters(link)
    assert after[I_FORGED] == before[I_FORGED] + 1
    assert not [m for m in link.since(mark) if m.kind == M.KIND_VERIFICATION
                and m.body[0] == seq and m.id == ids.CMD_NOOP]


def power_cycle(node: SimNode, link: NodeLink) -> None:
    mark = link.mark()
    node.power_cut()
    link.await_boot(mark=mark)
    link.boot = None


def test_rotate_keeps_the_old_generation_until_the_new_one_is_used(two_keys):
    node, link = two_keys
    gen0 = link.signer
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_KEY_ROTATE, DEV_OPERATOR, 1)  # armed, under gen 0
    link.assert_event(ids.EV_KEY_CHANGED, mark, lambda a: a == [DEV_OPERATOR, 1, 1])
    assert link.auth_bad == 0  # the answers were under generation 0, the command's key
    link.send_and_assert_command(ids.CMD_NOOP)  # generation 0 still works
    power_cycle(node, link)  # and across a power cut, until the new one is used
    link.send_and_assert_command(ids.CMD_NOOP)
    gen1 = use(link, Signer(DEV_MASTER, DEV_OPERATOR, 1))
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_NOOP)  # the new generation: the old one drops
    link.assert_event(ids.EV_KEY_CHANGED, mark, lambda a: a == [DEV_OPERATOR, 3, 0])
    refused(link, gen0)  # type: ignore[arg-type]
    power_cycle(node, link)
    refused(link, gen0)  # type: ignore[arg-type]
    assert link.signer is gen1
    # not back, not to the same generation
    link.assert_failed(ids.CMD_KEY_ROTATE, DEV_OPERATOR, 1, code=M.KEY_REFUSED)
    link.assert_failed(ids.CMD_KEY_ROTATE, 9, 2, code=M.NOT_FOUND)


def test_revoke_an_operator_for_good_survives_power_cuts(two_keys):
    node, link = two_keys
    op1 = Signer(MASTER_1, 1, 0)
    dev = link.signer
    use(link, op1)
    link.send_and_assert_command(ids.CMD_NOOP)  # operator 1 works
    use(link, dev)  # type: ignore[arg-type]
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_KEY_REVOKE, 1, 255)
    link.assert_event(ids.EV_KEY_CHANGED, mark, lambda a: a == [1, 2, 255])
    refused(link, op1)
    power_cycle(node, link)
    refused(link, op1)
    refused(link, Signer(MASTER_1, 1, 1))  # no generation of it comes back
    link.assert_failed(ids.CMD_KEY_ROTATE, 1, 2, code=M.KEY_REFUSED)
    # the last usable key cannot be revoked: nobody could command the node any more
    link.assert_failed(ids.CMD_KEY_REVOKE, DEV_OPERATOR, 255, code=M.KEY_REFUSED)
    link.assert_failed(ids.CMD_KEY_REVOKE, DEV_OPERATOR, 0, code=M.KEY_REFUSED)
    link.send_and_assert_command(ids.CMD_NOOP)


def test_revoke_a_generation_then_another_operator_rotates_it_back(two_keys):
    _node, link = two_keys
    dev = link.signer
    link.send_and_assert_command(ids.CMD_KEY_REVOKE, 1, 0)  # operator 1's generation 0
    refused(link, Signer(MASTER_1, 1, 0))
    link.send_and_assert_command(ids.CMD_KEY_ROTATE, 1, 1)
    use(link, Signer(MASTER_1, 1, 1))
    link.send_and_assert_command(ids.CMD_NOOP)
    use(link, dev)  # type: ignore[arg-type]
    refused(link, Signer(MASTER_1, 1, 0))


def test_a_new_key_table_discards_the_rotations(two_keys):
    node, link = two_keys
    link.send_and_assert_command(ids.CMD_KEY_REVOKE, 1, 255)
    assert (node.state_dir / "keygen.bin").exists()
    node.stop()
    (node.state_dir / "keys.bin").write_bytes(node_key_table(
        [(DEV_OPERATOR, DEV_MASTER, DEV_GENERATION), (1, MASTER_1, 3)]))
    node2 = SimNode(seed=1, state_dir=node.state_dir).start()
    link2 = NodeLink(node2.port, node2.log_path)
    try:
        link2.signer = Signer(MASTER_1, 1, 3)
        link2.send_and_assert_command(ids.CMD_NOOP, timeout=10)
    finally:
        link2.close()
        node2.stop()


def test_arm_names_the_exact_arguments(two_keys):
    _node, link = two_keys
    mark = link.mark()
    message = encode_message(M.KIND_COMMAND, 1, 0, ids.CMD_KEY_REVOKE, [1, 3],
                             link.current_boot())
    args = M.command_arguments(message)
    assert args == b"\x82\x01\x03"
    link.arm(ids.CMD_KEY_REVOKE, args)
    link.assert_rejected(ids.CMD_KEY_REVOKE, 1, 4, code=M.NOT_ARMED, arm=False)
    link.arm(ids.CMD_KEY_REVOKE, args)
    # an arm by another sender (operator 1) does not allow operator 0's command
    dev = link.signer
    use(link, Signer(MASTER_1, 1, 0))
    link.arm(ids.CMD_KEY_REVOKE, args)
    use(link, dev)  # type: ignore[arg-type]
    link.assert_rejected(ids.CMD_KEY_REVOKE, 1, 3, code=M.NOT_ARMED, arm=False)
    assert not link.events(ids.EV_KEY_CHANGED, mark)


def test_refused_frames_do_not_disarm(two_keys):
    """A forged or replayed object gets no answer and changes nothing: not the arming."""
    _node, link = two_keys
    link.arm(ids.CMD_PARAM_RESET, b"\x80")
    seq = link.next_seq()
    forged = Signer(bytes(32), DEV_OPERATOR, DEV_GENERATION)
    forged.counter = link.signer.counter  # type: ignore[union-attr]
    link.write(encode_frame(forged.sign(encode_message(
        M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], link.current_boot()))[0]))
    mark = link.mark()
    first, final = link.command(ids.CMD_PARAM_RESET, arm=False)
    assert (first.body[1], final.body[1]) == (ACCEPTED, COMPLETED)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_EVENT_RATE_LIMIT, 100)
    assert not link.events(ids.EV_DISARMED, mark)
