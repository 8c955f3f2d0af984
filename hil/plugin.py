"""The HIL rig's pytest plugin (entry point ``pytest11: hil = hil.plugin``).

Loaded in every pytest run of the repository, so it only registers options, markers and
fixtures: importing it imports nothing but pytest and the standard library, and a test that
uses none of its fixtures or markers runs exactly as without it.

Options (group ``hil``), each resolved from the command line, then the ini file, then the
environment, then the default:

``--target sim|URL``  ``sim`` (default) starts the simulated node; anything else is a pyserial
    URL of a real board: ``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, ``rfc2217://``.
    ini ``hil_target``, env ``HIL_TARGET``.
``--hil-log DIR``     where session logs go: one ground session log per test
    (``<test name>.jsonl``), the simulated node's own log, and ``hil.json`` (what each test
    used). ini ``hil_log``, env ``HIL_LOG``; default ``build/hil/<timestamp>``.
``--hil-seed N``      the simulated node's plant seed (default 1).

Markers: ``hardware`` (needs a real Pico: skipped with the reason on ``sim`` and through a
broker), ``sim_only`` (needs the simulated node: power cuts by SIGKILL, its state directory;
skipped on a board), ``byte_link`` (needs the node's byte link itself: raw or damaged frames;
skipped through a broker, ``mqtt://...``, which carries whole messages and drops bytes that
are not a verified frame before they could reach the node).

Fixtures (see hil/session.py for what each does):

``hil_target``   session: the node under test (a running SimNode, or a board's URL);
                 ``power_cycle()``, ``fresh()``.
``hil_link``     session: the connection manager; hands out clients, one per test, each with
                 its own session log.
``node``         function: a connected `hil.vocabulary.NodeApi` on a node in the *known
                 state* (see hil/session.py): parameters at defaults and saved, SAFE,
                 faults cleared, loads off, counters zeroed, default housekeeping rates.
``fresh_node``   function: the same on a brand-new node (sim: new process and an empty
                 state directory; board: the known state plus a reboot).
``power_cycle``  function: a callable that cuts the power (sim: SIGKILL and restart; board:
                 the ``reboot`` command) and waits for the boot.
``impaired_link`` function: a factory ``impaired_link(drop=, corrupt=, duplicate=,
                 delay_ms=, split=, seed=, direction=)`` returning a NodeApi whose link runs
                 through `hil.impair.ImpairedLink` (``.proxy`` for its counts).
``hil_log_path`` function: the session log file of the current test.

JUnit XML: ``pytest --junitxml=build/hil/junit.xml``; each test that used the node records
its session log as the ``hil_log`` property, and failures show the log path in a report
section.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported lazily at fixture time: keep the plugin cheap to load
    from hil.session import HilLink, HilTarget
    from hil.vocabulary import NodeApi

SIM = "sim"
DEFAULT_SEED = 1
_LOG_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "HIL rig (ILRS station node)")
    group.addoption("--target", dest="hil_target", default=None, metavar="sim|URL",
                    help="node under test: sim (default) or a pyserial URL of a board, "
                         "e.g. /dev/ttyACM0, socket://127.0.0.1:5000")
    group.addoption("--hil-log", dest="hil_log", default=None, metavar="DIR",
                    help="directory for the per-test session logs (default build/hil/<time>)")
    group.addoption("--hil-seed", dest="hil_seed", default=None, type=int, metavar="N",
                    help="plant seed of the simulated node (default 1)")
    parser.addini("hil_target", "HIL: node under test (sim or a pyserial URL)", default=None)
    parser.addini("hil_log", "HIL: directory for session logs", default=None)


def pytest_configure(config: pytest.Config) -> None:
    target = _setting(config, "hil_target", "HIL_TARGET")
    if target is not None:  # a wrong target is one line here, not a traceback per test
        check_target(target)
    config.addinivalue_line(
        "markers", "hardware(reason): needs a real Pico (GPIO, RP2040 sensor, USB); "
        "skipped on the simulated node")
    config.addinivalue_line(
        "markers", "sim_only(reason): needs the simulated node; skipped on a board")
    config.addinivalue_line(
        "markers", "byte_link(reason): needs the node's byte link (raw or damaged frames); "
        "skipped through a broker")


def _setting(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name)
    if value is None:
        ini = config.getini(name)
        value = ini if ini else None
    if value is None:
        value = os.environ.get(env) or None
    return None if value is None else str(value)


def check_target(target: str) -> None:
    """Raise pytest.UsageError, in one line, for a target no test could reach: a bad
    ``sim://`` option, a pyserial URL scheme that does not exist, a device that is not there."""
    import serial

    from ground.errors import UsageError
    from ground.transport import sim_options

    where = f"--target {target}"
    if is_sim_target(target):
        try:
            sim_options(target)
        except UsageError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        return
    if "://" in target:
        try:
            serial.serial_for_url(target, do_not_open=True)
        except (ValueError, serial.SerialException) as exc:
            raise pytest.UsageError(
                f"{where}: {exc} (use sim, a device such as /dev/ttyACM0, or a pyserial URL "
                "such as socket://127.0.0.1:5000)"
            ) from None
        return
    if os.name != "nt" and not Path(target).exists():
        raise pytest.UsageError(
            f"{where}: no such device (is the board plugged in? use sim for the simulated node)"
        )


