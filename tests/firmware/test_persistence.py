"""Persistence across resets: power cut (SIGKILL), commanded reboot, maintenance, watchdog.

Parameters, the boot count and the event log live in the state directory (the node's flash)
and survive; the reset cause is reported at the next boot (status, housekeeping, events).
"""

import cbor2
import pytest
from nodelink import field

from protocol import ids
from protocol import messages as M

pytestmark = pytest.mark.slow

RESERVE = 32  # node.eventlog._RESERVE: event numbers reserved ahead on the flash
BOOT_COUNT = field(ids.PKT_POWER, "boot_count")
RESET_CAUSE = field(ids.PKT_POWER, "reset_cause")


def status(link):
    return link.send_and_assert_command(ids.CMD_STATUS, timeout=10)


def event_log(link, from_seq=0):
    mark = link.mark()
    seq = link.send_command(ids.CMD_EVENT_LOG_DOWNLINK, from_seq)
    return cbor2.loads(link.bulk(seq, ids.BULK_EVENT_LOG, mark))


def test_power_cut_keeps_params_boot_count_and_event_log(fresh_node):
    node, link = fresh_node
    boot_count = status(link)[1]
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 321)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_VOLATILE_VALUE, 55)
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 999)  # not saved
    before = event_log(link)
    mark = link.mark()
    node.power_cut()
    boot = link.await_boot(mark=mark)
    assert boot.body[2] == [boot_count + 1, ids.RESET_POWER_ON]
    mode, count, cause = status(link)[:3]
    assert (mode, count, cause) == (ids.MODE_SAFE, boot_count + 1, ids.RESET_POWER_ON)
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == 321
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_VOLATILE_VALUE) == 0
    link.assert_event(ids.EV_PARAMS_LOADED, mark)
    after = event_log(link)
    assert after[:len(before)] == before
    # numbering continues after every number given out before the cut (SPEC §5.4): at the
    # reserved high-water mark, so unused reserved numbers are skipped, never reused
    assert before[-1][0] < after[len(before)][0] <= before[-1][0] + 1 + 2 * RESERVE
    assert boot.body[0] == after[len(before)][0]


def test_event_numbers_are_never_reused_after_a_power_cut(fresh_node):
    # Issue 10 bug 6: param_set, param_changed seen live, SIGKILL at once: the boot event
    # reused the live event's number and the live events were missing from the stored log.
    node, link = fresh_node
    live: dict[int, tuple[int, list]] = {}
    for value in range(1, 6):
        mark = link.mark()
        link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, value)
        changed = link.assert_event(ids.EV_PARAM_CHANGED, mark)
        node.power_cut()  # at once: the event may not have reached the flash
        boot = link.await_boot(mark=mark)
        for m in link.since(mark):
            if m.kind == M.KIND_EVENT:
                assert m.body[0] not in live, f"event_seq {m.body[0]} names two events"
                live[m.body[0]] = (m.id, m.body[2])
        assert boot.body[0] > changed.body[0]
    stored = event_log(link)
    for seq, _t, event_id, _sev, args in stored:  # the log holds only what was sent live
        if seq in live:
            assert live[seq] == (event_id, args), seq
    seqs = [r[0] for r in stored]
    assert seqs == sorted(set(seqs))


def test_commanded_reboot_with_saved_hk_mask(fresh_node):
    node, link = fresh_node
    boot_count = status(link)[1]
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_HK_ENABLED_MASK, 0x01)
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_REBOOT)
    link.assert_event(ids.EV_REBOOT, mark)
    link.await_boot(mark=mark)
    node.wait_boots(2)
    assert status(link)[1:3] == [boot_count + 1, ids.RESET_COMMANDED]
    link.await_telemetry(ids.PKT_POWER, lambda b: b[RESET_CAUSE] == ids.RESET_COMMANDED
                         and b[BOOT_COUNT] == boot_count + 1)
    # Only the power packet is enabled at this boot (hk_enabled_mask = 0x01)
    mark = link.mark()
    link.await_telemetry(ids.PKT_POWER, mark=mark)
    link.await_telemetry(ids.PKT_POWER, mark=link.mark())
    assert not [m for m in link.since(mark) if m.kind == M.KIND_HOUSEKEEPING
                and m.id != ids.PKT_POWER]


