"""Fixtures for the ground's tests: isolated log/history dirs, a fake node, a simulated node."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import dictionary

sys.path.insert(0, str(Path(__file__).parent))  # fakenode, whatever pytest's import mode

from fakenode import FakeNode


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Session logs, console history and the background simulated node's files go to the
    test's tmp dir, never to logs/ or ~ (a background node the user runs is not found)."""
    monkeypatch.setenv("ILRS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ILRS_PORT", raising=False)
    monkeypatch.setenv("ILRS_CONSOLE_HISTORY", str(tmp_path / "history"))


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


@pytest.fixture(scope="module")
def sim_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One simulated node per test module (fast time, housekeeping at 10 Hz): its pty."""
    from ground.client import Client
    from ground.simnode import SimNode

    state = tmp_path_factory.mktemp("sim-state")
    with SimNode(seed=7, time_factor=600.0, state_dir=state) as node:
        client = Client(node.port, write_log=False)
        client.connect(timeout=10)
        for packet in dictionary.PACKETS:
            client.command("hk_rate", packet=packet.id, rate=10.0)
        client.close()
        yield node.port
