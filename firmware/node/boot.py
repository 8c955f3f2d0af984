"""The node's power-up: what it does once, in a module imported for it and let go after.

- ``next_boot_count(root)``: the boot count +1, persisted (boot.bin); ``make_store()``: the
  telemetry store;
- ``build(app, board)``: every service built around the board and registered with the
  dispatcher, in dependency order, set on the node.app.App (which then makes its tasks). It
  imports the services itself: the two below also run for a service built on its own (a
  test, a bench), which need not import the whole node.
- ``load_keys(auth)``: node.auth's key table. keys.bin (CBOR [[operator, master, generation],
  ...]) into the per-slot tables, each operator's counter reservation, then keygen.bin's
  rotations and revocations (node.keyops, only when the file exists). A missing or corrupt
  table leaves the board open (a corrupt one says so loudly); a malformed one keeps the keys
  read before the fault.
- ``open_log(log)``: node.eventlog's ring opened (created if missing) and scanned for the
  newest valid record; numbering continues after it, or at the flash mark if that is higher.
- ``start(app)``: once the node runs (node.app.App.boot), the boot events, the time-tagged
  queue loaded (node.ttmanage, only when the flash holds entries: an entry a reset cut
  mid-execution is settled, its events after the boot event) and the sequences' slots
  (node.sequencer.boot), then SAFE.

On a stock Pico a module's bytecode stays in the heap while the module is held: this code runs
once per boot, so nothing holds it (node.call). Everything here allocates.
"""

import os
import struct

from micropython import const

import node
from node import storage
from node.auth import KEYGEN_FILE, NONE, counter_file, mac_key
from node.eventlog import valid_seq
from protocol import cose
from protocol.cbor_decoder import Decoder
from protocol.crc import crc32
from protocol.node_dictionary import CHANNEL_TYPES, DICT_HASH

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_DICT_HASH = const(3)
_CH_MAX = const(63)
_EV_BOOT = const(1)
_EV_WATCHDOG_RESET = const(14)
_MODE_SAFE = const(1)
_PARAM_PLANT_SEED = const(11)
_RESET_WATCHDOG = const(1)
_TYPE_BOOL = const(0)
_TYPE_F32 = const(5)

_TLM_SIZE = const(64)  # channel ids 0..63 (plant/FDIR contract: size >= 50)

_KEYS_FILE = const("keys.bin")  # node.auth's
_MAX_KEYS = const(8)
_WINDOW_MASK = const(0xFFFFFF)  # node.auth's replay window: every counter in it accepted
_SLOTS = const(256)  # node.eventlog's ring: its slots, the bytes of one
_SLOT_SIZE = const(48)
_LOG_SEQ_FILE = const("evseq.bin")  # its numbering mark
_TT_PAUSE_FILE = const("ttpause.bin")  # node.ttqueue's held state
_BOOT_FILE = const("boot.bin")


def build(app, board):
    """The services, built and registered, as app's attributes (node.app.App declares them)."""
    from node import commands
    from node.auth import Auth
    from node.bulk import Bulk
    from node.dispatcher import Dispatcher
    from node.eventlog import EventLog
    from node.events import Events
    from node.fdir import Fdir
    from node.housekeeping import Housekeeping
    from node.link import Link
    from node.modes import Modes
    from node.params import ParamCommands, Params
    from node.plant import Plant
    from node.sequencer import Sequencer
    from node.telemetry import Telemetry
    from node.timesvc import TimeService
    from node.ttqueue import TimeTagQueue

    root = board.fs_root
    app.clock = clock = TimeService(board)
    app.tlm = tlm = make_store()
    app.boot_count = boot_count = next_boot_count(root)
    app.reset_cause = reset_cause = board.reset_cause()
    app.params = params = Params(root)
    params.boot(board.config)
    app.link = link = Link(board, clock, tlm)
    app.log = log = EventLog(root, board.fs_sync, boot_count)
    app.events = events = Events(link, tlm, clock, log, params)
    events.start(log.open())
    app.modes = modes = Modes(tlm, board, events, params)
    app.plant = plant = Plant(tlm, events.emit, params.get(_PARAM_PLANT_SEED))
    if board.mcu_temp_c() is not None:
        plant.mcu_temp_source = board.mcu_temp_c
    modes.attach(plant)
    app.fdir = Fdir(tlm, plant, modes, events.emit, params)
    app.telemetry = telemetry = Telemetry(tlm, clock, link, boot_count, reset_cause)
    app.board_node_id = board.node_id()
    app.hk = Housekeeping(link, telemetry, params, clock)
    app.auth = auth = Auth(root, tlm, events, clock.now_ms)
    app.dispatcher = d = Dispatcher(link, modes, events, tlm, boot_count, auth, params)
    auth.register(d)
    app.bulk = bulk = Bulk(link, log, d)
    ParamCommands(params, link, events).register(d)
    clock.attach(tlm)
    bulk.register(d)
    app.timetag = tt = TimeTagQueue(root, clock, d, events, log, params, tlm, bulk)
    tt.register(d)
    commands.register(app, d)
    app.sequencer = sq = Sequencer(root, tlm, events, modes, d, clock.now_ms)
    sq.register(d)


