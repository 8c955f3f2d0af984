"""A read-only partner through a real broker with the README's users and ACLs: the partner
reads telemetry, events and status with the ordinary surfaces (``ground tlm``, ``ground
events``) on a ``readonly=1`` port that never publishes, and ``ground cmd`` on it is refused
in one line; an operator commands the same node meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakenode import FakeNode
from stationkit import Watcher

from ground.broker import Access, Broker
from ground.client import Client
from ground.errors import EXIT_USAGE, ReadOnlyPort, UsageError
from ground.gateway import Gateway
from ground.transport import is_read_only

ST = "moon"
USERS = {"gw": "gw-pw", "op1": "op1-pw", "partner": "partner-pw"}
ACL = {  # the README's (Station: users and ACLs)
    "gw": Access(publish=[f"ilrs/v1/{ST}/#"], subscribe=[f"ilrs/v1/{ST}/+/cmd"]),
    "op1": Access(publish=[f"ilrs/v1/{ST}/+/cmd"], subscribe=[f"ilrs/v1/{ST}/#"]),
    "partner": Access(publish=[], subscribe=[f"ilrs/v1/{ST}/+/tm", f"ilrs/v1/{ST}/+/ev",
                                             f"ilrs/v1/{ST}/+/status"]),
}
REPO = Path(__file__).resolve().parents[2]
BOOT_EVENT = 1


@pytest.fixture(scope="module")
def station() -> Iterator[tuple[Broker, FakeNode]]:
    with Broker(users=USERS, acl=ACL) as broker, FakeNode(hk_period_s=0.1) as fake:
        stop = threading.Event()

        def events() -> None:  # the node's events, one every 0.2 s
            while not stop.wait(0.2):
                fake.event(BOOT_EVENT, 1, [fake.boot, 0])

        thread = threading.Thread(target=events, daemon=True)
        thread.start()
        gw_url = f"mqtt://gw:gw-pw@127.0.0.1:{broker.port}"
        try:
            with Gateway(gw_url, ST, {"n1": fake.port}):
                yield broker, fake
        finally:
            stop.set()
            thread.join(2)


def _url(broker: Broker, user: str, query: str) -> str:
    return f"mqtt://{user}:{USERS[user]}@127.0.0.1:{broker.port}/{ST}/n1?{query}"


def _ground(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ground", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120)


def test_partner_reads_telemetry_and_events_with_the_ground_tool(
    station: tuple[Broker, FakeNode], tmp_path: Path
) -> None:
    broker, fake = station
    port = _url(broker, "partner", "readonly=1")
    tlm = _ground("tlm", "--port", port, "--count", "3", "--format", "jsonl",
                  "--log", str(tmp_path / "tlm.jsonl"))
    assert tlm.returncode == 0, tlm.stderr
    rows = [json.loads(line) for line in tlm.stdout.splitlines()]
    ids = [r["value"] for r in rows if r["channel"] == "node_id"]  # one row per channel
    assert ids == [fake.node_id] * 3 and len(rows) == 3 * len(fake.packet_channels), rows
    events = _ground("events", "--port", port, "--count", "2", "--format", "jsonl",
                     "--log", str(tmp_path / "ev.jsonl"))
    assert events.returncode == 0, events.stderr
    assert [json.loads(line)["event"] for line in events.stdout.splitlines()] == ["boot", "boot"]
    # the partner's sessions sent nothing: no `up` record in either log
    for log in ("tlm.jsonl", "ev.jsonl"):
        kinds = {json.loads(line).get("type") for line in (tmp_path / log).read_text()
                 .splitlines()}
        assert "up" not in kinds and "down" in kinds, (log, kinds)


def test_partner_command_is_refused_in_one_line_and_nothing_is_published(
    station: tuple[Broker, FakeNode], tmp_path: Path
) -> None:
    broker, fake = station
    before = dict(fake.executed)
    watcher = Watcher(_url(broker, "op1", "").split("/moon")[0], f"ilrs/v1/{ST}/+/cmd",
                      user="op1", password=USERS["op1"])
    try:
        run = _ground("cmd", "noop", "--port", _url(broker, "partner", "readonly=1"),
                      "--log", str(tmp_path / "cmd.jsonl"))
        assert run.returncode == EXIT_USAGE, run.stderr
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "is read-only (readonly=1: a partner's view of the node): " \
            "a command is not sent" in lines[0], run.stderr
        with Client(_url(broker, "partner", "readonly=1"), write_log=False) as client:
            assert client.status is not None and client.status.node_id == fake.node_id
            with pytest.raises(ReadOnlyPort):
                client.send("noop")
            with pytest.raises(ReadOnlyPort):
                client.command("status", timeout=2)
        time.sleep(0.5)  # anything published on cmd would have reached the watcher by now
        assert watcher.payloads(f"ilrs/v1/{ST}/n1/cmd") == []
    finally:
        watcher.close()
    assert dict(fake.executed) == before


def test_operator_commands_while_the_partner_watches(station: tuple[Broker, FakeNode]) -> None:
    broker, fake = station
    with Client(_url(broker, "partner", "readonly=1"), write_log=False) as partner, \
            Client(_url(broker, "op1", "operator=1"), write_log=False) as operator:
        operator.command("noop", timeout=10)
        assert partner.await_telemetry("node_id", timeout=10).value == fake.node_id


def test_readonly_option_is_checked() -> None:
    assert is_read_only("mqtt://h:1/s/n?readonly=1")
    assert not is_read_only("mqtt://h:1/s/n?readonly=0") and not is_read_only("sim")
    with pytest.raises(UsageError, match=r"readonly='yes': 1 \(a read-only port\) or 0"):
        is_read_only("mqtt://h:1/s/n?readonly=yes")
    with pytest.raises(UsageError, match="readonly=1 sends nothing: operator= has no use"):
        is_read_only("mqtt://h:1/s/n?readonly=1&operator=2")


def test_the_readme_shows_these_acls() -> None:
    """The Mosquitto ACL file in the README is the one these tests give the real broker."""
    readme = (REPO / "README.md").read_text()
    for user, access in ACL.items():
        block = "\n".join([f"user {user}"]
                          + [f"topic write {t}" for t in access.publish]
                          + [f"topic read {t}" for t in access.subscribe])
        assert block + "\n" in readme, block
