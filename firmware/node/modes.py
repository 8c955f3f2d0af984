"""Modes (SPEC §8): BOOT → SAFE → NOMINAL ↔ SCIENCE; fault protection may force SAFE.

set_mode allows SAFE→NOMINAL, NOMINAL→SCIENCE, SCIENCE→NOMINAL and any mode → SAFE (SAFE→SAFE
completes without a change); anything else fails INVALID_TRANSITION. Entering SCIENCE needs
battery_soc >= science_min_soc_pct: otherwise the command fails INHIBITED (the transition is
legal, the node's state forbids it now).

Every change updates the mode channel and the LED and emits mode_changed(old, new). Leaving
SCIENCE switches the payloads off (they may only run in SCIENCE). ``force_safe(reason)`` (FDIR,
task crashes) emits safe_mode(reason) and enters SAFE, once: nothing happens when already SAFE.
Safe-mode reasons used by the node itself: REASON_TASK_CRASH (a task crashed).
"""

from micropython import const

from protocol import messages as M
from protocol.ids import (
    CH_BATTERY_SOC,
    CH_MODE,
    CMD_SET_MODE,
    EV_MODE_CHANGED,
    EV_SAFE_MODE,
    LOAD_PAYLOAD_A,
    LOAD_PAYLOAD_B,
    MODE_BOOT,
    MODE_NOMINAL,
    MODE_SAFE,
    MODE_SCIENCE,
    PARAM_SCIENCE_MIN_SOC_PCT,
)

REASON_TASK_CRASH = const(100)  # FDIR's own reasons are below 100


class Modes:
    def __init__(self, tlm, board):
        self.current = MODE_BOOT
        self.tlm = tlm
        self.board = board
        self.events = None
        self.params = None
        self.plant = None
        tlm[CH_MODE] = MODE_BOOT
        board.set_led(MODE_BOOT)

    def attach(self, events, params, plant):
        self.events = events
        self.params = params
        self.plant = plant

    def register(self, dispatcher):
        dispatcher.register(CMD_SET_MODE, self._cmd_set_mode)

    def enter(self, new):
        old = self.current
        if new == old:
            return
        if old == MODE_SCIENCE and self.plant is not None:
            self.plant.switch(LOAD_PAYLOAD_A, False)
            self.plant.switch(LOAD_PAYLOAD_B, False)
        self.current = new
        self.tlm[CH_MODE] = new
        self.board.set_led(new)
        if self.events is not None:
            self.events.emit(EV_MODE_CHANGED, old, new)

    def force_safe(self, reason):
        if self.current == MODE_SAFE:
            return
        if self.events is not None:
            self.events.emit(EV_SAFE_MODE, reason)
        self.enter(MODE_SAFE)

    def _cmd_set_mode(self, d):
        new = d.args[0]
        old = self.current
        if new == MODE_SAFE:
            self.enter(MODE_SAFE)
            return M.OK
        if not ((old == MODE_SAFE and new == MODE_NOMINAL)
                or (old == MODE_NOMINAL and new == MODE_SCIENCE)
                or (old == MODE_SCIENCE and new == MODE_NOMINAL)):
            return M.INVALID_TRANSITION
        if new == MODE_SCIENCE and \
                self.tlm[CH_BATTERY_SOC] < self.params.get(PARAM_SCIENCE_MIN_SOC_PCT):
            return M.INHIBITED
        self.enter(new)
        return M.OK
