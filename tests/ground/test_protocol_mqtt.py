"""The ``mqtt://`` port's judgement of a ``gone`` status (the gateway's last will), without a
broker: a stand-in MQTT client records what the port sends, and the test plays the broker's
part (the will, then either the answer to the port's round trip or the connection dropping).

Why: Mosquitto delivers the wills of its connected clients while it stops, so a will alone does
not say the gateway died (tests/ground/test_station_faults.py shows it with the real brokers).
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest
import serial

from ground import topics
from ground.urlhandler.protocol_mqtt import Serial

ST, NODE = "s", "n"
NOOP_MESSAGE = bytes.fromhex("870100070001800a")  # any bytes: the port forwards them unchanged


class StandIn:
    """What the port calls on its paho client, recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.unsubscribed: list[str] = []
        self.subscribed: list[list[tuple[str, int]]] = []

    def subscribe(self, subs: list[tuple[str, int]]) -> None:
        self.subscribed.append(subs)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.published.append((topic, bytes(payload)))

    def unsubscribe(self, topic: str) -> tuple[int, int]:
        self.unsubscribed.append(topic)
        return 0, 100 + len(self.unsubscribed)


@pytest.fixture
def port() -> Any:
    """A port as ``open`` leaves it once the node is up, on the stand-in client."""
    port: Any = serial.serial_for_url(f"mqtt://127.0.0.1:1/{ST}/{NODE}", do_not_open=True)
    assert isinstance(port, Serial)
    stand_in = StandIn()
    port._topic = {k: topics.topic(ST, NODE, k) for k in
                   (*topics.DOWNLINK, topics.STATUS, topics.REFUSED, topics.CMD, "probe")}
    port._node, port._readonly = NODE, False
    port._downlink = {port._topic[k] for k in topics.DOWNLINK}
    port.timeout = 0.01
    port._connections = 1  # open() connected once
    port._client, port._broker_up, port.is_open = stand_in, True, True
    return port


def status(port: Any, link: str, detail: str) -> None:
    msg = mqtt.MQTTMessage(topic=port._topic[topics.STATUS].encode())
    msg.payload = topics.status_payload(link, detail, "gw")
    port._on_message(port._client, None, msg)


def write(port: Any, message: bytes) -> None:
    from ground.link import encode_frame

    port.write(encode_frame(message))


def test_a_will_the_broker_answers_after_is_the_link_gone(port: Any) -> None:
    status(port, topics.GONE, "the gateway's connection died")
    assert port._client.unsubscribed == [topics.topic(ST, NODE, "probe")]
    assert port._problem == ""  # not judged before the broker answers
    port._on_unsubscribe(port._client, None, 101, [], None)
    assert port._problem == "node n link is gone: the gateway's connection died"
    with pytest.raises(serial.SerialException, match="link is gone"):
        port.read(1)


def test_a_will_then_the_broker_leaving_is_unknown_and_holds_commands(port: Any) -> None:
    status(port, topics.GONE, "the gateway's connection died")
    write(port, NOOP_MESSAGE)  # written while the will is not yet judged: held
    port._on_disconnect(port._client, None, None, None, None)
    port._on_unsubscribe(port._client, None, 101, [], None)  # a late answer changes nothing
    assert port._problem == "" and port.read(1) == b""
    write(port, NOOP_MESSAGE)  # the broker connection is down: held
    assert port.held == 2 and port._client.published == []
    # back: connected again, then the gateway's `up` publishes the unanswered command once
    success = mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, "Success")
    port._on_connect(port._client, None, None, success)
    status(port, topics.UP, "/dev/pts/9")
    assert port._client.published == [(topics.topic(ST, NODE, topics.CMD), NOOP_MESSAGE)]


def test_a_newer_status_replaces_a_will_not_yet_judged(port: Any) -> None:
    status(port, topics.GONE, "the gateway's connection died")
    status(port, topics.UP, "/dev/pts/9")  # a gateway back before the broker's answer
    port._on_unsubscribe(port._client, None, 101, [], None)
    assert port._problem == ""
    write(port, NOOP_MESSAGE)
    assert port.held == 0 and len(port._client.published) == 1


def test_other_states_are_taken_at_once(port: Any) -> None:
    status(port, topics.DOWN, "the gateway stopped")
    assert port._client.unsubscribed == []
    assert port._problem == "node n link is down: the gateway stopped"
