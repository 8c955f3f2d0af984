"""Parameters: typed, range-checked values, persisted atomically (storage.write_atomic).

Values live in a list indexed by parameter id (``get(pid)``). Types, ranges, defaults and
which are persisted come from protocol.node_dictionary (param()). ``set`` checks with the same
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

from micropython import const

import node
from node import storage
from protocol.envelope import check_arg, f32
from protocol.node_dictionary import NO_RECORD, PARAM_TYPES, param

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CMD_PARAM_GET = const(7)
_CMD_PARAM_LOAD = const(10)
_CMD_PARAM_RESET = const(11)
_CMD_PARAM_SAVE = const(9)
_CMD_PARAM_SET = const(8)
_EV_PARAMS_DEFAULTED = const(10)
_EV_PARAMS_LOADED = const(28)
_EV_PARAM_CHANGED = const(12)
_KIND_PARAMETER = const(4)
_NOT_FOUND = const(19)
_OK = const(0)
_TYPE_F32 = const(5)

FILE = "params.bin"
_REASON_MISSING = const(1)
_REASON_CORRUPT = const(2)
_REASON_INVALID = const(3)


def check(pid, value):
    """(code, value): code 0 with the value as stored (f32 rounded), or a reason code."""
    spec = param(pid) if 0 < pid < len(PARAM_TYPES) else None
    if spec is None:
        return _NOT_FOUND, None
    t = spec[0]
    if t == _TYPE_F32 and (type(value) is int or type(value) is float) \
            and type(value) is not bool:
        value = f32(float(value))
    return check_arg(value, t, spec[2], spec[3]), value


class Params:
    def __init__(self, root):
        self.root = root
        n = len(PARAM_TYPES)
        self.values: list = [None] * n
        self._watch: list = [None] * n
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
        for pid in range(1, len(PARAM_TYPES)):
            self._notify(pid)

    def notify_changed(self, old):
        for pid in range(1, len(PARAM_TYPES)):
            if old[pid] != self.values[pid]:
                self._notify(pid)

    def set(self, pid, value):
        """Set after checking; return 0 or a reason code. Watchers run."""
        code, value = check(pid, value)
        if code:
            return code
        self.values[pid] = value
        self._notify(pid)
        return _OK

    def reset(self):
        for pid in range(1, len(PARAM_TYPES)):
            spec = param(pid)
            if spec is not None:
                self.values[pid] = spec[1]

    # --- persistence --------------------------------------------------------------------

    def save(self):
        """Persist the persisted parameters; return how many. Raises OSError."""
        return node.call("paramfile", "save", self)

    def load(self):
        """(status, count, invalid): status storage.OK/MISSING/CORRUPT; RAM changes only on OK."""
        return node.call("paramfile", "load", self)

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
            events.emit(_EV_PARAMS_DEFAULTED, _REASON_MISSING)
        elif status == storage.CORRUPT:
            events.emit(_EV_PARAMS_DEFAULTED, _REASON_CORRUPT)
        else:
            if self.load_invalid:
                events.emit(_EV_PARAMS_DEFAULTED, _REASON_INVALID)
            events.emit(_EV_PARAMS_LOADED, self.load_count)

    def send(self, link, pid):
        """Send a parameter message (SPEC §5.5) with the current value."""
        v = self.values[pid]
        enc = link.begin(_KIND_PARAMETER, pid)
        enc.array(1)
        if PARAM_TYPES[pid] == _TYPE_F32:
            enc.float32(v)
        else:
            enc.item(v)
        link.end()


class ParamCommands:
    """param_get, param_set, param_save, param_load, param_reset."""

    def __init__(self, params, link, events):
        self.params = params
        self.link = link
        self.events = events

    def register(self, dispatcher):
        dispatcher.register(_CMD_PARAM_GET, self._get)
        dispatcher.register(_CMD_PARAM_SET, self._set, _check_set)
        lazy = node.Lazy(self, "paramfile")  # the rarely sent ones
        dispatcher.register(_CMD_PARAM_SAVE, lazy)
        dispatcher.register(_CMD_PARAM_LOAD, lazy)
        dispatcher.register(_CMD_PARAM_RESET, lazy)

    def _get(self, d):
        pid = d.args[0]
        if pid >= len(PARAM_TYPES) or PARAM_TYPES[pid] == NO_RECORD:
            return _NOT_FOUND
        self.params.send(self.link, pid)
        d.result = self.params.get(pid)
        return _OK

    def _set(self, d):
        pid = d.args[0]
        code = self.params.set(pid, d.args[1])
        if code:
            return code  # NOT_FOUND: the check let unknown ids through to fail here
        self.params.send(self.link, pid)
        self.events.emit(_EV_PARAM_CHANGED, pid)
        return _OK


def _check_set(d):
    # Reject a bad value for a known parameter; an unknown id is accepted and fails NOT_FOUND.
    code, _value = check(d.args[0], d.args[1])
    if code == _NOT_FOUND:
        return _OK
    return code
