"""The upload's resume logic against a node model that follows the stored-sequence interface
(begin answers the bytes held, parts must not leave a gap, commit checks size and digest),
with answers lost before or after the node acted."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ground import seqimage, sequpload
from ground.client import CommandResult
from ground.errors import CommandRejected, LinkLost, OutcomeUnknown, VerificationTimeout

IMAGE = bytes(range(256)) * 2 + b"tail"  # 516 bytes: five parts


class StagingNode:
    """The node's side of an upload, as the interface says; ``lose`` maps a call number (from
    1) to "before" (the command never arrived) or "after" (it ran, its answer was lost)."""

    def __init__(self, lose: dict[int, str] | None = None, kind: type = VerificationTimeout):
        self.lose = lose or {}
        self.kind = kind
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.staging: tuple[int, bytes] | None = None  # (size, digest)
        self.held = bytearray()
        self.stored: bytes | None = None
        self.refreshes = 0

    def refresh_status(self, timeout: float = 5.0) -> None:
        self.refreshes += 1

    def _fail(self, name: str) -> None:
        if self.kind is OutcomeUnknown:
            raise OutcomeUnknown(name, 1, 1, 2, ["accepted"], None)
        if self.kind is LinkLost:
            raise LinkLost("sim", "pty closed")
        raise VerificationTimeout(name, 1, 1.0, [], None)

    def command(self, name: str, /, *, timeout: float = 5.0, **kw: Any) -> CommandResult:
        self.calls.append((name, kw))
        when = self.lose.get(len(self.calls))
        if when == "before":
            self._fail(name)
        result = getattr(self, name)(**kw)
        if when == "after":
            self._fail(name)
        return CommandResult(name, len(self.calls), result, (), 1)

    def seq_upload_begin(self, slot: int, size: int, digest: bytes) -> int:
        if self.staging != (size, digest):
            self.staging = (size, digest)
            self.held = bytearray()
        return len(self.held)

    def seq_upload_part(self, slot: int, offset: int, data: bytes) -> int:
        if self.staging is None or offset > len(self.held):
            raise CommandRejected("seq_upload_part", 1, 15, "UPLOAD_STATE")
        self.held[offset:offset + len(data)] = data
        return len(self.held)

    def seq_upload_commit(self, slot: int) -> int:
        assert self.staging is not None
        image = bytes(self.held)
        assert (len(image), hashlib.sha256(image).digest()) == self.staging
        self.stored = image
        self.staging = None  # SPEC §12.2: stored, the upload is discarded
        self.held = bytearray()
        return seqimage.hash_prefix(image)

    def seq_list(self) -> list[list[Any]]:
        h = seqimage.hash_prefix(self.stored) if self.stored is not None else 0
        return [[1, 0, h, 0, "", 0, 0.0]] * 4


def names(node: StagingNode) -> list[str]:
    return [n.removeprefix("seq_upload_") + (f"@{kw['offset']}" if "offset" in kw else "")
            for n, kw in node.calls]


def test_a_clean_upload_sends_each_part_once() -> None:
    node = StagingNode()
    report = sequpload.upload(node, IMAGE, 2)
    assert node.stored == IMAGE
    assert names(node) == ["begin", "part@0", "part@128", "part@256", "part@384", "part@512",
                           "commit"]
    assert report == sequpload.UploadReport(2, 516, seqimage.hash_prefix(IMAGE), 5, 0, (0,))
    assert node.calls[0][1] == {"slot": 2, "size": 516,
                                "digest": hashlib.sha256(IMAGE).digest()}
    assert all(len(kw["data"]) <= 128 for n, kw in node.calls if n == "seq_upload_part")


@pytest.mark.parametrize("kind", [VerificationTimeout, OutcomeUnknown, LinkLost])
def test_a_part_that_ran_but_was_not_answered_is_not_sent_again(kind: type) -> None:
    node = StagingNode({3: "after"}, kind)  # part@128 arrived, its answer was lost
    report = sequpload.upload(node, IMAGE, 0)
    assert node.stored == IMAGE
    assert names(node) == ["begin", "part@0", "part@128", "begin", "part@256", "part@384",
                           "part@512", "commit"]
    assert (report.resumes, report.resumed_from, report.parts_sent) == (1, (0, 256), 5)
    assert node.refreshes == 1


def test_a_part_that_never_arrived_is_sent_from_what_the_node_holds() -> None:
    node = StagingNode({3: "before"})
    report = sequpload.upload(node, IMAGE, 0)
    assert names(node) == ["begin", "part@0", "part@128", "begin", "part@128", "part@256",
                           "part@384", "part@512", "commit"]
    assert report.resumed_from == (0, 128)


def test_a_commit_whose_answer_was_lost_is_found_stored() -> None:
    node = StagingNode({7: "after"})
    report = sequpload.upload(node, IMAGE, 0)
    assert names(node)[-2:] == ["commit", "seq_list"]
    assert report.resumed_from == (0,) and report.resumes == 1 and node.stored == IMAGE


def test_a_commit_that_never_arrived_is_sent_again() -> None:
    node = StagingNode({7: "before"})
    report = sequpload.upload(node, IMAGE, 0)
    assert names(node)[-4:] == ["commit", "seq_list", "begin", "commit"]
    assert report.resumed_from == (0, 516) and node.stored == IMAGE


def test_another_upload_in_between_restarts_from_zero() -> None:
    node = StagingNode()
    sequpload.upload(node, IMAGE[:300], 0)  # a different image: its own staging
    node.calls.clear()
    node.lose = {3: "after"}
    node.staging = None
    orig = node.seq_upload_begin

    def begin_and_clobber(slot: int, size: int, digest: bytes) -> int:
        held = orig(slot, size, digest)
        if len(node.calls) == 4:  # someone else began another image before we resumed
            node.staging = (1, b"x")
            node.held = bytearray()
        return held

    node.seq_upload_begin = begin_and_clobber  # type: ignore[method-assign]
    report = sequpload.upload(node, IMAGE, 0)
    assert node.stored == IMAGE
    assert names(node) == ["begin", "part@0", "part@128", "begin", "part@256", "begin",
                           "part@0", "part@128", "part@256", "part@384", "part@512", "commit"]
    assert report.resumed_from == (0, 256, 0)


def test_gives_up_after_its_resumes_with_the_last_error() -> None:
    node = StagingNode({i: "before" for i in range(2, 100)})
    with pytest.raises(VerificationTimeout):
        sequpload.upload(node, IMAGE, 0, resumes=3)
    assert names(node) == ["begin", "part@0", "begin", "begin", "begin"]


def test_a_wrong_stored_hash_is_an_error() -> None:
    node = StagingNode()
    node.seq_upload_commit = lambda slot: 0x12345678  # type: ignore[method-assign]
    with pytest.raises(sequpload.HashMismatch, match=r"slot 1: the node stored hash "
                                                      r"0x12345678, the image's is 0x"):
        sequpload.upload(node, IMAGE, 1)


def test_a_begin_result_out_of_range_is_an_error() -> None:
    node = StagingNode()
    node.seq_upload_begin = lambda slot, size, digest: size + 1  # type: ignore[method-assign]
    with pytest.raises(sequpload.UnexpectedAnswer, match=r"seq_upload_begin answered 517, "
                                                         r"expected the bytes held, 0\.\.516"):
        sequpload.upload(node, IMAGE, 1)


def test_busy_is_sent_again_then_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that cannot load the command's code now says BUSY (SPEC §12.2): sent again."""
    monkeypatch.setattr(sequpload.time, "sleep", lambda _s: None)
    node = StagingNode()
    busy = {"n": 0}
    orig = node.seq_upload_part

    def part_busy_twice(slot: int, offset: int, data: bytes) -> int:
        if offset == 128 and busy["n"] < 2:
            busy["n"] += 1
            raise CommandRejected("seq_upload_part", 1, 5, "BUSY")
        return orig(slot, offset, data)

    node.seq_upload_part = part_busy_twice  # type: ignore[method-assign]
    report = sequpload.upload(node, IMAGE, 0)
    assert names(node) == ["begin", "part@0", "part@128", "part@128", "part@128", "part@256",
                           "part@384", "part@512", "commit"]
    assert (report.resumes, node.stored) == (0, IMAGE)

    def always_busy(slot: int) -> int:
        raise CommandRejected("seq_upload_commit", 1, 5, "BUSY")

    node = StagingNode()
    node.seq_upload_commit = always_busy  # type: ignore[method-assign]
    with pytest.raises(CommandRejected, match="BUSY"):
        sequpload.upload(node, IMAGE, 0)
    assert names(node).count("commit") == sequpload.BUSY_TRIES
