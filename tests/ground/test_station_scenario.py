"""A station: three simulated nodes behind one gateway, two operators and a read-only partner,
users and ACLs in a real broker, and a broker restart in the middle of the operators' work.

The oracle is each node's own ``cmds_accepted`` counter (it counts executions: a repeated
(seq, id) is answered from memory, not counted): after the run it must have grown by exactly
the number of commands the operators saw completed, so nothing accepted was lost or executed
twice, and the partner's command, dropped by the broker, is not among them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stationkit import Watcher

from ground import codec, topics
from ground.broker import Access, Broker
from ground.client import Client
from ground.gateway import Gateway

pytestmark = [pytest.mark.slow, pytest.mark.micropython]

ST = "moon"
NODES = ("node1", "node2", "node3")
USERS = {"gw": "gw-pw", "op1": "op1-pw", "op2": "op2-pw", "partner": "partner-pw"}
ACL = {
    "gw": Access(publish=[f"ilrs/v1/{ST}/#"], subscribe=[f"ilrs/v1/{ST}/+/cmd"]),
    "op1": Access(publish=[f"ilrs/v1/{ST}/+/cmd"], subscribe=[f"ilrs/v1/{ST}/#"]),
    "op2": Access(publish=[f"ilrs/v1/{ST}/+/cmd"], subscribe=[f"ilrs/v1/{ST}/#"]),
    "partner": Access(publish=[], subscribe=[f"ilrs/v1/{ST}/+/tm", f"ilrs/v1/{ST}/+/ev",
                                             f"ilrs/v1/{ST}/+/status"]),
}
# who commands which node: node2 is shared by both operators
WORK = {"op1": ("node1", "node2"), "op2": ("node2", "node3")}
OPERATOR = {"op1": 1, "op2": 2}
NOOPS_PER_NODE = 6
COMMANDING = 9  # housekeeping packet with cmds_accepted


@pytest.fixture(scope="module")
def station() -> Iterator[tuple[Broker, Gateway]]:
    with Broker(users=USERS, acl=ACL) as broker:
        nodes = {n: f"sim://?seed={i + 1}&node_id={i + 1}" for i, n in enumerate(NODES)}
        node_ids = {n: i + 1 for i, n in enumerate(NODES)}
        gw_url = f"mqtt://gw:gw-pw@127.0.0.1:{broker.port}"
        with Gateway(gw_url, ST, nodes, node_ids=node_ids) as gateway:
            yield broker, gateway


def _url(broker: Broker, user: str, node: str) -> str:
    return (f"mqtt://{user}:{USERS[user]}@127.0.0.1:{broker.port}/{ST}/{node}"
            f"?operator={OPERATOR[user]}")


def _accepted(client: Client) -> int:
    """cmds_accepted from a packet made after everything this client saw so far."""
    client.await_telemetry("cmds_accepted", timeout=20)
    value = client.await_telemetry("cmds_accepted", timeout=20).value
    assert isinstance(value, int)
    return value


def test_operators_partner_and_a_broker_restart(station: tuple[Broker, Gateway]) -> None:
    broker, gateway = station
    clients = {(user, node): Client(_url(broker, user, node), write_log=False)
               for user, nodes in WORK.items() for node in nodes}
    partner = Watcher(f"mqtt://partner:partner-pw@127.0.0.1:{broker.port}",
                      f"ilrs/v1/{ST}/+/tm")
    # the partner's own ground, read-only, on node3
    viewer = Client(f"mqtt://partner:partner-pw@127.0.0.1:{broker.port}/{ST}/node3?readonly=1",
                    write_log=False)
    try:
        for client in clients.values():
            client.connect(timeout=20)
        viewer.connect(timeout=20)
        assert viewer.status is not None and viewer.status.node_id == 3
        for (user, node), client in clients.items():
            if (user, node) in (("op1", "node1"), ("op1", "node2"), ("op2", "node3")):
                client.command("hk_rate", packet=COMMANDING, rate=10.0, timeout=20)
        owner = {node: clients[("op1", "node1")] if node == "node1" else
                 clients[("op2", "node3")] if node == "node3" else clients[("op1", "node2")]
                 for node in NODES}
        before = {node: _accepted(owner[node]) for node in NODES}

        # the partner sees every node's telemetry, and its command is dropped by the broker
        for node in NODES:
            partner.wait(f"{node} telemetry", lambda t, p, n=node: t.endswith(f"/{n}/tm"))
        boot = clients[("op1", "node1")].status
        assert boot is not None
        noop = codec.encode_command(4000, 1, [], boot.boot_count)  # a command node1 would run
        partner.client.publish(topics.topic(ST, "node1", topics.CMD), noop, qos=1)

        done: dict[tuple[str, str], list[int]] = {key: [] for key in clients}
        errors: list[BaseException] = []
        halfway = threading.Barrier(len(WORK) + 1, timeout=120)

        def operate(user: str) -> None:
            try:
                for i in range(NOOPS_PER_NODE):
                    if i == NOOPS_PER_NODE // 2:
                        halfway.wait()
                    for node in WORK[user]:
                        seq = clients[(user, node)].command("noop", timeout=60).seq
                        done[(user, node)].append(seq)
            except BaseException as exc:
                errors.append(exc)
                halfway.abort()

        threads = [threading.Thread(target=operate, args=(u,)) for u in WORK]
        for t in threads:
            t.start()
        halfway.wait()
        broker.restart()  # mid-run: sessions, subscriptions and retained messages are lost
        for t in threads:
            t.join(300)
        assert not errors, errors
        assert all(len(seqs) == NOOPS_PER_NODE for seqs in done.values()), done
        after = {node: _accepted(owner[node]) for node in NODES}
        expected = {"node1": NOOPS_PER_NODE, "node2": 2 * NOOPS_PER_NODE,
                    "node3": NOOPS_PER_NODE}
        assert {n: after[n] - before[n] for n in NODES} == expected
        # the operators' sequence numbers stayed in their own ranges
        for (user, _node), seqs in done.items():
            first = OPERATOR[user] * 4096
            assert all(first <= s < first + 4096 for s in seqs)
        assert all(b.link == topics.UP for b in gateway.bridges)
        # each node's own identity in its telemetry; the partner's view came back by itself
        for node, i in (("node1", 1), ("node2", 2)):
            assert clients[("op1", node)].await_telemetry("node_id", timeout=20).value == i
        assert viewer.await_telemetry("node_id", timeout=30).value == 3
        assert viewer.transport.bytes_out == 0  # it never sent a byte
    finally:
        viewer.close()
        partner.close()
        for client in clients.values():
            client.close()
