"""hil/impair.py: the pure Impairer, and the proxy between a pty and a 127.0.0.1 socket."""

from __future__ import annotations

import math
import os
import random
import socket
import time
import tty

import pytest

from hil import impair
from hil.impair import ImpairedLink, Impairer, ImpairStats, ReceiverCounts
from protocol.frame_writer import encode_frame
from protocol.framing import Deframer


def _frames(n: int) -> bytes:
    return b"".join(encode_frame(bytes([i % 250 + 1]) * 20) for i in range(n))


def test_clean_impairer_passes_everything() -> None:
    imp = Impairer(seed=1)
    data = _frames(10)
    assert imp.process(data) == [data]
    assert imp.stats.bytes_in == imp.stats.bytes_out == len(data)
    assert imp.stats.frames_in == 10 and imp.stats.frames_damaged == 0


def _reference_damage(data: bytes, *, drop: float, corrupt: float, duplicate: float,
                      seed: int) -> tuple[bytes, int, int, int]:
    """What the Impairer's documented draws give: one ``random.Random(seed)``; per byte a
    draw for drop, then for corruption (and the XOR mask), then for duplication."""
    rng = random.Random(seed)
    out = bytearray()
    dropped = corrupted = duplicated = 0
    for byte in data:
        if rng.random() < drop:
            dropped += 1
            continue
        if rng.random() < corrupt:
            byte ^= rng.randrange(1, 256)
            corrupted += 1
        out.append(byte)
        if rng.random() < duplicate:
            out.append(byte)
            duplicated += 1
    return bytes(out), dropped, corrupted, duplicated


def test_rates_are_exactly_the_seeded_draws_and_counted() -> None:
    imp = Impairer(drop=0.01, corrupt=0.02, duplicate=0.005, seed=7)
    data = bytes(range(1, 256)) * 400  # 102,000 bytes
    out = b"".join(imp.process(data))
    s = imp.stats
    want, dropped, corrupted, duplicated = _reference_damage(
        data, drop=0.01, corrupt=0.02, duplicate=0.005, seed=7)
    assert out == want
    assert (s.dropped, s.corrupted, s.duplicated) == (dropped, corrupted, duplicated)
    assert len(out) == len(data) - s.dropped + s.duplicated == s.bytes_out
    assert s.bytes_in == len(data)


@pytest.mark.parametrize(("name", "rate"), [("drop", 0.01), ("corrupt", 0.02),
                                            ("duplicate", 0.005)])
def test_each_rate_is_honoured_within_four_sigma(name: str, rate: float) -> None:
    """Binomial counts on 102,000 bytes over 20 seeds: the mean within 4 standard errors, so
    a rate off by 5 % fails (4 sigma is 2 % to 4 % of these rates)."""
    n, seeds = 102_000, 20
    total = 0
    for seed in range(seeds):
        imp = Impairer(seed=seed, **{name: rate})
        imp.process(bytes(range(1, 256)) * 400)
        total += {"drop": imp.stats.dropped, "corrupt": imp.stats.corrupted,
                  "duplicate": imp.stats.duplicated}[name]
    trials = n * seeds
    sigma = math.sqrt(trials * rate * (1 - rate))
    assert abs(total - trials * rate) < 4 * sigma, (total, trials * rate, sigma)


def test_same_seed_same_damage_other_seed_other_damage() -> None:
    data = _frames(200)
    a = b"".join(Impairer(corrupt=0.01, drop=0.01, seed=3).process(data))
    b = b"".join(Impairer(corrupt=0.01, drop=0.01, seed=3).process(data))
    c = b"".join(Impairer(corrupt=0.01, drop=0.01, seed=4).process(data))
    assert a == b != c


def test_corruption_always_changes_the_byte() -> None:
    data = bytes(range(256)) * 10
    out = b"".join(Impairer(corrupt=1.0, seed=2).process(data))
    assert all(x != y for x, y in zip(data, out, strict=True))


def test_split_makes_pieces_that_join_to_the_input() -> None:
    imp = Impairer(split=0.1, seed=5)
    data = _frames(20)
    pieces = imp.process(data)
    assert len(pieces) > 10 and b"".join(pieces) == data
    assert imp.stats.splits == len(pieces) - 1


