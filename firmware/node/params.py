"""Parameters: typed, range-checked values, persisted atomically (storage.write_atomic).

Values live in a list indexed by parameter id (``get(pid)``). Types, ranges, defaults and
which are persisted come from protocol.node_dictionary.PARAMS. ``set`` checks with the same
rule as a command argument (SPEC §5.1: an f32 takes an int or float, rounded to single
precision). Services watch a parameter with ``watch(pid, fn)``: fn(value) runs after every
change, at boot included.

File ``params.bin`` (payload then CRC-32): b"PRM1", then per persisted parameter
``<B id><B type><8 bytes value>`` (``<q`` for bool and ints, ``<f`` and 4 zero bytes for f32).
At boot a missing file, a bad CRC or a bad header means defaults and a params_defaulted event
with reason 1 (missing), 2 (corrupt); a value out of its range or of the wrong type resets that
one parameter and gives reason 3 (invalid value). Host overrides (board.config: seed,
time_factor) are applied in RAM after loading and are never saved unless param_save is sent.

Commands: param_get (failed NOT_FOUND for an unknown id; sends a parameter message, completed
carries the value), param_set (rejected BAD_ARGUMENTS / OUT_OF_RANGE for a bad value, failed
NOT_FOUND for an unknown id; sends the new value and a param_changed event), param_save
(STORAGE_ERROR if the flash write fails), param_load (NOT_FOUND if no file, STORAGE_ERROR if
corrupt; RAM untouched then), param_reset. Allocates: boot and commands only; get() does not.
"""

import struct

from micropython import const

from protocol import messages as M
from protocol.ids import (
    CMD_PARAM_GET,
    CMD_PARAM_LOAD,
    CMD_PARAM_RESET,
    CMD_PARAM_SAVE,
    CMD_PARAM_SET,
    EV_PARAM_CHANGED,
    EV_PARAM_RESET,
    EV_PARAMS_DEFAULTED,
    EV_PARAMS_LOADED,
    EV_PARAMS_SAVED,
)
from protocol.node_dictionary import PARAMS

from node import storage

FILE = "params.bin"
_MAGIC = b"PRM1"
_ENTRY = const(10)
REASON_MISSING = const(1)
REASON_CORRUPT = const(2)
REASON_INVALID = const(3)


def check(pid, value):
    """(code, value): code 0 with the value as stored (f32 rounded), or a reason code."""
    spec = PARAMS[pid] if 0 < pid < len(PARAMS) else None
    if spec is None:
        return M.NOT_FOUND, None
    t = spec[0]
    if t == M.TYPE_F32 and (type(value) is int or type(value) is float) \
            and type(value) is not bool:
        value = M.f32(float(value))
    return M.check_arg(value, t, spec[2], spec[3]), value


