"""Named housekeeping values: one packet, or a read's worth at once, looked up alike."""

from __future__ import annotations

import pytest

from ground import values

_LENGTHS = {pid: len(channels) for pid, (_, channels) in values.PACKETS_BY_ID.items()}


def _body(pid: int) -> list[float]:
    return [float(i) for i in range(_LENGTHS[pid])]


def test_housekeeping_names_the_values() -> None:
    pid = min(_LENGTHS)
    hk = values.housekeeping(pid, 7, 1000, 5, _body(pid))
    assert (hk.packet_id, hk.seq, hk.node_time_ms, hk.ground_ns) == (pid, 7, 1000, 5)
    assert [v.name for v in hk.values] == list(values.PACKETS_BY_ID[pid][0].channels)


def test_a_batch_is_what_each_packet_gives() -> None:
    ids = sorted(_LENGTHS) * 2
    seqs = list(range(len(ids)))
    times = [1000 + s for s in seqs]
    bodies = [_body(pid) for pid in ids]
    batch = values.housekeeping_batch(ids, seqs, times, 42, bodies)
    assert batch == [
        values.housekeeping(pid, seq, t, 42, body)
        for pid, seq, t, body in zip(ids, seqs, times, bodies, strict=True)
    ]
    assert all(type(hk) is values.Housekeeping for hk in batch or ())


@pytest.mark.parametrize(
    ("ids", "bodies"),
    [
        pytest.param([1, 999], [_body(1), [0]], id="unknown id"),
        pytest.param([1, 2], [_body(1), [*_body(2), 1.0]], id="a body that does not fit"),
    ],
)
def test_a_batch_with_a_misfit_is_left_to_each_packet(
    ids: list[int], bodies: list[list[float]]
) -> None:
    assert values.housekeeping_batch(ids, [0, 1], [0, 0], 0, bodies) is None
    values.housekeeping(ids[0], 0, 0, 0, bodies[0])
    with pytest.raises(ValueError, match=r"unknown|dictionary says"):
        values.housekeeping(ids[1], 1, 0, 0, bodies[1])
