"""ground.simnode: the CLI prints the serial device first and stops cleanly; the API."""

import os
import signal
import subprocess
import sys
import time

import pytest
import serial
from nodelink import NodeLink

from ground.simnode import SimNode
from protocol import ids
from protocol.dictionary import PACKETS

pytestmark = pytest.mark.slow


def test_cli_prints_port_first_and_stops_on_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "ground.simnode", "--seed", "3",
                             "--time-factor", "120", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/")
        with NodeLink(port) as link:
            result = link.send_and_assert_command(ids.CMD_STATUS, timeout=10)
            assert result[0] == ids.MODE_SAFE
            assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TIME_FACTOR) == 120.0
            assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_PLANT_SEED) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM, err  # a clean stop by SIGTERM
    assert (state / "node.log").exists() and (state / "boot.bin").exists()


def test_api_and_port_survives_restarts(tmp_path):
    with SimNode(state_dir=tmp_path / "s", seed=1) as node:
        assert node.pid == os.getpid()
        first = node.node_pid
        assert first and node.running
        # A serial program can open, close and reopen the port: the node never sees a hangup.
        for _ in range(2):
            with serial.Serial(node.port, timeout=0.1) as s:
                s.reset_input_buffer()
        node.power_cut()
        assert node.node_pid not in (None, first)
        assert node.last_reset_cause == 0 and node.boots == 2
        with NodeLink(node.port, node.log_path) as link:
            link.send_and_assert_command(ids.CMD_NOOP, timeout=10)
        pid = node.node_pid
    assert node.node_pid is None
    time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (tmp_path / "s" / "node.log").read_text().count("--- boot") == 2


def test_unread_port_drops_frames_without_blocking(tmp_path):
    # Nobody reads the pty: the node fills it, then drops and counts (tx_dropped) and keeps
    # answering once someone reads again.
    with SimNode(state_dir=tmp_path / "s") as node:
        time.sleep(0.3)
        with NodeLink(node.port, node.log_path) as link:
            for packet in PACKETS:
                link.send_and_assert_command(ids.CMD_HK_RATE, packet.id, 50.0, timeout=10)
        time.sleep(3.0)  # 500 packets/s into a pty nobody reads
        with NodeLink(node.port, node.log_path) as link:
            link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_LINK, 50.0, timeout=10)
            p = link.await_telemetry(ids.PKT_LINK, lambda b: b[-1] > 0, timeout=5)
            assert p.body[-1] > 0  # tx_dropped
        assert node.boots == 1
