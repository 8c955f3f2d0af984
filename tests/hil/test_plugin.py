"""The hil pytest plugin, tested with pytester: options, markers, fixtures' reports, timeouts.

No node is started here: the tests that need the `node` fixture override the session
fixtures in their conftest with a client on ``loop://`` (nothing answers), which is enough to
see what a timeout says and where the log path goes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil import plugin

pytest_plugins = ["pytester"]

# A conftest for pytester runs: session fixtures replaced by a NodeApi on loop:// whose
# downlink the test feeds itself.
FAKE_CONFTEST = '''
import contextlib
from pathlib import Path

import pytest

from ground.client import Client
from hil.vocabulary import NodeApi


class FakeTarget:
    is_sim = True

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)


class FakeLink:
    def __init__(self, target):
        self.target = target

    def open(self, log_path):
        client = Client("loop://", log=log_path, check_dictionary=False)
        client.transport.open()
        client.link_state = "up"
        return NodeApi(client, self.target, command_timeout_s=0.3)

    def reset(self, api):
        api.note("reset")

    def release(self, api):
        api.detach()
        api.client.close()


@pytest.fixture(scope="session")
def hil_target(request):
    from hil.plugin import log_dir_of
    return FakeTarget(log_dir_of(request.config))


@pytest.fixture(scope="session")
def hil_link(hil_target):
    return FakeLink(hil_target)
'''


def test_options_are_in_the_hil_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*HIL rig*", "*--target=sim|URL*", "*--hil-log=DIR*",
                                 "*--hil-seed=N*"])


@contextlib.contextmanager
def _serial_device() -> Iterator[str]:
    """A pty: a serial device that exists, as a board's would."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_target_defaults_to_sim_and_follows_option_ini_env(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        from hil.plugin import target_of

        def test_target(request):
            print("TARGET=" + target_of(request.config))
    """)
    monkeypatch.delenv("HIL_TARGET", raising=False)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*TARGET=sim*"])
    with _serial_device() as device:  # a device that exists: a missing one is a usage error
        pytester.runpytest("-s", "--target", device).stdout.fnmatch_lines(
            [f"*TARGET={device}*"])
    monkeypatch.setenv("HIL_TARGET", "socket://127.0.0.1:5000")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*TARGET=socket://127.0.0.1:5000*"])
    pytester.makeini("[pytest]\nhil_target = rfc2217://127.0.0.1:7000\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*TARGET=rfc2217://127.0.0.1:7000*"])
    # the command line beats the ini file and the environment
    pytester.runpytest("-s", "--target", "sim").stdout.fnmatch_lines(["*TARGET=sim*"])


def test_hil_log_option_and_default(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("""
        from hil.plugin import log_dir_of

        def test_log(request):
            print("LOG=" + str(log_dir_of(request.config)))
    """)
    pytester.runpytest("-s", "--hil-log", str(tmp_path / "logs")).stdout.fnmatch_lines(
        [f"*LOG={tmp_path / 'logs'}*"])
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOG=*build/hil/*"])


def _as_xdist_worker_gw3(pytester: pytest.Pytester) -> None:
    """Run the next sessions as pytest-xdist's worker gw3 (what it gives the worker's config;
    the worker's session runs in that process)."""
    pytester.makeconftest("""
        def pytest_configure(config):
            config.workerinput = {"workerid": "gw3"}
    """)


def test_each_xdist_worker_has_its_own_log_folder(pytester: pytest.Pytester,
                                                  tmp_path: Path) -> None:
    # Two workers started in the same second once shared build/hil/<stamp>/node-state: their
    # session nodes wrote one flash (boot counts mixed, key counters refused, storage errors).
    pytester.makepyfile("""
        from hil.plugin import log_dir_of

        def test_log(request):
            print("LOG=" + str(log_dir_of(request.config)) + "|")
    """)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOG=*build/hil/????????T??????|*"])
    _as_xdist_worker_gw3(pytester)
    pytester.runpytest("-s", "--hil-log", str(tmp_path / "logs")).stdout.fnmatch_lines(
        [f"*LOG={tmp_path / 'logs' / 'gw3'}|*"])
    pytester.runpytest("-s").stdout.fnmatch_lines(["*LOG=*build/hil/*T*-gw3|*"])


def test_each_xdist_worker_has_its_own_virtual_pico_flash(pytester: pytest.Pytester) -> None:
    # Two workers on --target vpico once booted two emulators on build/vpico/flash.img.
    pytester.makepyfile("""
        from hil.session import default_vpico_flash

        def test_flash(hil_target):
            print("FLASH=" + str(default_vpico_flash(hil_target.worker)) + "|")
    """)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*FLASH=*/build/vpico/flash.img|*"])
    _as_xdist_worker_gw3(pytester)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*FLASH=*/build/vpico/gw3/flash.img|*"])