def test_damaged_frames_are_counted_per_source_frame() -> None:
    imp = Impairer(corrupt=1.0, seed=1)
    imp.process(_frames(5))
    assert imp.stats.frames_in == 5 and imp.stats.frames_damaged == 5


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_bad_rates_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match=r"not within 0\.\.1"):
        Impairer(drop=rate)


def _pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)  # the proxy opens it by path, like a node's port
    return master, path


def _read(sock_or_fd: socket.socket | int, n: int, timeout_s: float = 3.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        if isinstance(sock_or_fd, socket.socket):
            sock_or_fd.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock_or_fd.recv(4096)
            except TimeoutError:
                break
        else:
            try:
                chunk = os.read(sock_or_fd, 4096)
            except BlockingIOError:
                time.sleep(0.005)
                continue
        got += chunk
    return got


def test_proxy_relays_both_ways_and_accounts_for_damage() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    data = _frames(300)
    with ImpairedLink(path, corrupt=0.01, drop=0.01, seed=11, direction="up") as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(data)
            proxy.drain()
            received = _read(master, len(data) - 1000)
            time.sleep(0.1)
            received += _read(master, 10**6, 0.2)
            os.write(master, b"\x00downlink\x00")
            assert _read(ground, 10) == b"\x00downlink\x00"
        up = proxy.stats()["up"]
        assert up.bytes_in == len(data)
        assert len(received) == up.bytes_out == len(data) - up.dropped
        assert up.dropped > 0 and up.corrupted > 0 and up.frames_damaged > 0
        expected = proxy.expected_node_counts()
        # a frame whose bytes were damaged never verifies; a damaged delimiter may also
        # spoil the frame next to it
        lost = up.frames_damaged + up.delimiters_damaged
        assert up.frames_in - lost <= expected.frames <= up.frames_in - up.frames_damaged
        assert expected.bad_frames > 0
        assert proxy.stats()["down"].dropped == 0  # "up" only
    os.close(master)


def test_proxy_delays_and_clean_mode() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    with ImpairedLink(path, delay_ms=150, corrupt=1.0, seed=1) as proxy:
        proxy.impairing = False
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            start = time.monotonic()
            ground.sendall(b"\x00hello\x00")
            got = _read(master, 7)
            assert got == b"\x00hello\x00"
            assert time.monotonic() - start >= 0.14
        assert proxy.url == f"socket://127.0.0.1:{proxy.port}"
    os.close(master)


def test_reset_accounting_starts_from_zero() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    with ImpairedLink(path, seed=1) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(_frames(3))
            proxy.drain()
            _read(master, 60)
            time.sleep(0.05)
            assert proxy.expected_node_counts().frames == 3
            proxy.reset_accounting()
            assert proxy.expected_node_counts().frames == 0
            ground.sendall(_frames(2))
            time.sleep(0.1)
            proxy.drain()
            assert proxy.expected_node_counts().frames == 2
    os.close(master)


def _reference_accounting(data: bytes, seed: int, rate: float) -> dict[str, int]:
    """Frames and delimiters of the source stream that the reference draws damage: a frame is
    a run of non-zero bytes ended by a 0x00; it is damaged if one of its bytes is."""
    rng = random.Random(seed)
    frames_in = frames_damaged = delimiters_damaged = 0
    in_frame = frame_damaged = False
    for byte in data:
        damaged = rng.random() < rate  # drop
        if not damaged:
            if rng.random() < rate:  # corrupt
                rng.randrange(1, 256)
                damaged = True
            damaged = (rng.random() < rate) or damaged  # duplicate
        if byte == 0:
            delimiters_damaged += damaged
            frames_in += in_frame
            frames_damaged += in_frame and frame_damaged
            in_frame = frame_damaged = False
        else:
            in_frame = True
            frame_damaged = frame_damaged or damaged
    return {"frames_in": frames_in, "frames_damaged": frames_damaged,
            "delimiters_damaged": delimiters_damaged}


def test_frames_and_delimiters_damaged_are_counted_exactly() -> None:
    # Chunks of 37 bytes (frames cross chunk boundaries), every kind of damage at 2 %: each
    # count equals the reference draws', and some frames stay whole (a count of "all damaged"
    # or "none" fails).
    data = _frames(300)
    imp = Impairer(drop=0.02, corrupt=0.02, duplicate=0.02, seed=9)
    for i in range(0, len(data), 37):
        imp.process(data[i : i + 37])
    s = imp.stats
    want = _reference_accounting(data, 9, 0.02)
    got = {k: v for k, v in s.as_dict().items() if k in want}
    assert got == want
    assert 0 < want["frames_damaged"] < want["frames_in"] == 300
    assert want["delimiters_damaged"] > 0
    assert s.chunks == -(-len(data) // 37) and s.bytes_in == len(data)


def test_disabled_or_clean_passes_through_and_counts_frames() -> None:
    data = _frames(7)
    imp = Impairer(corrupt=1.0, seed=1)
    imp.enabled = False
    assert imp.process(data) == [data] and imp.process(b"") == []
    assert (imp.stats.frames_in, imp.stats.frames_damaged, imp.stats.corrupted) == (7, 0, 0)
    assert imp.stats.chunks == 2 and imp.stats.bytes_out == len(data)
    imp.enabled = True
    assert imp.process(b"") == [] and imp.stats.bytes_out == len(data)


@pytest.mark.parametrize("name", ["drop", "corrupt", "duplicate", "split"])
def test_rates_at_the_ends_are_taken_and_beyond_refused(name: str) -> None:
    for rate in (0.0, 1.0):
        assert getattr(Impairer(**{name: rate}), name) == rate
    for rate in (-1e-9, 1.0 + 1e-9):
        with pytest.raises(ValueError, match=rf"^{name} rate {rate} is not within 0\.\.1$"):
            Impairer(**{name: rate})


def test_drop_everything_and_split_every_byte() -> None:
    data = _frames(3)
    imp = Impairer(drop=1.0, seed=1)
    assert imp.process(data) == [] and imp.stats.dropped == len(data) == imp.stats.bytes_in
    assert imp.stats.bytes_out == 0 and imp.stats.frames_damaged == 3
    imp = Impairer(split=1.0, seed=1)
    assert imp.process(data) == [bytes([b]) for b in data]
    assert imp.stats.splits == len(data) - 1


def test_splits_are_exactly_the_seeded_draws() -> None:
    # One draw per byte while the current piece holds a byte: a split before that byte when
    # the draw is below the rate.
    data = _frames(20)
    rng = random.Random(5)
    want: list[bytes] = []
    cur = bytearray()
    for byte in data:
        if cur and rng.random() < 0.1:
            want.append(bytes(cur))
            cur.clear()
        cur.append(byte)
    want.append(bytes(cur))
    assert Impairer(split=0.1, seed=5).process(data) == want


def test_a_stream_that_starts_mid_frame_and_the_default_seed() -> None:
    imp = Impairer(split=0.5)  # a rate set, nothing damaged: the first frame is whole
    imp.process(b"\x05\x06\x00\x07\x00")
    assert (imp.stats.frames_in, imp.stats.frames_damaged) == (2, 0)
    data = _frames(50)
    assert Impairer(corrupt=0.05).process(data) == Impairer(corrupt=0.05, seed=0).process(data)


# --- the proxy's totals, exactly -------------------------------------------------------------
# With no split rate the Impairer's draws do not depend on how the stream is cut into chunks
# (one drop draw per byte, then a corruption draw (and its mask), then a duplication draw), so
# what a direction delivers and every count it reports follow from the bytes and the seed alone:
# the up direction draws from Random(2 * seed), the down direction from Random(2 * seed + 1).

_R = 0.01  # each of drop, corrupt and duplicate


def _varied_stream() -> bytes:
    """Bytes that give a receiver every count: a discarded lead-in, 41 good frames, a CRC error,
    a truncated frame, an oversize run and an unfinished tail."""
    good = b"".join(encode_frame(bytes([i + 1]) * (5 + i)) for i in range(40))
    bad = bytearray(encode_frame(b"hello world"))
    bad[3] ^= 0x40
    return (b"\x11\x22" + good + bytes(bad) + b"\x00\x02\x05\x00" + b"\x00" + b"\x07" * 1074
            + b"\x00" + encode_frame(b"tail") + b"\x09\x09")


def _receiver_counts(data: bytes) -> ReceiverCounts:
    d = Deframer()
    d.feed(data)
    return ReceiverCounts(frames=d.frames, crc_errors=d.crc_errors,
                          frame_errors=d.oversize + d.truncated,
                          discarded_bytes=d.discarded_bytes,
                          extra={"oversize": d.oversize, "truncated": d.truncated})


def _impaired(data: bytes, seed: int, **rates: float) -> tuple[bytes, dict[str, int]]:
    """What a direction seeded ``seed`` delivers for ``data``, and its stats (less chunks)."""
    imp = Impairer(seed=seed, **rates)
    out = b"".join(imp.process(data))
    stats = imp.stats.as_dict()
    del stats["chunks"]
    return out, stats


def _stats_of(stats: ImpairStats) -> dict[str, int]:
    got = stats.as_dict()
    assert got.pop("chunks") >= 1 or stats.bytes_in == 0
    return got


def _zero_counts() -> ReceiverCounts:
    return ReceiverCounts(0, 0, 0, 0, {"oversize": 0, "truncated": 0})


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view[:1024]):]
        except BlockingIOError:
            time.sleep(0.002)


