"""The stored sequences' executor and triggers (SPEC §12.4-6): node.sequencer's tick while a
slot runs or has a trigger. node.sequencer imports this module when that begins and drops it
when no slot runs and none has a trigger, so a node without armed or running sequences holds
none of this code. Its state (slots, phases, the step buffer) lives in the sequencer.

``tick(sq)`` samples the triggers, then advances each running slot by at most
_STEPS_PER_TICK steps; it returns whether a slot still runs or has a trigger. A command step
runs through ``Dispatcher.execute``, the ground's command path from the mode check on (mode,
the command's own check, handler); a wait step compares a telemetry channel with its value at
every tick until it holds or its timeout passes.

Allocates: the step buffer, its decoder and argument list when loaded (dropped with this
module), a step's flash read and arguments (a file object, its command's argument records);
a wait step's tick allocates nothing for integer channels.
"""

from micropython import const

from node import seqstore
from protocol.cbor_decoder import Decoder
from protocol.envelope import read_args
from protocol.node_dictionary import command_args

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BUSY = const(5)
_CH_BATTERY_SOC = const(11)
_CH_LUNAR_DAY = const(8)
_CH_MODE = const(1)
_EV_SEQ_STEP = const(44)
_EV_SEQ_STEP_FAILED = const(45)
_EV_SEQ_TRIGGERED = const(47)
_MODE_SAFE = const(1)
_NOT_FOUND = const(19)
_OK = const(0)
_SAFE_SEQUENCE = const(3)
_STORAGE_ERROR = const(17)
_WAIT_TIMEOUT = const(26)

# protocol.dictionary SEQ_STATES, SEQ_TRIGGERS, SEQ_ON_FAIL (node.sequencer)
_RUNNING = const(2)
_DONE = const(3)
_FAILED = const(4)
_T_NONE = const(0)
_T_SAFE_ENTRY = const(1)
_T_SUNSET = const(2)
_T_SUNRISE = const(3)
_T_BATTERY_BELOW = const(4)
_SKIP = const(1)
_SAFE = const(2)

_SLOTS = const(4)  # node.sequencer.SLOTS
_STEPS_PER_TICK = const(8)
_STEP_BYTES = const(256)  # node.seqcheck.MAX_STEP_BYTES
_MAX_ARGS = const(4)
# Phases of the current step (node.sequencer: a run starts in _LOAD)
_LOAD = const(0)  # not read yet
_CMD = const(1)  # a command step waiting for its time
_WAIT = const(2)  # a wait step polling its condition


def tick(sq):
    """Sample the triggers, then advance the running slots; True while a slot runs or has a
    trigger (this module is still needed)."""
    if sq.buf is None:
        sq.buf = bytearray(_STEP_BYTES)
        sq.dec = Decoder()
        sq.args = [None] * _MAX_ARGS
    _triggers(sq)
    live = False
    for slot in range(_SLOTS):
        n = 0
        while sq.state[slot] == _RUNNING and n < _STEPS_PER_TICK:
            if not _advance(sq, slot):
                break
            n += 1
        live = live or sq.trigger[slot] != _T_NONE or sq.state[slot] == _RUNNING
    return live


def _advance(sq, slot):
    # Work on slot's current step; True if it ended (the next one may run at once).
    phase = sq.phase[slot]
    if phase == _LOAD:
        phase = _load(sq, slot)
        if phase < 0:
            return False
    now = sq.now_ms()
    if phase == _CMD:
        if now - sq.due[slot] < 0:
            return False
        code = _execute(sq, slot)
    else:
        if _holds(sq, slot):
            code = _OK
        elif now - sq.due[slot] >= sq.timeout[slot]:
            code = _WAIT_TIMEOUT
        else:
            return False
    if sq.state[slot] != _RUNNING:  # the step stopped its own sequence (seq_stop)
        return False
    i = sq.step[slot]
    sq.steps_run += 1
    if code:
        sq.events.emit(_EV_SEQ_STEP_FAILED, slot, i, code)
        on_fail = sq.on_fail[slot]
        if on_fail == _SAFE:
            sq.modes.force_safe(_SAFE_SEQUENCE)
        if on_fail != _SKIP:
            sq.end(slot, _FAILED)
            return False
    else:
        sq.events.emit(_EV_SEQ_STEP, slot, i)
    if i + 1 >= sq.steps[slot]:
        sq.end(slot, _DONE)
        return False
    sq.step[slot] = i + 1
    sq.phase[slot] = _LOAD
    sq.due[slot] = sq.now_ms()  # the next step's delay counts from now
    sq.update_tlm()
    return True


