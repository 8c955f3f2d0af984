"""The transport: pyserial URLs, sim options, a lost link reconnecting, paced uplink."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ground.errors import EXIT_LINK, LinkLost, PortUnreachable, UsageError
from ground.transport import Transport, is_sim, sim_options


def test_loop_url_round_trip() -> None:
    got: list[bytes] = []
    with Transport("loop://", lambda data, t: got.append(data)) as tr:
        tr.write(b"\x00hello\x00")
        deadline = time.monotonic() + 2
        while b"".join(got) != b"\x00hello\x00" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tr._thread is not None and tr._thread.name.startswith("ground-rx")
    assert b"".join(got) == b"\x00hello\x00"


def test_unreachable_port_is_one_clear_error() -> None:
    with pytest.raises(PortUnreachable) as info:
        Transport("/dev/ttyNOPE", lambda d, t: None).open()
    assert info.value.exit_code == EXIT_LINK and isinstance(info.value, ConnectionError)
    assert str(info.value).startswith("cannot open port /dev/ttyNOPE:")
    assert "\n" not in str(info.value)


def test_sim_url_options() -> None:
    assert is_sim("sim") and is_sim("sim://?seed=3") and not is_sim("simple")
    assert sim_options("sim") == {"dev_key": True}  # keyed by default (SPEC §10.6)
    assert sim_options("sim", default_key=False) == {"dev_key": False}
    assert sim_options("sim://?seed=7&time_factor=600&state_dir=/tmp/x") == {
        "seed": 7,
        "time_factor": 600.0,
        "state_dir": "/tmp/x",
        "dev_key": True,
    }
    with pytest.raises(UsageError, match="unknown sim option 'speed'"):
        sim_options("sim://?speed=3")
    with pytest.raises(UsageError, match="not a number"):
        sim_options("sim://?seed=x")


def test_write_is_paced() -> None:
    with Transport("loop://", lambda d, t: None, uplink_bytes_per_s=6400) as tr:
        start = time.monotonic()
        tr.write(bytes(640))  # 10 chunks at 100 chunks/s, one chunk of slack
        assert 0.07 < time.monotonic() - start < 1.0
        start = time.monotonic()
        time.sleep(0.2)
        tr.write(bytes(20))  # a lone command after a pause goes out at once
        assert time.monotonic() - start < 0.25


def test_frames_sent_from_two_threads_never_interleave() -> None:
    # Commands sent from several threads at once (the HIL rig's reset): each frame's chunks
    # go out together, whatever the pacing between them.
    got: list[bytes] = []
    frames = [bytes([0]) + bytes([k + 1]) * 638 + bytes([0]) for k in range(2)]
    with Transport("loop://", lambda data, t: got.append(data), uplink_bytes_per_s=6400) as tr:
        start = threading.Barrier(2)

        def send(frame: bytes) -> None:
            start.wait()
            tr.write(frame)

        threads = [threading.Thread(target=send, args=(f,)) for f in frames]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 5
        while len(b"".join(got)) < 1280 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert b"".join(got) in (frames[0] + frames[1], frames[1] + frames[0])


class _Server:
    """A TCP server on loopback that can drop its client and accept again."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def wait_conns(self, n: int) -> socket.socket:
        deadline = time.monotonic() + 5
        while len(self.conns) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.conns[n - 1]


def test_lost_link_is_reported_and_reconnected() -> None:
    server = _Server()
    states: list[str] = []
    got: list[bytes] = []
    tr = Transport(
        f"socket://127.0.0.1:{server.port}",
        lambda d, t: got.append(d),
        lambda s, why: states.append(s),
        reconnect_interval_s=0.05,
    )
    tr.open()
    try:
        server.wait_conns(1).close()  # the cable is pulled
        conn = server.wait_conns(2)  # ... and plugged in again
        deadline = time.monotonic() + 5
        while "up" not in states and time.monotonic() < deadline:
            time.sleep(0.01)
        assert states[:2] == ["lost", "up"] and tr.reconnects == 1
        conn.sendall(b"after")
        while b"after" not in b"".join(got) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b"after" in b"".join(got)
        tr.write(b"up again")
        assert conn.recv(100) == b"up again"
    finally:
        tr.close()
        server.sock.close()


def test_write_on_a_dead_link_times_out_with_link_lost() -> None:
    server = _Server()
    tr = Transport(
        f"socket://127.0.0.1:{server.port}", lambda d, t: None, reconnect_interval_s=0.05
    )
    tr.open()
    server.wait_conns(1).close()
    server.sock.close()  # and nobody listens any more
    deadline = time.monotonic() + 5
    while tr.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(LinkLost):
        tr.write(b"x", timeout_s=0.2)
    tr.close()
