"""The campaign's account of the authentication layer (SPEC §10.3): what each authenticated
case must get, and whether the node's refusal counters and events say exactly that.

Per batch, ``classify`` runs ``authmodel`` over the cases in order: a refused object gets no
answer and counts in ``forged`` or ``replayed``; an accepted one is a command to judge inside,
every answer authenticated for its counter. After the batch ``check`` compares:

- the channels ``auth_forged`` and ``auth_replayed`` (the commanding packet after the batch's
  ping) with the model's counts since the node's boot, exactly;
- each ``auth_refused`` event that arrived: its arguments are the two counts as they stood
  after one of the refusals (or before the batch: the end-of-burst report), and it came at
  least 10 s of node time after the previous one;
- ``auth_state`` did not change (nothing the campaign sends may change the policy).

``final_report`` checks the end of a burst: within 10 s (node time) of the last refusal an
``auth_refused`` event carries the final counts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from ground.fuzz.authmodel import ACCEPTED, AuthModel, Verdict
from ground.fuzz.keyring import FuzzKey
from ground.fuzz.port import NodePort

ENFORCED: Final = 2  # auth_state (§10.6)
REFUSED_EVENT_MS: Final = 10_000


class AuthCheck:
    def __init__(self, port: NodePort) -> None:
        self.port = port
        keys: list[FuzzKey] = [port.key] if port.key is not None else []
        self.model = AuthModel(keys)
        port.on_sign = self._own
        port.on_reboot = self._reboot
        self._own_counters: list[int] = []  # signed by the port, not yet in the model
        self.state: int | None = None
        self._pairs: set[tuple[int, int]] = set()
        self._events_seen = 0
        self._last_event_ms: int | None = None
        self.refused = 0  # refusals seen in the campaign (stats)

    @property
    def enforced(self) -> bool:
        return self.state == ENFORCED

    def _own(self, counter: int) -> None:
        """A command of the port's own, signed with the node's key: the node takes it, in
        its place among the cases (``flush_own``)."""
        self._own_counters.append(counter)

    def flush_own(self) -> None:
        """The port's own commands sent up to now reach the model: before a batch is
        written, and after its cases were judged (the ping that follows them)."""
        key = self.port.key
        window = self.model.window(key.operator) if key is not None else None
        if window is not None:
            for counter in self._own_counters:
                window.take(counter)
        self._own_counters.clear()

    def _reboot(self) -> None:
        self.flush_own()  # what was sent before the cut, then the boot
        self.model.reboot()

    def baseline(self, channels: dict[str, Any]) -> None:
        """The node's counts and state as a packet read them (after a boot, at the start)."""
        self.model.forged = int(channels.get("auth_forged", 0) or 0)
        self.model.replayed = int(channels.get("auth_replayed", 0) or 0)
        state = channels.get("auth_state")
        self.state = state if isinstance(state, int) else None
        self._events_seen = len(self.port.auth_refused)
        self._pairs = {(self.model.forged, self.model.replayed)}

    def classify(self, payload: bytes) -> Verdict:
        verdict = self.model.verdict(payload)
        if verdict.kind != ACCEPTED:
            self.refused += 1
            self._pairs.add((self.model.forged, self.model.replayed))
        return verdict

    def check(self, channels: dict[str, Any]) -> list[str]:
        problems = []
        forged = int(channels.get("auth_forged", -1) or 0)
        replayed = int(channels.get("auth_replayed", -1) or 0)
        model = self.model
        if (forged, replayed) != (model.forged, model.replayed):
            problems.append(f"auth_forged {forged}, auth_replayed {replayed}; the refusals "
                            f"sent since the boot make {model.forged} and {model.replayed}")
            model.forged, model.replayed = forged, replayed  # report once, then go on from here
        if channels.get("auth_state") != self.state:
            problems.append(f"auth_state {self.state} -> {channels.get('auth_state')}")
            state = channels.get("auth_state")
            self.state = state if isinstance(state, int) else None
        problems += self._check_events(self.port.auth_refused[self._events_seen:])
        self._events_seen = len(self.port.auth_refused)
        self._pairs = {(model.forged, model.replayed)}
        return problems

    def _check_events(self, events: Sequence[tuple[int, Any]]) -> list[str]:
        problems = []
        for t_ms, args in events:
            pair = tuple(args) if isinstance(args, list) else None
            if pair not in self._pairs:
                problems.append(f"auth_refused event {args!r}: not the counts after any "
                                f"refusal of this batch (possible: {sorted(self._pairs)[:4]})")
            last = self._last_event_ms
            if last is not None and 0 <= t_ms - last < REFUSED_EVENT_MS:
                problems.append(f"auth_refused events {t_ms - last} ms apart (node time): "
                                "at most one per 10 s")
            self._last_event_ms = t_ms
        return problems

    def rebooted(self) -> None:
        """The node booted (its event times start again)."""
        self._last_event_ms = None

    def final_report(self, timeout_s: float = 15.0) -> list[str]:
        """The end of the campaign's last burst is reported within 10 s of node time."""
        model = self.model
        if self.refused == 0 or (model.forged, model.replayed) == (0, 0):
            return []  # nothing refused, or nothing since the node's last boot
        want = [model.forged, model.replayed]
        deadline = time.monotonic() + timeout_s
        events = self.port.auth_refused
        while time.monotonic() < deadline and not (events and events[-1][1] == want):
            time.sleep(0.1)
            events = self.port.auth_refused
        problems = self._check_events(events[self._events_seen:])
        self._events_seen = len(events)
        if not (events and events[-1][1] == want):
            problems.append(f"no auth_refused event reported the final counts {want} within "
                            f"{timeout_s:g} s (last event: {events[-1][1] if events else None})")
        return problems
