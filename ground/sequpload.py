"""Uploading a sequence image to a slot over a lossy link, resuming from what the node holds.

    report = upload(client, image, slot)

``seq_upload_begin(slot, size, digest)`` answers with the number of contiguous bytes the node
already holds of that same image (0 for a new one); the parts (``seq_upload_part``, at most
128 bytes each, every one an ordinary command, so signed like any other) are sent from there,
then ``seq_upload_commit`` makes the node check size, SHA-256 and every step, and store the
image; its result is the image's hash (the first four bytes of its SHA-256), which must be
ours (SPEC §12.2). When a part or the commit goes unanswered (timeout, link lost, the node
rebooted: the outcome is unknown) the upload starts again with ``seq_upload_begin``, which
says where to resume: a part that arrived twice is harmless (the same bytes at the same
offset), and the node keeps its staging across a reboot. A commit that went unanswered may
have stored the image (and discarded the upload): ``seq_list`` says whether the slot holds
it before anything is sent again. At most ``resumes`` such restarts, then the last
error is raised. A rejection or failure that resuming cannot cure is raised at once, except
``BUSY`` (the node could not load the command's code at that moment, SPEC §12.2): the same
command is sent again after a short wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from ground import seqimage
from ground.errors import (
    CommandError,
    GroundError,
    LinkError,
    OutcomeUnknown,
    VerificationTimeout,
)

PART_BYTES: Final = 128
DEFAULT_RESUMES: Final = 8
BUSY_TRIES: Final = 12  # a node that cannot load the command's code now: resend (SPEC §12.2)
_BUSY: Final = "BUSY"
# A part or commit refused because the node's staging is not what we sent it (another upload
# began in between): begin again and resend from what it holds.
_UPLOAD_STATE: Final = "UPLOAD_STATE"


class UploadReport(NamedTuple):
    slot: int
    size: int
    hash: int  # what the node stored: the image's hash prefix
    parts_sent: int  # seq_upload_part commands sent (a lost one included)
    resumes: int  # times the upload began again after a loss
    resumed_from: tuple[int, ...]  # the bytes held each time it began


class HashMismatch(GroundError, RuntimeError):
    """The node stored an image whose hash is not ours: it holds something else."""

    exit_code = 1

    def __init__(self, slot: int, ours: int, theirs: Any) -> None:
        self.slot = slot
        self.ours = ours
        self.theirs = theirs
        shown = f"0x{theirs:08x}" if isinstance(theirs, int) else repr(theirs)
        super().__init__(f"slot {slot}: the node stored hash {shown}, the image's is "
                         f"0x{ours:08x}: upload again")


class UnexpectedAnswer(GroundError, RuntimeError):
    """The node answered an upload command with a result the interface does not allow."""

    exit_code = 1

    def __init__(self, command: str, result: Any, expected: str) -> None:
        self.command = command
        self.result = result
        super().__init__(f"{command} answered {result!r}, expected {expected}: is the node's "
                         "firmware from this tree?")


def command(client: Any, name: str, timeout: float, **kwargs: Any) -> Any:
    """``client.command(name, ...)``, sent again while the node rejects it ``BUSY``: a node
    short of heap may load the code of the sequence commands on demand, and say BUSY when it
    cannot at that moment (SPEC §12.2). After ``BUSY_TRIES`` the rejection is raised (a
    running slot also answers BUSY to a commit or delete: that does not pass by waiting)."""
    for attempt in range(BUSY_TRIES):
        try:
            return client.command(name, timeout=timeout, **kwargs)
        except CommandError as exc:
            if exc.reason != _BUSY or attempt == BUSY_TRIES - 1:
                raise
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


def _held(name: str, result: Any, size: int) -> int:
    if type(result) is not int or not 0 <= result <= size:
        raise UnexpectedAnswer(name, result, f"the bytes held, 0..{size}")
    return result


def upload(
    client: Any,
    image: bytes,
    slot: int,
    *,
    timeout: float = 5.0,
    resumes: int = DEFAULT_RESUMES,
    progress: Callable[[int, int], None] | None = None,
) -> UploadReport:
    """Upload ``image`` into ``slot``; returns what happened (see the module docstring)."""
    size = len(image)
    digest = seqimage.digest(image)
    ours = seqimage.hash_prefix(image)
    parts = 0
    restarts = 0
    began: list[int] = []
    committing = False
    while True:
        try:
            if committing and _holds(client, slot, ours, timeout):
                break  # the lost commit had stored it
            committing = False
            held = _held("seq_upload_begin", command(
                client, "seq_upload_begin", timeout, slot=slot, size=size, digest=digest
            ).result, size)
            began.append(held)
            while held < size:
                chunk = image[held:held + PART_BYTES]
                parts += 1  # counted when sent, answered or not
                res = command(client, "seq_upload_part", timeout, slot=slot, offset=held,
                              data=chunk)
                held = _held("seq_upload_part", res.result, size)
                if progress is not None:
                    progress(held, size)
            committing = True
            stored = command(client, "seq_upload_commit", timeout, slot=slot).result
            if stored != ours:
                raise HashMismatch(slot, ours, stored)
            break
        except (VerificationTimeout, OutcomeUnknown, LinkError) as exc:
            restarts += 1
            if restarts > resumes:
                raise exc from None
            _settle(client, timeout)
        except CommandError as exc:
            if exc.reason != _UPLOAD_STATE or restarts >= resumes:
                raise
            committing = False
            restarts += 1
    return UploadReport(slot, size, ours, parts, restarts, tuple(began))


def _holds(client: Any, slot: int, ours: int, timeout: float) -> bool:
    """Whether the slot holds the image of hash ``ours`` (seq_list, SPEC §12.6): a commit
    whose answer was lost may have stored it, and discarded the upload with it."""
    listing = command(client, "seq_list", timeout).result
    try:
        return bool(listing[slot][2] == ours)
    except (TypeError, IndexError, KeyError):
        raise UnexpectedAnswer("seq_list", listing, "a record by slot") from None


def _settle(client: Any, timeout: float) -> None:
    """After a loss: wait (up to ``timeout``) for the link to be up and the node to answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.refresh_status(timeout=max(0.5, deadline - time.monotonic()))
            return
        except (VerificationTimeout, OutcomeUnknown, LinkError):
            time.sleep(0.1)