def next_boot_count(root):
    """Read the boot count, add one, persist it; return the new count (1 on first boot).

    1..65535 (the boot_count channel is a u16), wrapping from 65535 to 1: 0 is never a boot,
    so a ground that does not know the boot yet binds its command to 0 (SPEC §5.1)."""
    status, payload = storage.read_checked(root, _BOOT_FILE)
    ok = status == storage.OK and payload is not None and len(payload) == 4
    count = struct.unpack("<I", payload)[0] if ok else 0
    count = count % 0xFFFF + 1  # 1..65535: the boot_count channel is a u16, 0 is no boot
    try:
        storage.write_atomic(root, _BOOT_FILE, struct.pack("<I", count))
    except OSError:
        pass  # counted in RAM for this boot; the flash problem shows as params errors too
    return count


def make_store():
    """The telemetry store (node.telemetry): a zero of the right type in every channel."""
    tlm: list = [0] * max(_TLM_SIZE, _CH_MAX + 1)
    for ch in range(len(CHANNEL_TYPES)):
        t = CHANNEL_TYPES[ch]
        if t == _TYPE_F32:
            tlm[ch] = 0.0
        elif t == _TYPE_BOOL:
            tlm[ch] = False
    tlm[_CH_DICT_HASH] = DICT_HASH
    return tlm


# --- node.auth's key table ------------------------------------------------------------------

def load_keys(auth):
    root = auth.root
    status, payload = storage.read_checked(root, _KEYS_FILE)
    if status != storage.OK or payload is None:
        return
    dec = Decoder()
    try:
        dec.reset(payload)
        n = dec.array()
        for _ in range(min(n, _MAX_KEYS)):
            if dec.array() != 3:
                return
            operator = dec.uint()
            master = dec.bytes()
            generation = dec.uint()
            if operator > 255 or generation > 255 or len(master) != cose.KEY_BYTES:
                continue
            auth._masters.append(master)
            auth.keys.append(mac_key(master, operator, generation))
            auth.old.append(None)
            auth.gen.append(generation)
            auth.prev.append(NONE)
            auth.floor.append(0)
            auth.operators.append(operator)
            r = _read_reserved(root, operator)
            auth.reserved.append(r)
            auth.high.append(r)  # every counter up to R counts as accepted (§10.4)
            auth.mask.append(_WINDOW_MASK)
    except Exception:  # a malformed table: keep the keys read so far
        pass
    auth._table_crc = crc32(payload)
    status, payload = storage.read_checked(root, KEYGEN_FILE)
    if status == storage.OK:  # keys rotated or revoked since provisioning
        node.call("keyops", "load", auth, payload)  # only then, let go after


def _read_reserved(root, operator):
    status, payload = storage.read_checked(root, counter_file(operator))
    if status == storage.OK and payload is not None and len(payload) == 4:
        return struct.unpack("<I", payload)[0]
    if status == storage.CORRUPT:  # cannot happen with atomic writes; be safe anyway
        return cose.MAX_COUNTER
    return 0


# --- node.eventlog's boot scan --------------------------------------------------------------

def open_log(log):
    try:
        f = open(log.path, "r+b")
    except OSError:
        zeros = bytes(_SLOT_SIZE)
        with open(log.path, "wb") as f:
            for _ in range(_SLOTS):
                f.write(zeros)
        f = open(log.path, "r+b")
    log._f = f
    newest = -1
    stored = 0
    slot = bytearray(_SLOT_SIZE)
    f.seek(0)
    for _ in range(_SLOTS):
        if f.readinto(slot) != _SLOT_SIZE:
            break
        seq = valid_seq(slot)
        if seq >= 0:
            stored += 1
            if seq > newest:
                newest = seq
    log.newest = newest
    log.stored = stored
    first = newest + 1
    status, payload = storage.read_checked(log.root, _LOG_SEQ_FILE)
    if status == storage.OK and payload is not None and len(payload) == 4:
        mark = struct.unpack("<I", payload)[0]
        if mark > first:
            first = mark
    log._reserve(first)
    return first


# --- once the node runs ---------------------------------------------------------------------

def start(app):
    events = app.events
    events.emit(_EV_BOOT, app.boot_count, app.reset_cause)
    if app.reset_cause == _RESET_WATCHDOG:
        events.emit(_EV_WATCHDOG_RESET)
    app.params.boot_events(events)
    app.auth.boot()
    _load_timetags(app.timetag)  # entries a reset cut mid-execution: reported, never rerun
    app.sequencer.boot()  # runs a reset cut: seq_interrupted
    app.modes.enter(_MODE_SAFE)


def _load_timetags(q):
    status, payload = storage.read_checked(q.root, _TT_PAUSE_FILE)
    q.paused = status == storage.OK and payload == b"\x01"
    if any(n.startswith("tt") and n.endswith(".bin") for n in os.listdir(q.root)):
        node.call("ttmanage", "load", q)
    q.plan()
    q.update_tlm()
