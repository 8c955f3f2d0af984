"""`ground seq check`: impossible mode orders and oversize images, with their lines, before
anything is sent; the shipped sequences pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground import seqcheck, seqimage
from ground import sequence as s

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "sequences").glob("*.seq"))


def found(text: str) -> list[str]:
    return [str(p) for p in seqcheck.check(s.parse("ilrs-sequence 1\nname t\n" + text, "f.seq"))]


def test_the_shipped_sequences_pass() -> None:
    assert [p.name for p in SHIPPED] == ["morning.seq", "night_entry.seq"]
    for path in SHIPPED:
        seq = seqcheck.checked(str(path))
        assert seq.trigger in (s.TRIGGER_CODES["SUNSET"], s.TRIGGER_CODES["SUNRISE"])


def test_a_step_no_reachable_mode_allows() -> None:
    assert found("modes SAFE\nload_switch channel=seismometer on=true\n") == [
        "f.seq:4: load_switch is allowed only in NOMINAL or SCIENCE, and the sequence can "
        "only be in SAFE here: `set_mode mode=NOMINAL` before it"]
    assert found("set_mode mode=SAFE\nload_switch channel=seismometer on=true\n") == [
        "f.seq:4: load_switch is allowed only in NOMINAL or SCIENCE, and the sequence can "
        "only be in SAFE here: `set_mode mode=NOMINAL` before it"]
    # after set_mode NOMINAL (stop on failure) it is allowed
    assert found("modes SAFE\nset_mode mode=NOMINAL\nload_switch channel=seismometer "
                 "on=true\n") == []


def test_impossible_transitions() -> None:
    assert found("modes SAFE\nset_mode mode=SCIENCE\n") == [
        "f.seq:4: set_mode mode=SCIENCE can never work: the sequence can only be in SAFE "
        "here, and SPEC §8 enters SCIENCE only from NOMINAL"]
    assert found("trigger SAFE_ENTRY\nset_mode mode=SCIENCE\n") == [
        "f.seq:4: set_mode mode=SCIENCE can never work: the sequence can only be in SAFE "
        "here, and SPEC §8 enters SCIENCE only from NOMINAL"]
    assert found("modes SAFE\nset_mode mode=NOMINAL\nset_mode mode=SCIENCE\n") == []
    assert found("modes SCIENCE\nset_mode mode=SAFE\nset_mode mode=SAFE\n") == []  # SAFE→SAFE


def test_on_fail_skip_keeps_the_modes_a_failed_step_leaves() -> None:
    # skip: set_mode NOMINAL may have failed, so SAFE is still possible, and NOMINAL is
    # possible: a NOMINAL-only follow-up is fine, and so is a second set_mode NOMINAL.
    assert found("modes SAFE\nset_mode mode=NOMINAL on-fail skip\n"
                 "set_mode mode=NOMINAL on-fail skip\n") == []
    # stop: it goes on only in NOMINAL, so a second set_mode NOMINAL can never work
    assert len(found("modes SAFE\nset_mode mode=NOMINAL\nset_mode mode=NOMINAL\n")) == 1
    # a step that may fail WRONG_MODE, with stop, narrows to its modes
    assert found("load_switch channel=seismometer on=true\nset_mode mode=SCIENCE\n") == []
    assert found("load_switch channel=seismometer on=true on-fail skip\n"
                 "set_mode mode=NOMINAL\n") == []


def test_triggers_and_declared_modes() -> None:
    assert seqcheck.start_modes(s.parse("ilrs-sequence 1\nname t\ntrigger SAFE_ENTRY\nnoop\n")) \
        == {1}
    assert seqcheck.start_modes(s.parse("ilrs-sequence 1\nname t\ntrigger SUNSET\nnoop\n")) \
        == {1, 2, 3}
    assert seqcheck.start_modes(s.parse("ilrs-sequence 1\nname t\nnoop\n")) == {1, 2, 3}
    assert found("trigger SAFE_ENTRY\nmodes NOMINAL\nnoop\n") == [
        "f.seq:4: trigger SAFE_ENTRY starts the sequence in SAFE, and `modes` does not "
        "include SAFE"]
    # trigger SUNSET without modes: the node may be in any mode, NOMINAL included
    assert found("trigger SUNSET\nload_switch channel=payload_a on=false\n") == []


def test_waits_on_the_mode_channel() -> None:
    assert found("modes SAFE\nwait mode == NOMINAL timeout 0:01:00\n") == [
        "f.seq:4: wait mode == NOMINAL can never end: the sequence can only be in SAFE here"]
    # fault protection may force SAFE at any time: waiting for it is always possible
    assert found("modes NOMINAL\nwait mode == SAFE timeout 0:01:00\n"
                 "load_switch channel=seismometer on=true\n") == [
        "f.seq:5: load_switch is allowed only in NOMINAL or SCIENCE, and the sequence can "
        "only be in SAFE here: `set_mode mode=NOMINAL` before it"]
    assert found("wait mode == NOMINAL timeout 0:01:00\nset_mode mode=NOMINAL\n") == [
        "f.seq:4: set_mode mode=NOMINAL can never work: the sequence is already in NOMINAL "
        "here (set_mode to the same mode fails INVALID_TRANSITION, except SAFE)"]
    assert found("wait battery_soc < 30 timeout 0:01:00\nnoop\n") == []


def test_an_oversize_image_names_the_step_that_does_not_fit() -> None:
    steps = "".join(f"+01:00:00 fault_inject fault=CLEAR target={i % 16} value={i}.3 "
                    "on-fail skip\n" for i in range(256))
    seq = s.parse("ilrs-sequence 1\nname t\n" + steps, "f.seq")
    size = len(seqimage.compile(seq))
    assert size > seqimage.MAX_IMAGE_BYTES
    (problem,) = seqcheck.check(seq)
    fits = next(i for i in range(len(seq.steps), 0, -1)
                if len(seqimage.compile(seq._replace(steps=seq.steps[:i]))) <= 4096)
    assert problem.line == seq.steps[fits].line
    assert problem.message == (f"the image would be {size} bytes, more than a slot holds "
                               "(4096): this step does not fit")
    assert seqcheck.check(seq._replace(steps=seq.steps[:fits])) == []


def test_checked_raises_with_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "bad.seq"
    f.write_text("ilrs-sequence 1\nmodes SAFE\nload_switch channel=seismometer on=true\n"
                 "set_mode mode=SCIENCE\n")
    with pytest.raises(s.SequenceErrors) as info:
        seqcheck.checked(str(f))
    assert [p.line for p in info.value.problems] == [3, 4]