def _read_exactly(sock_or_fd: socket.socket | int, n: int) -> bytes:
    """``n`` bytes, then a short wait that must bring nothing more."""
    got = _read(sock_or_fd, n, 10.0)
    return got + _read(sock_or_fd, 10**6, 0.15) if len(got) == n else got


def test_stream_totals_match_the_reference() -> None:
    data = _varied_stream()
    assert _receiver_counts(data) == ReceiverCounts(41, 1, 2, 1094,
                                                    {"oversize": 1, "truncated": 1})
    out, stats = _impaired(data, 26, drop=_R, corrupt=_R, duplicate=_R)
    counts = _receiver_counts(out)
    # the seed damages bytes of every kind and still leaves every count of its own
    assert min(stats["dropped"], stats["corrupted"], stats["duplicated"]) > 0
    assert counts.frames > 0 and counts.crc_errors > 0 and counts.extra["oversize"] > 0
    assert counts.extra["truncated"] > 0 and counts.discarded_bytes > 0


def test_up_direction_delivers_and_counts_exactly_what_the_seed_gives() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    data = _varied_stream()
    # seed 13: the up direction draws from Random(26)
    want, want_stats = _impaired(data, 26, drop=_R, corrupt=_R, duplicate=_R)
    downlink = _frames(30)
    with ImpairedLink(path, seed=13, direction="up", drop=_R, corrupt=_R,
                      duplicate=_R) as proxy:
        assert proxy.expected_node_counts() == _zero_counts()
        empty = proxy.stats()["up"]
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(data)
            assert _read_exactly(master, len(want)) == want
            _write_all(master, downlink)  # the other way passes clean
            assert _read_exactly(ground, len(downlink)) == downlink
            proxy.drain()
        stats = proxy.stats()
        assert _stats_of(stats["up"]) == want_stats
        assert _stats_of(stats["down"]) == _impaired(downlink, 27)[1]
        assert stats["down"].bytes_out == stats["down"].bytes_in == len(downlink)
        assert proxy.expected_node_counts() == _receiver_counts(want)
        assert proxy.expected_ground_counts() == _receiver_counts(downlink)
        assert proxy.errors == []
        assert empty == ImpairStats()  # a snapshot is a copy, not the live counts
    os.close(master)


