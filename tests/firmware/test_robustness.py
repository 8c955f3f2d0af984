"""Link robustness: malformed input is counted and ignored, valid commands around it work;
a re-sent command (same seq and id) is answered again but not executed twice (SPEC §5.2)."""

import os
import random
import time

import cbor2
import pytest
from nodelink import field

from protocol import cobs, ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.messages import encode_message

pytestmark = pytest.mark.slow

LINK = ids.PKT_LINK
FRAMES_IN = field(LINK, "frames_in")
CRC_ERRORS = field(LINK, "crc_errors")
DISCARDED = field(LINK, "discarded_bytes")
FRAME_ERRORS = field(LINK, "frame_errors")
ACCEPTED = field(LINK, "cmds_accepted")
REJECTED = field(LINK, "cmds_rejected")


def ping_frame(seq, boot):
    return encode_frame(encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_NOOP, [], boot))


def link_counters(link):
    link.send_and_assert_command(ids.CMD_HK_RATE, LINK, 20.0)
    mark = link.mark()
    p = link.await_telemetry(LINK, mark=mark)
    p = link.await_telemetry(LINK, mark=link.mark())  # one sent after everything before
    link.send_and_assert_command(ids.CMD_HK_RATE, LINK, 0.2)
    return p.body


def test_duplicate_command_not_executed_twice(link):
    seq = link.next_seq()
    mark = link.mark()
    first = link.command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 11, seq=seq)
    assert first[1].body[1] == M.STAGE_COMPLETED
    changed = len(link.events(ids.EV_PARAM_CHANGED, mark))
    # Another value under the same (seq, id): a repeat, answered from the record.
    again = link.command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 12, seq=seq)
    assert [m.body for m in again] == [m.body for m in first]
    link.send_and_assert_command(ids.CMD_NOOP)
    assert len(link.events(ids.EV_PARAM_CHANGED, mark)) == changed == 1
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == 11
    # The same seq with another command id is a new command.
    link.command(ids.CMD_NOOP, seq=seq)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 0)


def test_history_remembers_32_commands(link):
    seqs = [link.next_seq() for _ in range(33)]
    for s in seqs:
        link.command(ids.CMD_NOOP, seq=s)
    # link_counters itself sends two hk_rate commands: +2 between two readings
    before = link_counters(link)[ACCEPTED]
    link.command(ids.CMD_NOOP, seq=seqs[-1])  # remembered: answered, not counted again
    after = link_counters(link)[ACCEPTED]
    assert after == before + 2
    link.command(ids.CMD_NOOP, seq=seqs[0])  # forgotten (more than 32 ago): a new command
    assert link_counters(link)[ACCEPTED] == after + 3


def test_malformed_frames_counted_and_ignored(link):
    before = link_counters(link)
    seq1, seq2 = link.next_seq(), link.next_seq()
    good = ping_frame(seq1, link.current_boot())
    bad_crc = b"\x00" + cobs.encode(encode_message(M.KIND_COMMAND, 1, 0, ids.CMD_NOOP, [],
                                                   link.current_boot())
                                     + b"\x01\x02\x03\x04") + b"\x00"
    truncated = b"\x00\x09ab\x00"  # a COBS block pointing past the frame's end
    oversize = b"\x00" + b"\x01" * 1300 + b"\x00"
    not_cbor = encode_frame(b"\xff\xfe\xfd")
    not_command = encode_frame(cbor2.dumps("hello"))
    noise = bytes(random.Random(7).randrange(1, 256) for _ in range(200))
    mark = link.mark()
    link.write(noise + good + bad_crc + truncated + oversize + not_cbor + not_command
               + b"\x00\x00\x00" + ping_frame(seq2, link.current_boot()))
    link.verification(seq1, ids.CMD_NOOP, [M.STAGE_COMPLETED], mark=mark)
    link.verification(seq2, ids.CMD_NOOP, [M.STAGE_COMPLETED], mark=mark)
    after = link_counters(link)
    crc = after[CRC_ERRORS] - before[CRC_ERRORS]
    framing = after[FRAME_ERRORS] - before[FRAME_ERRORS]
    # bad CRC, truncated, oversize; the noise (after the previous frame's closing delimiter)
    # is one more bad frame, a CRC error or a truncated one depending on its bytes.
    assert crc >= 1 and framing >= 2 and crc + framing == 4
    assert after[DISCARDED] - before[DISCARDED] >= 200 + 1300
    assert after[REJECTED] - before[REJECTED] == 2  # not CBOR, not a command: counted only


def test_random_garbage_never_kills_the_node(link, node):
    rnd = random.Random(1)
    for _ in range(20):
        chunk = os.urandom(rnd.randrange(1, 600))
        if rnd.random() < 0.5:
            chunk = b"\x00" + chunk  # make some of it look like frame starts
        link.write(chunk)
    time.sleep(0.2)
    link.write(b"\x00")
    link.send_and_assert_command(ids.CMD_NOOP)
    assert node.running and node.boots == 1


def test_largest_message_is_answered(link):
    # A command that fills the 1020-byte message limit with one byte-string argument: the
    # node must answer (here BAD_ARGUMENTS: param_set takes no bytes), whether or not its
    # heap has a kilobyte in one piece to decode it into.
    seq = link.next_seq()
    boot = link.current_boot()
    pad = 1006 - len(encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                                    [ids.PARAM_TEST_VALUE, bytes(1006)], boot)) + 1020
    message = encode_message(M.KIND_COMMAND, seq, 0, ids.CMD_PARAM_SET,
                             [ids.PARAM_TEST_VALUE, bytes(pad)], boot)
    assert len(message) == 1020
    mark = link.mark()
    link.write(encode_frame(message))
    v = link.verification(seq, ids.CMD_PARAM_SET, [M.STAGE_REJECTED], mark=mark)
    assert v.body[2] == M.BAD_ARGUMENTS
    link.send_and_assert_command(ids.CMD_NOOP)
