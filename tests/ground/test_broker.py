"""The broker: a real one on loopback, started and stopped by its pid; users and ACLs."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stationkit import Watcher

from ground import topics
from ground.broker import Access, Broker, BrokerError
from ground.gateway import BrokerAddress


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_started_and_stopped_by_its_pid() -> None:
    broker = Broker()
    broker.start()
    pid = broker.pid
    folder = broker._dir
    assert pid is not None and _alive(pid) and folder is not None and folder.is_dir()
    with socket.create_connection(("127.0.0.1", broker.port), 2):
        pass
    broker.restart()
    assert broker.pid != pid and not _alive(pid) and broker.starts == 2
    second = broker.pid
    assert second is not None
    broker.stop()
    assert not _alive(second) and broker.pid is None and not folder.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", broker.port), 1):
        pass


def test_a_broker_that_cannot_start_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        broker = Broker(taken.getsockname()[1], kind="amqtt")
        # the port answers (our socket), but that is not a broker we started: say so
        with pytest.raises(BrokerError, match=r"amqtt cannot start on 127\.0\.0\.1:\d+: "
                           r"Address already in use \(another broker there") as info:
            broker.start()
        assert "\n" not in str(info.value)
        assert broker.pid is None


STATION_ACL = {
    "op": Access(publish=["ilrs/v1/s/+/cmd"], subscribe=["ilrs/v1/s/#"]),
    "partner": Access(publish=[], subscribe=["ilrs/v1/s/+/tm", "ilrs/v1/s/+/status"]),
    "gw": Access(publish=["ilrs/v1/s/#"], subscribe=["ilrs/v1/s/+/cmd"]),
}
USERS = {"op": "op-pw", "partner": "partner-pw", "gw": "gw-pw"}


def test_users_and_acl_enforced_by_the_broker() -> None:
    with Broker(users=USERS, acl=STATION_ACL) as broker:
        host = f"127.0.0.1:{broker.port}"
        gw = Watcher(f"mqtt://gw:gw-pw@{host}", "ilrs/v1/s/+/cmd")
        partner = Watcher(f"mqtt://partner:partner-pw@{host}", "ilrs/v1/s/+/tm")
        op = Watcher(f"mqtt://op:op-pw@{host}", "ilrs/v1/s/#")
        try:
            cmd = topics.topic("s", "n1", topics.CMD)
            partner.client.publish(cmd, b"partner", qos=1).wait_for_publish(5)
            op.client.publish(cmd, b"operator", qos=1).wait_for_publish(5)
            gw.client.publish(topics.topic("s", "n1", "tm"), b"hk", qos=1).wait_for_publish(5)
            op.wait("the operator's command", lambda t, p: p == b"operator")
            gw.wait("the operator's command", lambda t, p: p == b"operator")
            partner.wait("housekeeping", lambda t, p: p == b"hk")
            op.wait("housekeeping", lambda t, p: p == b"hk")
            time.sleep(0.5)
            # the partner's command reached nobody: the broker dropped it
            assert gw.payloads(cmd) == [b"operator"] and op.payloads(cmd) == [b"operator"]
            # a wrong password is refused at connect
            intruder = BrokerAddress(f"mqtt://op:wrong@{host}").client("intruder")
            intruder.username_pw_set("op", "wrong")
            intruder.connect("127.0.0.1", broker.port)
            intruder.loop_start()
            time.sleep(1.0)
            assert not intruder.is_connected()
            intruder.loop_stop()
        finally:
            for w in (gw, partner, op):
                w.close()
