"""An impaired link: a proxy between the ground and the node that damages bytes on purpose.

The proxy opens the node's port with ``serial.serial_for_url`` (a pty path, /dev/ttyACM0,
``socket://...``) and offers the ground a ``socket://127.0.0.1:PORT`` endpoint. Every byte that
crosses it in an impaired direction may be dropped, corrupted (XOR with a random non-zero mask)
or duplicated, at the given per-byte rates; chunks may be split into separate writes and
delayed. Everything is drawn from one seeded ``random.Random`` per direction, so a run is
reproducible for a given seed and input chunking.

The proxy counts what it did (`ImpairStats`) and also runs the reference deframer
(`protocol.framing.Deframer`) over the bytes it delivered, so a test can check that the
receiver's counters (``frames_in``, ``crc_errors``, ``frame_errors``, ``discarded_bytes``)
account for every frame the proxy damaged.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import serial

DIRECTIONS: Final = ("up", "down", "both")
_READ_TIMEOUT_S: Final = 0.02
_SPLIT_GAP_S: Final = 0.001  # between the pieces of a split chunk, so they arrive apart


class _Deframer(Protocol):
    """The part of ``protocol.framing.Deframer`` the accounting needs."""

    def feed(self, data: bytes) -> list[bytes]: ...


@dataclass
class ImpairStats:
    """What one direction of the proxy did. All counts are bytes unless named otherwise."""

    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0
    splits: int = 0  # extra write boundaries introduced
    chunks: int = 0  # chunks read from the source
    frames_in: int = 0  # frames (bytes between delimiters) seen in the source stream
    frames_damaged: int = 0  # source frames with a content byte dropped/corrupted/duplicated
    delimiters_damaged: int = 0  # 0x00 delimiters dropped/corrupted/duplicated

    @property
    def damaged_bytes(self) -> int:
        return self.dropped + self.corrupted + self.duplicated

    def as_dict(self) -> dict[str, int]:
        return {
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "dropped": self.dropped,
            "corrupted": self.corrupted, "duplicated": self.duplicated, "splits": self.splits,
            "chunks": self.chunks, "frames_in": self.frames_in,
            "frames_damaged": self.frames_damaged,
            "delimiters_damaged": self.delimiters_damaged,
        }


@dataclass
class ReceiverCounts:
    """What a correct receiver of the delivered bytes must have counted (reference deframer)."""

    frames: int = 0
    crc_errors: int = 0
    frame_errors: int = 0  # oversize + truncated
    discarded_bytes: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def bad_frames(self) -> int:
        return self.crc_errors + self.frame_errors


class Impairer:
    """The pure core: damages chunks of bytes at the configured rates, deterministically.

    ``process(chunk)`` returns the pieces to write, in order (more than one when split).
    """

    def __init__(self, *, drop: float = 0.0, corrupt: float = 0.0, duplicate: float = 0.0,
                 split: float = 0.0, seed: int = 0) -> None:
        for name, rate in (("drop", drop), ("corrupt", corrupt), ("duplicate", duplicate),
                           ("split", split)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} rate {rate} is not within 0..1")
        self.drop = drop
        self.corrupt = corrupt
        self.duplicate = duplicate
        self.split = split
        self.enabled = True
        self.stats = ImpairStats()
        self._rng = random.Random(seed)
        self._in_frame = False
        self._frame_damaged = False

    def _note_byte(self, byte: int, damaged: bool) -> None:
        """Track source frames: a frame is the run of non-zero bytes between delimiters."""
        if byte == 0:
            self.stats.delimiters_damaged += damaged
            if self._in_frame:
                self.stats.frames_in += 1
                self.stats.frames_damaged += self._frame_damaged
            self._in_frame = False
            self._frame_damaged = False
        else:
            self._in_frame = True
            self._frame_damaged = self._frame_damaged or damaged

    def process(self, chunk: bytes) -> list[bytes]:
        stats = self.stats
        stats.chunks += 1
        stats.bytes_in += len(chunk)
        if not self.enabled or not (self.drop or self.corrupt or self.duplicate or self.split):
            for byte in chunk:
                self._note_byte(byte, False)
            stats.bytes_out += len(chunk)
            return [bytes(chunk)] if chunk else []
        rand = self._rng.random
        pieces: list[bytes] = []
        out = bytearray()
        for byte in chunk:
            if self.split and out and rand() < self.split:
                pieces.append(bytes(out))
                out.clear()
                stats.splits += 1
            if self.drop and rand() < self.drop:
                stats.dropped += 1
                self._note_byte(byte, True)
                continue
            damaged = False
            sent = byte
            if self.corrupt and rand() < self.corrupt:
                sent = byte ^ self._rng.randrange(1, 256)
                stats.corrupted += 1
                damaged = True
            out.append(sent)
            if self.duplicate and rand() < self.duplicate:
                out.append(sent)
                stats.duplicated += 1
                damaged = True
            self._note_byte(byte, damaged)  # frames are counted in the source stream
        if out:
            pieces.append(bytes(out))
        stats.bytes_out += sum(len(p) for p in pieces)
        return pieces


def _reference_deframer() -> _Deframer | None:
    """The protocol's own deframer, if protocol.framing is there; None otherwise."""
    try:
        from protocol.framing import Deframer
    except ImportError:  # pragma: no cover - protocol/ is part of the repo
        return None
    deframer: _Deframer = Deframer()
    return deframer


