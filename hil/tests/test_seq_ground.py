"""The ground's sequence upload against the node: a power cut in the middle of an upload, the
ground resuming from what the node says it holds."""

from __future__ import annotations

import pytest

from ground import seqimage, sequpload
from ground import sequence as s
from hil.session import HilLink
from hil.vocabulary import NodeApi

# 60 steps of about 12 bytes: an image of several parts
TEXT = "ilrs-sequence 1\nname long\n" + "".join(
    f"+00:00:{i % 60:02d} heater_setpoint heater=electronics setpoint=-{i % 30}.5 "
    "on-fail skip\n" for i in range(60))


@pytest.mark.power_cut(reason="a power cut in the middle of an upload")
def test_an_upload_cut_by_a_power_cut_resumes_where_the_node_stopped(
        fresh_node: NodeApi, hil_link: HilLink) -> None:
    node = fresh_node
    image = seqimage.compile(s.parse(TEXT))
    assert len(image) > 4 * sequpload.PART_BYTES
    boot = node.client.status.boot_count if node.client.status else 0
    held_at_cut: list[int] = []

    def progress(held: int, size: int) -> None:
        if not held_at_cut and held >= 2 * sequpload.PART_BYTES:
            held_at_cut.append(held)
            # off long enough that the next part times out: the ground must begin again
            hil_link.cut_power(node, off_s=node.seconds(2.0))

    report = sequpload.upload(node.client, image, 1, timeout=node.seconds(1.0), resumes=30,
                              progress=progress)
    assert held_at_cut == [2 * sequpload.PART_BYTES]
    assert report.hash == seqimage.hash_prefix(image)
    assert report.resumes >= 1, report
    # the staging survived the cut: the first begin after it found every byte held before it
    assert report.resumed_from[0] == 0 and report.resumed_from[1] == held_at_cut[0], report
    assert set(report.resumed_from[1:]) == {held_at_cut[0]}, report
    listing = node.client.command("seq_list", timeout=node.seconds(5)).result
    assert listing[1][:5] == [1, 0, report.hash, 60, "long"]  # IDLE
    status = node.client.refresh_status(timeout=node.seconds(5))
    assert status.boot_count == boot + 1
    node.await_telemetry("seq_upload_held", 0, timeout=5)