def test_down_direction_delivers_and_counts_exactly_what_the_seed_gives() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    data = _varied_stream()
    # seed 26: the down direction draws from Random(53)
    want, want_stats = _impaired(data, 53, drop=_R, corrupt=_R, duplicate=_R)
    uplink = _frames(30)
    with ImpairedLink(path, seed=26, direction="down", drop=_R, corrupt=_R,
                      duplicate=_R) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(uplink)  # clean, and proves the ground is connected
            assert _read_exactly(master, len(uplink)) == uplink
            _write_all(master, data)
            assert _read_exactly(ground, len(want)) == want
            proxy.drain()
        stats = proxy.stats()
        assert _stats_of(stats["down"]) == want_stats
        assert _stats_of(stats["up"]) == _impaired(uplink, 52)[1]
        assert proxy.expected_ground_counts() == _receiver_counts(want)
        assert proxy.expected_node_counts() == _receiver_counts(uplink)
        assert proxy.up.delay_s == proxy.down.delay_s == 0.0
    os.close(master)


def test_both_directions_draw_their_own_streams_and_describe_says_so() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    data = _varied_stream()
    up, up_stats = _impaired(data, 26, drop=_R, corrupt=_R, duplicate=_R)
    down, down_stats = _impaired(data, 27, drop=_R, corrupt=_R, duplicate=_R)
    assert up != down
    with ImpairedLink(path, seed=13, drop=_R, corrupt=_R, duplicate=_R) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(data)
            assert _read_exactly(master, len(up)) == up
            _write_all(master, data)
            assert _read_exactly(ground, len(down)) == down
            proxy.drain()
        stats = proxy.stats()
        assert (_stats_of(stats["up"]), _stats_of(stats["down"])) == (up_stats, down_stats)
        node, ground_counts = _receiver_counts(up), _receiver_counts(down)
        assert proxy.expected_node_counts() == node
        assert proxy.expected_ground_counts() == ground_counts
        text = proxy.describe()
    parts = []
    for name, s, c in (("up", up_stats, node), ("down", down_stats, ground_counts)):
        parts.append(
            f"{name}: {s['bytes_in']} B in, {s['dropped']} dropped, {s['corrupted']} corrupted, "
            f"{s['duplicated']} duplicated, {s['frames_damaged']}/{s['frames_in']} frames "
            f"damaged; receiver should count {c.frames} frames, {c.crc_errors} CRC errors, "
            f"{c.frame_errors} frame errors, {c.discarded_bytes} discarded bytes")
    assert text == "; ".join(parts)
    os.close(master)


