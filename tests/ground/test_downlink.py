"""The downlink: a read's frames decoded and named all at once, then logged, counted and handed
to the listeners in order, the same however the bytes were split into reads."""

from __future__ import annotations

from typing import Any

import pytest

from ground import codec, values
from ground.downlink import ERROR, EVENT, HOUSEKEEPING, PARAMETER, Downlink
from ground.link import encode_frame

_LENGTHS = {pid: len(channels) for pid, (_, channels) in values.PACKETS_BY_ID.items()}


def _hk(seq: int, pid: int = 1, extra: int = 0) -> bytes:
    body = [float(seq + i) for i in range(_LENGTHS.get(pid, 3) + extra)]
    return encode_frame(codec.encode(codec.KIND_HOUSEKEEPING, seq, 10 * seq, pid, body))


class _Log:
    """Records what the downlink writes to the session log."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    def frame(self, direction: str, wire: bytes, t_ns: int | None = None) -> None:
        self.records.append(("frame", direction, wire, t_ns))

    def discard(self, data: bytes, reason: str, t_ns: int | None = None) -> None:
        self.records.append(("discard", data, reason, t_ns))

    def error(self, wire: bytes, reason: str, t_ns: int | None = None) -> None:
        self.records.append(("error", wire, reason, t_ns))


def _run(stream: bytes, size: int) -> tuple[Downlink, _Log, list[tuple[str, Any]]]:
    log = _Log()
    downlink = Downlink(log=log)  # type: ignore[arg-type]
    seen: list[tuple[str, Any]] = []
    for topic in (HOUSEKEEPING, EVENT, PARAMETER, ERROR):
        downlink.listen(topic, lambda item, topic=topic: seen.append((topic, item)))
    for i in range(0, len(stream), size):
        downlink.feed(stream[i : i + size], 1000)
    return downlink, log, seen


_HOUSEKEEPING_ONLY = b"".join(_hk(seq, pid=sorted(_LENGTHS)[seq % len(_LENGTHS)])
                             for seq in range(40))
_MIXED = b"".join(
    [
        b"\r\n",  # joined mid-stream
        _hk(1),
        _hk(2, pid=2),
        encode_frame(codec.encode(codec.KIND_EVENT, 3, 30, 1, [1, 1, []])),
        _hk(5),  # seq 4 lost
        encode_frame(b"\xff"),  # CRC good, CBOR bad
        _hk(6, pid=999),  # no such packet
        _hk(7, extra=1),  # one value too many
        encode_frame(codec.encode(codec.KIND_PARAMETER, 8, 80, 4, [1.5])),
        b"\x00\x05\x01\x00",  # truncated
        _hk(9),
        encode_frame(codec.encode(codec.KIND_HOUSEKEEPING, 10, 100, 1, [float("nan")])),
        _hk(11),
    ]
)


@pytest.mark.parametrize("stream", [_HOUSEKEEPING_ONLY, _MIXED], ids=["housekeeping", "mixed"])
@pytest.mark.parametrize("size", [1, 7, 64, 4096])
def test_any_split_into_reads_gives_the_same(stream: bytes, size: int) -> None:
    """One byte a read decodes each frame alone; a whole stream in one read takes the
    batch paths. Both log, count and tell the listeners the same, in the same order."""
    whole, whole_log, whole_seen = _run(stream, len(stream))
    split, split_log, split_seen = _run(stream, size)
    assert split_seen == whole_seen
    assert split_log.records == whole_log.records
    for name in ("messages", "decode_errors", "lost_messages", "lost_events", "last_error"):
        assert getattr(split, name) == getattr(whole, name)
    assert split.latest == whole.latest


def test_what_the_mixed_stream_gives() -> None:
    downlink, log, seen = _run(_MIXED, len(_MIXED))
    topics = [topic for topic, _ in seen]
    assert topics == [
        ERROR,  # the sync discard
        HOUSEKEEPING,
        HOUSEKEEPING,
        EVENT,
        HOUSEKEEPING,
        ERROR,  # not CBOR
        ERROR,  # unknown packet
        ERROR,  # one value too many
        PARAMETER,
        ERROR,  # truncated
        HOUSEKEEPING,
        ERROR,  # NaN
        HOUSEKEEPING,
    ]
    # Counted as messages: all but the frame that is not CBOR and the NaN (not decoded);
    # the unknown packet and the misfit were decoded, so their seq counts.
    assert downlink.messages == 9
    assert downlink.decode_errors == 4
    assert downlink.lost_messages == 2  # seq 4 and seq 10
    assert [r[0] for r in log.records].count("frame") == 11
    assert [r[2] for r in log.records if r[0] == "discard"] == ["sync", "truncated"]


def _event(seq: int, event_seq: int) -> bytes:
    return encode_frame(codec.encode(codec.KIND_EVENT, seq, 10 * seq, 1, [event_seq, 1, [1, 0]]))


def test_event_number_gaps_are_counted_and_reported() -> None:
    # Events 3, 4, then 7 (5 and 6 lost, or skipped after a power cut), 8, then 20 after a
    # reboot that skipped a reservation; then 2 (a node whose flash was wiped): no gap.
    stream = b"".join(_event(i, n) for i, n in enumerate([3, 4, 7, 8, 20, 2]))
    downlink, _log, seen = _run(stream, len(stream))
    assert downlink.lost_events == 2 + 11
    assert [item for topic, item in seen if topic == ERROR] == [
        "event gap: #5..#6 not received (2 lost on the link or skipped by the node after a "
        "power cut)",
        "event gap: #9..#19 not received (11 lost on the link or skipped by the node after a "
        "power cut)",
    ]
    assert [item.event_seq for topic, item in seen if topic == EVENT] == [3, 4, 7, 8, 20, 2]
    assert downlink.lost_messages == 0


def test_receive_names_a_read_of_housekeeping_at_once() -> None:
    received = Downlink().receive(_HOUSEKEEPING_ONLY, 5)
    assert len(received.wires) == len(received.results) == 40 and received.discards == []
    assert all(type(r) is values.Housekeeping for r in received.results)
    first = received.results[0]
    assert isinstance(first, values.Housekeeping)
    assert (first.packet_id, first.seq, first.node_time_ms, first.ground_ns) == (1, 0, 0, 5)


def test_a_command_from_the_node_is_an_undecodable_frame_not_a_crash() -> None:
    command = encode_frame(codec.encode_command(3, 1, [], 1))
    downlink, log, seen = _run(b"\x00" + command + _hk(4), 4096)
    assert [topic for topic, _ in seen] == [ERROR, HOUSEKEEPING]
    assert "command message is not downlink" in seen[0][1]
    assert downlink.decode_errors == 1
    assert [r[2] for r in log.records if r[0] == "error"] == ["a command message is not downlink"]
