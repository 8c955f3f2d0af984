"""``ground seq check``: what a parsed sequence must also satisfy before anything is sent.

``check(sequence)`` returns the problems (``ground.sequence.Problem``, with lines) that the
parser cannot see one line at a time:

- **Mode order.** The checker follows the modes the sequence can be in, step by step: it
  starts from the declared ``modes``, else from its trigger (``SAFE_ENTRY``: SAFE), else from
  every mode a node runs in (SAFE, NOMINAL, SCIENCE). A ``set_mode`` step moves it by the
  transitions of SPEC §8 (SAFE→NOMINAL, NOMINAL↔SCIENCE, any→SAFE, SAFE→SAFE); a step whose
  on-fail is ``stop`` or ``safe`` goes on only if it worked, so after it the sequence is in a
  mode that allows it; ``skip`` keeps the modes it may have failed in as well. A step that no
  mode it can be in allows (``load_switch`` after ``set_mode mode=SAFE``), or a ``set_mode``
  that is no allowed transition from any of them (``set_mode mode=SCIENCE`` from SAFE,
  ``set_mode mode=NOMINAL`` twice), is an error (once: the steps after an impossible
  ``set_mode`` are checked as if it had worked, so one mistake gives one error). Fault
  protection may force SAFE at any time: that is not the sequence's plan, so only a wait on
  the ``mode`` channel counts it (waiting for SAFE is always possible); a step that then
  finds the wrong mode fails WRONG_MODE on the node and its on-fail applies.
- **Size.** The image (``ground.seqimage``) is at most 4096 bytes: the step that crosses it
  is named.
- A declared ``modes`` that the trigger contradicts (``SAFE_ENTRY`` without SAFE).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from ground import seqimage
from ground import sequence as s
from protocol import dictionary_types as t

SAFE: Final = t.MODE_SAFE
NOMINAL: Final = t.MODE_NOMINAL
SCIENCE: Final = t.MODE_SCIENCE
SET_MODE: Final = "set_mode"
# SPEC §8: set_mode's allowed (from, to) transitions; to SAFE from any mode.
TRANSITIONS: Final[frozenset[tuple[int, int]]] = frozenset(
    {(SAFE, NOMINAL), (NOMINAL, SCIENCE), (SCIENCE, NOMINAL)}
    | {(m, SAFE) for m in s.RUN_MODES}
)
MODE_CHANNEL: Final = "mode"
_COMPARE: Final[tuple[Callable[[Any, Any], bool], ...]] = (  # in the order of s.OPS
    operator.lt, operator.le, operator.eq, operator.ge, operator.gt, operator.ne,
)


def start_modes(seq: s.Sequence) -> frozenset[int]:
    if seq.modes is not None:
        return seq.modes
    if seq.trigger == s.TRIGGER_CODES["SAFE_ENTRY"]:
        return frozenset({SAFE})
    return frozenset(s.RUN_MODES)


def _names(modes: frozenset[int]) -> str:
    return s.describe_modes(modes)


def _how_to_reach(allowed: frozenset[int], now: frozenset[int]) -> str:
    """A hint: the set_mode steps that lead from ``now`` into ``allowed``."""
    for target in sorted(allowed):
        if any((m, target) in TRANSITIONS for m in now):
            return f": `set_mode mode={s.RUN_MODES[target]}` before it"
    if SCIENCE in allowed:
        return ": `set_mode mode=NOMINAL` then `set_mode mode=SCIENCE` before it"
    return ""


def _set_mode(step: s.CommandStep, now: frozenset[int]) -> tuple[frozenset[int], str]:
    target = step.args[0]
    name = s.RUN_MODES[target]
    if not any((m, target) in TRANSITIONS for m in now):
        if now == {target}:
            why = f"the sequence is already in {name} here (set_mode to the same mode " \
                  "fails INVALID_TRANSITION, except SAFE)"
        else:
            froms = frozenset(m for m, to in TRANSITIONS if to == target)
            why = (f"the sequence can only be in {_names(now)} here, and SPEC §8 enters "
                   f"{name} only from {_names(froms)}")
        # reported once: the steps after it are checked as if it had worked
        return frozenset({target}), f"set_mode mode={name} can never work: {why}"
    done = frozenset({target})
    return (now | done if step.on_fail == s.SKIP else done), ""


def _command(step: s.CommandStep, now: frozenset[int]) -> tuple[frozenset[int], str]:
    if step.command.name == SET_MODE:
        return _set_mode(step, now)
    allowed = frozenset(m for m in s.RUN_MODES if step.command.modes & (1 << m))
    if not now & allowed:
        return now, (f"{step.command.name} is allowed only in {_names(allowed)}, and the "
                     f"sequence can only be in {_names(now)} here"
                     + _how_to_reach(allowed, now))
    return (now if step.on_fail == s.SKIP else now & allowed), ""


def _wait(step: s.WaitStep, now: frozenset[int]) -> tuple[frozenset[int], str]:
    if step.channel.name != MODE_CHANNEL:
        return now, ""
    cmp = _COMPARE[step.op]
    possible = now | {SAFE}  # fault protection may force SAFE while it waits
    passing = frozenset(m for m in possible if cmp(m, step.value))
    if not passing:
        return now, (f"wait mode {s.OPS[step.op]} {s.RUN_MODES.get(step.value, step.value)} "
                     f"can never end: the sequence can only be in {_names(possible)} here")
    return (possible if step.on_fail == s.SKIP else passing), ""


def mode_problems(seq: s.Sequence) -> list[s.Problem]:
    problems = []
    if (seq.trigger == s.TRIGGER_CODES["SAFE_ENTRY"] and seq.modes is not None
            and SAFE not in seq.modes):
        problems.append(s.Problem(seq.path, seq.modes_line, "trigger SAFE_ENTRY starts the "
                                  "sequence in SAFE, and `modes` does not include SAFE"))
    now = start_modes(seq)
    for step in seq.steps:
        if isinstance(step, s.WaitStep):
            now, problem = _wait(step, now)
        else:
            now, problem = _command(step, now)
        if problem:
            problems.append(s.Problem(seq.path, step.line, problem))
    return problems


def size_problems(seq: s.Sequence) -> list[s.Problem]:
    image = seqimage.compile(seq)
    if len(image) <= seqimage.MAX_IMAGE_BYTES:
        return []
    line = seq.steps[-1].line
    for i in range(1, len(seq.steps) + 1):  # the first step that does not fit
        if len(seqimage.compile(seq._replace(steps=seq.steps[:i]))) > seqimage.MAX_IMAGE_BYTES:
            line = seq.steps[i - 1].line
            break
    return [s.Problem(seq.path, line, f"the image would be {len(image)} bytes, more than a "
                      f"slot holds ({seqimage.MAX_IMAGE_BYTES}): this step does not fit")]


def check(seq: s.Sequence) -> list[s.Problem]:
    return mode_problems(seq) + size_problems(seq)


def checked(path: str) -> s.Sequence:
    """Load, parse and check a sequence file; SequenceErrors with every problem."""
    seq = s.load(path)
    problems = check(seq)
    if problems:
        raise s.SequenceErrors(problems)
    return seq
