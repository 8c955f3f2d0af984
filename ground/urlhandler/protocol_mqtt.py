"""``mqtt://[user:password@]host[:port]/STATION/NODE[?operator=N|readonly=1|key=dev]``: a node
through a broker.

A pyserial URL handler, so ``Transport`` and everything above it (client, cmd, tlm, events,
params, record, console, the HIL suite's ``--target``) work through the broker unchanged. The
port subscribes to the node's downlink topics (ground.topics) and hands each message to the
reader framed exactly as the node framed it (``encode_frame``: COBS of message + CRC-32), so
the deframer, decoders and session log see the bytes a serial line would carry. ``write``
deframes what the client sends and publishes each command message on ``cmd`` (QoS 1)
unchanged.

Link state: the port is open only while the node's retained ``status`` says ``up``. ``open``
waits up to ``status_wait_s`` (default 3 s) for it and otherwise fails in one line saying
what is known (no gateway has published one; ``lost``, ``down`` or ``gone`` with the
gateway's words). A later ``status`` other than ``up``, or a ``refused`` notice from the
gateway, makes ``read`` raise, which the Transport reports as a lost link (with that reason)
and re-opens until the node is ``up`` again. Writes while the link is not up are refused here
first: no command is sent to a node whose link state is unknown without the operator being
told. The broker connection itself reconnects by itself (paho). While it is away the node's
link state is unknown: a command written then is not published (``held``); it and every other
command still unanswered are published once the node is reported ``up`` after the
reconnection (``ground.unanswered``), so the client's own re-sends (same seq) find it answered.
A command whose client gave up meanwhile (a timeout) may still be published then, within
``Unanswered.window_s``: its outcome is what the node's verification says, which the session
log records.

A ``gone`` status (the gateway's last will) is not taken at its word at once: Mosquitto, when
it stops, publishes the wills of the clients still connected to it, the gateway's among them,
and only then closes every connection, so an operator would see its node ``gone`` when only
the broker is going away (amqtt never delivers those wills). The port first makes a round trip
to the broker (``_probe``: an UNSUBSCRIBE of a filter it never subscribed, which MQTT 3.1.1
§3.10.4 answers with an UNSUBACK even when nothing matched). An answer proves the broker still
serves: the gateway's connection really died, and the link is ``gone`` (a lost link with the
will's words). The connection dropping first means the will came from a broker going away:
the link state stays unknown and commands are held as above. Until one or the other, the link
state is unknown too: a command written meanwhile is held.

Read-only partners: ``readonly=1`` makes a port that never publishes. A partner's broker
rights allow subscribing to ``tm``, ``ev`` and ``status`` only, so a port that sent
``status`` at connect (as an operator's client does) would wait for an answer that the broker
never lets through: the client on a read-only port learns the node's state from its
housekeeping instead (mode, boot count, dictionary hash, node id: every packet carries them)
and refuses every command in one line (``ReadOnlyPort``) before anything reaches the port.

Signing: the port carries commands as the client made them; a client with a signer (``--operator
N``: the operator's key from the key store) sends them authenticated (SPEC §10), and the
gateway forwards them unchanged. ``key=dev`` says the node holds the development key (a
simulated node behind the gateway started with ``sim://?key=dev``): the client then signs
with it by itself (``ground.transport.mqtt_dev_key``), continuing the key's counters from
``ground.keys.dev_store()``, since such a node outlives each session.

Several operators: each names a distinct ``operator=N`` (0..15): its client's command
sequence numbers stay in ``N*4096 .. N*4096+4095`` (``ground.transport.seq_range``), so two
operators never send the same (seq, command id) pair and the node never answers one
operator's command with the other's recorded verifications. Every operator receives every
verification; each client keeps only those for its own pending sequence numbers.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import paho.mqtt.client as mqtt
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from ground import topics
from ground.errors import GroundError, ReadOnlyPort
from ground.gateway import BrokerAddress
from ground.link import Deframer, encode_frame
from ground.unanswered import Unanswered

OPERATORS = 16
SEQ_SPAN = 65536 // OPERATORS
_STATUS_WAIT_S = 3.0
# a filter the port never subscribes to: unsubscribing from it is a round trip with no effect
_PROBE_KIND = "probe"


def parse_url(url: str) -> tuple[BrokerAddress, str, str, dict[str, Any]]:
    """The broker, station, node and options of an ``mqtt://`` port URL (ValueError)."""
    try:
        broker = BrokerAddress(url)
    except GroundError as exc:
        raise ValueError(str(exc)) from None
    levels = [p for p in broker.path.split("/") if p]
    if len(levels) != 2:
        raise ValueError(f"{url}: a node through a broker is mqtt://host:port/STATION/NODE")
    station = topics.check_name("station", levels[0])
    node = topics.check_name("node", levels[1])
    options: dict[str, Any] = {}
    for key, values in parse_qs(broker.query, keep_blank_values=True).items():
        value = values[-1]
        if key == "operator":
            if not value.isdigit() or int(value) >= OPERATORS:
                raise ValueError(f"{url}: operator={value!r}: give a number 0..{OPERATORS - 1}")
            options["operator"] = int(value)
        elif key == "readonly":
            if value not in ("0", "1"):
                raise ValueError(f"{url}: readonly={value!r}: 1 (a read-only port) or 0")
            options["readonly"] = value == "1"
        elif key == "key":
            if value not in ("dev", "none"):
                raise ValueError(f"{url}: key={value!r}: dev (the node holds the development "
                                 "key: sign with it) or none")
            options["key"] = value
        elif key == "status_wait_s":
            try:
                options["status_wait_s"] = float(value)
            except ValueError:
                raise ValueError(f"{url}: status_wait_s={value!r} is not a number") from None
        else:
            raise ValueError(
                f"{url}: unknown option {key!r} (operator, readonly, key, status_wait_s)")
    for needless in ("operator", "key"):
        if options.get("readonly") and needless in options:
            raise ValueError(f"{url}: readonly=1 sends nothing: {needless}= has no use there")
    return broker, station, node, options


