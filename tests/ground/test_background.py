"""The background simulated node of ``ground sim start`` holds the development key, as a
``sim`` port's node does (SPEC §10.6): it boots ENFORCED, every later command finds it and
signs with that key by itself, each one continuing the key's counters (the node's replay
window outlives every command), and a command in clear is rejected ``UNAUTHENTICATED``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground.client import Client
from ground.errors import CommandRejected
from ground.keys import dev_key_signer

pytestmark = [pytest.mark.slow, pytest.mark.micropython,
              pytest.mark.skipif(os.name != "posix", reason="the simulated node needs a pty")]

GROUND = [sys.executable, "-m", "ground"]
UNAUTHENTICATED = 9  # SPEC §10.6
ENFORCED = 2  # auth_state


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The `ground` processes' and this test's own folders (the dev store among them)."""
    values = {k: v for k, v in os.environ.items() if k not in ("ILRS_PORT", "ILRS_OPERATOR")}
    values.update(XDG_RUNTIME_DIR=str(tmp_path / "run"), XDG_STATE_HOME=str(tmp_path / "state"),
                  ILRS_LOG_DIR=str(tmp_path / "logs"))
    for name in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "ILRS_LOG_DIR"):
        monkeypatch.setenv(name, values[name])
    yield values
    subprocess.run([*GROUND, "sim", "stop"], env=values, timeout=60, check=False)


def ground(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GROUND, *argv], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_background_node_is_keyed_and_commands_sign_by_themselves(
    env: dict[str, str], tmp_path: Path
) -> None:
    start = ground(env, "sim", "start", "--time-factor", "600")
    assert start.returncode == 0, start.stderr
    port = start.stdout.strip()
    info = json.loads((tmp_path / "run" / "ilrs" / "sim.json").read_text())
    assert (info["port"], info["key"]) == (port, "dev")
    assert (tmp_path / "state" / "ilrs" / "sim-node" / "keys.bin").exists()
    status = ground(env, "sim", "status")
    assert status.returncode == 0 and ", development key);" in status.stdout
    for _ in range(2):  # the second command continues the first one's counters
        noop = ground(env, "cmd", "noop")
        assert noop.returncode == 0, noop.stderr
    assert ground(env, "cmd", "noop", "--port", port).returncode == 0  # its pty named
    plain = Client(port, write_log=False, correlate=False)  # in clear: refused at once
    with pytest.raises(CommandRejected) as exc:
        plain.connect()
    assert (exc.value.command, exc.value.code, exc.value.reason) == (
        "status", UNAUTHENTICATED, "UNAUTHENTICATED")
    with Client(port, write_log=False, correlate=False, signer=dev_key_signer()) as signed:
        assert signed.await_telemetry("auth_state", timeout=30).value == ENFORCED
        forged = signed.latest("auth_forged")
        replayed = signed.latest("auth_replayed")
        assert forged is not None and replayed is not None
        assert (forged.value, replayed.value) == (0, 0)  # no command was refused as a replay


def test_an_older_description_without_a_key_is_an_open_node(tmp_path: Path) -> None:
    from ground.background import BackgroundSim

    old = BackgroundSim(pid=1, port="/dev/pts/9", state_dir="s", node_log="l", started=0.0,
                        options={})
    assert old.key == "none" and ", open: no key);" in old.describe()
