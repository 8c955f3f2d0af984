"""The modes the node may be in while a batch's cases reach it, as the oracle follows them.

A batch starts in the mode `status` reported; each `set_mode` that completes moves the node to
its target (SPEC §8). Some cases are not judged (a repeated `(seq, id)` the node may answer
from its idempotency record, §5.2, or a verification the congested downlink dropped), and a
`set_mode` among them may or may not have run: skipping it, as if it had not, made the oracle
expect SAFE answers from a node that was NOMINAL (a rejected `set_mode` seq 31049 then a valid
one with the same seq, which the node rightly executed: only accepted pairs are remembered).

So the tracker keeps the *set* of modes the node may be in: an unjudged `set_mode` adds its
target to every mode it could leave that way; a judged case keeps only the modes under which
its answer is the one the model gives, then moves each by what the case did. A set of one
mode is as strict as a single mode; a wider set allows exactly the answers one of those
modes gives, and the next answer that depends on the mode narrows it again.
"""

from __future__ import annotations

from typing import Final

from ground.fuzz import model
from ground.fuzz.case import EXECUTES, OK, outcome_allowed
from ground.fuzz.model import Expectation
from ground.fuzz.oracle import SET_MODE
from protocol.dictionary_types import MODE_NOMINAL, MODE_SAFE, MODE_SCIENCE

ALL_MODES: Final = frozenset({MODE_SAFE, MODE_NOMINAL, MODE_SCIENCE})
# the stage sequences a verification may have: rejected; accepted (still running); done
WELL_FORMED_STAGES: Final = ([1], [0], [0, 2], [0, 3])


def answer_fits(exp: Expectation, outcome: str, stages: list[int]) -> bool:
    """Is this answer (final outcome, stages in order) one the expectation allows?"""
    if stages not in WELL_FORMED_STAGES:
        return False
    if outcome == "accepted":  # still executing (a bulk transfer): fine if it may execute
        return bool(exp.outcomes & EXECUTES)
    return outcome_allowed(outcome, exp.outcomes)


def _target(exp: Expectation) -> int | None:
    """The mode a well-formed `set_mode` asks for, else None (a time-tagged one is queued, not
    run now: SPEC §11)."""
    if exp.command is None or exp.command[0] != SET_MODE or len(exp.command[1]) != 1 \
            or exp.reason == model.TIME_TAGGED:
        return None
    target = exp.command[1][0]
    return target if isinstance(target, int) and not isinstance(target, bool) else None


class ModeTrack:
    """The modes the node may be in, case after case, within one batch."""

    def __init__(self, mode: int, boot: int, enforced: bool = False) -> None:
        self.modes: frozenset[int] = frozenset({mode})
        self.boot = boot
        self.enforced = enforced  # the node's auth_state is ENFORCED (SPEC §10.6)
        self._cache: dict[tuple[bytes, int, bool], Expectation] = {}  # one batch's worth

    def expect(self, payload: bytes, mode: int, signed: bool = False) -> Expectation:
        """The model's answer to ``payload`` in ``mode`` (``signed``: the command inside an
        authenticated object the node accepted), computed once per batch."""
        key = (payload, mode, signed)
        exp = self._cache.get(key)
        if exp is None:
            exp = self._cache[key] = model.expect(payload, mode=mode, boot=self.boot,
                                                  enforced=self.enforced, signed=signed)
        return exp

    def expected(self, payload: bytes, modes: frozenset[int],
                 signed: bool = False) -> frozenset[str]:
        """Every outcome one of these modes gives (for a finding's text)."""
        return frozenset().union(*(self.expect(payload, m, signed).outcomes for m in modes))

    def unjudged(self, exp: Expectation, payload: bytes, signed: bool = False) -> None:
        """A case whose answer is not judged: if it is a `set_mode` that could run, the node
        may now be in its target mode as well."""
        target = _target(exp)
        if target is None:
            return
        self.modes = self.modes | frozenset(
            target for m in self.modes if OK in self.expect(payload, m, signed).outcomes)

    def observe(self, exp: Expectation, payload: bytes, outcome: str,
                stages: list[int], signed: bool = False) -> bool:
        """A judged answer: keep the modes under which it is right and move each by what the
        case did. False (the modes left as they were, moved) if no possible mode explains it."""
        if exp.command is None:  # not a command the dispatcher reaches: no mode in it
            return answer_fits(exp, outcome, stages)
        fits = frozenset(m for m in self.modes
                         if answer_fits(self.expect(payload, m, signed), outcome, stages))
        target = _target(exp)
        if outcome == OK and target is not None:
            self.modes = frozenset({target})  # a set_mode completed: the node is there now
        else:
            self.modes = fits or self.modes
        return bool(fits)
