"""Boot and the dictionary check: the node answers, in SAFE, with our dictionary."""

from __future__ import annotations

import hashlib
import importlib.util

import cbor2

from ground import bulk
from ground.micropython import REPO_ROOT
from hil.vocabulary import NodeApi
from protocol import ids
from protocol.node_dictionary import DICT_HASH

GENERATOR = REPO_ROOT / "tools" / "gen_node_dictionary.py"


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
    """From the factory (the sim, the virtual Pico: an empty flash) boot 1, POWER_ON; on a
    board or through a broker a fresh node is the known state and a reboot: COMMANDED."""
    status = fresh_node.status()
    # the boot event may have gone out before we listened: the persistent log has it
    log = fresh_node.client.event_log(0, timeout=fresh_node.seconds(5))
    boots = [e for e in log if e.name == "boot"]
    target = fresh_node.target
    if target is not None and (target.is_sim or target.is_vpico):
        assert (status.mode, status.boot_count, status.reset_cause) == ("SAFE", 1, "POWER_ON")
        assert boots and boots[0].args[0] == 1
    else:
        assert (status.mode, status.reset_cause) == ("SAFE", "COMMANDED")
        assert boots and list(boots[-1].args) == [status.boot_count, ids.RESET_COMMANDED]


def _our_description() -> bytes:
    """The description (SPEC §7.2) generated from protocol/dictionary.py by the reference
    implementation of §7.1, not the node's copy in protocol/node_dictionary.py."""
    spec = importlib.util.spec_from_file_location("gen_node_dictionary", GENERATOR)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    description: bytes = gen.encode_compact(gen.compact())
    return description


def test_node_dictionary_downlink_matches_ours(node: NodeApi) -> None:
    ours = _our_description()
    # the bytes the node sends as bulk type 2, joined: byte for byte our description (§7.2)
    payload = node.client._bulk_transfer("dict_downlink", bulk.DICTIONARY, node.seconds(10.0))
    assert payload.hex() == ours.hex()
    # its hash is the first four bytes of the SHA-256, big-endian, and is DICT_HASH
    digest = hashlib.sha256(payload).digest()
    assert int.from_bytes(digest[:4], "big") == DICT_HASH
    fetched = node.client.fetch_dictionary(timeout=node.seconds(5))
    assert (fetched.hash, fetched.matches, fetched.size) == (DICT_HASH, True, len(ours))
    assert fetched.description == cbor2.loads(ours)
