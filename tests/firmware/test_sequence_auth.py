"""A replayed sequence upload part is refused (issue 14, SPEC §10.4, §12.2): on a node with a
key, the frame of a part that was accepted, sent again after the upload restarted, is refused
as a replay (counted in auth_replayed, never answered) and writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from nodelink import COMPLETED, NodeLink, field

from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, Signer
from ground.simnode import SimNode
from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.messages import encode_message
from protocol.node_dictionary import DICT_HASH

COMMANDING = ids.PKT_COMMANDING
I_ACCEPTED = field(COMMANDING, "cmds_accepted")
I_REPLAYED = field(COMMANDING, "auth_replayed")
I_HELD = field(ids.PKT_SEQUENCE, "seq_upload_held")


@pytest.fixture
def keyed(tmp_path: Path, node_runner: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    with node_runner(tmp_path / "state", dev_key=True,
                     signer=Signer(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)) as pair:
        yield pair


def signed(link: NodeLink, cmd_id: int, args: list[Any], seq: int) -> bytes:
    assert link.signer is not None and link.boot is not None
    return link.signer.sign(encode_message(M.KIND_COMMAND, seq, 0, cmd_id, args, link.boot))[0]


def test_a_replayed_upload_part_is_refused_and_writes_nothing(keyed):
    _node, link = keyed
    first = cbor2.dumps([1, DICT_HASH, "a", [[0, 0, 1, [], 0]] * 30], canonical=True)
    second = cbor2.dumps([1, DICT_HASH, "b", [[0, 0, 1, [], 1]] * 30], canonical=True)
    _, done = link.command(ids.CMD_SEQ_UPLOAD_BEGIN, 0, len(first), hashlib.sha256(first).digest())
    assert done.body[1:] == [COMPLETED, 0, 0]
    seq = link.next_seq()
    part = signed(link, ids.CMD_SEQ_UPLOAD_PART, [0, 0, first[:128]], seq)
    mark = link.mark()
    link.write(encode_frame(part))
    assert link.verification(seq, ids.CMD_SEQ_UPLOAD_PART, (COMPLETED,), mark=mark).body[3] == 128
    # a new upload: nothing held; then the part's frame again
    _, done = link.command(ids.CMD_SEQ_UPLOAD_BEGIN, 0, len(second),
                           hashlib.sha256(second).digest())
    assert done.body[1:] == [COMPLETED, 0, 0]
    before = list(link.await_telemetry(COMMANDING, timeout=12).body)
    mark = link.mark()
    link.write(encode_frame(part))
    for _ in range(2):  # the first packet may have been made before the frame was read
        after = list(link.await_telemetry(COMMANDING, timeout=12).body)
        if after[I_REPLAYED] != before[I_REPLAYED]:
            break
    assert after[I_REPLAYED] == before[I_REPLAYED] + 1
    assert after[I_ACCEPTED] == before[I_ACCEPTED]
    assert [m for m in link.since(mark) if m.kind == M.KIND_VERIFICATION] == []
    _, done = link.command(ids.CMD_SEQ_UPLOAD_BEGIN, 0, len(second),
                           hashlib.sha256(second).digest())
    assert done.body[1:] == [COMPLETED, 0, 0]  # the replay wrote nothing
    assert link.await_telemetry(ids.PKT_SEQUENCE, timeout=12).body[I_HELD] == 0