def test_maintenance_only_in_safe_then_restarts(fresh_node):
    _node, link = fresh_node
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_NOMINAL)
    link.assert_rejected(ids.CMD_MAINTENANCE, code=M.WRONG_MODE)
    link.send_and_assert_command(ids.CMD_SET_MODE, ids.MODE_SAFE)
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_MAINTENANCE)
    link.assert_event(ids.EV_MAINTENANCE, mark)
    link.await_boot(mark=mark)
    assert status(link)[2] == ids.RESET_MAINTENANCE


def test_hung_task_resets_by_watchdog(fresh_node):
    node, link = fresh_node
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_WATCHDOG_TIMEOUT_MS, 1000)
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    link.send_and_assert_command(ids.CMD_REBOOT)  # the timeout applies from the next boot
    node.wait_boots(2)
    boot_count = status(link)[1]
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_HANG_TASK, ids.TASK_FDIR, 0.0)
    boot = link.await_boot(mark=mark, timeout=10)
    assert boot.body[2] == [boot_count + 1, ids.RESET_WATCHDOG]
    link.assert_event(ids.EV_WATCHDOG_RESET, mark)
    assert status(link)[1:3] == [boot_count + 1, ids.RESET_WATCHDOG]
    assert node.watchdog_resets == 1


def test_hung_link_task_resets_by_watchdog(fresh_node):
    _node, link = fresh_node
    mark = link.mark()
    link.send_and_assert_command(ids.CMD_FAULT_INJECT, ids.FAULT_HANG_TASK, ids.TASK_LINK, 0.0)
    boot = link.await_boot(mark=mark, timeout=12)  # default timeout 5 s
    assert boot.body[2][1] == ids.RESET_WATCHDOG


def test_corrupt_params_file_falls_back_to_defaults(fresh_node):
    node, link = fresh_node
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_TEST_VALUE, 12)
    link.send_and_assert_command(ids.CMD_PARAM_SAVE)
    path = node.state_dir / "params.bin"
    data = bytearray(path.read_bytes())
    data[6] ^= 0xFF
    path.write_bytes(bytes(data))
    mark = link.mark()
    node.power_cut()
    link.await_boot(mark=mark)
    link.assert_event(ids.EV_PARAMS_DEFAULTED, mark, lambda a: a == [2])  # corrupt
    link.send_and_assert_command(ids.CMD_PARAM_SET, ids.PARAM_EVENT_RATE_LIMIT, 100)
    assert link.send_and_assert_command(ids.CMD_PARAM_GET, ids.PARAM_TEST_VALUE) == 0
    link.assert_failed(ids.CMD_PARAM_LOAD, code=M.STORAGE_ERROR)
    path.unlink()
    link.assert_failed(ids.CMD_PARAM_LOAD, code=M.NOT_FOUND)


def test_torn_event_log_slot_is_skipped(fresh_node):
    node, link = fresh_node
    before = event_log(link)
    mark = link.mark()
    node.power_cut()
    link.await_boot(mark=mark)
    # Spoil the slot of the first record, as a write cut short would.
    path = node.state_dir / "events.log"
    data = bytearray(path.read_bytes())
    data[before[0][0] % 256 * 48 + 20] ^= 0x55
    path.write_bytes(bytes(data))
    mark = link.mark()
    node.power_cut()
    link.await_boot(mark=mark)
    after = event_log(link)
    seqs = [r[0] for r in after]
    assert before[0][0] not in seqs and before[1][0] in seqs
