"""A real MQTT broker on loopback, started and stopped by its own pid (tests, a local station).

    with Broker(users={"op1": "pw", ...}, acl={"op1": Access(publish=[...], subscribe=[...])})
        as broker:
        broker.url          # "mqtt://127.0.0.1:PORT"
        broker.restart()    # stop (SIGTERM, then SIGKILL) and start again on the same port

Eclipse Mosquitto when its ``mosquitto`` binary is installed (``apt-get install mosquitto``),
else amqtt (PyPI, a project dependency, so a fresh machine needs no manual step). Both speak
MQTT 3.1.1 on a TCP socket bound to 127.0.0.1 only; ``ILRS_BROKER=amqtt`` forces amqtt.

Users and ACLs: without ``users`` anyone may connect and use any topic. With ``users`` only
those users (with their passwords) may connect, and each may publish and subscribe only to the
topic filters its ``Access`` lists. The generated files are Mosquitto's ``password_file`` and
``acl_file``, or amqtt's ``FileAuthPlugin`` password file and ``TopicAccessControlListPlugin``
ACLs (README, "Station", shows both). A publish that the ACL forbids is dropped by the broker:
MQTT 3.1.1 has no negative acknowledgement for it, so nobody subscribed ever receives it.

The broker process dies with the process that started it (``PR_SET_PDEATHSIG`` on Linux);
its configuration lives in a temporary folder removed at ``stop()``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ground.errors import GroundError
from ground.lifetime import die_with_parent

MOSQUITTO: Final = "mosquitto"
AMQTT: Final = "amqtt"
HOST: Final = "127.0.0.1"
_START_TIMEOUT_S: Final = 20.0
_STOP_TIMEOUT_S: Final = 5.0


class BrokerError(GroundError, RuntimeError):
    """The broker did not start (the reason says what it printed)."""

    exit_code = 2


@dataclass(frozen=True)
class Access:
    """Topic filters one user may publish to and subscribe to (MQTT wildcards allowed)."""

    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)


def which_broker() -> str:
    """``mosquitto`` when installed (and not overridden by ILRS_BROKER=amqtt), else amqtt."""
    wanted = os.environ.get("ILRS_BROKER", "")
    if wanted == AMQTT:
        return AMQTT
    if _mosquitto_binary() is not None:
        return MOSQUITTO
    if wanted == MOSQUITTO:
        raise BrokerError("ILRS_BROKER=mosquitto, but mosquitto is not installed "
                          "(apt-get install mosquitto)")
    return AMQTT


def _mosquitto_binary() -> str | None:
    return shutil.which(MOSQUITTO) or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    """One broker process on 127.0.0.1."""

    def __init__(
        self,
        port: int | None = None,
        *,
        users: dict[str, str] | None = None,
        acl: dict[str, Access] | None = None,
        kind: str | None = None,
    ) -> None:
        self.kind = kind or which_broker()
        self.port = port or free_port()
        self.users = users or {}
        self.acl = acl or {}
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with socket.socket() as probe:  # a port someone else answers on is not our broker
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker does
            try:
                probe.bind((HOST, self.port))
            except OSError as exc:
                raise BrokerError(
                    f"{self.kind} cannot start on {HOST}:{self.port}: {exc.strerror} "
                    "(another broker there? choose another port)"
                ) from None
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="ilrs-broker-"))
        argv = self._configure(self._dir)
        log = (self._dir / "broker.log").open("ab")
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(os.getpid()),
                cwd=self._dir,
            )
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                if self._proc.poll() is None:
                    return
            time.sleep(0.05)
        why = self.log_tail()
        self.stop()  # the folder too: a broker that did not start leaves nothing behind
        raise BrokerError(f"{self.kind} did not start on {HOST}:{self.port}: {why}")

    def log_tail(self) -> str:
        if self._dir is None:
            return ""
        try:
            lines = (self._dir / "broker.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(nothing printed)"

    def stop(self, keep_dir: bool = False) -> None:
        """SIGTERM by pid, SIGKILL after a grace period; the config folder is removed."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not keep_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop and start again on the same port (retained messages and sessions are lost)."""
        self.stop(keep_dir=True)
        time.sleep(down_s)
        self.start()

    # --- configuration -----------------------------------------------------------------

    def _configure(self, folder: Path) -> list[str]:
        if self.kind == MOSQUITTO:
            return self._mosquitto(folder)
        return self._amqtt(folder)

    def _mosquitto(self, folder: Path) -> list[str]:
        import pwd

        # run as whoever started it (as root, mosquitto would switch to its own user, who
        # cannot read this private folder)
        me = pwd.getpwuid(os.getuid()).pw_name
        lines = [f"listener {self.port} {HOST}", "persistence false", "log_dest stdout",
                 f"user {me}"]
        if self.users:
            (folder / "passwd").write_text(
                "".join(f"{u}:{_mosquitto_hash(p)}\n" for u, p in self.users.items())
            )
            acl = []
            for user, access in self.acl.items():
                acl.append(f"user {user}")
                acl += [f"topic write {t}" for t in access.publish]
                acl += [f"topic read {t}" for t in access.subscribe]
                acl.append("")
            (folder / "acl").write_text("\n".join(acl))
            lines += ["allow_anonymous false", f"password_file {folder / 'passwd'}",
                      f"acl_file {folder / 'acl'}"]
        else:
            lines.append("allow_anonymous true")
        (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        binary = _mosquitto_binary() or MOSQUITTO
        return [binary, "-c", str(folder / "mosquitto.conf")]

    def _amqtt(self, folder: Path) -> list[str]:
        import yaml  # amqtt's own dependency

        plugins: dict[str, object] = {}
        if self.users:
            from pwdlib import PasswordHash
            from pwdlib.hashers.argon2 import Argon2Hasher

            hasher = PasswordHash((Argon2Hasher(),))
            (folder / "passwd").write_text(
                "".join(f"{u}:{hasher.hash(p)}\n" for u, p in self.users.items())
            )
            plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {
                "password_file": str(folder / "passwd")
            }
            plugins["amqtt.plugins.topic_checking.TopicAccessControlListPlugin"] = {
                "publish_acl": {u: a.publish for u, a in self.acl.items()},
                "acl": {u: a.subscribe for u, a in self.acl.items()},
            }
        else:
            plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": True}
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{self.port}"}},
            "plugins": plugins,
        }
        (folder / "amqtt.yaml").write_text(yaml.safe_dump(config))
        script = "from amqtt.scripts.broker_script import main; main()"
        return [sys.executable, "-c", script, "-c", str(folder / "amqtt.yaml")]


def _mosquitto_hash(password: str) -> str:
    """Mosquitto's ``$7$`` password hash (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt),
    as ``mosquitto_passwd`` writes it."""
    salt = os.urandom(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"
