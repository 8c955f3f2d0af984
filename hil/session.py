"""What the plugin's fixtures do: the node under test, clients for tests, the known state.

`HilTarget` (session) is the node: for ``sim`` one `ground.simnode.SimNode` whose state
directory and ``node.log`` live in the HIL log directory, restarted if a test killed it; for
``vpico`` one `ground.vpico.VirtualPico` (the real rp2 firmware in the RP2040 emulator; its
flash image is ``build/vpico/flash.img`` unless the URL says ``flash=``, so the node is
deployed once and kept while the build is unchanged; each pytest-xdist worker has its own,
``build/vpico/gw0/flash.img``, ...); for a board, its pyserial URL.

Every wait here follows the target's time scale (hil/timing.py), measured on the first
connection of the session or given with ``--time-scale``.

`HilLink` (session) hands each test its own `ground.client.Client` (so each test has its own
session log) wrapped in the vocabulary (`hil.vocabulary.NodeApi`).

**The known state** a test starts from (`HilLink.reset`), reached with ordinary commands so it
is the same on a board and on the simulated node, in well under a second:

- injected faults cleared (``fault_inject CLEAR``);
- no stored sequence running and no sequence trigger set (``seq_stop``, ``seq_trigger NONE``
  on every slot; what the slots hold is left as it is);
- every parameter at its default in RAM and on flash (``param_reset`` + ``param_save``);
- every load channel's over-current trip reset, loads as at boot (the essential ones on:
  comms relay and both heater circuits), heaters in AUTO, mode SAFE;
- every housekeeping packet enabled at its dictionary rate;
- link and command counters zero (``clear_counters``, last).

Not reset: boot count, the persistent event log and ``event_seq``, the plant (battery charge,
temperatures, sun position, dust). A test that needs those fresh takes ``fresh_node``: on the
simulated node a new process on an empty state directory (boot count 1, empty event log,
plant at its initial conditions).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from ground.client import Client
from ground.errors import CommandFailed, CommandRejected, GroundError
from ground.transport import DEFAULT_UPLINK_BYTES_PER_S
from hil import timing
from hil.impair import ImpairedLink
from hil.vocabulary import NodeApi
from protocol import dictionary

SIM: Final = "sim"
BOOT_TIMEOUT_S: Final = 20.0
# Retries: tight on the simulated node (a pty answers in about a millisecond); a board on
# USB answers in a few ms, through a UART at 115200 baud in tens of ms.
SIM_RETRY_S: Final = 0.25
BOARD_RETRY_S: Final = 1.0
CONNECT_TIMEOUT_S: Final = 10.0
# What the virtual Pico is expected to be before it is measured (its emulated clock runs
# about 34x slower than wall time): the first connection's patience.
VPICO_PRIOR_SCALE: Final = 40.0
VPICO: Final = "vpico"
VPICO_FLASH: Final = "build/vpico/flash.img"  # under the repository root


def default_vpico_flash(worker: str = "") -> Path:
    """The virtual Pico's flash image when the URL gives none: one per pytest-xdist worker, or
    two workers would boot two emulators on one file."""
    from ground.micropython import REPO_ROOT

    flash = REPO_ROOT / VPICO_FLASH
    return flash.parent / worker / flash.name if worker else flash


def is_vpico_target(target: str) -> bool:
    return target == VPICO or target.startswith(VPICO + "://")


def is_sim_target(target: str) -> bool:
    return target == SIM or target.startswith(SIM + "://")


def _await(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def await_first_frame(url: str, timeout_s: float) -> None:
    """Listen until the node sends housekeeping, before sending it anything.

    On the virtual Pico the boot escape window lasts 2 s of *emulated* time, about a minute of
    wall time, and a byte 0x03 in it (every command frame has one) is a Ctrl-C to a firmware
    that has not yet turned the keyboard interrupt off (issue 10). The node's housekeeping says
    the window is over and its tasks run.
    """
    from ground.transport import Transport
    from ground.vpico import NodeUp

    heard = threading.Event()
    watch = NodeUp()

    def on_bytes(data: bytes, _t_ns: int) -> None:
        if watch.feed(data):
            heard.set()

    probe = Transport(url, on_bytes, uplink_bytes_per_s=None)
    probe.open()
    try:
        if not heard.wait(timeout_s):
            raise AssertionError(f"the node on {url} sent nothing within {timeout_s:g} s")
    finally:
        probe.close()


class HilTarget:
    """The node under test for a whole session."""

    def __init__(self, target: str, log_dir: Path, seed: int = 1,
                 time_scale: float | None = None, worker: str = "") -> None:
        """``worker``: the pytest-xdist worker id ("" without xdist): the virtual Pico of each
        worker is a board of its own, with its own default flash image."""
        self.target = target
        self.worker = worker
        self.log_dir = Path(log_dir)
        self.seed = seed
        self.is_sim = is_sim_target(target)
        self.is_vpico = is_vpico_target(target)
        self.sim: Any = None  # ground.simnode.SimNode while running
        self.vpico: Any = None  # ground.vpico.VirtualPico while running
        self.booting = False  # the virtual Pico was powered on and has not been heard yet
        self.scale: timing.TimeScale | None = (
            None if time_scale is None else timing.given(time_scale))
        self._fresh = itertools.count(1)
        # --target sim or vpico (key=dev by default): the node holds the development key and
        # every client of the session signs with one Signer (one counter sequence: SPEC §10.4);
        # the virtual Pico's is made once it is deployed (_running_vpico)
        self.signer: Any = None
        if self.is_sim:
            from ground.transport import sim_options

            if sim_options(target).get("dev_key"):
                from ground.auth import dev_signer

                self.signer = dev_signer()

    @property
    def url(self) -> str:
        """What a client opens: the simulated node's pty (started on first use), the virtual
        Pico's, or the URL."""
        if self.is_vpico:
            return str(self._running_vpico().port)
        if not self.is_sim:
            return self.target
        return str(self._running_sim().port)

    @property
    def time_scale(self) -> float:
        """The factor every wait is multiplied by (the prior until measured)."""
        if self.scale is not None:
            return self.scale.factor
        return VPICO_PRIOR_SCALE if self.is_vpico else 1.0

    @property
    def retry_interval_s(self) -> float:
        return (SIM_RETRY_S if self.is_sim else BOARD_RETRY_S) * self.time_scale

    @property
    def power_cuts(self) -> bool:
        """Whether the rig can cut this target's power (the sim and the virtual Pico)."""
        return self.is_sim or self.is_vpico

    def _running_vpico(self) -> Any:
        vpico = self.vpico
        if vpico is not None and vpico.returncode is None:
            return vpico
        if vpico is not None:
            with contextlib.suppress(Exception):
                vpico.stop()
        self.vpico = self.start_vpico()
        # a VirtualPico that deployed (or kept) the node waited for its housekeeping
        self.booting = self.vpico.deploy == "no"
        if self.signer is None:
            # key=dev (the default): its deployment provisioned the development key; the
            # counters continue from the store beside its flash (the node's replay window
            # lives in that flash), once the deployment has said whether the node is new.
            # key=none: None, unsigned
            self.signer = self.vpico.signer()
        return self.vpico

    def start_vpico(self, flash: Path | None = None, deploy: str | None = None) -> Any:
        """A VirtualPico for ``--target vpico[://?uf2=...&flash=...]`` (its log in the HIL
        log directory); ``flash``/``deploy`` override the URL's."""
        from ground.vpico import VirtualPico, vpico_options

        self.log_dir.mkdir(parents=True, exist_ok=True)
        options = vpico_options(self.target)
        options.setdefault("flash", str(default_vpico_flash(self.worker)))
        if flash is not None:
            options["flash"] = str(flash)
        if deploy is not None:
            options["deploy"] = deploy
        n = next(self._fresh)
        vpico = VirtualPico(log_path=self.log_dir / f"vpico-{n}.log", **options)
        return vpico.start()

    @property
    def uplink_bytes_per_s(self) -> float | None:
        # The pty takes bytes as fast as they come; a board may sit behind a UART.
        return None if self.is_sim else DEFAULT_UPLINK_BYTES_PER_S

    def _running_sim(self) -> Any:
        sim = self.sim
        if sim is not None and (sim.running or sim.returncode is None):
            return sim
        if sim is not None:  # the node exited for good (a crash): start it again
            with contextlib.suppress(Exception):
                sim.stop()
        self.sim = self.start_sim(self.log_dir / "node-state")
        return self.sim

    def start_sim(self, state_dir: Path) -> Any:
        """A SimNode on ``state_dir``; ``--target sim://?seed=N&time_factor=X`` options apply
        (``--hil-seed`` is the default seed)."""
        from ground.simnode import SimNode
        from ground.transport import sim_options

        self.log_dir.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"seed": self.seed}
        options.update(sim_options(self.target))
        options["state_dir"] = state_dir
        sim = SimNode(**options)
        sim.start()
        return sim

    def fresh_state_dir(self) -> Path:
        return self.log_dir / f"fresh-node-{next(self._fresh)}"

    def node_log(self) -> Path | None:
        """The simulated node's own log (its stderr), or the virtual Pico's, if any."""
        running = self.sim if self.sim is not None else self.vpico
        return None if running is None else Path(running.log_path)

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.vpico is not None:
            self.vpico.stop()
            self.vpico = None


