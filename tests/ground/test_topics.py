"""The topic scheme and the unanswered-command bookkeeping of the mqtt:// port."""

from __future__ import annotations

import cbor2
import pytest

from ground import codec, topics
from ground.unanswered import Unanswered, command_key, final_verification


def test_topic_names_and_parsing() -> None:
    assert topics.topic("moon", "pcu1", "tm") == "ilrs/v1/moon/pcu1/tm"
    assert topics.parse("ilrs/v1/moon/pcu1/status") == ("moon", "pcu1", "status")
    assert topics.parse("ilrs/v2/moon/pcu1/tm") is None
    assert topics.parse("ilrs/v1/moon/tm") is None
    for bad in ("", "a/b", "+", "#", "x" * 65, "sp ace"):
        with pytest.raises(ValueError, match="one MQTT topic level"):
            topics.check_name("node", bad)


@pytest.mark.parametrize(("kind", "name"), sorted(topics.DOWN_KINDS.items()))
def test_downlink_kind_read_from_the_message_head(kind: int, name: str) -> None:
    assert topics.kind_of(codec.encode(kind, 300, 123456, 2, [1, 2])) == name


def test_unreadable_heads_go_to_bad() -> None:
    assert topics.kind_of(b"") == topics.BAD
    assert topics.kind_of(cbor2.dumps([1, 9, 0, 0, 0, []])) == topics.BAD  # no kind 9
    assert topics.kind_of(cbor2.dumps({"a": 1})) == topics.BAD
    assert topics.kind_of(codec.encode_command(1, 1, [], 1)) == topics.BAD  # not a downlink


def test_status_payloads() -> None:
    body = topics.read_status(topics.status_payload(topics.LOST, "EIO", "gw1"))
    assert (body["link"], body["detail"], body["gateway"]) == ("lost", "EIO", "gw1")
    assert body["node_id"] is None
    assert topics.read_status(topics.status_payload("up", "", "g", 7))["node_id"] == "0x00000007"
    assert topics.read_status(topics.status_payload("wrong_node", "", "g"))["link"] == "wrong_node"
    assert topics.read_status(b"{not json")["link"] == "unknown"
    assert topics.read_status(b'{"link": "maybe"}')["link"] == "unknown"


def test_command_keys_plain_and_wrapped() -> None:
    plain = codec.encode_command(4097, 8, [14, -5], 3)
    assert command_key(plain) == (4097, 8)
    assert command_key(cbor2.dumps([1, 0, 7, 0, 1, []])) == (7, 1)  # six items
    mac0 = cbor2.dumps(cbor2.CBORTag(17, [b"\xa1\x01\x05", {}, plain, b"tag"]))
    assert command_key(mac0) == (4097, 8)
    assert command_key(b"\xff") is None and command_key(cbor2.dumps([1, 2, 3])) is None


def test_only_final_verifications_answer() -> None:
    accepted = codec.encode(1, 5, 100, 8, [4097, 0, 0, None])
    completed = codec.encode(1, 6, 101, 8, [4097, 2, 0, None])
    assert final_verification(accepted) is None
    assert final_verification(completed) == (4097, 8)
    pending = Unanswered(window_s=30)
    pending.sent(codec.encode_command(4097, 8, [14, -5], 3))
    pending.sent(codec.encode_command(4098, 1, [], 3))
    pending.answered(accepted)
    assert len(pending.due()) == 2
    pending.answered(completed)
    assert pending.due() == [codec.encode_command(4098, 1, [], 3)]
    assert pending.resent == 3