def test_reset_accounting_counts_only_what_follows_and_keeps_the_stream_place() -> None:
    # The first part ends inside a frame: after the reset the frame it completes counts, and
    # every receiver count is what the whole stream gives less what the first part gave.
    master, path = _pty()
    os.set_blocking(master, False)
    data = _varied_stream() + _varied_stream()
    cut = 300  # inside a good frame of the first copy: the second part counts more of each
    first, second = data[:cut], data[cut:]
    assert data[cut - 1] != 0 != data[cut]
    ref = Impairer(seed=26, drop=_R, corrupt=_R, duplicate=_R)
    want_first = b"".join(ref.process(first))
    ref.stats = ImpairStats()
    want_second = b"".join(ref.process(second))
    want_stats = ref.stats.as_dict()
    del want_stats["chunks"]
    whole, part = _receiver_counts(want_first + want_second), _receiver_counts(want_first)
    want_counts = ReceiverCounts(
        whole.frames - part.frames, whole.crc_errors - part.crc_errors,
        whole.frame_errors - part.frame_errors, whole.discarded_bytes - part.discarded_bytes,
        {k: whole.extra[k] - part.extra[k] for k in whole.extra})
    # each count after the reset exceeds the count before it (so no other arithmetic on the
    # two gives the same), and one was zero before (a division by it fails)
    assert all(w > p for w, p in zip((want_counts.frames, want_counts.crc_errors,
                                      want_counts.frame_errors, want_counts.discarded_bytes,
                                      want_counts.extra["truncated"]),
                                     (part.frames, part.crc_errors, part.frame_errors,
                                      part.discarded_bytes, part.extra["truncated"]),
                                     strict=True))
    assert part.extra["oversize"] == 0 < want_counts.extra["oversize"]
    # and the counts share bits, so neither xor nor or gives the difference
    assert whole.extra["truncated"] ^ part.extra["truncated"] != want_counts.extra["truncated"]
    assert whole.frames ^ part.frames != want_counts.frames
    with ImpairedLink(path, seed=13, direction="up", drop=_R, corrupt=_R,
                      duplicate=_R) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(first)
            assert _read_exactly(master, len(want_first)) == want_first
            _write_all(master, _frames(2))  # the down direction has counts to forget too
            assert _read_exactly(ground, 46) == _frames(2)
            proxy.drain()
            before = proxy.stats()["up"]
            assert proxy.expected_node_counts() == part
            assert proxy.stats()["down"].frames_in == proxy.expected_ground_counts().frames == 2
            proxy.reset_accounting()
            assert proxy.stats()["up"] == ImpairStats() == proxy.stats()["down"]
            assert proxy.expected_node_counts() == _zero_counts()
            assert proxy.expected_ground_counts() == _zero_counts()
            ground.sendall(second)
            assert _read_exactly(master, len(want_second)) == want_second
            proxy.drain()
        assert _stats_of(proxy.stats()["up"]) == want_stats
        assert proxy.expected_node_counts() == want_counts
        assert before.bytes_in == len(first)  # a snapshot is a copy, not the live counts
    os.close(master)


