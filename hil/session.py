"""What the plugin's fixtures do: the node under test, clients for tests, the known state.

`HilTarget` (session) is the node: for ``sim`` one `ground.simnode.SimNode` whose state
directory and ``node.log`` live in the HIL log directory, restarted if a test killed it; for
a board, its pyserial URL. `HilLink` (session) hands each test its own `ground.client.Client`
(so each test has its own session log) wrapped in the vocabulary (`hil.vocabulary.NodeApi`).

**The known state** a test starts from (`HilLink.reset`), reached with ordinary commands so it
is the same on a board and on the simulated node, in well under a second:

- injected faults cleared (``fault_inject CLEAR``);
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from ground.client import Client
from ground.errors import CommandFailed, CommandRejected, GroundError
from ground.transport import DEFAULT_UPLINK_BYTES_PER_S
from hil.impair import ImpairedLink
from hil.vocabulary import NodeApi
from protocol import dictionary

SIM: Final = "sim"
BOOT_TIMEOUT_S: Final = 20.0
# Retries: tight on the simulated node (a pty answers in about a millisecond); a board on
# USB answers in a few ms, through a UART at 115200 baud in tens of ms.
SIM_RETRY_S: Final = 0.25
BOARD_RETRY_S: Final = 1.0


def is_sim_target(target: str) -> bool:
    return target == SIM or target.startswith(SIM + "://")


class HilTarget:
    """The node under test for a whole session."""

    def __init__(self, target: str, log_dir: Path, seed: int = 1) -> None:
        self.target = target
        self.log_dir = Path(log_dir)
        self.seed = seed
        self.is_sim = is_sim_target(target)
        self.sim: Any = None  # ground.simnode.SimNode while running
        self._fresh = itertools.count(1)
        # --target 'sim://?key=dev': the node holds the development key and every client of
        # the session signs with one Signer (one counter sequence: SPEC §10.4)
        self.signer: Any = None
        if self.is_sim:
            from ground.transport import sim_options

            if sim_options(target).get("dev_key"):
                from ground.auth import dev_signer

                self.signer = dev_signer()

    @property
    def url(self) -> str:
        """What a client opens: the simulated node's pty (started on first use), or the URL."""
        if not self.is_sim:
            return self.target
        return str(self._running_sim().port)

    @property
    def retry_interval_s(self) -> float:
        return SIM_RETRY_S if self.is_sim else BOARD_RETRY_S

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
        """The simulated node's own log (its stderr), if there is one."""
        return None if self.sim is None else Path(self.sim.log_path)

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


class HilLink:
    """Hands out connected NodeApis, resets them to the known state, cycles power."""

    def __init__(self, target: HilTarget) -> None:
        self.target = target

    # --- clients ---------------------------------------------------------------------------

    def connect(self, url: str, log_path: Path, timeout_s: float = 10.0) -> NodeApi:
        client = Client(url, log=log_path, retry_interval_s=self.target.retry_interval_s,
                        retries=8, uplink_bytes_per_s=self.target.uplink_bytes_per_s,
                        signer=self.target.signer)
        client.connect(timeout=timeout_s)
        return NodeApi(client, self.target)

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
        cmd = api.client.command
        cmd("fault_inject", fault="CLEAR", target=0, value=0.0)
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

        Simulated node: SIGKILL and restart (unsaved state is lost). Board: the ``reboot``
        command (the closest a rig without a relay gets to a power cut; USB re-enumerates and
        the transport reconnects). With ``api``, waits until it answers with a new boot count.
        """
        before = api.client.status.boot_count if api and api.client.status else None
        if self.target.is_sim:
            sim = self.target._running_sim()
            boots = sim.boots
            sim.power_cut()
            sim.wait_boots(boots + 1, timeout_s)
        elif api is not None:
            api.client.send("reboot")
        else:
            raise ValueError("power_cycle on a board needs the NodeApi to send `reboot` with")
        if api is not None:
            self.wait_answering(api, timeout_s, newer_than=before)

    def wait_answering(self, api: NodeApi, timeout_s: float = BOOT_TIMEOUT_S,
                       newer_than: int | None = None) -> Any:
        """Ask for status until the node answers (with a boot count above ``newer_than``)."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                status = api.client.refresh_status(min(2.0, deadline - time.monotonic()))
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
        """A brand-new node (sim); on a board the known state plus a reboot."""
        if not self.target.is_sim:
            api = self.open(log_path)
            try:
                self.reset(api)
                self.power_cycle(api)
                yield api
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
