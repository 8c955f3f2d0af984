"""Every command of the dictionary and its verification outcomes, through the pty (SPEC §5.2).

One simulated node for the module; tests leave it in SAFE with default parameters.
"""

from __future__ import annotations

import cbor2
import pytest

from protocol import ids
from protocol import messages as M
from protocol.frame_writer import encode_frame
from protocol.node_description import DESCRIPTION
from protocol.node_dictionary import DICT_HASH

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def back_to_safe(link):
    yield
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_SAFE)


def nominal(link):
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)


def test_noop_is_accepted_then_completed(link):
    first, final = link.command(ids.CMD_NOOP)
    assert first.body == [first.body[0], M.STAGE_ACCEPTED, 0, None]
    assert final.body[1:] == [M.STAGE_COMPLETED, 0, None]
    assert final.seq == (first.seq + 1) & 0xFFFF  # downlink seq +1 per message


def test_status_result(link, node):
    result = link.send_and_assert_command(ids.CMD_STATUS)
    mode, boot_count, reset_cause, uptime_ms, dict_hash, event_seq, fw, node_id = result
    assert mode == ids.MODE_SAFE
    assert boot_count >= 1
    assert reset_cause == ids.RESET_POWER_ON
    assert uptime_ms > 0
    assert dict_hash == DICT_HASH
    assert event_seq >= 2  # boot, params_defaulted, mode_changed at least
    assert isinstance(fw, str)
    # the simulated board's own id, kept in its state directory; the same in housekeeping
    assert isinstance(node_id, int) and 0 < node_id <= 0xFFFFFFFF
    assert link.await_telemetry(ids.PKT_POWER).body[3] == node_id


def test_unknown_command_rejected(link):
    mark = link.mark()
    link.assert_rejected(99, code=M.UNKNOWN_COMMAND)
    link.assert_event(ids.EV_CMD_REJECTED, mark, lambda a: a[0] == 99 and a[2] == M.UNKNOWN_COMMAND)


@pytest.mark.parametrize(("cmd", "args", "code"), [
    (ids.CMD_NOOP, [1], M.BAD_ARGUMENTS),  # too many
    (ids.CMD_SET_MODE, [], M.BAD_ARGUMENTS),  # too few
    (ids.CMD_SET_MODE, [True], M.BAD_ARGUMENTS),  # wrong type
    (ids.CMD_SET_MODE, [0], M.OUT_OF_RANGE),  # BOOT is not settable
    (ids.CMD_SET_MODE, [4], M.OUT_OF_RANGE),
    (ids.CMD_SET_MODE, [300], M.OUT_OF_RANGE),  # beyond u8
    (ids.CMD_HEATER_MODE, [2, 0], M.OUT_OF_RANGE),
    (ids.CMD_HEATER_SETPOINT, [0, 41.0], M.OUT_OF_RANGE),
    (ids.CMD_HEATER_SETPOINT, [0, "warm"], M.BAD_ARGUMENTS),
    (ids.CMD_HK_RATE, [1, 50.5], M.OUT_OF_RANGE),
    (ids.CMD_HK_RATE, [1, 0.05], M.OUT_OF_RANGE),
    (ids.CMD_HK_RATE, [ids.PKT_MAX + 1, 1.0], M.OUT_OF_RANGE),  # no such packet
    (ids.CMD_HK_ENABLE, [1, 1], M.BAD_ARGUMENTS),  # bool wanted
    (ids.CMD_PARAM_SET, [ids.PARAM_TEST_VALUE, 1001], M.OUT_OF_RANGE),
    (ids.CMD_PARAM_SET, [ids.PARAM_TEST_VALUE, 1.5], M.BAD_ARGUMENTS),
    (ids.CMD_PARAM_SET, [ids.PARAM_FDIR_ENABLED, 1], M.BAD_ARGUMENTS),
    (ids.CMD_PARAM_SET, [ids.PARAM_TIME_FACTOR, 0.5], M.OUT_OF_RANGE),
    (ids.CMD_TIME_CORRELATE, ["now"], M.BAD_ARGUMENTS),
    (ids.CMD_TIME_CORRELATE, [-1], M.BAD_ARGUMENTS),
    (ids.CMD_EVENT_LOG_DOWNLINK, [-1], M.BAD_ARGUMENTS),
    (ids.CMD_FAULT_INJECT, [6, 0, 0.0], M.OUT_OF_RANGE),
    (ids.CMD_FAULT_INJECT, [1, 16, 0.0], M.OUT_OF_RANGE),
])
def test_argument_checks_reject(link, cmd, args, code):
    link.assert_rejected(cmd, *args, code=code)


