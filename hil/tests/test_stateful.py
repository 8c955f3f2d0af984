"""A hypothesis state machine drives the node with valid and invalid commands and checks it
against a model: mode, loads switched on, parameters, command counters.

Bounded for CI: a handful of examples of a few dozen steps (well under 60 s on sim).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ground import codec
from hil.session import HilLink
from hil.vocabulary import NodeApi, values_of
from protocol import dictionary

pytestmark = pytest.mark.slow_target(
    reason="a few hundred random steps, each a round of commands and telemetry waits")

MODES = {1: "SAFE", 2: "NOMINAL", 3: "SCIENCE"}
ALLOWED = {(1, 2), (2, 3), (3, 2), (1, 1), (2, 1), (3, 1)}
PAYLOADS = (4, 5)
ESSENTIAL = sum(1 << i for i, load in enumerate(dictionary.LOADS) if load[3])
SCRATCH = {p.name: p for p in dictionary.PARAMS if p.name in ("test_value", "volatile_value")}
SETTINGS = settings(max_examples=6, stateful_step_count=25, deadline=None,
                    suppress_health_check=list(HealthCheck))


class NodeMachine(RuleBasedStateMachine):
    api: NodeApi
    link: HilLink

    def __init__(self) -> None:
        super().__init__()
        self.link.reset(self.api)
        node = self.api
        node.send_and_assert_command("param_set", param="science_min_soc_pct", value=10.0)
        self.mode = 1
        self.loads = ESSENTIAL
        self.params: dict[str, Any] = {"test_value": 0, "volatile_value": 0}
        node.send_and_assert_command("clear_counters")  # counts itself, then zeroes
        self.accepted = 0
        self.rejected = 0

    def _final(self, name: str, args: list[Any]) -> tuple[str, int]:
        cmd_id = next(c.id for c in dictionary.COMMANDS if c.name == name)
        seq = self.api.send_raw_id(cmd_id, args)
        msg = self.api.await_verification(cmd_id, seq)
        stage = codec.stage_name(msg.body[1])
        if stage == "rejected":
            self.rejected += 1
        else:
            self.accepted += 1
        return stage, int(msg.body[2])

    @rule(new=st.sampled_from([1, 2, 3]))
    def set_mode(self, new: int) -> None:
        stage, code = self._final("set_mode", [new])
        if (self.mode, new) in ALLOWED:
            assert stage == "completed", (self.mode, new, stage, code)
            if self.mode == 3 and new != 3:
                self.loads &= ~sum(1 << p for p in PAYLOADS)
            self.mode = new
        else:
            assert (stage, code) == ("failed", 18), (self.mode, new, stage, code)

    @rule(channel=st.integers(0, 7), on=st.booleans())
    def load_switch(self, channel: int, on: bool) -> None:
        stage, code = self._final("load_switch", [channel, on])
        if self.mode == 1:
            assert (stage, code) == ("rejected", 4)
        elif on and channel in PAYLOADS and self.mode != 3:
            assert (stage, code) == ("failed", 20)
        else:
            assert stage == "completed", (stage, code)
            self.loads = self.loads | (1 << channel) if on else self.loads & ~(1 << channel)

    @rule(name=st.sampled_from(sorted(SCRATCH)), value=st.integers(-1100, 1100))
    def param_set(self, name: str, value: int) -> None:
        stage, code = self._final("param_set", [SCRATCH[name].id, value])
        if -1000 <= value <= 1000:
            assert stage == "completed"
            self.params[name] = value
        else:
            assert (stage, code) == ("rejected", 3)

    @rule(args=st.lists(st.one_of(st.integers(-5, 300), st.text(max_size=3), st.none(),
                                  st.floats(allow_nan=False, allow_infinity=False)),
                        max_size=4))
    def bad_set_mode(self, args: list[Any]) -> None:
        """set_mode with anything but one valid mode: rejected, state unchanged."""
        if len(args) == 1 and type(args[0]) is int and 1 <= args[0] <= 3:
            return
        stage, code = self._final("set_mode", args)
        assert stage == "rejected" and code in (2, 3), (args, stage, code)

    @rule(cmd_id=st.integers(max(c.id for c in dictionary.COMMANDS) + 1, 65535))
    def unknown(self, cmd_id: int) -> None:
        seq = self.api.send_raw_id(cmd_id, [])
        msg = self.api.await_verification(cmd_id, seq)
        assert (msg.body[1], msg.body[2]) == (1, 1)
        self.rejected += 1

    @rule(name=st.sampled_from(sorted(SCRATCH)))
    def param_get(self, name: str) -> None:
        value = self.api.client.param_get(SCRATCH[name].id)
        self.accepted += 1
        assert value == self.params[name]

    @invariant()
    def matches_the_model(self) -> None:
        status = self.api.status()
        self.accepted += 1
        assert status.mode == MODES[self.mode]
        hk = values_of(self.api.await_housekeeping("power", newer_than_ms=status.uptime_ms,
                                                   timeout=3))
        assert hk["mode"] == self.mode
        assert hk["loads_on"] & 0xFF == self.loads & 0xFF, (hk["loads_on"], self.loads)
        link = values_of(self.api.await_housekeeping("link", newer_than_ms=status.uptime_ms,
                                                     timeout=3))
        assert (link["cmds_accepted"], link["cmds_rejected"]) == (self.accepted, self.rejected)


def test_node_follows_the_model(node: NodeApi, hil_link: HilLink) -> None:
    node.send_and_assert_command("hk_rate", packet=1, rate=20.0)
    node.send_and_assert_command("hk_rate", packet=3, rate=20.0)
    node.send_and_assert_command("param_set", param="event_rate_limit", value=100)
    NodeMachine.api = node
    NodeMachine.link = _FastReset(hil_link)
    run_state_machine_as_test(NodeMachine, settings=SETTINGS)


class _FastReset(HilLink):
    """Between examples: the known state, then the fast housekeeping this test reads."""

    def __init__(self, link: HilLink) -> None:
        super().__init__(link.target)

    def reset(self, api: NodeApi) -> None:
        super().reset(api)
        for packet in (1, 3):
            api.client.command("hk_rate", packet=packet, rate=20.0)
        api.client.command("param_set", param="event_rate_limit", value=100)
