"""``ground gateway``: bridge node links to an MQTT broker (topics: ground.topics).

    ground gateway --broker mqtt://[user:pass@]host:1883 --station lab \\
        pcu1=/dev/ttyACM0 pcu2@0x2=sim://?seed=2&node_id=2 pcu3=socket://10.0.0.5:7000

Each node is a ``NodeBridge``: its own ``Transport`` (any port form) and its own MQTT
connection, whose last will is the node's retained ``status`` saying ``gone``. Downlink: every
CRC-verified frame's message is published, unchanged, on the topic of its kind (QoS 1); the
first housekeeping packet after the link comes up gives the node's dictionary hash, published
retained on ``dict``. Uplink: a message on ``cmd`` is framed and written to the node unchanged
(the gateway never reads, signs or re-sequences a command: it holds no key), but only while the
node's link is ``up``; otherwise it is not sent and a ``refused`` message says why, which the
operator's ``mqtt://`` port turns into a lost link with that reason.

The MQTT connection reconnects by itself (paho, 1 s to 2 s back-off) and on every
(re)connection re-subscribes to ``cmd`` and re-publishes the retained ``status`` and ``dict``,
so a broker restart (which may lose retained messages) leaves the topics as they were.
A node link that is lost is reopened by its Transport; each change is published on ``status``.
Node identity (SPEC §5.3): every housekeeping packet carries the node's ``node_id``. A topic
stands for one node: the id given as ``NAME@ID=PORT``, else the first one the gateway sees on
that port. A packet with another id (a board swapped on the cable, a node's id changed) makes
the status ``wrong_node``, saying both ids: from then on the gateway publishes nothing of that
node and sends it no command, until the right node is back on the port.
Bytes that were not a verified frame are counted per node (``discarded_bytes``), never
forwarded: MQTT carries whole messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import cbor2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ground import topics
from ground.errors import GroundError, UsageError
from ground.link import Deframer, encode_frame
from ground.transport import Transport, sim_default_key

DEFAULT_MQTT_PORT: Final = 1883
_HK: Final = "tm"
_CONNECT_TIMEOUT_S: Final = 10.0


class BrokerAddress:
    """``mqtt://[user[:password]@]host[:port]`` (the path, if any, is left to the caller)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise UsageError(f"{url}: a broker is mqtt://[user:password@]host[:port]")
        self.url = url
        self.host = parts.hostname
        try:
            self.port = parts.port or DEFAULT_MQTT_PORT
        except ValueError:
            raise UsageError(f"{url}: the port is not a number") from None
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.path = parts.path
        self.query = parts.query

    def client(self, client_id: str) -> mqtt.Client:
        """A paho client with these credentials, reconnecting by itself."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.reconnect_delay_set(1, 2)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)  # unbounded while the broker is away
        return client

    def connect(self, client: mqtt.Client) -> None:
        """Connect and start the network thread; a broker that is not there is one line."""
        try:
            client.connect(self.host, self.port, keepalive=10)
        except (TimeoutError, OSError) as exc:
            raise GatewayError(f"broker {self.host}:{self.port}: {exc.strerror or exc}") from None
        client.loop_start()


class GatewayError(GroundError, ConnectionError):
    exit_code = 3


class NodeBridge:
    """One node link bridged to the broker."""

    def __init__(
        self,
        broker: BrokerAddress,
        station: str,
        node: str,
        port: str,
        gateway: str,
        *,
        uplink_bytes_per_s: float | None = None,
        node_id: int | None = None,
    ) -> None:
        self.station = topics.check_name("station", station)
        self.node = topics.check_name("node", node)
        self.port = port
        self.gateway = gateway
        self.link = topics.DOWN
        self.detail = "not started"
        self.dict_hash: int | None = None
        # the node this topic names (SPEC §5.3 node_id): given, else the first one seen
        self.node_id = node_id
        self.node_id_given = node_id is not None
        self.published = 0
        self.forwarded = 0
        self.refused = 0
        self.withheld = 0  # messages of a node that is not this topic's, not published
        self._deframer = Deframer()
        self._broker = broker
        self._topic = {k: topics.topic(station, node, k) for k in (*topics.DOWNLINK, topics.STATUS,
                                                                    topics.DICT, topics.REFUSED,
                                                                    topics.CMD)}
        self._lock = threading.Lock()
        self._status_lock = threading.Lock()  # one link-state decision and publish at a time
        self._mqtt = broker.client(f"ilrs-gw-{station}-{node}-{os.getpid()}")
        self._mqtt.will_set(
            self._topic[topics.STATUS],
            topics.status_payload(topics.GONE, "the gateway's connection died", gateway, node_id),
            qos=1,
            retain=True,
        )
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_message = self._on_command
        self._connected = threading.Event()
        kwargs: dict[str, Any] = {}
        if uplink_bytes_per_s is not None:
            kwargs["uplink_bytes_per_s"] = uplink_bytes_per_s
        # a simulated node behind the gateway is open unless its URL says key=dev: the
        # gateway holds no key, and its operators sign with their own (SPEC §10)
        self.transport = Transport(sim_default_key(port, "none"), self._on_bytes,
                                   self._on_state, **kwargs)

    @property
    def discarded_bytes(self) -> int:
        return self._deframer.discarded_bytes

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._broker.connect(self._mqtt)
        if not self._connected.wait(_CONNECT_TIMEOUT_S):
            self._mqtt.loop_stop()
            raise GatewayError(f"broker {self._broker.host}:{self._broker.port} did not accept "
                               f"the connection in {_CONNECT_TIMEOUT_S:g} s (user, password?)")
        try:
            self.transport.open()
        except GroundError as exc:
            self._publish_status(topics.DOWN, str(exc))
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
            raise
        # up, unless the node's first packet already showed another node on the port
        info = self._publish_status(topics.UP, self.transport.device, keep=(topics.WRONG_NODE,))
        if info is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)  # subscribers joining from now on find it retained

    def stop(self) -> None:
        """Close the node link and say ``down`` (retained) before leaving the broker."""
        self.transport.close()
        info = self._publish_status(topics.DOWN, "the gateway stopped")
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(2.0)  # type: ignore[union-attr]  # keep=() always says it
        self._mqtt.disconnect()
        self._mqtt.loop_stop()

    # --- MQTT side -----------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            return  # paho retries; start() times out saying so
        client.subscribe(self._topic[topics.CMD], qos=1)
        with self._lock:
            link, detail, dict_hash = self.link, self.detail, self.dict_hash
        if self._connected.is_set() or link != topics.DOWN:
            self._send_status(link, detail)  # a restarted broker forgot the retained one
        if dict_hash is not None:
            self._publish_dict(dict_hash)
        self._connected.set()

    def _publish_status(self, link: str, detail: str,
                        keep: tuple[str, ...] = ()) -> mqtt.MQTTMessageInfo | None:
        """Decide the link state and say it (retained), one decision at a time, so the broker
        keeps the last one decided: the node's first packet may judge it (wrong_node) while
        start() is about to say ``up``. A state in ``keep`` stays (None returned). Only the
        gateway's own threads call this: paho's thread (_on_connect) sends the state as it
        is, since paho's publish may wait for that thread."""
        with self._status_lock:
            with self._lock:
                if self.link in keep:
                    return None
                self.link, self.detail = link, detail
            return self._send_status(link, detail)

    def _send_status(self, link: str, detail: str) -> mqtt.MQTTMessageInfo:
        payload = topics.status_payload(link, detail, self.gateway, self.node_id)
        return self._mqtt.publish(self._topic[topics.STATUS], payload, qos=1, retain=True)

    def _publish_dict(self, dict_hash: int) -> None:
        body = {"hash": f"0x{dict_hash:08x}", "source": "housekeeping dict_hash"}
        self._mqtt.publish(self._topic[topics.DICT], json.dumps(body), qos=1, retain=True)

    def _on_command(self, _client: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self._topic[topics.CMD]:
            return  # amqtt 0.12 also sends a new client other clients' retained messages
        payload = bytes(msg.payload)
        with self._lock:
            link, detail = self.link, self.detail
        if link != topics.UP:
            self._refuse(payload, f"node {self.node} link is {link} ({detail}): not sent")
            return
        try:
            frame = encode_frame(payload)
        except ValueError as exc:
            self._refuse(payload, str(exc))
            return
        try:
            self.transport.write(frame)
        except GroundError as exc:
            self._refuse(payload, f"node {self.node}: {exc}")
            return
        self.forwarded += 1

    def _refuse(self, payload: bytes, reason: str) -> None:
        self.refused += 1
        body = {"reason": reason, "command": payload.hex(), "gateway": self.gateway,
                "t_ns": time.time_ns()}
        self._mqtt.publish(self._topic[topics.REFUSED], json.dumps(body), qos=1)

    # --- node side -----------------------------------------------------------------------

    def _on_state(self, state: str, detail: str) -> None:
        if state == "lost":
            self._deframer.reset()
            with self._lock:
                self.dict_hash = None
            self._publish_status(topics.LOST, detail)
        elif state == "up":
            self._publish_status(topics.UP, detail)

    def _on_bytes(self, data: bytes, _t_ns: int) -> None:
        got = self._deframer.deframe(data)
        publish = self._mqtt.publish
        topic_of = self._topic
        for message in got.messages:
            kind = topics.kind_of(message)
            if kind == _HK:
                self._check_packet(message)
            if self.link == topics.WRONG_NODE:
                self.withheld += 1
                continue  # another node's messages under this topic would mislead everyone
            publish(topic_of[kind], message, qos=1)
            self.published += 1

    def _check_packet(self, message: bytes) -> None:
        """Learn the dictionary hash; hold the node to its node_id (SPEC §5.3), every packet."""
        try:
            body = cbor2.loads(message)[5]
            dict_hash = int(body[2])
            node_id = int(body[3])
        except (ValueError, TypeError, IndexError, KeyError, cbor2.CBORDecodeError):
            return  # a malformed packet: subscribers get it as it is and judge it
        if self.dict_hash is None:
            with self._lock:
                self.dict_hash = dict_hash
            self._publish_dict(dict_hash)
        if self.node_id is None:
            self.node_id = node_id  # this topic names that node from now on
            self._publish_status(topics.UP, self.detail)
        elif node_id != self.node_id:
            if self.link != topics.WRONG_NODE:
                how = "given" if self.node_id_given else "first seen on it by this gateway"
                self._publish_status(topics.WRONG_NODE, (
                    f"port {self.transport.device} carries node id 0x{node_id:08x}, but "
                    f"{self.station}/{self.node} is node id 0x{self.node_id:08x} ({how}): "
                    "its messages are not published and commands are not sent (check the "
                    "cabling; name the node's own id as NAME@ID=PORT)"))
        elif self.link == topics.WRONG_NODE:
            self._publish_status(topics.UP, self.transport.device)


class Gateway:
    """Several NodeBridges under one gateway name."""

    def __init__(self, broker_url: str, station: str, nodes: dict[str, str],
                 name: str | None = None, uplink_bytes_per_s: float | None = None,
                 node_ids: dict[str, int] | None = None) -> None:
        if not nodes:
            raise UsageError("ground gateway: name at least one node, e.g. pcu1=sim")
        self.broker = BrokerAddress(broker_url)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.bridges = [
            NodeBridge(self.broker, station, node, port, self.name,
                       uplink_bytes_per_s=uplink_bytes_per_s,
                       node_id=(node_ids or {}).get(node))
            for node, port in nodes.items()
        ]

    def start(self) -> None:
        started: list[NodeBridge] = []
        try:
            for bridge in self.bridges:
                bridge.start()
                started.append(bridge)
        except BaseException:
            for bridge in started:
                bridge.stop()
            raise

    def stop(self) -> None:
        for bridge in self.bridges:
            with contextlib.suppress(Exception):
                bridge.stop()

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_nodes(words: list[str]) -> dict[str, str]:
    """``name=port`` (or ``name@id=port``) words → {name: port}; a clear error otherwise."""
    return parse_node_words(words)[0]


def parse_node_words(words: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """``name[@id]=port`` words → ({name: port}, {name: node id given}); the id (decimal or
    0x hex, SPEC §5.3) is the node the name stands for: another one on that port is not
    bridged. A clear error for anything else."""
    nodes: dict[str, str] = {}
    ids: dict[str, int] = {}
    for word in words:
        head, sep, port = word.partition("=")
        if not sep or not port:
            raise UsageError(f"{word!r}: name a node and its port, e.g. pcu1=/dev/ttyACM0")
        name, at, given = head.partition("@")
        try:
            topics.check_name("node", name)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if name in nodes:
            raise UsageError(f"node {name!r} given twice")
        if at:
            try:
                ids[name] = int(given, 0)
            except ValueError:
                ids[name] = -1
            if not 0 < ids[name] <= 0xFFFFFFFF:
                raise UsageError(f"{word!r}: node id {given!r}: 1 to 0xffffffff "
                                 "(the node_id its housekeeping shows)")
        nodes[name] = port
    return nodes, ids