def test_wrong_mode_rejected(link):
    link.assert_rejected(ids.CMD_LOAD_SWITCH, 1, True, code=M.WRONG_MODE)
    nominal(link)
    link.assert_rejected(ids.CMD_MAINTENANCE, code=M.WRONG_MODE)


def test_unsupported_version_and_malformed_rejected(link):
    seq = link.next_seq()
    mark = link.mark()
    link.write(encode_frame(cbor2.dumps([2, 0, seq, 0, 1, []])))
    v = link.verification(seq, 1, [M.STAGE_REJECTED], mark=mark)
    assert v.body[2] == M.UNSUPPORTED_VERSION
    seq = link.next_seq()
    link.write(encode_frame(cbor2.dumps([1, 0, seq, 0, 1, "not an array"])))
    v = link.verification(seq, 1, [M.STAGE_REJECTED], mark=mark)
    assert v.body[2] == M.MALFORMED
    seq = link.next_seq()
    link.write(encode_frame(cbor2.dumps([1, 2, seq, 0, 1, []])))  # a housekeeping "command"
    v = link.verification(seq, 1, [M.STAGE_REJECTED], mark=mark)
    assert v.body[2] == M.MALFORMED


def test_load_switch_and_trip_reset(link):
    nominal(link)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, True)
    link.await_telemetry(ids.PKT_POWER, lambda b: b[15] & (1 << ids.LOAD_SEISMOMETER))
    link.assert_failed(ids.CMD_LOAD_SWITCH, ids.LOAD_PAYLOAD_A, True, code=M.INHIBITED)
    link.send_and_assert_command(ids.CMD_LOAD_SWITCH, ids.LOAD_SEISMOMETER, False)
    link.send_and_assert_command(ids.CMD_LOAD_RESET_TRIP, ids.LOAD_SEISMOMETER)


def test_heater_mode_and_setpoint(link):
    link.send_and_assert_command(ids.CMD_HEATER_MODE, 1, 2)
    link.send_and_assert_command(ids.CMD_HEATER_MODE, 1, 1)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_HEATER_SETPOINT, 0, 7.5)
    p = link.wait_for(lambda m: m.kind == M.KIND_PARAMETER and m.id == ids.PARAM_BATTERY_SETPOINT,
                      mark=mark)
    assert p.body == [7.5]
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_BATTERY_SETPOINT) == 7.5
    link.send_and_assert_command(ids.CMD_HEATER_SETPOINT, 0, 5.0)


def test_param_get_set_save_load_reset(link):
    mark = link.mark()
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == 0
    link.wait_for(lambda m: m.kind == M.KIND_PARAMETER and m.id == ids.PARAM_TEST_VALUE
                  and m.body == [0], mark=mark)
    link.assert_failed(ids.CMD_PARAM_GET, 999, code=M.NOT_FOUND)
    link.assert_failed(ids.CMD_PARAM_SET, 999, 1, code=M.NOT_FOUND)

    mark = link.mark()
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, -42)
    link.assert_event(ids.EV_PARAM_CHANGED, mark, lambda a: a == [ids.PARAM_TEST_VALUE])
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TIME_FACTOR, 120)  # int for f32
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TIME_FACTOR) == 120.0
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    link.assert_event(ids.EV_PARAMS_SAVED, mark)

    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 7)
    link.send_and_assert_command(ids.CMD_PARAM_LOAD)  # back to the saved -42
    link.assert_event(ids.EV_PARAMS_LOADED, mark)
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == -42

    link.send_and_assert_command(ids.CMD_PARAM_RESET)
    link.assert_event(ids.EV_PARAM_RESET, mark)
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == 0
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TIME_FACTOR) == 60.0
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_EVENT_RATE_LIMIT, 100)


def test_time_correlate(link):
    mark = link.mark()
    utc_ms = 1_790_000_000_123
    link.send_and_assert_command(ids.CMD_TIME_CORRELATE, utc_ms)
    t = link.wait_for(lambda m: m.kind == M.KIND_TIME, mark=mark)
    assert t.body[1] == utc_ms and t.body[0] > 0
    link.assert_event(ids.EV_TIME_CORRELATED, mark, lambda a: a == t.body)