def test_drain_waits_for_the_delay_line_and_returns_when_it_is_empty() -> None:
    master, path = _pty()
    os.set_blocking(master, False)
    with ImpairedLink(path, delay_ms=300, direction="up") as proxy:
        assert (proxy.up.delay_s, proxy.down.delay_s) == (0.3, 0.0)
        proxy.drain(timeout_s=3600)  # nothing pending: returns at once (a mutant hangs)
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(b"\x00abc\x00")
            deadline = time.monotonic() + 10
            while not proxy.up.pending() and time.monotonic() < deadline:
                time.sleep(0.002)
            assert proxy.up.pending()  # held for its 300 ms
            proxy.drain(timeout_s=3600)
            assert not proxy.up.pending() and not proxy.down.pending()
            assert _read_exactly(master, 5) == b"\x00abc\x00"
    with ImpairedLink(path, delay_ms=5_000, direction="up") as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(b"\x00abc\x00")
            deadline = time.monotonic() + 10
            while not proxy.up.pending() and time.monotonic() < deadline:
                time.sleep(0.002)
            proxy.drain(timeout_s=0)  # gives up at its deadline, the chunk still held
            assert proxy.up.pending()
    os.close(master)


def test_one_ground_at_a_time_and_none_loses_the_downlink() -> None:
    # A second ground waits until the first has gone; while no ground is connected, what
    # the node sends is counted and lost, as on a real link.
    master, path = _pty()
    os.set_blocking(master, False)
    with ImpairedLink(path, seed=3) as proxy:
        first = socket.create_connection(("127.0.0.1", proxy.port))
        first.sendall(b"\x00one\x00")
        assert _read_exactly(master, 5) == b"\x00one\x00"
        second = socket.create_connection(("127.0.0.1", proxy.port))
        second.sendall(b"\x00two\x00")
        assert _read(master, 1, 0.3) == b""  # held until the first ground goes
        first.close()
        assert _read_exactly(master, 5) == b"\x00two\x00"
        _write_all(master, b"\x00down\x00")
        assert _read_exactly(second, 6) == b"\x00down\x00"
        second.close()
        first.close()
        deadline = time.monotonic() + 10
        while proxy._client is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proxy._client is None
        _write_all(master, b"\x00lost\x00")  # nobody to deliver to: counted, then lost
        deadline = time.monotonic() + 10
        while proxy.stats()["down"].bytes_in < 12 and time.monotonic() < deadline:
            time.sleep(0.005)
        proxy.drain()
        time.sleep(0.3)  # a ground that comes after a few idle accept() timeouts is served too
        with socket.create_connection(("127.0.0.1", proxy.port)) as third:
            third.sendall(b"\x00three\x00")
            assert _read_exactly(master, 7) == b"\x00three\x00"
            _write_all(master, b"\x00again\x00")
            assert _read_exactly(third, 7) == b"\x00again\x00"
        down = proxy.stats()["down"]
        assert (down.bytes_in, down.bytes_out, down.frames_in) == (19, 19, 3)
        assert proxy.errors == []
    os.close(master)


