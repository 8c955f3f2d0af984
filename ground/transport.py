"""The one transport: any pyserial URL, plus ``sim`` for the simulated node.

Every link is opened with ``serial.serial_for_url(url, do_not_open=True)``, so one code path
serves a Pico's USB CDC (``/dev/ttyACM0``, ``COM3``), a UART adapter, a TCP bridge
(``socket://host:port``, ``rfc2217://``), pyserial's ``loop://`` and the simulated node's pty.
``sim`` or ``sim://?seed=7&time_factor=600&state_dir=DIR`` first starts the simulated node
(``ground.simnode.SimNode``) and connects to its pty; closing the transport stops it.
``vpico`` or ``vpico://?uf2=PATH&flash=FILE`` likewise starts the virtual Pico
(``ground.vpico.VirtualPico``: the real rp2 firmware on an emulated RP2040, the node deployed
as ``ground flash`` does) and connects to its USB serial.
``mqtt://host:port/STATION/NODE`` reaches a node through an MQTT broker and a ``ground
gateway`` (the ground's own pyserial URL handler, ``ground.urlhandler.protocol_mqtt``;
``?key=dev``: the node holds the development key, ``mqtt_dev_key``).

Ports are opened exclusively (pyserial ``exclusive=True``: an ``flock`` on POSIX; Windows
ports are exclusive anyway): two programs reading one port would each get part of the byte
stream, so the second one is refused with one line saying so (``PortBusy``). ``flock`` is
advisory: a program that does not ask for the lock (``screen``, ``cat``) is not detected.

A named reader thread hands received bytes to ``on_bytes(data, t_ns)``. When the link is lost
(cable pulled, the Pico rebooting and re-enumerating, a pty returning EIO) the thread reports
``on_state("lost", why)``, re-opens the port every ``reconnect_interval_s`` and reports
``on_state("up", url)`` when it is back: a lost link is an event, not a crash.

Uplink is paced by a token bucket (``uplink_bytes_per_s``, bursts of ``_CHUNK`` bytes) so
a node reading a UART with a small receive buffer is not overrun.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import serial

from ground.errors import GroundError, LinkLost, PortBusy, PortUnreachable, UsageError
from ground.vpico import is_vpico

if "ground.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("ground.urlhandler")  # mqtt://

SIM: Final = "sim"
DEFAULT_BAUDRATE: Final = 115200
DEFAULT_UPLINK_BYTES_PER_S: Final = 11520.0  # what a 115200-baud UART carries
_CHUNK: Final = 64
_READ_TIMEOUT_S: Final = 0.05
_WRITE_TIMEOUT_S: Final = 2.0

OnBytes = Callable[[bytes, int], None]
OnState = Callable[[str, str], None]


def is_sim(url: str) -> bool:
    return url == SIM or url.startswith(SIM + "://")


def seq_range(url: str) -> tuple[int, int]:
    """The command sequence numbers a client on this port may use, as (first, count).

    All 65536, except through a broker with ``operator=N``: the Nth of 16 disjoint ranges,
    so operators sharing a node never send the same (seq, command id) pair."""
    if not url.startswith("mqtt://"):
        return 0, 0x10000
    from ground.urlhandler.protocol_mqtt import SEQ_SPAN, parse_url

    try:
        operator = parse_url(url)[3].get("operator")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if operator is None:
        return 0, 0x10000
    return operator * SEQ_SPAN, SEQ_SPAN


def is_read_only(url: str) -> bool:
    """True for a port that never sends: ``mqtt://...?readonly=1`` (a partner's view, whose
    broker rights allow reading telemetry, events and status only)."""
    if not url.startswith("mqtt://"):
        return False
    from ground.urlhandler.protocol_mqtt import parse_url

    try:
        return bool(parse_url(url)[3].get("readonly"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def mqtt_dev_key(url: str) -> bool:
    """True for ``mqtt://...?key=dev``: the node behind the broker holds the development key,
    and a client without a signer of its own signs with it."""
    if not url.startswith("mqtt://"):
        return False
    from ground.urlhandler.protocol_mqtt import parse_url

    try:
        return parse_url(url)[3].get("key") == "dev"
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def sim_options(url: str, default_key: bool = True) -> dict[str, Any]:
    """``sim://?seed=7&time_factor=600&state_dir=DIR&node_id=3&key=dev`` → SimNode keyword
    arguments (``node_id``: the simulated board's identity, else one kept in its state dir).

    ``clock_ppm=200`` makes the node's clock run 200 ppm fast (SPEC §11.1: drift measured).

    ``key=dev`` (the default: a plain ``sim`` too) provisions the development key
    (ground.auth, SPEC §10.7) into a state directory that has none, and a Client on the port
    signs with it by itself; ``key=none`` leaves the node open (tests of the open state, and
    ``ground fuzz``, which passes ``default_key=False``: its campaign commands in clear)."""
    query = urlsplit(url).query if "://" in url else ""
    options: dict[str, Any] = {"dev_key": default_key}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if key == "seed":
            options["seed"] = _number(url, key, value, int)
        elif key == "time_factor":
            options["time_factor"] = _number(url, key, value, float)
            if not 0 < options["time_factor"] < float("inf"):
                raise UsageError(
                    f"{url}: time_factor={value} must be above 0 (model seconds per real second)"
                )
        elif key == "clock_ppm":
            options["clock_ppm"] = _number(url, key, value, float)
            if not -100_000 <= options["clock_ppm"] <= 100_000:
                raise UsageError(f"{url}: clock_ppm={value}: the node clock's error in ppm, "
                                 "-100000..100000")
        elif key == "state_dir":
            options["state_dir"] = value
        elif key == "node_id":
            options["node_id"] = _number(url, key, value, int)
            if not 0 < options["node_id"] <= 0xFFFFFFFF:
                raise UsageError(f"{url}: node_id={value}: 1 to 4294967295")
        elif key == "key":
            if value not in ("dev", "none"):
                raise UsageError(f"{url}: key={value!r}: dev (the development key) or none")
            options["dev_key"] = value == "dev"
        else:
            raise UsageError(
                f"{url}: unknown sim option {key!r} "
                "(seed, time_factor, clock_ppm, state_dir, node_id, key)")
    return options


def sim_default_key(url: str, key: str) -> str:
    """A ``sim`` URL with ``key=key`` added unless it names a key already (other URLs as
    given): for surfaces whose simulated nodes are open unless asked (the gateway holds no
    key and its operators sign with their own, SPEC §10; ``ground fuzz``)."""
    if not is_sim(url) or "key" in parse_qs(urlsplit(url).query if "://" in url else ""):
        return url
    base = url if "://" in url else "sim://"
    return base + ("&" if "?" in base else "?") + "key=" + key


def _number(url: str, key: str, value: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise UsageError(f"{url}: {key}={value!r} is not a number") from None


class Transport:
    """A byte link to the node that survives being unplugged."""

    def __init__(
        self,
        url: str,
        on_bytes: OnBytes,
        on_state: OnState | None = None,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        uplink_bytes_per_s: float | None = DEFAULT_UPLINK_BYTES_PER_S,
        reconnect_interval_s: float = 0.25,
    ) -> None:
        self.url = url
        self._on_bytes = on_bytes
        self._on_state = on_state
        self._baudrate = baudrate
        self._rate = uplink_bytes_per_s
        self._reconnect_interval_s = reconnect_interval_s
        self._serial: serial.SerialBase | None = None
        self._sim: Any = None
        self._lock = threading.Lock()  # guards _serial swaps and writes
        self._sending = threading.Lock()  # one frame's chunks at a time (threads sending)
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_tx = 0.0
        self.last_error = ""
        self.reconnects = 0
        self.bytes_in = 0
        self.bytes_out = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def device(self) -> str:
        """What was actually opened: the pty path for ``sim`` and ``vpico``, else the URL."""
        if self._sim is not None:
            return str(self._sim.port)
        return self.url

    @property
    def sim(self) -> Any:
        """The SimNode (or VirtualPico) behind a ``sim`` (``vpico``) URL, else None."""
        return self._sim

    def open(self) -> None:
        """Open the port (starting the simulated node first for ``sim``) and start reading."""
        if is_sim(self.url):
            self._start_sim()
        elif is_vpico(self.url):
            self._start_vpico()
        try:
            self._serial = self._open_port()
        except PortUnreachable:
            self._stop_sim()
            raise
        self.connected.set()
        self._thread = threading.Thread(
            target=self._reader, name=f"ground-rx {self.device}", daemon=True
        )
        self._thread.start()

    def _start_sim(self) -> None:
        options = sim_options(self.url)
        try:
            from ground.simnode import SimNode

            self._sim = SimNode(**options)
            self._sim.start()
        except Exception as exc:  # a sim that cannot start is an unreachable port
            self._sim = None
            raise PortUnreachable(self.url, f"simulated node did not start: {exc}") from exc

    def _start_vpico(self) -> None:
        from ground.vpico import VirtualPico, VirtualPicoError, vpico_options

        options = vpico_options(self.url)  # a UsageError names what is missing
        try:
            self._sim = VirtualPico(**options).start()
        except (VirtualPicoError, GroundError, OSError) as exc:
            self._sim = None
            raise PortUnreachable(self.url, f"virtual Pico did not start: {exc}") from exc

    def _stop_sim(self) -> None:
        sim, self._sim = self._sim, None
        if sim is not None:
            with contextlib.suppress(Exception):
                sim.stop()

    def _open_port(self) -> serial.SerialBase:
        device = self.device
        try:
            port = serial.serial_for_url(device, do_not_open=True)
            port.baudrate = self._baudrate
            port.timeout = _READ_TIMEOUT_S
            port.write_timeout = _WRITE_TIMEOUT_S
            if hasattr(port, "exclusive"):  # URL handlers (socket://, loop://) ignore it
                port.exclusive = True
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            if getattr(exc, "errno", None) in _BUSY:
                raise PortBusy(self.url, device) from None
            raise PortUnreachable(self.url, _reason(exc)) from None
        return port

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._lock:
            if self._serial is not None:
                with contextlib.suppress(Exception):
                    self._serial.close()
                self._serial = None
        self.connected.clear()
        self._stop_sim()

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------------

    def _reader(self) -> None:
        while not self._stop.is_set():
            port = self._serial
            if port is None:
                self._reconnect()
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's posix port closed under our feet.
                if self._stop.is_set():
                    return
                self._lost(_reason(exc))
                continue
            if data:
                self.bytes_in += len(data)
                try:
                    self._on_bytes(data, time.time_ns())
                except Exception as exc:  # a consumer bug must not kill the link
                    self._state("error", f"receive handler failed: {exc!r}")

    def _lost(self, why: str) -> None:
        self.connected.clear()
        self.last_error = why
        with self._lock:
            if self._serial is not None:
                with contextlib.suppress(Exception):
                    self._serial.close()
                self._serial = None
        self._state("lost", why)

    def _reconnect(self) -> None:
        while not self._stop.wait(self._reconnect_interval_s):
            try:
                port = self._open_port()
            except PortUnreachable as exc:
                self.last_error = exc.reason
                continue
            with self._lock:
                self._serial = port
            self.reconnects += 1
            self.connected.set()
            self._state("up", self.device)
            return

    def _state(self, state: str, detail: str) -> None:
        if self._on_state is not None:
            with contextlib.suppress(Exception):
                self._on_state(state, detail)

    # --- writing -----------------------------------------------------------------------

    def write(self, data: bytes, timeout_s: float = _WRITE_TIMEOUT_S) -> None:
        """Send bytes, paced; waits up to ``timeout_s`` for a lost link to come back. The bytes
        of one call go out together: commands sent from several threads never interleave
        their frames' chunks."""
        view = memoryview(data)
        with self._sending:
            for start in range(0, len(view), _CHUNK):
                self._write_chunk(view[start : start + _CHUNK], timeout_s)

    def _write_chunk(self, chunk: memoryview, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.connected.wait(max(0.0, deadline - time.monotonic())):
                raise LinkLost(self.url, self.last_error or "port closed")
            with self._lock:
                port = self._serial
                if port is not None:
                    self._pace(len(chunk))
                    try:
                        port.write(chunk)
                        port.flush()
                        self.bytes_out += len(chunk)
                        return
                    except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                        self.last_error = _reason(exc)
                        self.connected.clear()
            if time.monotonic() >= deadline:
                raise LinkLost(self.url, self.last_error)
            time.sleep(0.01)

    def _pace(self, n: int) -> None:
        if not self._rate:
            return
        # _next_tx is when the link will have drained what was written. Allow one chunk of
        # backlog: a lone command goes out at once, a burst is spread at the link's rate.
        now = time.monotonic()
        backlog_s = max(0.0, self._next_tx - now)
        slack_s = _CHUNK / self._rate
        if backlog_s > slack_s:
            time.sleep(backlog_s - slack_s)
        self._next_tx = max(self._next_tx, now) + n / self._rate


_BUSY: Final = (errno.EWOULDBLOCK, errno.EAGAIN)  # flock refused: another program has it


_HINTS: Final = {
    errno.ENOENT: " (is the board plugged in? `python -m serial.tools.list_ports` lists ports)",
    errno.EACCES: " (no permission: on Linux add yourself to the dialout group)",
    errno.EBUSY: " (another program has the port open)",
}


def _reason(exc: BaseException) -> str:
    """One line: the OS's words for an errno (pyserial repeats the port name), or the text."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code) + _HINTS.get(code, "")
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    if text.lower().startswith("could not open port ") and ": " in text:
        text = text.split(": ", 1)[1]  # pyserial repeats the URL we already name
    return text