class Params:
    def __init__(self, root):
        self.root = root
        n = len(PARAMS)
        self.values = [None] * n
        self._watch = [None] * n
        self.events = None  # set by the app once the event service exists
        self.link = None
        self.load_status = storage.OK  # outcome of the boot load, for the boot events
        self.load_count = 0
        self.reset()

    def get(self, pid):
        return self.values[pid]

    def watch(self, pid, fn):
        self._watch[pid] = fn

    def _notify(self, pid):
        fn = self._watch[pid]
        if fn is not None:
            fn(self.values[pid])

    def notify_all(self):
        for pid in range(1, len(PARAMS)):
            self._notify(pid)

    def set(self, pid, value):
        """Set after checking; return 0 or a reason code. Watchers run."""
        code, value = check(pid, value)
        if code:
            return code
        self.values[pid] = value
        self._notify(pid)
        return M.OK

    def reset(self):
        for pid in range(1, len(PARAMS)):
            if PARAMS[pid] is not None:
                self.values[pid] = PARAMS[pid][1]

    # --- persistence --------------------------------------------------------------------

    def save(self):
        """Persist the persisted parameters; return how many. Raises OSError."""
        out = bytearray(_MAGIC)
        count = 0
        for pid in range(1, len(PARAMS)):
            spec = PARAMS[pid]
            if spec is None or not spec[4]:
                continue
            v = self.values[pid]
            if spec[0] == M.TYPE_F32:
                out += struct.pack("<BBf4x", pid, spec[0], v)
            else:
                out += struct.pack("<BBq", pid, spec[0], int(v))
            count += 1
        storage.write_atomic(self.root, FILE, out)
        return count

    def load(self):
        """(status, count, invalid): status storage.OK/MISSING/CORRUPT; RAM changes only on OK."""
        status, payload = storage.read_checked(self.root, FILE)
        if status == storage.OK and (payload[:4] != _MAGIC or (len(payload) - 4) % _ENTRY):
            status = storage.CORRUPT
        if status != storage.OK:
            return status, 0, 0
        self.reset()
        count = invalid = 0
        for off in range(4, len(payload), _ENTRY):
            pid, t = payload[off], payload[off + 1]
            spec = PARAMS[pid] if 0 < pid < len(PARAMS) else None
            if spec is None or spec[0] != t or not spec[4]:
                invalid += 1
                continue
            if t == M.TYPE_F32:
                v = struct.unpack_from("<f", payload, off + 2)[0]
            else:
                v = struct.unpack_from("<q", payload, off + 2)[0]
                if t == M.TYPE_BOOL:
                    v = bool(v) if v in (0, 1) else None
            code, v = check(pid, v)
            if code:
                invalid += 1
                continue
            self.values[pid] = v
            count += 1
        return status, count, invalid

    def boot(self, config):
        """Load at boot (defaults on failure), apply host overrides; watchers run later."""
        status, count, invalid = self.load()
        if status != storage.OK:
            self.reset()
        self.load_status = status
        self.load_count = count
        self.load_invalid = invalid
        seed = config.get("seed")
        if seed is not None:
            self.set(11, seed)  # plant_seed
        tf = config.get("time_factor")
        if tf is not None:
            self.set(1, tf)  # time_factor

    def boot_events(self, events):
        status = self.load_status
        if status == storage.MISSING:
            events.emit(EV_PARAMS_DEFAULTED, REASON_MISSING)
        elif status == storage.CORRUPT:
            events.emit(EV_PARAMS_DEFAULTED, REASON_CORRUPT)
        else:
            if self.load_invalid:
                events.emit(EV_PARAMS_DEFAULTED, REASON_INVALID)
            events.emit(EV_PARAMS_LOADED, self.load_count)

    # --- commands -----------------------------------------------------------------------

    def register(self, dispatcher, link, events):
        self.link = link
        self.events = events
        dispatcher.register(CMD_PARAM_GET, self._cmd_get)
        dispatcher.register(CMD_PARAM_SET, self._cmd_set, _check_set)
        dispatcher.register(CMD_PARAM_SAVE, self._cmd_save)
        dispatcher.register(CMD_PARAM_LOAD, self._cmd_load)
        dispatcher.register(CMD_PARAM_RESET, self._cmd_reset)

    def send(self, pid):
        """Send a parameter message (SPEC §5.5) with the current value."""
        v = self.values[pid]
        enc = self.link.begin(M.KIND_PARAMETER, pid)
        enc.array(1)
        if PARAMS[pid][0] == M.TYPE_F32:
            enc.float32(v)
        else:
            enc.item(v)
        self.link.end()

    def _cmd_get(self, d):
        pid = d.args[0]
        if pid >= len(PARAMS) or PARAMS[pid] is None:
            return M.NOT_FOUND
        self.send(pid)
        d.result = self.values[pid]
        return M.OK

    def _cmd_set(self, d):
        pid = d.args[0]
        code = self.set(pid, d.args[1])
        if code:
            return code  # NOT_FOUND: the check let unknown ids through to fail here
        self.send(pid)
        self.events.emit(EV_PARAM_CHANGED, pid)
        return M.OK

    def _cmd_save(self, d):
        try:
            count = self.save()
        except OSError:
            return M.STORAGE_ERROR
        self.events.emit(EV_PARAMS_SAVED, count)
        return M.OK

    def _cmd_load(self, d):
        old = list(self.values)
        status, count, invalid = self.load()
        if status == storage.MISSING:
            return M.NOT_FOUND
        if status != storage.OK:
            return M.STORAGE_ERROR
        self._notify_changed(old)
        self.events.emit(EV_PARAMS_LOADED, count)
        return M.OK

    def _cmd_reset(self, d):
        old = list(self.values)
        self.reset()
        self._notify_changed(old)
        self.events.emit(EV_PARAM_RESET)
        return M.OK

    def _notify_changed(self, old):
        for pid in range(1, len(PARAMS)):
            if old[pid] != self.values[pid]:
                self._notify(pid)


def _check_set(d):
    # Reject a bad value for a known parameter; an unknown id is accepted and fails NOT_FOUND.
    code, value = check(d.args[0], d.args[1])
    if code == M.NOT_FOUND:
        return M.OK
    return code
