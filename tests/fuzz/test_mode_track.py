"""ground/fuzz/modes.py (ModeTrack): the modes the oracle allows, case after case, within one batch.

The case behind issue 10's last 1M-case finding: a rejected `set_mode` seq 31049, then a valid
`set_mode` NOMINAL with the same seq (not judged: a repeated address), which the node rightly
executed (only accepted pairs are remembered, SPEC §5.2); the oracle went on expecting SAFE
answers. hil/corpus/issue10-mode-after-repeated-seq.json replays it on a live node."""

from __future__ import annotations

import pytest

from ground.fuzz import model
from ground.fuzz.case import MALFORMED, WRONG_MODE
from ground.fuzz.encoding import command, envelope
from ground.fuzz.modes import ModeTrack, answer_fits
from ground.fuzz.oracle import COMMAND_IDS
from protocol.dictionary_types import MODE_NOMINAL, MODE_SAFE, MODE_SCIENCE

SET_MODE = COMMAND_IDS["set_mode"]
LOAD_SWITCH = COMMAND_IDS["load_switch"]


pytestmark = pytest.mark.usefixtures("boot_zero")  # commands bound to boot 0 (conftest)


def _case(seq: int, cmd_id: int, args: list[object]) -> tuple[model.Expectation, bytes]:
    payload = command(seq, cmd_id, args)
    return model.expect(payload, mode=MODE_SAFE), payload


def test_an_unjudged_set_mode_that_may_have_run_adds_its_target() -> None:
    track = ModeTrack(MODE_SAFE, 0)
    track.unjudged(*_case(31049, SET_MODE, [MODE_NOMINAL]))
    assert track.modes == {MODE_SAFE, MODE_NOMINAL}
    # the node answers the next set_mode NOMINAL as NOMINAL does: the modes narrow to it
    assert track.observe(*_case(31102, SET_MODE, [MODE_NOMINAL]), "fail:18", [0, 3])
    assert track.modes == {MODE_NOMINAL}
    # and from there the tracker is exact again: a SAFE answer is a finding
    assert not track.observe(*_case(31131, LOAD_SWITCH, [2, True]), f"rej:{WRONG_MODE}", [1])
    assert track.observe(*_case(31132, LOAD_SWITCH, [2, True]), "ok", [0, 2])


def test_one_mode_is_exact() -> None:
    """The finding itself: from SAFE alone, set_mode NOMINAL failing is wrong."""
    track = ModeTrack(MODE_SAFE, 0)
    assert not track.observe(*_case(31102, SET_MODE, [MODE_NOMINAL]), "fail:18", [0, 3])
    assert not track.observe(*_case(31131, LOAD_SWITCH, [2, True]), "ok", [0, 2])
    assert track.observe(*_case(31132, LOAD_SWITCH, [2, True]), f"rej:{WRONG_MODE}", [1])
    assert track.modes == {MODE_SAFE}


def test_an_unjudged_set_mode_that_cannot_run_adds_nothing() -> None:
    track = ModeTrack(MODE_SAFE, 0)
    track.unjudged(*_case(5, SET_MODE, [MODE_SCIENCE]))  # SAFE -> SCIENCE fails
    track.unjudged(*_case(6, SET_MODE, [7]))  # out of range
    track.unjudged(*_case(7, LOAD_SWITCH, [2, True]))  # not a set_mode
    assert track.modes == {MODE_SAFE}


def test_a_completed_set_mode_leaves_one_mode() -> None:
    track = ModeTrack(MODE_SAFE, 0)
    track.unjudged(*_case(5, SET_MODE, [MODE_NOMINAL]))
    assert track.observe(*_case(6, SET_MODE, [MODE_SAFE]), "ok", [0, 2])
    assert track.modes == {MODE_SAFE}
    track.unjudged(*_case(7, SET_MODE, [MODE_NOMINAL]))
    # SCIENCE needs NOMINAL and charge: completed, the node was NOMINAL and is SCIENCE now
    assert track.observe(*_case(8, SET_MODE, [MODE_SCIENCE]), "ok", [0, 2])
    assert track.modes == {MODE_SCIENCE}


def test_answers_that_do_not_depend_on_the_mode_keep_every_mode() -> None:
    track = ModeTrack(MODE_SAFE, 0)
    track.unjudged(*_case(5, SET_MODE, [MODE_NOMINAL]))
    malformed = envelope(9, SET_MODE, b"\x82\x03\xf8\xff")  # simple(255): not under §4
    exp = model.expect(malformed, mode=MODE_SAFE)
    assert track.observe(exp, malformed, f"rej:{MALFORMED}", [1])
    assert not track.observe(exp, malformed, "rej:2", [1])
    assert track.observe(*_case(10, COMMAND_IDS["noop"], []), "ok", [0, 2])
    assert track.modes == {MODE_SAFE, MODE_NOMINAL}


@pytest.mark.parametrize(("outcome", "stages", "fits"), [
    ("ok", [0, 2], True), ("ok", [0, 2, 2], False), ("ok", [2], False),
    ("accepted", [0], True), ("rej:1", [1], False), ("fail:16", [0, 3], False),
])
def test_answer_fits_wants_well_formed_stages(outcome: str, stages: list[int],
                                              fits: bool) -> None:
    exp, _ = _case(3, COMMAND_IDS["noop"], [])
    assert answer_fits(exp, outcome, stages) is fits