class HilLink:
    """Hands out connected NodeApis, resets them to the known state, cycles power."""

    def __init__(self, target: HilTarget) -> None:
        self.target = target

    # --- clients ---------------------------------------------------------------------------

    def connect(self, url: str, log_path: Path, timeout_s: float = CONNECT_TIMEOUT_S) -> NodeApi:
        target = self.target
        if target.is_vpico and (target.booting or url != target.url):
            # just powered on (or a fresh one): it may still be in its boot escape window
            await_first_frame(url, timeout_s * target.time_scale)
            if url == target.url:
                target.booting = False
        client = Client(url, log=log_path, retry_interval_s=target.retry_interval_s,
                        retries=8, uplink_bytes_per_s=target.uplink_bytes_per_s,
                        signer=target.signer)
        client.connect(timeout=timeout_s * target.time_scale)
        if target.scale is None:  # the first connection of the session measures the target
            try:
                target.scale = timing.measure(client, prior=target.time_scale)
            except (GroundError, ValueError):
                client.close()
                raise
            client.retry_interval_s = target.retry_interval_s
        # correlated once, at connect: no correlation of the client's own among the test's
        # commands (exact counts, frames signed ahead); a test that wants them resumes it
        client.hold_correlation()
        api = NodeApi(client, target, time_scale=target.time_scale)
        api.note("hil: " + target.scale.describe())
        return api

    def open(self, log_path: Path) -> NodeApi:
        return self.connect(self.target.url, log_path)

    def release(self, api: NodeApi) -> None:
        api.detach()
        api.client.close()

    def close(self) -> None:
        pass

    # --- the known state -------------------------------------------------------------------

    def reset(self, api: NodeApi) -> None:
        """Bring the node to the known state (module docstring)."""
        api.note("hil: reset to the known state")
        timeout_s = api.seconds(api.command_timeout_s)

        def cmd(name: str, **args: Any) -> Any:
            return api.client.command(name, timeout=timeout_s, **args)

        cmd("fault_inject", fault="CLEAR", target=0, value=0.0)
        for slot in range(dictionary.SEQ_SLOTS):  # no sequence running, no trigger armed
            cmd("seq_stop", slot=slot)
            cmd("seq_trigger", slot=slot, trigger="NONE", level=0.0)
        cmd("tt_pause", paused=False)  # the time-tagged queue released and empty (SPEC §11)
        cmd("tt_clear")
        cmd("param_reset")
        cmd("param_save")
        cmd("set_mode", mode="SAFE")  # SAFE -> SAFE completes without a change
        for channel in range(len(dictionary.LOADS)):
            cmd("load_reset_trip", channel=channel)
        # Loads as at boot: only the essential ones on. Switching needs NOMINAL.
        try:
            cmd("set_mode", mode="NOMINAL")
            for channel, (_name, _nominal, _trip, essential) in enumerate(dictionary.LOADS):
                cmd("load_switch", channel=channel, on=essential)
        except (CommandFailed, CommandRejected) as exc:  # e.g. FDIR holding SAFE: say so
            api.note(f"hil: loads not reset: {exc}")
        finally:
            cmd("set_mode", mode="SAFE")
        for heater in dictionary.HEATERS:
            cmd("heater_mode", heater=heater, mode="AUTO")
        for packet in dictionary.PACKETS:
            cmd("hk_enable", packet=packet.id, enabled=True)
            cmd("hk_rate", packet=packet.id, rate=packet.rate_hz)
        cmd("clear_counters")
        api.note("hil: known state reached")

    # --- power -----------------------------------------------------------------------------

    def power_cycle(self, api: NodeApi | None = None, timeout_s: float = BOOT_TIMEOUT_S) -> None:
        """Cut the power and wait for the node to boot and answer again.

        Simulated node: SIGKILL and restart (unsaved state is lost). Virtual Pico: SIGKILL of
        the emulator and a power-on from its flash as it was. Board: the ``reboot``
        command (the closest a rig without a relay gets to a power cut; USB re-enumerates and
        the transport reconnects). With ``api``, waits until it answers with a new boot count;
        the node cut is ``api``'s own (a ``fresh_node`` is cut, not the session's node).
        """
        before = api.client.status.boot_count if api and api.client.status else None
        wall_s = timeout_s * self.target.time_scale
        if self.target.is_sim:
            sim = self._powered(api)
            boots = sim.boots
            sim.power_cut()
            sim.wait_boots(boots + 1, wall_s)
        elif self.target.is_vpico:  # SIGKILL of the emulator, a boot from the flash file
            vpico = self._powered(api)
            up = vpico.enumerations
            heard = api.history.packets if api is not None else 0
            vpico.power_cut()
            vpico.wait_up(up + 1, wall_s)
            if api is None:
                await_first_frame(vpico.port, wall_s)
            else:
                _await(lambda: api.history.packets > heard, wall_s,
                       f"the node's housekeeping after the power cut; log: {vpico.log_path}")
        elif api is not None:
            api.send_command("reboot")  # armed first (SPEC §10.8)
        else:
            raise ValueError("power_cycle on a board needs the NodeApi to send `reboot` with")
        if api is not None:
            self.wait_answering(api, timeout_s, newer_than=before)

    def _powered(self, api: NodeApi | None) -> Any:
        """The simulated node or virtual Pico whose power the rig holds: ``api``'s own (a
        fresh node's too); a board has none the rig can cut."""
        if self.target.is_sim:
            return getattr(api, "fresh_sim", None) or self.target._running_sim()
        if self.target.is_vpico:
            return getattr(api, "fresh_vpico", None) or self.target._running_vpico()
        raise ValueError(f"the rig cannot cut the power of {self.target.url}: "
                         "mark the test power_cut")

    def cut_power(self, api: NodeApi | None = None, off_s: float = 0.0) -> None:
        """Cut the power now and switch it on again after ``off_s`` wall seconds, without
        waiting for the boot (``power_cycle`` waits): for a cut in the middle of something the
        ground keeps doing (the simulated node or the virtual Pico only)."""
        self._powered(api).power_cut(off_s=off_s)

    def freeze(self, api: NodeApi | None = None) -> None:
        """Stop the node's processor where it is (SIGSTOP of the simulated node's process or
        of the emulator): it reads and sends nothing from then on, and the bytes sent to it
        wait in the port. Only a power cut (``cut_power``, ``power_cycle``) ends it."""
        powered = self._powered(api)
        pid = powered.node_pid if self.target.is_sim else powered.emulator_pid
        if pid is None:
            raise AssertionError(f"no node process to stop on {self.target.url}")
        os.kill(pid, signal.SIGSTOP)

    def wait_answering(self, api: NodeApi, timeout_s: float = BOOT_TIMEOUT_S,
                       newer_than: int | None = None) -> Any:
        """Ask for status until the node answers (with a boot count above ``newer_than``);
        ``timeout_s`` is in the simulated node's seconds (times the time scale)."""
        timeout_s = api.seconds(timeout_s)
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                status = api.client.refresh_status(
                    max(0.01, min(api.seconds(2.0), deadline - time.monotonic())))
            except GroundError as exc:
                last = exc
                time.sleep(0.05)
                continue
            if newer_than is None or status.boot_count > newer_than:
                return status
            time.sleep(0.05)
        raise AssertionError(f"node did not answer with a new boot within {timeout_s:g} s "
                             f"(last error: {last}); session log: {api.log_path}; node log: "
                             f"{self.target.node_log()}")

    # --- fresh nodes -----------------------------------------------------------------------

    @contextlib.contextmanager
    def fresh(self, log_path: Path) -> Iterator[NodeApi]:
        """A brand-new node (sim; virtual Pico: a new one on a copy of the flash as deployed,
        before the node first ran); on a board the known state plus a reboot."""
        if self.target.is_vpico:
            with self._fresh_vpico(log_path) as api:
                yield api
            return
        if not self.target.is_sim:
            api = self.open(log_path)
            try:
                self.reset(api)
                self.power_cycle(api)
                api.history.forget()  # the test starts at this boot, as on a fresh sim
                yield api
            finally:
                try:
                    # the same node serves the next tests: leave it as a reboot does, not as
                    # the test left its plant (hours of model time may have passed: a fresh
                    # sim process or virtual Pico is simply discarded instead)
                    self.reset(api)
                    self.power_cycle(api)
                finally:
                    self.release(api)
            return
        sim = self.target.start_sim(self.target.fresh_state_dir())
        try:
            api = self.connect(sim.port, log_path)
            api.fresh_sim = sim  # type: ignore[attr-defined]
            try:
                yield api
            finally:
                self.release(api)
        finally:
            sim.stop()

    @contextlib.contextmanager
    def _fresh_vpico(self, log_path: Path) -> Iterator[NodeApi]:
        import shutil

        session = self.target._running_vpico()  # deployed, with its pristine flash saved
        pristine = session.pristine
        if not pristine.exists():
            raise AssertionError(f"no pristine flash image beside {session.flash}: delete "
                                 f"{session.marker} so the next session deploys again")
        flash = self.target.log_dir / f"fresh-vpico-{next(self.target._fresh)}" / "flash.img"
        flash.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pristine, flash)
        vpico = self.target.start_vpico(flash=flash, deploy="no")
        try:
            api = self.connect(vpico.port, log_path)
            api.fresh_vpico = vpico  # type: ignore[attr-defined]
            try:
                yield api
            finally:
                self.release(api)
        finally:
            vpico.stop()

    # --- impaired links --------------------------------------------------------------------

    @contextlib.contextmanager
    def impaired_factory(self, log_path: Path) -> Iterator[Callable[..., NodeApi]]:
        """Yield ``make(drop=, corrupt=, duplicate=, delay_ms=, split=, seed=, direction=)``.

        Each NodeApi made runs through its own ImpairedLink (``api.proxy``). The node is
        reset to the known state through the proxy with impairment off, then the proxy's
        accounting is zeroed together with the node's counters and impairment switched on.
        """
        made: list[tuple[NodeApi, ImpairedLink]] = []

        def make(*, drop: float = 0.0, corrupt: float = 0.0, duplicate: float = 0.0,
                 delay_ms: float = 0.0, split: float = 0.0, seed: int = 0,
                 direction: str = "both") -> NodeApi:
            proxy = ImpairedLink(self.target.url, drop=drop, corrupt=corrupt,
                                 duplicate=duplicate, delay_ms=delay_ms, split=split, seed=seed,
                                 direction=direction)
            proxy.start()
            proxy.impairing = False
            name = log_path if not made else log_path.with_name(
                f"{log_path.stem}-{len(made)}{log_path.suffix}")
            try:
                api = self.connect(proxy.url, name)
            except BaseException:
                proxy.stop()
                raise
            api.proxy = proxy  # type: ignore[attr-defined]
            made.append((api, proxy))
            self.reset(api)
            proxy.drain()
            proxy.reset_accounting()
            proxy.impairing = True
            api.note(f"hil: impaired link drop={drop} corrupt={corrupt} duplicate={duplicate} "
                     f"delay_ms={delay_ms} split={split} seed={seed} direction={direction}")
            return api

        try:
            yield make
        finally:
            for api, proxy in made:
                api.note("hil: impaired link: " + proxy.describe())
                self.release(api)
                proxy.stop()
