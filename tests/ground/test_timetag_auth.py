"""Time-tagged commands are authenticated like any command (SPEC §11.2, §10): on a keyed
simulated node (``sim://?key=dev``, ENFORCED) a signed time-tagged command is queued and its
outcome comes back authenticated; the same transmission replayed is refused (never queued
twice); a signed command whose time bytes were altered is refused as forged; a plain one is
rejected UNAUTHENTICATED."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ground import codec
from ground.client import Client
from ground.link import encode_frame

pytestmark = pytest.mark.micropython


def test_signed_time_tagged_commands_replays_and_forgeries(tmp_path: Path) -> None:
    url = f"sim://?key=dev&state_dir={tmp_path / 's'}"
    with Client(url, write_log=False) as c:
        assert c.signer is not None and c.correlation is not None  # correlated, signed
        forged0 = c.latest("auth_forged")
        at = time.time_ns() // 1_000_000 + 1500
        res = c.command("param_set", param="volatile_value", value=5, at=at)
        assert res.queued
        done = c.wait_timetagged(res, 10.0)  # only an authenticated completed counts
        assert done.verifications[-1].stage == "completed"
        # one transmission, sent twice: the second is a replay, refused by the auth layer
        seq = c.next_seq()
        message = codec.encode_command(seq, 2, [2], c.boot or 0,
                                       time.time_ns() // 1_000_000 + 60_000)
        frame = c._frame(message, c.boot or 0)
        seen: list[tuple[int, int]] = []
        unlisten = c.downlink.listen(
            "verification", lambda m: seen.append((m.body[0], m.body[1])))
        try:
            c.transport.write(frame)
            time.sleep(0.5)
            c.transport.write(frame)
            time.sleep(0.5)
        finally:
            unlisten()
        assert seen == [(seq, codec.STAGE_ACCEPTED)]  # the replay got no answer at all
        entries = c.tt_list()
        assert [e.seq for e in entries] == [seq]  # queued once
        # the time altered after signing: the MAC covers it, so the node refuses it
        seq2 = c.next_seq()
        t = time.time_ns() // 1_000_000 + 90_000
        signed = bytearray(c._frame(codec.encode_command(seq2, 1, [], c.boot or 0, t),
                                    c.boot or 0))
        from cobs import cobs

        payload = bytearray(cobs.decode(bytes(signed[1:-1]))[:-4])
        k = bytes(payload).find(t.to_bytes(8, "big"))
        assert k > 0
        payload[k + 7] ^= 1  # one millisecond later
        c.transport.write(encode_frame(bytes(payload)))
        c.await_telemetry("auth_forged", lambda v: v >= (forged0.value if forged0 else 0) + 1,
                          timeout=12.0)
        assert [e.seq for e in c.tt_list()] == [seq]
        # a plain time-tagged command on an ENFORCED node: rejected UNAUTHENTICATED
        seq3 = c.next_seq()
        got: list[tuple[int, int, int]] = []
        unlisten = c.downlink.listen(
            "verification", lambda m: got.append((m.body[0], m.body[1], m.body[2])))
        try:
            c.transport.write(encode_frame(codec.encode_command(seq3, 1, [], c.boot or 0, t)))
            time.sleep(0.5)
        finally:
            unlisten()
        assert got == [(seq3, codec.STAGE_REJECTED, 9)]
        c.command("tt_clear")
