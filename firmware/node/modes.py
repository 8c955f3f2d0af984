"""Modes (SPEC §8): BOOT → SAFE → NOMINAL ↔ SCIENCE; fault protection may force SAFE.

set_mode allows SAFE→NOMINAL, NOMINAL→SCIENCE, SCIENCE→NOMINAL and any mode → SAFE (SAFE→SAFE
completes without a change); anything else fails INVALID_TRANSITION. Entering SCIENCE needs
battery_soc >= science_min_soc_pct: otherwise the command fails INHIBITED (the transition is
legal, the node's state forbids it now).

Every change updates the mode channel and the LED and emits mode_changed(old, new). Leaving
SCIENCE switches the payloads off (they may only run in SCIENCE). ``force_safe(reason)`` (FDIR,
task crashes) emits safe_mode(reason) and enters SAFE, once: nothing happens when already SAFE.
The reason is a code of the dictionary's SAFE_REASONS (protocol.ids SAFE_*): FDIR gives
SAFE_LOW_CHARGE, the task supervisor SAFE_TASK_CRASH. The set_mode command itself is in
node.admin (imported per command).
"""

from micropython import const

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_MODE = const(1)
_EV_MODE_CHANGED = const(2)
_EV_SAFE_MODE = const(9)
_LOAD_PAYLOAD_A = const(4)
_LOAD_PAYLOAD_B = const(5)
_MODE_BOOT = const(0)
_MODE_SAFE = const(1)
_MODE_SCIENCE = const(3)


class Modes:
    def __init__(self, tlm, board, events, params):
        self.current = _MODE_BOOT
        self.tlm = tlm
        self.board = board
        self.events = events
        self.params = params
        self.plant = None  # attach(): the plant is built after the modes
        tlm[_CH_MODE] = _MODE_BOOT
        board.set_led(_MODE_BOOT)

    def attach(self, plant):
        self.plant = plant

    def enter(self, new):
        old = self.current
        if new == old:
            return
        if old == _MODE_SCIENCE and self.plant is not None:
            self.plant.switch(_LOAD_PAYLOAD_A, False)
            self.plant.switch(_LOAD_PAYLOAD_B, False)
        self.current = new
        self.tlm[_CH_MODE] = new
        self.board.set_led(new)
        self.events.emit(_EV_MODE_CHANGED, old, new)

    def force_safe(self, reason):
        if self.current == _MODE_SAFE:
            return
        self.events.emit(_EV_SAFE_MODE, reason)
        self.enter(_MODE_SAFE)
