"""The gateway and the mqtt:// port against a real broker on loopback and a fake node.

Oracles: the fake node counts what it executed and keeps every command it received, so
"exactly once" and "unchanged" are checked on the node's side, not on the gateway's word.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakenode import FakeNode
from stationkit import Relay, Watcher

from ground import topics
from ground.broker import Broker
from ground.client import Client
from ground.errors import GroundError, PortUnreachable, UsageError
from ground.gateway import Gateway, parse_node_words, parse_nodes
from ground.transport import seq_range
from protocol.node_dictionary import DICT_HASH

NOOP = 1
TIME_CORRELATE = 14
STATUS = 15
STATION = "t"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker() as b:
        yield b


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    w = Watcher(broker.url, "ilrs/v1/#")
    yield w
    w.close()


def url(broker: Broker, node: str, query: str = "") -> str:
    return f"{broker.url}/{STATION}/{node}" + (f"?{query}" if query else "")


def status_topic(node: str) -> str:
    return topics.topic(STATION, node, topics.STATUS)


@pytest.fixture
def bridged(broker: Broker) -> Iterator[tuple[FakeNode, Gateway]]:
    with FakeNode(hk_period_s=0.1) as fake, Gateway(broker.url, STATION, {"n1": fake.port}) as gw:
        yield fake, gw


def test_command_goes_through_once_and_unchanged(
    broker: Broker, bridged: tuple[FakeNode, Gateway], watcher: Watcher
) -> None:
    fake, gw = bridged
    with Client(url(broker, "n1"), write_log=False) as client:
        assert client.status is not None and client.status.dict_hash == DICT_HASH
        result = client.command("noop")
        assert [v.stage for v in result.verifications] == ["accepted", "completed"]
    assert fake.executed[NOOP] == 1
    sent = watcher.payloads(topics.topic(STATION, "n1", topics.CMD))
    # what the operators published is what the node received: same messages, same order
    assert [cbor2.loads(p) for p in sent] == fake.received
    # status at connect, bound to the node's boot (first unbound, boot 0, and rejected
    # STALE_BOOT, unless a housekeeping packet told the client the boot before it asked),
    # the time correlation that follows it (SPEC §11.1), then noop
    ids = [(m[4], m[6]) for m in fake.received]  # (command id, boot)
    unbound = [(STATUS, 0)] if ids[0] == (STATUS, 0) else []
    assert ids == [*unbound, (STATUS, fake.boot), (TIME_CORRELATE, fake.boot), (NOOP, fake.boot)]
    assert gw.bridges[0].forwarded == len(sent) == len(ids)


def test_late_subscriber_sees_retained_status_and_dictionary(
    broker: Broker, bridged: tuple[FakeNode, Gateway]
) -> None:
    fake, gw = bridged
    late = Watcher(broker.url, topics.topic(STATION, "n1", "+"))
    try:
        status = late.status(status_topic("n1"), topics.UP)
        assert status["detail"] == fake.port and status["gateway"] == gw.name
        _t, payload = late.wait("dict", lambda t, p: t.endswith("/dict"))
        assert json.loads(payload)["hash"] == f"0x{DICT_HASH:08x}"
        retained = {t for t, _p, r in late.messages if r}
        assert retained >= {status_topic("n1"), topics.topic(STATION, "n1", "dict")}
        # housekeeping arrives on tm as the node's own message
        _t, hk = late.wait("housekeeping", lambda t, p: t.endswith("/tm"))
        msg = cbor2.loads(hk)
        assert msg[:2] == [1, 2] and msg[5][2] == DICT_HASH
    finally:
        late.close()


def test_node_nobody_serves_is_refused_at_open(broker: Broker) -> None:
    client = Client(url(broker, "ghost", "status_wait_s=0.5"), write_log=False)
    with pytest.raises(PortUnreachable, match=r"no status for node ghost .* no gateway serves it"):
        client.connect()


def test_stopped_gateway_says_down_and_operators_are_told(
    broker: Broker, watcher: Watcher
) -> None:
    with FakeNode() as fake:
        gw = Gateway(broker.url, STATION, {"n2": fake.port})
        gw.start()
        watcher.status(status_topic("n2"), topics.UP)
        gw.stop()
        assert watcher.status(status_topic("n2"), topics.DOWN)["detail"] == "the gateway stopped"
        with pytest.raises(PortUnreachable, match="node n2 link is down: the gateway stopped"):
            Client(url(broker, "n2"), write_log=False).connect()
        assert sum(fake.executed.values()) == 0


def test_killed_gateway_is_marked_gone_by_its_last_will(
    broker: Broker, watcher: Watcher
) -> None:
    with FakeNode() as fake:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ground", "gateway", "--broker", broker.url,
             "--station", STATION, f"n3={fake.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().decode().strip() == url(broker, "n3")
            watcher.status(status_topic("n3"), topics.UP)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            assert proc.stderr is not None and proc.stdout is not None
            proc.stderr.close()
            proc.stdout.close()
        gone = watcher.status(status_topic("n3"), topics.GONE)
        assert gone["detail"] == "the gateway's connection died"


def test_link_lost_refuses_commands_and_recovers(broker: Broker, watcher: Watcher) -> None:
    with FakeNode(hk_period_s=0.1) as fake:
        relay = Relay(fake.port)
        gw = Gateway(broker.url, STATION, {"n4": relay.url})
        try:
            gw.start()
            client = Client(url(broker, "n4"), write_log=False)
            client.connect()
            client.command("noop")
            relay.cut()
            lost = watcher.status(status_topic("n4"), topics.LOST)
            assert lost["detail"]
            # a command published while the node's link is lost is not sent, and says so
            watcher.client.publish(topics.topic(STATION, "n4", topics.CMD),
                                   cbor2.dumps([1, 0, 77, 0, NOOP, [], 1]), qos=1)
            _t, refused = watcher.wait("refused", lambda t, p: t.endswith("/n4/refused"))
            why = json.loads(refused)
            assert why["reason"].startswith("node n4 link is lost")
            assert why["command"] == cbor2.dumps([1, 0, 77, 0, NOOP, [], 1]).hex()
            lost_reason = r"node n4 link is lost: read failed: socket disconnected"
            with pytest.raises(GroundError, match=lost_reason):
                client.command("noop", timeout=3)
            relay.restore()
            watcher.status(status_topic("n4"), topics.UP, timeout_s=30)
            assert client.transport.connected.wait(30)
            client.command("noop", timeout=10)
            client.close()
        finally:
            gw.stop()
            relay.close()
        assert fake.executed[NOOP] == 2  # before the cut, after it: never the refused one
        assert 77 not in [m[2] for m in fake.received]


def test_operators_own_disjoint_sequence_ranges(
    broker: Broker, bridged: tuple[FakeNode, Gateway]
) -> None:
    fake, _gw = bridged
    assert seq_range(url(broker, "n1", "operator=0")) == (0, 4096)
    assert seq_range(url(broker, "n1", "operator=15")) == (61440, 4096)
    assert seq_range(url(broker, "n1")) == (0, 65536)
    with pytest.raises(UsageError, match=r"operator='16': give a number 0\.\.15"):
        seq_range(url(broker, "n1", "operator=16"))
    results: dict[int, list[int]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def operate(n: int) -> None:
        try:
            with Client(url(broker, "n1", f"operator={n}"), write_log=False) as client:
                for _ in range(10):
                    results[n].append(client.command("noop", timeout=10).seq)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=operate, args=(n,)) for n in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(0 <= s < 4096 for s in results[0]) and all(4096 <= s < 8192 for s in results[1])
    assert len(results[0]) == len(results[1]) == 10
    assert fake.executed[NOOP] == 20


def test_broker_restart_loses_no_command_and_duplicates_none(
    broker: Broker, bridged: tuple[FakeNode, Gateway], watcher: Watcher
) -> None:
    fake, _gw = bridged
    done: list[int] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def operate() -> None:
        try:
            with Client(url(broker, "n1"), write_log=False, ) as client:
                for i in range(12):
                    if i == 3:
                        started.set()
                    done.append(client.command("noop", timeout=40).seq)
        except BaseException as exc:
            errors.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=operate)
    thread.start()
    assert started.wait(30)
    broker.restart()
    thread.join(120)
    assert not errors, errors
    assert len(done) == 12
    assert fake.executed[NOOP] == 12  # re-sent with the same seq: executed once each
    # the gateway put its retained status back on the restarted broker
    late = Watcher(broker.url, status_topic("n1"))
    try:
        late.status(status_topic("n1"), topics.UP)
    finally:
        late.close()


def test_node_words_are_checked() -> None:
    assert parse_nodes(["a=sim", "b-2=/dev/ttyACM0"]) == {"a": "sim", "b-2": "/dev/ttyACM0"}
    with pytest.raises(UsageError, match="name a node and its port"):
        parse_nodes(["sim"])
    with pytest.raises(UsageError, match="given twice"):
        parse_nodes(["a=sim", "a=sim"])
    with pytest.raises(UsageError, match="one MQTT topic level"):
        parse_nodes(["a/b=sim"])


def test_gateway_restart_operator_recovers_by_itself(broker: Broker, watcher: Watcher) -> None:
    with FakeNode(hk_period_s=0.1) as fake:
        gw = Gateway(broker.url, STATION, {"n5": fake.port})
        gw.start()
        client = Client(url(broker, "n5"), write_log=False)
        try:
            client.connect()
            client.command("noop")
            gw.stop()
            watcher.status(status_topic("n5"), topics.DOWN)
            with pytest.raises(GroundError, match=r"node n5 link is down: the gateway stopped"):
                client.command("noop", timeout=3)
            gw = Gateway(broker.url, STATION, {"n5": fake.port})
            gw.start()
            assert client.transport.connected.wait(30)  # the port reopened by itself
            client.command("noop", timeout=10)
        finally:
            client.close()
            gw.stop()
        assert fake.executed[NOOP] == 2


def _hk_published(watcher: Watcher, node: str) -> int:
    return len(watcher.payloads(topics.topic(STATION, node, "tm")))


def test_node_id_is_held_to_and_a_wrong_node_is_not_bridged(
    broker: Broker, watcher: Watcher
) -> None:
    """n6 is node 0x0fa4e001 (given); a board with another id on its port is withheld."""
    with FakeNode(hk_period_s=0.05) as fake:
        fake.node_id = 0x0BAD0BAD
        gw = Gateway(broker.url, STATION, {"n6": fake.port}, node_ids={"n6": 0x0FA4E001})
        try:
            gw.start()
            wrong = watcher.status(status_topic("n6"), topics.WRONG_NODE)
            assert wrong["node_id"] == "0x0fa4e001"
            assert (f"port {fake.port} carries node id 0x0bad0bad, but t/n6 is node id "
                    "0x0fa4e001 (given)") in wrong["detail"]
            with pytest.raises(PortUnreachable, match="node n6 link is wrong_node: port "):
                Client(url(broker, "n6"), write_log=False).connect()
            watcher.client.publish(topics.topic(STATION, "n6", topics.CMD),
                                   cbor2.dumps([1, 0, 78, 0, NOOP, [], 3]), qos=1)
            _t, refused = watcher.wait("refused", lambda t, p: t.endswith("/n6/refused"))
            assert json.loads(refused)["reason"].startswith("node n6 link is wrong_node (port ")
            assert _hk_published(watcher, "n6") == 0 and gw.bridges[0].withheld > 0
            fake.node_id = 0x0FA4E001  # the right board is back
            up = watcher.status(status_topic("n6"), topics.UP)
            assert up["node_id"] == "0x0fa4e001"
            watcher.wait("n6 housekeeping", lambda t, p: t.endswith("/n6/tm"))
            with Client(url(broker, "n6"), write_log=False) as client:
                client.command("noop", timeout=10)
        finally:
            gw.stop()
        assert fake.executed[NOOP] == 1 and 78 not in [m[2] for m in fake.received]


def test_a_wrong_node_judged_before_start_says_up_stays_wrong_node(
    broker: Broker, watcher: Watcher
) -> None:
    """The node's first packet arrives between the port opening and start() saying ``up``:
    ``wrong_node`` stays, as the link state and as the broker's retained status."""
    with FakeNode(hk_period_s=None) as fake:
        fake.node_id = 0x0BAD0BAD
        gw = Gateway(broker.url, STATION, {"n8": fake.port}, node_ids={"n8": 0x0FA4E001})
        bridge = gw.bridges[0]
        open_port = bridge.transport.open

        def open_then_first_packet() -> None:
            open_port()
            fake.housekeeping()
            deadline = time.monotonic() + 20
            while bridge.link != topics.WRONG_NODE and time.monotonic() < deadline:
                time.sleep(0.01)

        bridge.transport.open = open_then_first_packet  # type: ignore[method-assign]
        try:
            gw.start()
            watcher.status(status_topic("n8"), topics.WRONG_NODE)
            assert bridge.link == topics.WRONG_NODE
            with pytest.raises(PortUnreachable, match="node n8 link is wrong_node: port "):
                Client(url(broker, "n8"), write_log=False).connect()
        finally:
            gw.stop()


def test_node_id_first_seen_is_pinned(broker: Broker, watcher: Watcher) -> None:
    with FakeNode(hk_period_s=0.05) as fake, \
            Gateway(broker.url, STATION, {"n7": fake.port}) as gw:
        first = watcher.wait("n7 status with its node id", lambda t, p: t == status_topic("n7")
                             and json.loads(p).get("node_id") == "0x0fa4e001")
        assert json.loads(first[1])["link"] == topics.UP
        fake.node_id = 0x00000002
        wrong = watcher.status(status_topic("n7"), topics.WRONG_NODE)
        assert "carries node id 0x00000002, but t/n7 is node id 0x0fa4e001 (first seen on it " \
               "by this gateway)" in wrong["detail"]
        assert gw.bridges[0].node_id == 0x0FA4E001


def test_node_ids_in_node_words() -> None:
    assert parse_node_words(["a@0x10=sim://?node_id=16", "b=sim"]) == (
        {"a": "sim://?node_id=16", "b": "sim"}, {"a": 16})
    for bad in ("a@x=sim", "a@0=sim", "a@0x100000000=sim"):
        with pytest.raises(UsageError, match=r"node id .*: 1 to 0xffffffff"):
            parse_node_words([bad])
