"""Power cuts at random moments on the simulated node (issue 10, bugs 1, 6 and 7).

One cycle: a ``param_set`` of ``test_value`` that runs (its exact bytes kept), a power cut
0-50 ms after it completed, and meanwhile commands sent continuously while the node boots.
Then:

- the node comes back and answers although commands (every command frame starts
  ``00 03``, a Ctrl-C on a USB REPL) arrived during its boot (bug 1);
- the kept command, re-sent with its seq after the reboot, does not run again: the
  parameter keeps the value the node booted with (bug 7), and the answer is the spec's
  (STALE_BOOT once commands are bound to a boot);
- a live event after the reboot carries an event_seq above every one seen live before the
  cut: an event number never names two events (bug 6).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from ground.fuzz import cases as fc
from ground.fuzz import model
from ground.fuzz.port import NodePort

TEST_VALUE = next(p for p in fc.PARAMS.values() if p.name == "test_value")


@dataclass
class PowerResult:
    problems: list[str] = field(default_factory=list)
    pings_during_boot: int = 0


def _final(port: NodePort, name: str, args: list[Any], timeout_s: float = 5.0) -> Any:
    return port.command(fc.COMMAND_IDS[name], args, timeout_s)


def _param(port: NodePort) -> Any:
    final = _final(port, "param_get", [TEST_VALUE.id])
    return final[2] if final is not None and final[0] == 2 else None


def power_cycle(port: NodePort, rng: random.Random, boot_timeout_s: float = 20.0) -> PowerResult:
    result = PowerResult()
    if port.sim is None:
        return result  # a board: no power switch here
    param_set = fc.COMMAND_IDS["param_set"]
    before = _param(port)
    if not isinstance(before, int):
        result.problems.append(f"param_get test_value before the cut answered {before!r}")
        return result
    value = before + 1 if before < 1000 else before - 1
    seq = port.fresh_seq(param_set)
    message = fc.command(seq, param_set, [TEST_VALUE.id, value])
    wire = port.own_command(param_set, [TEST_VALUE.id, value], seq)
    port.write(wire)
    final = port.wait_final(param_set, seq, 5.0)
    if final is None or final[0] != 2:
        result.problems.append(f"param_set test_value={value} (seq {seq}) answered {final}")
        return result
    time.sleep(rng.uniform(0.0, 0.05))
    last_event = port.max_event_seq
    boots = port.sim.boots
    port.power_cut()
    # commands all the way through the boot: the node must come back and answer one
    status_id = fc.COMMAND_IDS["status"]
    deadline = time.monotonic() + boot_timeout_s
    answered = False
    while time.monotonic() < deadline and not answered:
        ping = port.fresh_seq(status_id)
        try:
            port.send_command(status_id, [], ping)
        except Exception:  # the port is reopening: try again
            time.sleep(0.05)
            continue
        result.pings_during_boot += 1
        answered = port.wait_final(status_id, ping, 0.05) is not None
    if not answered or port.sim.boots <= boots:
        result.problems.append(f"no answer within {boot_timeout_s:g} s to commands sent "
                               f"through the boot ({result.pings_during_boot} sent)")
        return result
    booted_with = _param(port)  # also binds the commands to the new boot, where they are
    # the kept command again, byte for byte: it ran before the cut and must not run again
    # (authenticated: the same message under a new counter, as a ground re-sends, §10.4;
    # the same object again is a replay, refused without an answer)
    port.clear_verifications()  # only the answer to the re-sent one counts
    port.write(wire if port.key is None else port.wire(message))
    again = port.wait_final(param_set, seq, 5.0)
    after = _param(port)
    if after != booted_with:
        result.problems.append(f"param_set seq {seq} re-sent after the power cut ran again: "
                               f"test_value {booted_with} -> {after}")
    if model.BOUND_TO_BOOT and model.STALE_BOOT is not None and (
            again is None or again[0] != 1 or again[1] != model.STALE_BOOT):
        result.problems.append(f"param_set seq {seq} re-sent after the power cut answered "
                               f"{again}, expected rejected STALE_BOOT")
    # a live event after the cut: its number is new
    seen = port.events_seen
    new_value = value + 1 if value < 1000 else value - 1
    if booted_with == new_value:
        new_value = value
    _final(port, "param_set", [TEST_VALUE.id, new_value])
    deadline = time.monotonic() + 5.0
    while port.events_seen == seen and time.monotonic() < deadline:
        time.sleep(0.02)
    newest = port.last_event_seq if port.events_seen > seen else None
    if newest is None:
        result.problems.append("no live event after param_set following the power cut")
    elif last_event is not None and newest <= last_event:
        result.problems.append(f"event_seq {newest} after the power cut was already used: "
                               f"{last_event} was seen live before it")
    return result
