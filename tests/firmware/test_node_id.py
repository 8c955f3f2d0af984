"""The node's identity (SPEC §5.3): the node_id channel in every housekeeping packet and the
status result; the node_id parameter when set, else the board's own id (sim: the port's
node_id, else one kept in the state directory, as a Pico's is fixed in its flash chip)."""

from __future__ import annotations

from pathlib import Path

from protocol import ids
from protocol.dictionary import PACKETS

NODE_ID = 4  # header position: mode, boot_count, dict_hash, node_id


def _ids(link) -> tuple[int, int]:
    """(status result's node id, the next power packet's node_id)."""
    status = link.send_and_assert_command(ids.CMD_STATUS)
    return status[7], link.await_telemetry(ids.PKT_POWER).body[NODE_ID - 1]


def test_every_packet_carries_node_id_fourth() -> None:
    assert all(p.channels[:4] == ("mode", "boot_count", "dict_hash", "node_id")
               for p in PACKETS)


def test_given_node_id_parameter_overrides_and_zero_gives_it_back(
    tmp_path: Path, node_tools
) -> None:
    start_node, ready = node_tools
    node, link = start_node(tmp_path / "n", node_id=0x00ABCDEF)
    try:
        ready(link)
        assert _ids(link) == (0x00ABCDEF, 0x00ABCDEF)
        link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_NODE_ID, 77)
        assert _ids(link) == (77, 77)
        link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_NODE_ID, 0)
        assert _ids(link) == (0x00ABCDEF, 0x00ABCDEF)
    finally:
        link.close()
        node.stop()


def test_own_id_is_kept_in_the_state_directory(tmp_path: Path, node_tools) -> None:
    start_node, ready = node_tools
    seen = []
    for state in ("a", "a", "b"):
        node, link = start_node(tmp_path / state)
        try:
            ready(link)
            status_id, hk_id = _ids(link)
            assert status_id == hk_id and 0 < status_id <= 0xFFFFFFFF
            seen.append(status_id)
        finally:
            link.close()
            node.stop()
    assert seen[0] == seen[1] != seen[2]  # same flash, same id; another board, another id
    assert len((tmp_path / "a" / "unique_id").read_bytes()) == 8
