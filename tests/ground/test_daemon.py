"""ground.daemon: a daemon found by its lock, described, and stopped by its pid. The daemon
here is a small Python process that, on SIGTERM, lets its lock go and then takes a while to
exit, as a real one does while its interpreter shuts down: ``stop`` returns only once it has
ended, never between the lock and the exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ground import daemon

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock, /proc")

SLOW_EXIT = textwrap.dedent("""
    import sys, time
    from ground import daemon
    begun = daemon.begin("toy", "error: another toy")
    if begun is None:
        sys.exit(1)
    stop_now, lock = begun
    daemon.announce("toy", {"pid": __import__("os").getpid(), "word": "hello"}, "ready")
    stop_now.wait(60)
    daemon.release("toy", lock)
    time.sleep(1.5)  # the lock is free, the process still here
""")


def _start() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXIT], stdout=subprocess.PIPE,
                            env=dict(os.environ), start_new_session=True)
    assert daemon.first_line(proc, 30) == "ready"
    return proc


def test_found_by_its_lock_refused_twice_and_stopped_only_once_ended() -> None:
    proc = _start()
    try:
        found = daemon.find("toy", dict, 2.0)
        assert found == {"pid": proc.pid, "word": "hello"}
        second = subprocess.run([sys.executable, "-c", SLOW_EXIT], capture_output=True,
                                text=True, timeout=30)
        assert (second.returncode, second.stdout) == (1, "error: another toy holds the lock\n")
        daemon.stop("toy", proc.pid, 10.0)
        assert proc.poll() is not None, "stop returned while the daemon was still running"
        assert proc.returncode == 0  # it ended by itself, after SIGTERM: not killed
        assert daemon.find("toy", dict, 0.0) is None
        assert not daemon.info_path("toy").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_description_whose_lock_is_free_is_stale() -> None:
    folder = daemon.runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    daemon.lock_path("toy").touch()
    daemon.info_path("toy").write_text('{"pid": 1}')
    assert daemon.find("toy", dict, 0.0) is None
    assert not daemon.info_path("toy").exists()
