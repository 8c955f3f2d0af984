"""Test helpers for the station: a topic watcher and a TCP relay whose link can be cut."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import serial

from ground.gateway import BrokerAddress


class Watcher:
    """A plain MQTT subscriber that keeps every message it receives, in order."""

    def __init__(self, broker_url: str, *filters: str, user: str | None = None,
                 password: str | None = None) -> None:
        address = BrokerAddress(broker_url)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.client = address.client(f"watcher-{id(self)}")
        if user is not None:
            self.client.username_pw_set(user, password)
        self._filters = filters
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in self._filters])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        address.connect(self.client)
        if not self.subscribed.wait(20):
            self.close()
            raise AssertionError(f"{broker_url}: no subscription acknowledged in 20 s")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait(self, what: str, predicate: Callable[[str, bytes], bool],
             timeout_s: float = 20.0) -> tuple[str, bytes]:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((m for m in self.messages if predicate(m[0], m[1])), None),
                timeout_s,
            )
            if not found:
                seen = [(t, p[:60]) for t, p, _ in self.messages[-5:]]
                raise AssertionError(f"no {what} in {timeout_s} s; last seen {seen}")
            return found[0], found[1]

    def status(self, topic: str, link: str, timeout_s: float = 20.0) -> dict[str, Any]:
        _t, payload = self.wait(
            f"status {link} on {topic}",
            lambda t, p: t == topic and json.loads(p).get("link") == link,
            timeout_s,
        )
        body: dict[str, Any] = json.loads(payload)
        return body

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Relay:
    """``socket://127.0.0.1:PORT`` in front of a serial port; ``cut()`` drops the link and
    refuses connections until ``restore()``."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.port = 0
        self._server: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._serial: serial.SerialBase | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.restore()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def restore(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(1)
        self.port = server.getsockname()[1]
        self._server = server
        self._stop.clear()
        thread = threading.Thread(target=self._serve, args=(server,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        self._conn = conn
        port = serial.serial_for_url(self.device, timeout=0.02)
        self._serial = port
        down = threading.Thread(target=self._down, args=(conn, port), daemon=True)
        down.start()
        self._threads.append(down)
        conn.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            with contextlib.suppress(Exception):
                port.write(data)

    def _down(self, conn: socket.socket, port: serial.SerialBase) -> None:
        while not self._stop.is_set():
            try:
                data = port.read(4096)
                if data:
                    conn.sendall(data)
            except Exception:
                return

    def cut(self) -> None:
        self._stop.set()
        for sock in (self._server, self._conn):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        self._server = self._conn = None
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        time.sleep(0.05)

    def close(self) -> None:
        self.cut()
