"""Commands through the broker stay authenticated end to end (SPEC §10, docs/station.md):
behind a gateway, a simulated node holding the development key (``sim://?key=dev``) or an
operator's key; a client on ``mqtt://...?key=dev`` or with ``--operator N`` signs, the gateway
forwards the signed bytes unchanged and the node executes them; an unsigned command to the
same ENFORCED node is rejected ``UNAUTHENTICATED`` (code 9, SPEC §10.6) and not executed.

Sessions follow one another on the same node, whose replay window outlives each of them: a
signer that started its counters over would have its commands refused as replays (no answer
at all, SPEC §10.3), so several sessions in a row are part of the oracle.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ground.broker import Broker
from ground.client import Client
from ground.downlink import EVENT
from ground.errors import CommandRejected, UsageError
from ground.gateway import Gateway
from ground.keys import KeyStore, dev_store
from ground.transport import mqtt_dev_key

pytestmark = pytest.mark.micropython

ST = "keyed"
UNAUTHENTICATED = 9  # reason codes (SPEC §5.1, §10.6)
STALE_BOOT = 8
NOOP, STATUS = 1, 15  # command ids
COMMANDING = 9  # the packet with the command and authentication counters
COUNTERS = ("cmds_accepted", "cmds_rejected", "events_suppressed", "auth_forged",
            "auth_replayed")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, Path]]:
    """A broker and a gateway serving `dev` (the development key) and `op` (operator 1's
    key, from a key store provisioned into its state directory, as `ground keys provision
    --state-dir` does)."""
    folder = tmp_path_factory.mktemp("keyed")
    keys = KeyStore(folder / "keys.json")
    keys.generate(1)
    (folder / "op").mkdir()
    (folder / "op" / "keys.bin").write_bytes(keys.node_table([1]))
    nodes = {"dev": f"sim://?key=dev&time_factor=600&state_dir={folder / 'dev'}",
             "op": f"sim://?key=none&time_factor=600&state_dir={folder / 'op'}"}
    with Broker() as broker, Gateway(broker.url, ST, nodes):
        yield broker, folder


def _counters(client: Client) -> dict[str, int]:
    """The commanding packet's counters, from a packet made after everything sent so far."""
    client.await_telemetry("cmds_accepted", timeout=20)
    client.await_telemetry("cmds_accepted", timeout=20)
    got = {name: client.latest(name) for name in COUNTERS}
    return {name: int(value.value) for name, value in got.items() if value is not None}


def _ground(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ground", *argv], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_the_key_option_of_an_mqtt_port() -> None:
    assert mqtt_dev_key("mqtt://h:1/s/n?key=dev")
    assert not mqtt_dev_key("mqtt://h:1/s/n?key=none")
    assert not mqtt_dev_key("mqtt://h:1/s/n") and not mqtt_dev_key("sim://?key=dev")
    with pytest.raises(UsageError, match=r"key='mine': dev \(the node holds"):
        mqtt_dev_key("mqtt://h:1/s/n?key=mine")
    with pytest.raises(UsageError, match="readonly=1 sends nothing: key= has no use there"):
        mqtt_dev_key("mqtt://h:1/s/n?readonly=1&key=dev")


def test_signed_with_the_development_key_through_the_broker(
    station: tuple[Broker, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every counter accounted for, watched by one signed session that stays open: each new
    session's first `status` may be rejected STALE_BOOT (sent before it knows the boot, SPEC
    §5.1) and re-sent; every other rejection is one of the two commands sent in clear."""
    broker, folder = station
    monkeypatch.setenv("XDG_STATE_HOME", str(folder / "state"))  # one dev store per node
    url = f"{broker.url}/{ST}/dev"
    with Client(url + "?key=dev", write_log=False, correlate=False) as watch:
        assert watch.signer is not None and watch.signer.operator == 0
        rejections: list[tuple[Any, ...]] = []
        watch.downlink.listen(EVENT, lambda e: rejections.append(e.args)
                              if e.name == "cmd_rejected" else None)
        watch.command("hk_rate", packet=COMMANDING, rate=5.0)
        # one cmd_rejected event per rejection: more than the default 5 per 10 s may come
        watch.command("param_set", param="event_rate_limit", value=100)
        before = _counters(watch)
        rejections.clear()
        for _session in range(2):  # each session continues the key's counters (dev_store)
            with Client(url + "?key=dev", write_log=False, correlate=False) as signed:
                res = signed.command("noop")
                assert [v.stage for v in res.verifications] == ["accepted", "completed"]
                assert signed.downlink.auth_errors == 0
        assert dev_store().entry(0)["counter"] >= 3 * 256  # a block per session, persisted
        plain = Client(url, write_log=False, correlate=False)  # no key: status in clear
        assert plain.signer is None
        with pytest.raises(CommandRejected) as exc:
            plain.connect()
        assert (exc.value.command, exc.value.code, exc.value.reason) == (
            "status", UNAUTHENTICATED, "UNAUTHENTICATED")
        refused = [(STATUS, exc.value.seq)]
        signer, watch.signer = watch.signer, None  # a noop in clear
        with pytest.raises(CommandRejected) as exc:
            watch.command("noop")
        assert (exc.value.command, exc.value.code) == ("noop", UNAUTHENTICATED)
        refused.append((NOOP, exc.value.seq))
        watch.signer = signer
        for _ in range(20):  # until every rejection's event has arrived (one per rejection)
            after = _counters(watch)
            if after["cmds_rejected"] - before["cmds_rejected"] <= len(rejections):
                break
    assert len(before) == len(after) == len(COUNTERS)
    # args: command id, seq, reason code; a re-sent command (same seq) may be rejected again
    unauthenticated = {(a[0], a[1]) for a in rejections if a[2] == UNAUTHENTICATED}
    stale = [a for a in rejections if a[2] != UNAUTHENTICATED]
    assert unauthenticated == set(refused), (rejections, refused)
    assert all(a[0] == STATUS and a[2] == STALE_BOOT for a in stale), stale
    assert {k: after[k] - before[k] for k in COUNTERS} == {
        "cmds_accepted": 4,  # two sessions' status and noop
        "cmds_rejected": len(rejections), "events_suppressed": 0,
        "auth_forged": 0, "auth_replayed": 0}, rejections


def test_ground_cmd_signs_through_the_broker(station: tuple[Broker, Path]) -> None:
    broker, folder = station
    env = {**os.environ, "ILRS_LOG_DIR": str(folder / "logs"),
           "XDG_STATE_HOME": str(folder / "state")}  # the dev store the node's counters match
    env.pop("ILRS_OPERATOR", None)
    dev = f"{broker.url}/{ST}/dev"
    signed = _ground("cmd", "noop", "--port", dev + "?key=dev", env=env)
    assert signed.returncode == 0, signed.stderr
    plain = _ground("cmd", "noop", "--port", dev, env=env)  # refused at its first command
    assert plain.returncode == 1
    assert "status (seq" in plain.stderr and "rejected: UNAUTHENTICATED (9)" in plain.stderr
    op = f"{broker.url}/{ST}/op"
    keys = str(folder / "keys.json")
    for _session in range(2):  # the operator's counters continue from its key store
        with_key = _ground("cmd", "noop", "--port", op, "--operator", "1", "--key-store", keys,
                           env=env)
        assert with_key.returncode == 0, with_key.stderr
    without = _ground("cmd", "noop", "--port", op, env=env)
    assert without.returncode == 1 and "rejected: UNAUTHENTICATED (9)" in without.stderr