def test_stop_closes_the_port_the_endpoint_and_the_threads() -> None:
    master, path = _pty()
    proxy = ImpairedLink(path).start()
    port = proxy.port
    threads = list(proxy._threads)
    assert sorted(t.name for t in threads) == ["impair-accept", "impair-down-writer",
                                               "impair-node-reader", "impair-up-writer"]
    proxy.stop()
    assert proxy._node is None and not any(t.is_alive() for t in threads)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    os.close(master)


def test_a_vanished_node_port_is_reported_not_fatal() -> None:
    master, path = _pty()
    with ImpairedLink(path) as proxy:
        os.close(master)  # the node went away (a power cut): reading its port fails
        deadline = time.monotonic() + 10
        while not proxy.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.errors and proxy.errors[0].startswith("node read: ")
        # and it keeps trying, for a node that comes back on the same port after a restart
        while sum(e.startswith("node read: ") for e in proxy.errors) < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(e.startswith("node read: ") for e in proxy.errors) >= 2
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(b"\x00x\x00")
            deadline = time.monotonic() + 10
            while not any(e.startswith("node write: ") for e in proxy.errors) and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
        assert any(e.startswith("node write: ") for e in proxy.errors)


def test_without_the_reference_deframer_counts_stay_zero(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impair, "_reference_deframer", lambda: None)
    master, path = _pty()
    os.set_blocking(master, False)
    with ImpairedLink(path, direction="up") as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as ground:
            ground.sendall(_frames(3))
            assert _read_exactly(master, 69) == _frames(3)
            proxy.drain()
        proxy.reset_accounting()
        nothing = ReceiverCounts(frames=0, crc_errors=0, frame_errors=0, discarded_bytes=0,
                                 extra={})
        assert proxy.expected_node_counts() == nothing == proxy.expected_ground_counts()
        assert proxy.stats()["up"] == ImpairStats()
    os.close(master)


def test_counts_of_a_receiver_without_counters_are_zero() -> None:
    assert impair._counts_of(object()) == _zero_counts()
    assert isinstance(impair._reference_deframer(), Deframer)


def test_stats_and_counts_derived_fields() -> None:
    s = ImpairStats(bytes_in=1, bytes_out=2, dropped=2, corrupted=5, duplicated=6, splits=11,
                    chunks=13, frames_in=17, frames_damaged=19, delimiters_damaged=23)
    assert s.damaged_bytes == 13  # the bits overlap: no other operator gives 13
    assert s.as_dict() == {"bytes_in": 1, "bytes_out": 2, "dropped": 2, "corrupted": 5,
                           "duplicated": 6, "splits": 11, "chunks": 13, "frames_in": 17,
                           "frames_damaged": 19, "delimiters_damaged": 23}
    assert ReceiverCounts(frames=1, crc_errors=3, frame_errors=6).bad_frames == 9


def test_link_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^direction 'sideways' is not one of \('up', 'down', "
                       r"'both'\)$"):
        ImpairedLink("/dev/null", direction="sideways")
    with pytest.raises(ValueError, match=r"^delay_ms -1 is negative$"):
        ImpairedLink("/dev/null", delay_ms=-1)
    link = ImpairedLink("/dev/null", delay_ms=0, drop=0.5, seed=4, direction="down")
    other = ImpairedLink("/dev/null")  # two at once: each its own free port
    try:
        assert link.url == f"socket://127.0.0.1:{link.port}" and link.port > 0
        assert other.port not in (0, link.port)
        assert (link.up.impairer.drop, link.down.impairer.drop) == (0.0, 0.5)
        assert link.impairing
        link.impairing = False
        assert not link.up.impairer.enabled and not link.down.impairer.enabled
        assert not link.impairing
        link.up.impairer.enabled = True
        assert link.impairing
    finally:
        link._server.close()
        other._server.close()
    data = _frames(20)
    link = ImpairedLink("/dev/null", corrupt=0.5)  # the default seed is 0: up 0, down 1
    try:
        assert link.up.impairer.process(data) == Impairer(corrupt=0.5, seed=0).process(data)
        assert link.down.impairer.process(data) == Impairer(corrupt=0.5, seed=1).process(data)
    finally:
        link._server.close()
