"""Boot and the dictionary check: the node answers, in SAFE, with our dictionary."""

from __future__ import annotations

from hil.vocabulary import NodeApi
from protocol import dictionary
from protocol.node_dictionary import DICT_HASH


def test_status_reports_our_dictionary_and_safe_mode(node: NodeApi) -> None:
    status = node.status()
    assert status.dict_hash == DICT_HASH
    assert status.mode == "SAFE"
    assert status.boot_count >= 1
    assert status.fw_version


def test_every_housekeeping_packet_carries_mode_boot_count_and_hash(node: NodeApi) -> None:
    boot_count = node.status().boot_count
    for channel, expected in (("dict_hash", DICT_HASH), ("boot_count", boot_count),
                              ("mode", 1)):
        node.await_telemetry(channel, expected, timeout=3)


def test_fresh_node_boots_into_safe_with_power_on_cause(fresh_node: NodeApi) -> None:
    status = fresh_node.status()
    assert (status.mode, status.boot_count, status.reset_cause) == ("SAFE", 1, "POWER_ON")
    # the boot event may have gone out before we listened: the persistent log has it
    log = fresh_node.client.event_log(0, timeout=fresh_node.seconds(5))
    boots = [e for e in log if e.name == "boot"]
    assert boots and boots[0].args[0] == 1


def test_node_dictionary_downlink_matches_ours(node: NodeApi) -> None:
    compact = node.client.fetch_dictionary(timeout=node.seconds(5))
    assert compact, "empty dictionary description"
    ids = {c.id for c in dictionary.COMMANDS}
    # the compact form lists every command id the ground knows (its exact layout is §7's)
    text = repr(compact)
    assert all(str(i) in text for i in ids)
