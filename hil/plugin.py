"""The HIL rig's pytest plugin (entry point ``pytest11: hil = hil.plugin``).

Loaded in every pytest run of the repository, so it only registers options, markers and
fixtures: importing it imports nothing but pytest and the standard library, and a test that
uses none of its fixtures or markers runs exactly as without it.

Options (group ``hil``), each resolved from the command line, then the ini file, then the
environment, then the default:

``--target sim|vpico|URL``  ``sim`` (default) starts the simulated node; ``vpico`` (or
    ``vpico://?uf2=PATH&flash=FILE``) the virtual Pico: the real rp2 firmware on an emulated
    RP2040 (ground/vpico.py; the UF2 from ``uf2=`` or ``$ILRS_VPICO_UF2``, else every test is
    skipped saying so); anything else is a pyserial URL of a real board: ``/dev/ttyACM0``,
    ``COM3``, ``socket://host:port``, ``rfc2217://``. ini ``hil_target``, env ``HIL_TARGET``.
``--time-scale X``    multiply every wait by X instead of the factor measured at the start of
    the session (hil/timing.py: node clock against wall clock, round trip, link throughput).
    ini ``hil_time_scale``, env ``HIL_TIME_SCALE``.
``--hil-log DIR``     where session logs go: one ground session log per test
    (``<test name>.jsonl``), the simulated node's own log, and ``hil.json`` (what each test
    used). ini ``hil_log``, env ``HIL_LOG``; default ``build/hil/<timestamp>``. Under
    pytest-xdist each worker (its own session and session node) has its own:
    ``build/hil/<timestamp>-gw0``, or ``DIR/gw0``.
``--hil-seed N``      the simulated node's plant seed (default 1).
``--power-cuts N``    power cuts at random moments in hil/tests/test_power_cuts.py (default
    20 in the suite; the acceptance run is ``--power-cuts 500``). Fixture ``power_cuts``.

Markers: ``hardware`` (needs a real Pico: skipped with the reason on ``sim``; on ``vpico`` too,
each of them meets a limit of the emulator), ``sim_only`` (needs the simulated node: its state
directory; skipped elsewhere), ``power_cut`` (needs a target whose power the rig can cut: the
sim or the virtual Pico; skipped on a board), ``emulator_limit(reason)`` (depends on something
rp2040py does not emulate: skipped on ``vpico`` with the reason), ``slow_target(reason)`` (too
slow to be worth it on a target with a time scale of 10 or more, e.g. the virtual Pico:
skipped there with the reason), ``byte_link(reason)`` (needs the node's
byte link itself: raw or damaged frames; skipped through a broker, ``mqtt://...``, which
carries whole messages and drops bytes that are not a verified frame before the node; the
``hardware`` tests are skipped there too).

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
VPICO = "vpico"
SLOW_SCALE = 10.0  # slow_target tests are skipped from this time scale on
VPICO_PRIOR_SCALE = 40.0  # the virtual Pico before it is measured (hil/session.py)
DEFAULT_SEED = 1
DEFAULT_POWER_CUTS = 20
_LOG_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "HIL rig (ILRS station node)")
    group.addoption("--target", dest="hil_target", default=None, metavar="sim|URL",
                    help="node under test: sim (default), vpico (the virtual Pico: "
                         "$ILRS_VPICO_UF2 or vpico://?uf2=PATH) or a pyserial URL of a "
                         "board, e.g. /dev/ttyACM0, socket://127.0.0.1:5000")
    group.addoption("--hil-log", dest="hil_log", default=None, metavar="DIR",
                    help="directory for the per-test session logs (default build/hil/<time>)")
    group.addoption("--hil-seed", dest="hil_seed", default=None, type=int, metavar="N",
                    help="plant seed of the simulated node (default 1)")
    group.addoption("--power-cuts", dest="hil_power_cuts", default=None, type=int,
                    metavar="N", help="power cuts at random moments in "
                    f"hil/tests/test_power_cuts.py (default {DEFAULT_POWER_CUTS}; the acceptance "
                    "run: 500)")
    group.addoption("--time-scale", dest="hil_time_scale", default=None, type=float,
                    metavar="X", help="multiply every wait by X (default: measured at the "
                                      "start of the session)")
    parser.addini("hil_target", "HIL: node under test (sim, vpico or a pyserial URL)",
                  default=None)
    parser.addini("hil_time_scale", "HIL: factor for every wait (default: measured)",
                  default=None)
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
        "markers", "power_cut(reason): needs a target the rig can cut the power of "
        "(the sim, the virtual Pico); skipped on a board")
    config.addinivalue_line(
        "markers", "emulator_limit(reason): depends on what rp2040py does not emulate; "
        "skipped on the virtual Pico")
    config.addinivalue_line(
        "markers", "slow_target(reason): too slow to be worth it on a target with a time "
        "scale of 10 or more (the virtual Pico); skipped there")
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
    if is_vpico_target(target):
        from urllib.parse import parse_qsl, urlencode, urlsplit

        from ground.vpico import UF2_ENV, vpico_options

        # the UF2 itself is checked per test: without one, each is skipped saying so
        query = urlsplit(target).query if "://" in target else ""
        rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "uf2"]
        try:
            vpico_options(f"{VPICO}://?{urlencode(rest)}", {UF2_ENV: __file__})
        except UsageError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        return
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


def worker_of(config: pytest.Config) -> str:
    """The pytest-xdist worker this session is (``gw0``, ...), or "" without xdist."""
    return str(getattr(config, "workerinput", {}).get("workerid", ""))


def log_dir_of(config: pytest.Config) -> Path:
    """The resolved --hil-log directory (not created until a test needs it)."""
    configured = _setting(config, "hil_log", "HIL_LOG")
    # Each pytest-xdist worker is a session of its own, with its own session node: its own
    # folder, or two workers started in the same second would share one node's flash.
    worker = worker_of(config)
    if configured:
        return Path(configured).resolve() / worker if worker else Path(configured).resolve()
    cached = getattr(config, "_hil_default_log", None)
    if cached is None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        cached = config.rootpath / "build" / "hil" / (f"{stamp}-{worker}" if worker else stamp)
        config._hil_default_log = cached  # type: ignore[attr-defined]
    return Path(cached)


def seed_of(config: pytest.Config) -> int:
    seed = config.getoption("hil_seed")
    return DEFAULT_SEED if seed is None else int(seed)


def power_cuts_of(config: pytest.Config) -> int:
    cuts = config.getoption("hil_power_cuts")
    return DEFAULT_POWER_CUTS if cuts is None else int(cuts)


def time_scale_of(config: pytest.Config) -> float | None:
    """The resolved --time-scale (None: measure it)."""
    value = _setting(config, "hil_time_scale", "HIL_TIME_SCALE")
    if value is None:
        return None
    try:
        scale = float(value)
    except ValueError:
        raise pytest.UsageError(f"--time-scale {value!r}: a number of at least 1") from None
    if not scale >= 1.0:
        raise pytest.UsageError(f"--time-scale {value!r}: a number of at least 1")
    return scale


def is_sim_target(target: str) -> bool:
    return target == SIM or target.startswith(SIM + "://")


def is_vpico_target(target: str) -> bool:
    return target == VPICO or target.startswith(VPICO + "://")


def _why(marker: pytest.Mark) -> str:
    return str(marker.kwargs.get("reason") or (marker.args[0] if marker.args else ""))


def is_broker_target(target: str) -> bool:
    return target.startswith("mqtt://")


def pytest_runtest_setup(item: pytest.Item) -> None:
    target = target_of(item.config)
    byte_link = item.get_closest_marker("byte_link")
    if byte_link is not None and is_broker_target(target):
        why = _why(byte_link)
        pytest.skip("needs the node's byte link" + (f" ({why})" if why else "")
                    + f"; a broker carries whole messages: target is {target}")
    vpico = is_vpico_target(target)
    if vpico and "hil_target" in getattr(item, "fixturenames", ()):
        _skip_without_uf2(target)
    hardware = item.get_closest_marker("hardware")
    if hardware is not None and (is_sim_target(target) or vpico
                                 or is_broker_target(target)):
        why = _why(hardware)
        pytest.skip("needs a real Pico" + (f" ({why})" if why else "")
                    + f"; target is {target}: run with --target /dev/ttyACM0")
    sim_only = item.get_closest_marker("sim_only")
    if sim_only is not None and not is_sim_target(target):
        why = _why(sim_only)
        pytest.skip("needs the simulated node" + (f" ({why})" if why else "")
                    + f"; target is {target}")
    power_cut = item.get_closest_marker("power_cut")
    if power_cut is not None and not (is_sim_target(target) or vpico):
        why = _why(power_cut)
        pytest.skip("needs a power cut (the sim or the virtual Pico)"
                    + (f" ({why})" if why else "") + f"; target is {target}")
    limit = item.get_closest_marker("emulator_limit")
    if limit is not None and vpico:
        pytest.skip(f"emulator limit on the virtual Pico: {_why(limit)}")
    slow = item.get_closest_marker("slow_target")
    scale = time_scale_of(item.config)
    if slow is not None and (vpico if scale is None else scale >= SLOW_SCALE):
        pytest.skip(f"too slow to be worth it on {target} (time scale "
                    f"{'about 34' if scale is None else f'{scale:g}'}): {_why(slow)}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a slow target, pytest-timeout's per-test limit (ini ``timeout``) follows the time
    scale (the given one, or the virtual Pico's expected 40) like every other wait."""
    target = target_of(config)
    scale = time_scale_of(config) or (VPICO_PRIOR_SCALE if is_vpico_target(target) else 1.0)
    try:
        limit = float(config.getini("timeout") or 0)
    except (ValueError, TypeError):  # pytest-timeout not installed: nothing to stretch
        return
    if scale <= 1.0 or limit <= 0:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None and "hil_target" in getattr(
                item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(limit * scale))


def _skip_without_uf2(target: str) -> None:
    from ground.errors import UsageError
    from ground.vpico import rp2040py_missing, vpico_options

    missing = rp2040py_missing()
    if missing:
        pytest.skip(f"virtual Pico: {missing}")
    try:
        vpico_options(target)
    except UsageError as exc:
        pytest.skip(f"virtual Pico: {exc}")


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
    target = HilTarget(target_of(config), log_dir_of(config), seed=seed_of(config),
                       time_scale=time_scale_of(config), worker=worker_of(config))
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
def power_cuts(request: pytest.FixtureRequest) -> int:
    """How many power cuts --power-cuts asks for (default DEFAULT_POWER_CUTS)."""
    return power_cuts_of(request.config)


@pytest.fixture
def impaired_link(hil_link: HilLink, hil_log_path: Path) -> Iterator[Callable[..., NodeApi]]:
    """Factory for a NodeApi whose link runs through a seeded impairing proxy."""
    with hil_link.impaired_factory(hil_log_path) as factory:
        yield factory