class Serial(SerialBase):  # type: ignore[misc]
    """A node's byte stream, rebuilt from its topics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rx = bytearray()
        self._cond = threading.Condition()
        self._problem = ""  # why the link is not usable, once it was up
        self._status: dict[str, Any] = {}
        self._client: mqtt.Client | None = None
        self._uplink = Deframer(synced=True)
        self._unanswered = Unanswered()
        self._connections = 0
        self._broker_up = False  # our broker connection: without it the link state is unknown
        self._will: dict[str, Any] | None = None  # a `gone` waiting for the broker's answer
        self._probe_mid: int | None = None
        self.held = 0  # commands written while the link state was unknown, not published
        self._resend_on_up = False
        self.is_open: bool = False
        super().__init__(*args, **kwargs)

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        try:
            broker, station, node, options = parse_url(str(self._port))
        except ValueError as exc:
            raise SerialException(str(exc)) from None
        self._topic = {k: topics.topic(station, node, k) for k in
                       (*topics.DOWNLINK, topics.STATUS, topics.REFUSED, topics.CMD,
                        _PROBE_KIND)}
        self._node = node
        self._readonly = bool(options.get("readonly"))
        self._downlink = {self._topic[k] for k in topics.DOWNLINK}
        who = broker.username or "anonymous"
        client = broker.client(f"ilrs-op-{who}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_unsubscribe = self._on_unsubscribe
        self._client = client
        try:
            broker.connect(client)
        except GroundError as exc:
            raise SerialException(str(exc)) from None
        wait_s = options.get("status_wait_s", _STATUS_WAIT_S)
        with self._cond:
            # the first status may be an older retained one (a gateway that stopped, whose
            # successor's `up` is on its way): wait the whole time for `up`, then judge
            self._cond.wait_for(lambda: self._status.get("link") == topics.UP, wait_s)
            status = dict(self._status)
        if status.get("link") != topics.UP:
            self._shut()
            if not status:
                raise SerialException(
                    f"no status for node {node} of station {station} on {broker.host}:"
                    f"{broker.port} in {wait_s:g} s: no gateway serves it (is `ground gateway` "
                    "running, and may this user read its topics?)"
                )
            raise SerialException(f"node {node} link is {status['link']}: {status.get('detail')}")
        self.is_open = True

    def _shut(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def close(self) -> None:
        self.is_open = False
        self._shut()
        with self._cond:
            self._cond.notify_all()
        super().close()

    def _reconfigure_port(self) -> None:
        pass  # no line settings on a broker

    # --- MQTT ----------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            with self._cond:
                self._status = {"link": "unknown", "detail": f"broker refused: {reason}"}
                self._cond.notify_all()
            return
        subs = [(self._topic[k], 1) for k in (*topics.DOWNLINK, topics.STATUS, topics.REFUSED)]
        client.subscribe(subs)
        with self._cond:
            self._connections += 1
            self._broker_up = True
            self._will = self._probe_mid = None
            # back after an outage: what was published meanwhile may have reached nobody
            self._resend_on_up = self._connections > 1

    def _on_disconnect(self, _client: mqtt.Client, _ud: Any, _flags: Any, _reason: Any,
                       _props: Any = None) -> None:
        with self._cond:
            self._broker_up = False
            # a will still waiting for the broker's answer came from a broker going away:
            # the link state is unknown (commands held), not `gone`
            self._will = self._probe_mid = None

    def _on_unsubscribe(self, _client: mqtt.Client, _ud: Any, mid: int, _codes: Any,
                        _props: Any = None) -> None:
        with self._cond:
            if mid != self._probe_mid or self._will is None:
                return
            # the broker answered after delivering the will: it is serving, so the gateway's
            # connection really died
            will, self._will, self._probe_mid = self._will, None, None
            if self.is_open:
                self._problem = f"node {self._node} link is {will['link']}: {will.get('detail')}"
            self._cond.notify_all()

    def _probe(self, client: mqtt.Client) -> None:
        """Ask the broker for a round trip (its answer: ``_on_unsubscribe``)."""
        _rc, self._probe_mid = client.unsubscribe(self._topic[_PROBE_KIND])

    def _on_message(self, _client: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        payload = bytes(msg.payload)
        with self._cond:
            if topic == self._topic[topics.STATUS]:
                self._status = topics.read_status(payload)
                link = self._status["link"]
                self._will = None  # a newer status replaces a will not yet judged
                if link == topics.UP:
                    self._problem = ""
                    if self._resend_on_up and self._client is not None:
                        self._resend_on_up = False
                        for message in self._unanswered.due():
                            self._client.publish(self._topic[topics.CMD], message, qos=1)
                elif link == topics.GONE and self.is_open and self._client is not None:
                    self._will = self._status  # judged once the broker answers (or leaves)
                    self._probe(self._client)
                elif self.is_open:
                    detail = self._status.get("detail")
                    self._problem = f"node {self._node} link is {link}: {detail}"
            elif topic == self._topic[topics.REFUSED]:
                try:
                    why = str(json.loads(payload).get("reason"))
                except (ValueError, AttributeError):
                    why = repr(payload[:60])
                self._problem = f"the gateway refused a command: {why}"
            elif topic in self._downlink:
                self._rx += encode_frame(payload)
                self._unanswered.answered(payload)
            else:
                return  # amqtt 0.12 also sends a new client other clients' retained messages
            self._cond.notify_all()

    # --- the byte stream -----------------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while not self._rx and not self._problem and self.is_open:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            if self._problem:
                raise SerialException(self._problem)
            data = bytes(self._rx[:size])
            del self._rx[:size]
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if not self.is_open or self._client is None:
            raise PortNotOpenError()
        if self._readonly:  # the client refuses first; this port never publishes anyway
            raise ReadOnlyPort(str(self._port), "a command is")
        with self._cond:
            if self._problem:
                raise SerialException(self._problem)
        for message in self._uplink.deframe(bytes(data)).messages:
            self._unanswered.sent(message)
            with self._cond:
                if not self._broker_up or self._will is not None:
                    # the node's link state is unknown: not sent now; published when the node
                    # is reported up after the reconnection (ground.unanswered), if unanswered
                    self.held += 1
                    self._resend_on_up = True
                    continue
            self._client.publish(self._topic[topics.CMD], message, qos=1)
        return len(data)

    def flush(self) -> None:
        pass  # paho sends, or queues until the broker is back

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        pass