def test_hk_rate_and_enable(link):
    link.send_and_assert_command(ids.CMD_HK_ENABLE, ids.PKT_ENVIRONMENT, False)
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_LOADS, 20.0)
    mark = link.mark()
    link.await_telemetry(ids.PKT_LOADS, mark=mark)
    import time

    time.sleep(0.5)
    loads = link.packets(ids.PKT_LOADS, mark)
    assert 4 <= len(loads) <= 16  # 20 Hz over ~0.5 s, tolerant
    assert not link.packets(ids.PKT_ENVIRONMENT, mark)
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_LOADS, 0.5)
    link.send_and_assert_command(ids.CMD_HK_ENABLE, ids.PKT_ENVIRONMENT, True)
    link.await_telemetry(ids.PKT_ENVIRONMENT)


def test_clear_counters(link):
    for _ in range(3):
        link.send_and_assert_command(ids.CMD_NOOP)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_CLEAR_COUNTERS)
    link.assert_event(ids.EV_COUNTERS_CLEARED, mark)
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_LINK, 10.0)
    p = link.await_telemetry(ids.PKT_LINK)
    frames_in, cmds_accepted = p.body[6], p.body[11]
    assert frames_in <= 3 and cmds_accepted <= 3
    link.send_and_assert_command(ids.CMD_HK_RATE, ids.PKT_LINK, 0.2)


def test_event_log_downlink(link):
    mark = link.mark()
    seq = link.send_command(ids.CMD_EVENT_LOG_DOWNLINK, 0)
    payload = link.bulk(seq, ids.BULK_EVENT_LOG, mark)
    link.verification(seq, ids.CMD_EVENT_LOG_DOWNLINK, [M.STAGE_COMPLETED], mark=mark)
    records = cbor2.loads(payload)
    assert records, "the log holds at least the boot events"
    assert records[0][2] == ids.EV_BOOT and records[0][0] == 0
    seqs = [r[0] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for r in records:
        assert len(r) == 5 and isinstance(r[4], list)
    # from a sequence number on
    newest = seqs[-1]
    mark = link.mark()
    seq = link.send_command(ids.CMD_EVENT_LOG_DOWNLINK, newest)
    tail = cbor2.loads(link.bulk(seq, ids.BULK_EVENT_LOG, mark))
    assert tail and tail[0][0] == newest


def test_dict_downlink_and_busy(link):
    mark = link.mark()
    s1, s2 = link.next_seq(), link.next_seq()
    boot = link.current_boot()
    frames = b"".join(encode_frame(M.encode_message(0, s, 0, ids.CMD_DICT_DOWNLINK, [], boot))
                      for s in (s1, s2))
    link.write(frames)  # both in one chunk: the second finds the first transfer running
    payload = link.bulk(s1, ids.BULK_DICTIONARY, mark)
    assert payload == DESCRIPTION
    link.verification(s1, ids.CMD_DICT_DOWNLINK, [M.STAGE_COMPLETED], mark=mark)
    v = link.verification(s2, ids.CMD_DICT_DOWNLINK, [M.STAGE_REJECTED, M.STAGE_COMPLETED],
                          mark=mark)
    assert v.body[1:3] == [M.STAGE_REJECTED, M.BUSY]


def test_fault_inject_outcomes(link):
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)
    link.assert_event(ids.EV_FAULT_INJECTED, mark, lambda a: a == [ids.FAULT_CLEAR, 0])
    link.assert_failed(ids.CMD_FAULT_INJECT, ids.FAULT_SENSOR_FAIL, 9, 0.0, code=M.NOT_FOUND)
    link.assert_failed(ids.CMD_FAULT_INJECT, ids.FAULT_HANG_TASK, 9, 0.0, code=M.NOT_FOUND)
    link.assert_failed(ids.CMD_FAULT_INJECT, ids.FAULT_BATTERY_DRAIN, 0, -1.0, code=M.NOT_FOUND)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_SENSOR_STUCK,
                                 ids.SENSOR_SURFACE_TEMP, 12.5)
    link.await_telemetry(ids.PKT_ENVIRONMENT, lambda b: b[4] == 12.5, timeout=8)
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_CLEAR, 0, 0.0)


def test_failed_commands_raise_cmd_failed(link):
    mark = link.mark()
    link.assert_failed(ids.CMD_PARAM_GET, 500, code=M.NOT_FOUND)
    link.assert_event(ids.EV_CMD_FAILED, mark,
                      lambda a: a[0] == ids.CMD_PARAM_GET and a[2] == M.NOT_FOUND)