def _read(sq, slot):
    # The current step's bytes into the step buffer; their length or 0.
    key = (slot << 8) | sq.step[slot]
    n = seqstore.read_step(sq.root, slot, sq.step[slot], sq.buf)
    sq.buf_slot = key if n else -1
    sq.buf_len = n
    return n


def _load(sq, slot):
    # Read the current step's timing and on_fail; the new phase, or -1 (unreadable: the run
    # fails as if the step had failed STOP).
    n = _read(sq, slot)
    dec = sq.dec
    try:
        if not n:
            raise ValueError
        dec.reset(sq.buf, 0, n)
        dec.array()
        if dec.uint() == 0:  # [0, delay_ms, command, [args], on_fail]
            sq.due[slot] += dec.uint()
            dec.uint()
            dec.skip()
            phase = _CMD
        else:  # [1, channel, op, value, timeout_ms, on_fail]
            sq.channel[slot] = dec.uint()
            sq.op[slot] = dec.uint()
            sq.value[slot] = dec.item()
            sq.timeout[slot] = dec.uint()
            sq.due[slot] = sq.now_ms()
            phase = _WAIT
        sq.on_fail[slot] = dec.uint()
    except Exception:  # flash damaged since the commit
        sq.events.emit(_EV_SEQ_STEP_FAILED, slot, sq.step[slot], _STORAGE_ERROR)
        sq.end(slot, _FAILED)
        return -1
    sq.phase[slot] = phase
    return phase


def _execute(sq, slot):
    # Run the current command step now: its code (0, a rejection or a failure code).
    if sq.buf_slot != (slot << 8) | sq.step[slot] and not _read(sq, slot):
        return _STORAGE_ERROR
    dec = sq.dec
    args = sq.args
    dec.reset(sq.buf, 0, sq.buf_len)
    dec.array()
    dec.uint()
    dec.uint()
    cmd = dec.uint()
    nargs = dec.array()
    code = read_args(dec, nargs, command_args(cmd), args)
    if code:
        return code
    code, _result = sq.dispatcher.execute(cmd, args)
    for i in range(_MAX_ARGS):
        args[i] = None
    return 0 if code < 0 else code  # PENDING: a downlink started, it goes on alone


def _holds(sq, slot):
    v = sq.tlm[sq.channel[slot]]
    x = sq.value[slot]
    op = sq.op[slot]
    if op == 0:
        return v < x
    if op == 1:
        return v <= x
    if op == 2:
        return v == x
    if op == 3:
        return v >= x
    if op == 4:
        return v > x
    return v != x


def _triggers(sq):
    tlm = sq.tlm
    mode = tlm[_CH_MODE]
    day = tlm[_CH_LUNAR_DAY]
    soc = tlm[_CH_BATTERY_SOC]
    prev_mode = sq.prev_mode
    sq.prev_mode = mode
    first = prev_mode < 0
    safe_entry = mode == _MODE_SAFE and prev_mode > _MODE_SAFE
    sunset = not first and sq.prev_day and not day
    sunrise = not first and day and not sq.prev_day
    sq.prev_day = day
    for slot in range(_SLOTS):
        t = sq.trigger[slot]
        if t == _T_NONE:
            continue
        if t == _T_BATTERY_BELOW:
            level = sq.level[slot]
            if first:
                sq.armed_now[slot] = soc >= level
                continue
            if not sq.armed_now[slot]:
                if soc >= sq.rearm[slot]:
                    sq.armed_now[slot] = 1
                continue
            if soc >= level:
                continue
            sq.armed_now[slot] = 0
        elif not ((t == _T_SAFE_ENTRY and safe_entry) or (t == _T_SUNSET and sunset)
                  or (t == _T_SUNRISE and sunrise)):
            continue
        _fire(sq, slot, t)


def _fire(sq, slot, t):
    if sq.state[slot] == _RUNNING:
        code = _BUSY
    elif not sq.steps[slot]:
        code = _NOT_FOUND
    else:
        code = _OK
    sq.events.emit(_EV_SEQ_TRIGGERED, slot, t, code)
    if code == _OK:
        sq.start(slot, t)