def _counts_of(deframer: Any) -> ReceiverCounts:
    oversize = int(getattr(deframer, "oversize", 0))
    truncated = int(getattr(deframer, "truncated", 0))
    return ReceiverCounts(
        frames=int(getattr(deframer, "frames", 0)),
        crc_errors=int(getattr(deframer, "crc_errors", 0)),
        frame_errors=oversize + truncated,
        discarded_bytes=int(getattr(deframer, "discarded_bytes", 0)),
        extra={"oversize": oversize, "truncated": truncated},
    )


class _Direction:
    """One direction of the proxy: impairer, delay line, reference receiver, writer thread."""

    def __init__(self, name: str, impairer: Impairer, delay_ms: float) -> None:
        self.name = name
        self.impairer = impairer
        self.delay_s = delay_ms / 1000.0
        self.reference = _reference_deframer()
        self._queue: deque[tuple[float, list[bytes]]] = deque()
        self._cond = threading.Condition()
        self._lock = threading.Lock()  # stats and reference are read by the test thread
        self._baseline: ReceiverCounts | None = None

    def push(self, chunk: bytes) -> None:
        with self._lock:
            pieces = self.impairer.process(chunk)
            if self.reference is not None:
                for piece in pieces:
                    self.reference.feed(piece)
        if pieces:
            with self._cond:
                self._queue.append((time.monotonic() + self.delay_s, pieces))
                self._cond.notify()

    def pending(self) -> bool:
        with self._cond:
            return bool(self._queue)

    def next_due(self, stop: threading.Event) -> list[bytes] | None:
        """Block until the oldest chunk is due (or stop); return its pieces."""
        with self._cond:
            while not stop.is_set():
                if self._queue:
                    due, pieces = self._queue[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        self._queue.popleft()
                        return pieces
                    self._cond.wait(wait)
                else:
                    self._cond.wait(0.05)
            return None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def snapshot(self) -> tuple[ImpairStats, ReceiverCounts]:
        with self._lock:
            stats = ImpairStats(**self.impairer.stats.as_dict())
            counts = _counts_of(self.reference) if self.reference is not None else \
                ReceiverCounts()
            base = self._baseline
        if base is not None:
            counts = ReceiverCounts(
                counts.frames - base.frames, counts.crc_errors - base.crc_errors,
                counts.frame_errors - base.frame_errors,
                counts.discarded_bytes - base.discarded_bytes,
                {k: v - base.extra.get(k, 0) for k, v in counts.extra.items()})
        return stats, counts

    def reset_accounting(self) -> None:
        """Start counting from zero (the deframer keeps its place in the stream)."""
        with self._lock:
            self.impairer.stats = ImpairStats()
            self._baseline = _counts_of(self.reference) if self.reference is not None else None


class ImpairedLink:
    """A proxy from a node port to a ``socket://127.0.0.1:PORT`` endpoint for the ground.

    ``direction`` says which way is impaired: ``"up"`` (ground to node), ``"down"`` or
    ``"both"``; the other way passes untouched (but is still counted). Each direction has its
    own random stream derived from ``seed``. Use as a context manager; ``url`` is what the
    ground opens. ``impairing = False`` passes bytes through cleanly (e.g. for set-up).
    """

    def __init__(self, node_url: str, *, drop: float = 0.0, corrupt: float = 0.0,
                 duplicate: float = 0.0, delay_ms: float = 0.0, split: float = 0.0,
                 seed: int = 0, direction: str = "both", host: str = "127.0.0.1") -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
        if delay_ms < 0:
            raise ValueError(f"delay_ms {delay_ms} is negative")
        self.node_url = node_url
        self.direction = direction
        rates = {"drop": drop, "corrupt": corrupt, "duplicate": duplicate, "split": split}
        clean: dict[str, float] = {}
        self.up = _Direction(
            "up", Impairer(**(rates if direction in ("up", "both") else clean), seed=seed * 2),
            delay_ms if direction in ("up", "both") else 0.0)
        self.down = _Direction(
            "down",
            Impairer(**(rates if direction in ("down", "both") else clean), seed=seed * 2 + 1),
            delay_ms if direction in ("down", "both") else 0.0)
        self._server = socket.create_server((host, 0))
        self._server.settimeout(_READ_TIMEOUT_S * 5)
        self.host = host
        self.port: int = self._server.getsockname()[1]
        self._node: serial.SerialBase | None = None
        self._client: socket.socket | None = None
        self._client_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def impairing(self) -> bool:
        return self.up.impairer.enabled

    @impairing.setter
    def impairing(self, on: bool) -> None:
        self.up.impairer.enabled = on
        self.down.impairer.enabled = on

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ImpairedLink:
        node = serial.serial_for_url(self.node_url, do_not_open=True)
        node.timeout = _READ_TIMEOUT_S
        node.write_timeout = 2.0
        node.open()
        self._node = node
        for name, target in (("accept", self._accept_loop), ("node-reader", self._node_reader),
                             ("up-writer", self._up_writer), ("down-writer", self._down_writer)):
            thread = threading.Thread(target=target, name=f"impair-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.up.wake()
        self.down.wake()
        try:
            self._server.close()
        except OSError:
            pass
        with self._client_lock:
            if self._client is not None:
                self._close_client(self._client)
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._node is not None:
            self._node.close()
            self._node = None

    def __enter__(self) -> ImpairedLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drain(self, timeout_s: float = 2.0) -> None:
        """Wait until both delay lines are empty (everything read has been written)."""
        deadline = time.monotonic() + timeout_s
        while (self.up.pending() or self.down.pending()) and time.monotonic() < deadline:
            time.sleep(0.002)

    # --- accounting -----------------------------------------------------------------------

    def reset_accounting(self) -> None:
        """Zero the counts of both directions, e.g. right after the node's clear_counters."""
        self.up.reset_accounting()
        self.down.reset_accounting()

    def stats(self) -> dict[str, ImpairStats]:
        return {"up": self.up.snapshot()[0], "down": self.down.snapshot()[0]}

    def expected_node_counts(self) -> ReceiverCounts:
        """What the node's link counters must show for the bytes delivered to it so far."""
        return self.up.snapshot()[1]

    def expected_ground_counts(self) -> ReceiverCounts:
        """What the ground's deframer must have counted for the bytes delivered to it."""
        return self.down.snapshot()[1]

    def describe(self) -> str:
        parts = []
        for name, direction in (("up", self.up), ("down", self.down)):
            stats, counts = direction.snapshot()
            parts.append(
                f"{name}: {stats.bytes_in} B in, {stats.dropped} dropped, {stats.corrupted} "
                f"corrupted, {stats.duplicated} duplicated, {stats.frames_damaged}/"
                f"{stats.frames_in} frames damaged; receiver should count {counts.frames} "
                f"frames, {counts.crc_errors} CRC errors, {counts.frame_errors} frame errors, "
                f"{counts.discarded_bytes} discarded bytes")
        return "; ".join(parts)

    # --- threads --------------------------------------------------------------------------

    def _close_client(self, client: socket.socket) -> None:
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.close()
        if self._client is client:
            self._client = None

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._client_lock:
                if self._client is not None:  # one ground at a time
                    self._close_client(self._client)
                self._client = conn
            self._client_reader(conn)

    def _client_reader(self, conn: socket.socket) -> None:
        conn.settimeout(_READ_TIMEOUT_S * 5)
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            self.up.push(data)
        with self._client_lock:
            if self._client is conn:
                self._close_client(conn)

    def _node_reader(self) -> None:
        node = self._node
        assert node is not None
        while not self._stop.is_set():
            try:
                data = node.read(max(1, node.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._stop.is_set():
                    self.errors.append(f"node read: {exc}")
                    time.sleep(0.05)  # a node restarting (power cut) comes back on the pty
                continue
            if data:
                self.down.push(data)

    def _up_writer(self) -> None:
        node = self._node
        assert node is not None
        while (pieces := self.up.next_due(self._stop)) is not None:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(_SPLIT_GAP_S)
                try:
                    node.write(piece)
                    node.flush()
                except (serial.SerialException, OSError) as exc:
                    self.errors.append(f"node write: {exc}")

    def _down_writer(self) -> None:
        while (pieces := self.down.next_due(self._stop)) is not None:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(_SPLIT_GAP_S)
                with self._client_lock:
                    client = self._client
                if client is None:
                    continue  # no ground connected: the bytes are lost, as on a real link
                try:
                    client.sendall(piece)
                except OSError:
                    pass
