"""Fixtures for the node tests: the simulated node on a pty, a test client, MicroPython runs.

- ``node`` (module scope): one SimNode per test module (Pico heap, precompiled modules), in a
  fresh state directory; ``link`` (module scope): a NodeLink on its pty, booted and in SAFE.
- ``fresh_node``: a function-scoped node and link for tests that reboot, cut power or hang it.
- ``run_mp``: run a MicroPython script (tests/firmware/mp on the path) and return its stdout.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ground.micropython import find_micropython, micropython_path_env
from ground.simnode import SimNode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nodelink import NodeLink  # noqa: E402

MP_DIR = HERE / "mp"


def start_node(state_dir: Path, **kwargs) -> tuple[SimNode, NodeLink]:
    kwargs.setdefault("seed", 1)
    node = SimNode(state_dir=state_dir, **kwargs).start()
    link = NodeLink(node.port, node.log_path)
    return node, link


def ready(link: NodeLink, rate_limit: int = 100) -> NodeLink:
    """Wait until the node answers (status completed), so its boot is over; then raise the
    event rate limit (tests send bursts of commands; throttling has its own test)."""
    link.send_and_assert_command(15, timeout=10)
    link.send_and_assert_command(8, 10, rate_limit)  # param_set event_rate_limit
    return link


@contextlib.contextmanager
def running_node(state_dir: Path, *, keys: bytes | None = None, signer: Any = None,
                 **kwargs: Any) -> Iterator[tuple[SimNode, NodeLink]]:
    """A simulated node on state_dir with a link that has seen it answer; both stopped after.
    ``keys``: a key table (``ground.auth.node_key_table``) written as the node's keys.bin
    first; ``signer``: the link signs with it from the first command; ``kwargs``: SimNode's."""
    if keys is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "keys.bin").write_bytes(keys)
    node, link = start_node(state_dir, **kwargs)
    if signer is not None:
        link.signer = signer
    try:
        ready(link)
        yield node, link
    finally:
        link.close()
        node.stop()


@pytest.fixture(scope="module")
def node_and_link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimNode, NodeLink]]:
    with running_node(tmp_path_factory.mktemp("node")) as pair:
        yield pair


@pytest.fixture(scope="module")
def node(node_and_link: tuple[SimNode, NodeLink]) -> SimNode:
    return node_and_link[0]


@pytest.fixture(scope="module")
def link(node_and_link: tuple[SimNode, NodeLink]) -> NodeLink:
    return node_and_link[1]


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[tuple[SimNode, NodeLink]]:
    with running_node(tmp_path / "state") as pair:
        yield pair


@pytest.fixture(scope="session")
def run_mp():
    exe = find_micropython()
    env = micropython_path_env()
    env["MICROPYPATH"] = os.pathsep.join([str(MP_DIR), env["MICROPYPATH"], ".frozen"])

    def run(script: str, heap: str = "512K", timeout: float = 60.0) -> str:
        done = subprocess.run([exe, "-X", f"heapsize={heap}", "-c", script], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"micropython failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def node_runner() -> Any:
    """``running_node`` for tests that start nodes of their own (see ``node_tools``)."""
    return running_node


@pytest.fixture(scope="session")
def node_tools() -> tuple[Any, Any]:
    """(start_node, ready) for tests that start nodes of their own (conftest modules of other
    test folders share the name, so a test module cannot import them)."""
    return start_node, ready