def target_of(config: pytest.Config) -> str:
    """The resolved --target: option, ini hil_target, $HIL_TARGET, else ``sim``."""
    return _setting(config, "hil_target", "HIL_TARGET") or SIM


def log_dir_of(config: pytest.Config) -> Path:
    """The resolved --hil-log directory (not created until a test needs it)."""
    configured = _setting(config, "hil_log", "HIL_LOG")
    if configured:
        return Path(configured).resolve()
    cached = getattr(config, "_hil_default_log", None)
    if cached is None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        cached = config.rootpath / "build" / "hil" / stamp
        config._hil_default_log = cached  # type: ignore[attr-defined]
    return Path(cached)


def seed_of(config: pytest.Config) -> int:
    seed = config.getoption("hil_seed")
    return DEFAULT_SEED if seed is None else int(seed)


def is_sim_target(target: str) -> bool:
    return target == SIM or target.startswith(SIM + "://")


def is_broker_target(target: str) -> bool:
    return target.startswith("mqtt://")


def pytest_runtest_setup(item: pytest.Item) -> None:
    target = target_of(item.config)
    byte_link = item.get_closest_marker("byte_link")
    if byte_link is not None and is_broker_target(target):
        why = byte_link.kwargs.get("reason") or (byte_link.args[0] if byte_link.args else "")
        pytest.skip("needs the node's byte link" + (f" ({why})" if why else "")
                    + f"; a broker carries whole messages: target is {target}")
    hardware = item.get_closest_marker("hardware")
    if hardware is not None and (is_sim_target(target) or is_broker_target(target)):
        why = hardware.kwargs.get("reason") or (hardware.args[0] if hardware.args else "")
        pytest.skip("needs a real Pico" + (f" ({why})" if why else "")
                    + f"; target is {target}: run with --target /dev/ttyACM0")
    sim_only = item.get_closest_marker("sim_only")
    if sim_only is not None and not is_sim_target(target):
        why = sim_only.kwargs.get("reason") or (sim_only.args[0] if sim_only.args else "")
        pytest.skip("needs the simulated node" + (f" ({why})" if why else "")
                    + f"; target is {target}")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if config.getoption("hil_target") is None and not config.getini("hil_target"):
        return None  # an ordinary run: say nothing
    return [f"hil: target {target_of(config)}, session logs in {log_dir_of(config)}"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    path = item.stash.get(_LOG_KEY, None)
    if path is not None and report.failed:
        report.sections.append(("hil session log", path))
    return report


# --- fixtures ----------------------------------------------------------------------------


def _test_log_name(request: pytest.FixtureRequest) -> str:
    name = request.node.nodeid.split("::", 1)[-1]
    safe = "".join(c if c.isalnum() or c in "-_.[]" else "_" for c in name)
    return safe[:150] or "test"


@pytest.fixture(scope="session")
def hil_target(request: pytest.FixtureRequest) -> Iterator[HilTarget]:
    """The node under test for the whole session: a SimNode, or a board's URL."""
    from hil.session import HilTarget

    config = request.config
    target = HilTarget(target_of(config), log_dir_of(config), seed=seed_of(config))
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="session")
def hil_link(hil_target: HilTarget) -> Iterator[HilLink]:
    """The session's connection manager: one client at a time, one log per test."""
    from hil.session import HilLink

    link = HilLink(hil_target)
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
def hil_log_path(request: pytest.FixtureRequest, hil_target: HilTarget) -> Path:
    path = hil_target.log_dir / f"{_test_log_name(request)}.jsonl"
    request.node.stash[_LOG_KEY] = str(path)
    request.node.user_properties.append(("hil_log", str(path)))
    return path


@pytest.fixture
def node(hil_link: HilLink, hil_log_path: Path) -> Iterator[NodeApi]:
    """A connected node in the known state (see hil/session.py)."""
    api = hil_link.open(hil_log_path)
    try:
        hil_link.reset(api)
        yield api
    finally:
        hil_link.release(api)


@pytest.fixture
def fresh_node(hil_link: HilLink, hil_log_path: Path) -> Iterator[NodeApi]:
    """A brand-new node: sim: a new process on an empty state directory."""
    with hil_link.fresh(hil_log_path) as api:
        yield api


@pytest.fixture
def power_cycle(hil_link: HilLink) -> Callable[..., None]:
    """``power_cycle(api=None, timeout_s=...)``: cut the power, wait for the node's boot."""
    return hil_link.power_cycle


@pytest.fixture
def impaired_link(hil_link: HilLink, hil_log_path: Path) -> Iterator[Callable[..., NodeApi]]:
    """Factory for a NodeApi whose link runs through a seeded impairing proxy."""
    with hil_link.impaired_factory(hil_log_path) as factory:
        yield factory

