"""hil/impair.py: the pure Impairer, and the proxy between a pty and a 127.0.0.1 socket."""

from __future__ import annotations

import math
import os
import random
import socket
import time
import tty

import pytest

from hil.impair import ImpairedLink, Impairer
from protocol.framing import encode_frame


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