def test_hardware_marker_is_skipped_on_sim_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.hardware(reason="GPIO mirroring of load channels")
        def test_gpio():
            pass

        @pytest.mark.hardware
        def test_usb():
            pass

        def test_plain():
            pass
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([
        "*needs a real Pico (GPIO mirroring of load channels); target is sim*",
        "*--target /dev/ttyACM0*",
    ])


def test_hardware_marker_runs_and_sim_only_skips_on_a_board(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.hardware(reason="RP2040 temperature sensor")
        def test_gpio():
            pass

        @pytest.mark.sim_only(reason="SIGKILL power cut")
        def test_power_cut():
            pass
    """)
    with _serial_device() as device:
        result = pytester.runpytest("-rs", "--target", device)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs the simulated node (SIGKILL power cut)*"])


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.hardware*", "@pytest.mark.sim_only*"])


def test_plain_runs_are_unchanged(pytester: pytest.Pytester) -> None:
    """No header line, no log directory, nothing started, when no hil fixture is used."""
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "hil:" not in result.stdout.str()
    assert not (pytester.path / "build").exists()


def test_header_names_target_and_log_dir(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("--target", "sim", "--hil-log", str(tmp_path))
    result.stdout.fnmatch_lines([f"hil: target sim, session logs in {tmp_path}"])


def test_timeout_says_what_arrived_and_where_the_log_is(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeconftest(FAKE_CONFTEST)
    pytester.makepyfile("""
        from ground.link import encode_frame
        from ground import codec

        def feed_event(node, event_id, args):
            msg = codec.encode(codec.KIND_EVENT, 1, 10, event_id, [7, 1, args])
            node.client.downlink.feed(encode_frame(msg), 0)

        def feed_hk(node, soc):
            from protocol.dictionary import PACKETS
            power = PACKETS[0]
            body = [1, 3, 0x1234] + [0] * (len(power.channels) - 3)
            body[power.channels.index("battery_soc")] = soc
            msg = codec.encode(codec.KIND_HOUSEKEEPING, 2, 20, power.id, body)
            node.client.downlink.feed(encode_frame(msg), 0)

        def test_event_timeout(node):
            feed_event(node, 2, [1, 2])   # mode_changed SAFE -> NOMINAL
            node.assert_event("safe_mode", timeout=0.2)

        def test_telemetry_timeout(node):
            node.client.downlink.feed(b"\\x00", 0)
            feed_hk(node, 80.5)
            since = 0
            node.await_telemetry("battery_soc", lambda v: v < 15, timeout=0.2, since=since)

        def test_event_found_by_display_name(node):
            feed_event(node, 2, [1, 2])
            assert node.assert_event("mode_changed", new="NOMINAL", timeout=0.5).args == (1, 2)

        def test_command_timeout(node):
            node.send_and_assert_command("noop", raw=True, timeout=0.2)
    """)
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest("--hil-log", str(tmp_path / "logs"), f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    log_dir = tmp_path / "logs"
    assert "waiting for event safe_mode; received: 1 event(s): mode_changed(1, 2)" in out
    assert f"session log: {log_dir / 'test_event_timeout.jsonl'}" in out
    assert "waiting for battery_soc <lambda>; received: 1 battery_soc sample(s), last: 80.5" \
        in out
    assert "waiting for noop (seq" in out and "no verification for it" in out
    # the failure report has its own section naming the log, and JUnit records it
    assert "hil session log" in out
    assert (log_dir / "test_telemetry_timeout.jsonl").is_file()
    xml = junit.read_text()
    assert 'name="hil_log"' in xml and "test_command_timeout.jsonl" in xml


def test_plugin_imports_cheaply() -> None:
    """Importing the plugin pulls in no ground or serial module (it loads in every run)."""
    code = ("import sys, hil.plugin; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('ground', 'serial', 'cbor2', 'rich', 'hil.session')]; print(heavy)")
    import subprocess

    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    assert time.monotonic() - start < 5
    assert plugin.is_sim_target("sim://?seed=3") and not plugin.is_sim_target("/dev/ttyACM0")


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("/dev/ttyNOPE7", "--target /dev/ttyNOPE7: no such device (is the board plugged in?"),
        ("bogus://x", "--target bogus://x: invalid URL, protocol 'bogus' not known"),
        ("sim://?time_factor=0", "time_factor=0 must be above 0"),
        ("sim://?speed=2", "unknown sim option 'speed'"),
    ],
)
def test_a_wrong_target_is_one_line(pytester: pytest.Pytester, target: str, text: str) -> None:
    pytester.makepyfile(
        "\n".join(f"def test_{i}(node):\n    pass\n" for i in range(20))  # many tests, one line
    )
    result = pytester.runpytest_subprocess("--target", target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = [line for line in result.errlines if line.strip()]
    assert len(err) == 1 and err[0].startswith("ERROR: ") and text in err[0], err
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
