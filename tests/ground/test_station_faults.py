"""Faults seen by subscribers through a real broker: one subscriber that stalls while the
others keep up, one that the broker drops and that comes back; both account for every
message by the node's downlink counter (SPEC §4): what did not arrive is counted as lost, so
a gap is a gap, never a silent hole; and no command is executed twice.

Oracle: for each client, messages received + messages counted lost == the span of downlink
sequence numbers it saw; the fake node counts executions itself.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakenode import FakeNode

from ground.broker import Broker
from ground.client import Client
from ground.downlink import HOUSEKEEPING, VERIFICATION
from ground.gateway import Gateway

ST = "f"
NOOP = 1


@pytest.fixture(scope="module")
def station() -> Iterator[tuple[Broker, FakeNode]]:
    with Broker() as broker, FakeNode(hk_period_s=0.02) as fake, \
            Gateway(broker.url, ST, {"n1": fake.port}):
        yield broker, fake


class Seqs:
    """Every downlink sequence number a client received, in order."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        client.downlink.listen(HOUSEKEEPING, self._on)
        client.downlink.listen(VERIFICATION, self._on)

    def _on(self, item: Any) -> None:
        with self._lock:
            self.seqs.append(item.seq)

    def count(self) -> int:
        with self._lock:
            return len(self.seqs)

    def check(self) -> int:
        """Received + lost == span (no wrap in these short runs); returns the lost count."""
        with self._lock:
            seqs = list(self.seqs)
        down = self.client.downlink
        assert seqs == sorted(seqs), "out of order"
        assert len(set(seqs)) == len(seqs), "a message delivered twice"
        span = seqs[-1] - seqs[0] + 1
        # downlink.messages counts from the first message, the status answer included
        assert len(seqs) + down.lost_messages == span, (len(seqs), down.lost_messages, span)
        return int(down.lost_messages)


def _url(broker: Broker, operator: int) -> str:
    return f"{broker.url}/{ST}/n1?operator={operator}"


def _stall(client: Client) -> threading.Event:
    """Block the client's MQTT network thread in its message callback until the event is
    set: it reads nothing more from the broker, which must queue for it (or drop it)."""
    port: Any = client.transport._serial
    paho = port._client
    forward = paho.on_message
    release = threading.Event()

    def stalled(c: Any, u: Any, msg: Any) -> None:
        release.wait(60)
        forward(c, u, msg)

    paho.on_message = stalled
    return release


def test_stalled_subscriber_others_keep_up_and_it_catches_up_counting(
    station: tuple[Broker, FakeNode]
) -> None:
    broker, fake = station
    executed = fake.executed[NOOP]
    with Client(_url(broker, 1), write_log=False) as a, \
            Client(_url(broker, 2), write_log=False) as b, \
            Client(_url(broker, 3), write_log=False) as slow:
        seen = {name: Seqs(c) for name, c in (("a", a), ("b", b), ("slow", slow))}
        a.await_telemetry("mode", timeout=10)
        slow.await_telemetry("mode", timeout=10)
        release = _stall(slow)
        try:
            stalled_at = seen["slow"].count()
            start = {k: s.count() for k, s in seen.items()}
            for _ in range(5):  # the others command and hear the node while one stalls
                a.command("noop", timeout=10)
                b.command("noop", timeout=10)
            time.sleep(0.5)
            assert seen["a"].count() - start["a"] > 20 and seen["b"].count() - start["b"] > 20
            assert seen["slow"].count() <= stalled_at + 1  # at most the one in its callback
        finally:
            release.set()
        # once it resumes it receives what the broker kept for it, and counts what it lost
        target = seen["a"].count()
        deadline = time.monotonic() + 30
        while seen["slow"].count() + slow.downlink.lost_messages < target and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        slow.command("noop", timeout=20)
    for s in seen.values():
        s.check()
    assert seen["a"].client.downlink.lost_messages == seen["b"].client.downlink.lost_messages == 0
    assert fake.executed[NOOP] - executed == 11  # each noop once


def test_dropped_subscriber_sees_the_gap_and_nothing_runs_twice(
    station: tuple[Broker, FakeNode]
) -> None:
    """The broker drops a subscriber (its connection dies) while its command is in flight:
    its client reconnects by itself, counts the messages published meanwhile as lost, and
    its command is answered once (a re-send of the same seq is answered from memory)."""
    broker, fake = station
    executed = fake.executed[NOOP]
    with Client(_url(broker, 4), write_log=False) as keeper, \
            Client(_url(broker, 5), write_log=False) as dropped:
        seen = {"keeper": Seqs(keeper), "dropped": Seqs(dropped)}
        dropped.await_telemetry("mode", timeout=10)
        fake.lose_verifications = 2  # the next noop's answers are lost on the node's link ...
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(
            dropped.command("noop", timeout=30).seq))
        thread.start()
        while fake.executed[NOOP] == executed:
            time.sleep(0.01)
        port: Any = dropped.transport._serial
        sock = port._client.socket()  # ... and its subscriber's connection dies
        sock.shutdown(2)
        thread.join(40)
        assert done, "the command did not complete after the subscriber came back"
        keeper.command("noop", timeout=10)
        time.sleep(0.3)
        dropped.await_telemetry("mode", timeout=10)
    assert seen["dropped"].check() > 0  # it missed messages while away, and says how many
    assert seen["keeper"].check() == 0
    assert fake.executed[NOOP] - executed == 2


def test_command_is_held_while_the_link_state_is_unknown() -> None:
    """The operator's broker connection is down: the node's link state is unknown, so a
    command written then is not published; it is once the node is reported up again, and
    runs once."""
    with Broker() as broker, FakeNode(hk_period_s=0.1) as fake, \
            Gateway(broker.url, ST, {"n2": fake.port}):
        with Client(f"{broker.url}/{ST}/n2", write_log=False) as client:
            port: Any = client.transport._serial
            broker.stop(keep_dir=True)
            deadline = time.monotonic() + 20
            while port._broker_up and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not port._broker_up
            seq = client.send("noop")
            assert port.held == 1 and fake.executed[NOOP] == 0
            time.sleep(0.5)
            assert fake.executed[NOOP] == 0  # nothing reached the node meanwhile
            broker.start()
            deadline = time.monotonic() + 30
            while fake.executed[NOOP] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.executed[NOOP] == 1
            assert [m[2] for m in fake.received if m[4] == NOOP] == [seq]


def test_a_will_the_broker_confirms_is_a_lost_link_with_its_words() -> None:
    """The gateway's broker connection dies while the broker stays: the broker publishes its
    will, answers the port's round trip, and the operator's link is lost with the will's
    words (not held as unknown); it is back once the gateway reconnects and says `up`."""
    with Broker() as broker, FakeNode(hk_period_s=0.1) as fake, \
            Gateway(broker.url, ST, {"n3": fake.port}) as gateway:
        with Client(f"{broker.url}/{ST}/n3", write_log=False) as client:
            states: list[tuple[str, str]] = []
            forward = client.transport._on_state
            assert forward is not None
            client.transport._on_state = lambda s, d: (states.append((s, d)), forward(s, d))
            gateway.bridges[0]._mqtt.socket().shutdown(2)  # no DISCONNECT: the will is sent
            deadline = time.monotonic() + 30
            while ("up" not in [s for s, _ in states]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert states and states[0] == (
                "lost", "node n3 link is gone: the gateway's connection died"), states
            assert states[-1][0] == "up"
            client.command("noop", timeout=20)
    assert fake.executed[NOOP] == 1
