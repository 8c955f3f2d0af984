"""Stored sequences' boot and the commands that write: upload, trigger, list, delete (SPEC
§12.2, §12.3, §12.5).

``boot(sq)`` reads the slots, triggers, upload and run marks at boot; ``check(sq, cmd, d)``
and ``run(sq, d)`` handle commands 32, 33, 34, 37, 38, 39. node.sequencer imports this module
for them and drops it again (when no upload is in progress), so its code and node.seqcheck's
take heap only while they work (their names stay interned: about half the cost). The
staging's RAM state (``sq.up_slot``, ``up_size``, ``up_digest``, ``up_held``) lives in the
sequencer, which outlasts this module.

Upload: a bulk uplink of ordinary commands, each authenticated and replay-checked like any
other before it gets here. The staging is in flash (node.seqstore): ``sequp.bin`` says what
is being uploaded, ``sequp.dat`` holds the bytes from 0 on. A begin that restarts removes the
data before it writes the new header, so a cut in between leaves the old header with no data
(0 bytes held), never another image's bytes under a new header; a cut during an append
leaves a prefix of the bytes sent (and the commit's SHA-256 check is the last word).

Checks (rejections, before `accepted`), in order: begin: digest a bstr (BAD_ARGUMENTS) of
32 bytes (OUT_OF_RANGE). part: data a bstr (BAD_ARGUMENTS) of 1..128 bytes (OUT_OF_RANGE), an
upload in progress for the slot (UPLOAD_STATE), offset + length within the announced size
(OUT_OF_RANGE), offset at or below the bytes held (UPLOAD_STATE). commit: an upload in
progress for the slot (UPLOAD_STATE), the slot not running (BUSY). delete: not running (BUSY).

The commit makes one buffer, the slot file's payload (about 550 bytes more than the image),
reads the image into it, hashes and validates it in place, fills in the header and writes it
atomically; nothing of it stays. Everything here allocates: commands only.
"""

import gc
import hashlib
import os
import struct
from array import array

from micropython import const

from node import seqstore, storage
from node.seqcheck import validate
from protocol.cbor_decoder import Decoder
from protocol.crc import crc32

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BAD_ARGUMENTS = const(2)
_BUSY = const(5)
_CH_BATTERY_SOC = const(11)
_CMD_SEQ_DELETE = const(39)
_CMD_SEQ_LIST = const(38)
_CMD_SEQ_TRIGGER = const(37)
_CMD_SEQ_UPLOAD_BEGIN = const(32)
_CMD_SEQ_UPLOAD_COMMIT = const(34)
_CMD_SEQ_UPLOAD_PART = const(33)
_EV_SEQ_INTERRUPTED = const(50)
_EV_SEQ_INVALID = const(49)
_EV_SEQ_STORED = const(48)
_INVALID_SEQUENCE = const(25)
_OK = const(0)
_OUT_OF_RANGE = const(3)
_STORAGE_ERROR = const(17)
_UPLOAD_MISMATCH = const(24)
_UPLOAD_STATE = const(15)

_RUNNING = const(2)  # SEQ_STATES
_FAILED = const(4)
_T_NONE = const(0)
_T_BATTERY_BELOW = const(4)
_SLOTS = const(4)
_DIGEST = const(32)
_MAX_PART = const(128)  # protocol.dictionary.SEQ_MAX_PART
_MAX_STEPS = const(256)
_CHUNK = const(128)
_HYSTERESIS_PCT = 1.0  # a BATTERY_BELOW trigger is armed again this far above its level


# --- boot -------------------------------------------------------------------------------


def boot(sq):
    """Read what the flash holds into the sequencer: slots (CRC-checked), triggers (armed
    again above their levels), the upload in progress, run marks (a run a reset cut:
    seq_interrupted, its slot FAILED, then cleared)."""
    root = sq.root
    for slot in range(_SLOTS):
        n, h = _load_slot(root, slot)
        sq.stored(slot, n, h)
    _load_triggers(root, sq.trigger, sq.level)
    up = _load_upload(root)
    if up is not None:
        sq.up_slot, sq.up_size, sq.up_digest = up
        sq.up_held = seqstore.upload_held(root, sq.up_size)
    for slot in range(_SLOTS):
        sq.rearm[slot] = sq.level[slot] + _HYSTERESIS_PCT
    runs = [0] * _SLOTS
    _load_runs(root, runs)
    if any(runs):
        for slot in range(_SLOTS):
            h = runs[slot]
            if h:  # slot was running sequence h when a reset came
                sq.events.emit(_EV_SEQ_INTERRUPTED, slot, h)
                if sq.steps[slot]:
                    sq.state[slot] = _FAILED
        try:
            sq.store_runs()  # all clear: nothing runs yet
        except OSError:  # reported again at the next boot: better than never
            pass
    sq.update_tlm()


def _load_slot(root, slot):
    """(steps, hash) of the sequence stored in slot, or (0, 0) when it is empty or its file
    is damaged (a damaged slot is empty: never half a sequence). Checks the file's CRC in
    chunks: nothing of the size of the image is allocated."""
    try:
        with open(seqstore.slot_path(root, slot), "rb") as f:
            head = f.read(seqstore.HEADER)
            if len(head) != seqstore.HEADER:
                return 0, 0
            magic, steps, size, h = struct.unpack_from("<4sHHI", head, 0)
            if magic != seqstore.MAGIC or steps < 1 or steps > _MAX_STEPS:
                return 0, 0
            crc = crc32(head)
            left = seqstore.IMAGE - seqstore.HEADER + size
            mv = memoryview(bytearray(_CHUNK))
            while left > 0:
                n = f.readinto(mv[0:min(left, _CHUNK)])
                if not n:
                    return 0, 0
                crc = crc32(mv[0:n], crc)
                left -= n
            tail = f.read(5)
            if len(tail) != 4 or struct.unpack("<I", tail)[0] != crc:
                return 0, 0
            return steps, h
    except (OSError, ValueError):
        return 0, 0


def _load_upload(root):
    """(slot, size, digest) of the upload in progress left in flash, or None."""
    status, meta = storage.read_checked(root, seqstore.UP_META)
    if status != storage.OK or meta is None or len(meta) != 35:
        return None
    return struct.unpack("<BH32s", meta)


def _load_triggers(root, triggers, levels):
    status, payload = storage.read_checked(root, seqstore.TRIG_FILE)
    if status != storage.OK or payload is None or len(payload) != 5 * _SLOTS:
        return
    for slot in range(_SLOTS):
        t, level = struct.unpack_from("<Bf", payload, 5 * slot)
        if t <= 4 and 0.0 <= level <= 100.0:
            triggers[slot] = t
            levels[slot] = level


def _load_runs(root, hashes):
    status, payload = storage.read_checked(root, seqstore.RUN_FILE)
    if status != storage.OK or payload is None or len(payload) != 4 * _SLOTS:
        return
    for slot in range(_SLOTS):
        hashes[slot] = struct.unpack_from("<I", payload, 4 * slot)[0]



# --- commands ---------------------------------------------------------------------------


def check(sq, cmd, d):
    args = d.args
    if cmd == _CMD_SEQ_UPLOAD_BEGIN:
        digest = args[2]
        if type(digest) is not bytes:
            return _BAD_ARGUMENTS
        return _OK if len(digest) == _DIGEST else _OUT_OF_RANGE
    if cmd == _CMD_SEQ_UPLOAD_PART:
        offset, data = args[1], args[2]
        if type(data) is not bytes:
            return _BAD_ARGUMENTS
        n = len(data)
        if n < 1 or n > _MAX_PART:
            return _OUT_OF_RANGE
        if sq.up_slot != args[0]:
            return _UPLOAD_STATE
        if offset + n > sq.up_size:
            return _OUT_OF_RANGE
        return _UPLOAD_STATE if offset > sq.up_held else _OK
    if cmd == _CMD_SEQ_UPLOAD_COMMIT and sq.up_slot != args[0]:
        return _UPLOAD_STATE
    if cmd == _CMD_SEQ_UPLOAD_COMMIT or cmd == _CMD_SEQ_DELETE:
        return _BUSY if sq.state[args[0]] == _RUNNING else _OK
    return _OK


def run(sq, d):
    cmd = d.cmd_id
    try:
        if cmd == _CMD_SEQ_UPLOAD_BEGIN:
            return _begin(sq, d)
        if cmd == _CMD_SEQ_UPLOAD_PART:
            return _part(sq, d)
        if cmd == _CMD_SEQ_UPLOAD_COMMIT:
            return _commit(sq, d)
        if cmd == _CMD_SEQ_TRIGGER:
            return _trigger(sq, d)
        if cmd == _CMD_SEQ_LIST:
            return _list(sq, d)
        return _delete(sq, d)
    finally:
        sq.update_tlm()


# --- upload -----------------------------------------------------------------------------


def _begin(sq, d):
    slot, size, digest = d.args[0], d.args[1], d.args[2]
    if slot == sq.up_slot and size == sq.up_size and digest == sq.up_digest:
        d.result = sq.up_held  # a resume
        return _OK
    root = sq.root
    try:
        discard(sq)  # data first, then the header (the module docstring)
        with open(storage.path(root, seqstore.UP_DATA), "wb"):
            pass
        storage.write_atomic(root, seqstore.UP_META, struct.pack("<BH32s", slot, size, digest))
    except OSError:
        discard(sq)
        return _STORAGE_ERROR
    sq.up_slot = slot
    sq.up_size = size
    sq.up_digest = digest
    sq.up_held = 0
    d.result = 0
    return _OK


def _part(sq, d):
    offset, data = d.args[1], d.args[2]
    held = sq.up_held
    skip = held - offset
    if skip < len(data):  # else all of it is held already: nothing to write
        try:
            with open(storage.path(sq.root, seqstore.UP_DATA), "ab") as f:
                f.write(memoryview(data)[skip:])
        except OSError:
            return _STORAGE_ERROR
        finally:
            sq.up_held = seqstore.upload_held(sq.root, sq.up_size)
    d.result = sq.up_held
    return _OK


def discard(sq):
    """Drop the upload in progress (staging files and RAM state)."""
    for name in (seqstore.UP_DATA, seqstore.UP_META):
        try:
            os.remove(storage.path(sq.root, name))
        except OSError:
            pass
    sq.up_slot = -1
    sq.up_size = 0
    sq.up_digest = b""
    sq.up_held = 0


def _commit(sq, d):
    slot = d.args[0]
    size = sq.up_size
    if sq.up_held < size:
        return _UPLOAD_MISMATCH  # bytes missing: the upload goes on
    gc.collect()  # the slot file is built in one buffer: give it a whole piece of heap
    payload = bytearray(seqstore.IMAGE + size)
    image = memoryview(payload)[seqstore.IMAGE:]
    try:
        with open(storage.path(sq.root, seqstore.UP_DATA), "rb") as f:
            if f.readinto(image) != size:
                return _STORAGE_ERROR
    except OSError:
        return _STORAGE_ERROR
    digest = hashlib.sha256(image).digest()
    if digest != sq.up_digest:
        discard(sq)
        return _UPLOAD_MISMATCH
    offsets = array("H", bytes(2 * (_MAX_STEPS + 1)))
    dec = Decoder(max_items=4 * size + 16, max_string=size)
    problem, steps = validate(dec, image, size, offsets, [None] * 4)
    if problem:
        discard(sq)
        sq.events.emit(_EV_SEQ_INVALID, slot, steps, problem)
        return _INVALID_SEQUENCE
    dec.reset(image, 0, size)
    dec.array()
    dec.uint()
    dec.uint()
    name = dec.text().encode()
    h = struct.unpack_from(">I", digest, 0)[0]
    struct.pack_into("<4sHHIB", payload, 0, seqstore.MAGIC, steps, size, h, len(name))
    payload[13:13 + len(name)] = name
    for i in range(steps + 1):
        struct.pack_into("<H", payload, seqstore.HEADER + 2 * i, offsets[i])
    try:
        storage.write_atomic(sq.root, seqstore.slot_name(slot), payload)
    except OSError:
        return _STORAGE_ERROR  # the old sequence is intact; the upload is kept
    discard(sq)
    sq.stored(slot, steps, h)
    sq.events.emit(_EV_SEQ_STORED, slot, h, steps)
    d.result = h
    return _OK


# --- slots and triggers -----------------------------------------------------------------


def _store_triggers(sq):
    payload = bytearray(5 * _SLOTS)
    for slot in range(_SLOTS):
        struct.pack_into("<Bf", payload, 5 * slot, sq.trigger[slot], sq.level[slot])
    storage.write_atomic(sq.root, seqstore.TRIG_FILE, payload)


def _set_trigger(sq, slot, trigger, level):
    # Set and persist; the old setting stays when the flash write fails.
    old_t = sq.trigger[slot]
    old_level = sq.level[slot]
    if trigger == old_t and level == old_level:
        return _OK  # as it is: no flash write (the HIL known state sets NONE each test)
    sq.trigger[slot] = trigger
    sq.level[slot] = level
    try:
        _store_triggers(sq)
    except OSError:
        sq.trigger[slot] = old_t
        sq.level[slot] = old_level
        return _STORAGE_ERROR
    # the new level: the re-arm level, and armed if the charge is at or above it
    sq.rearm[slot] = level + _HYSTERESIS_PCT
    sq.armed_now[slot] = sq.tlm[_CH_BATTERY_SOC] >= level
    return _OK


def _trigger(sq, d):
    trigger = d.args[1]
    return _set_trigger(sq, d.args[0], trigger,
                        d.args[2] if trigger == _T_BATTERY_BELOW else 0.0)


def _name(sq, slot):
    if not sq.steps[slot]:
        return ""
    try:
        with open(seqstore.slot_path(sq.root, slot), "rb") as f:
            head = f.read(seqstore.HEADER)
        return str(head[13:13 + head[12]], "utf-8")
    except (OSError, ValueError, IndexError):
        return ""


def _list(sq, d):
    d.result = [[sq.state[s], sq.step[s], sq.hash[s], sq.steps[s], _name(sq, s),
                 sq.trigger[s], sq.level[s]] for s in range(_SLOTS)]
    return _OK


def _delete(sq, d):
    slot = d.args[0]
    try:
        os.remove(seqstore.slot_path(sq.root, slot))
    except OSError:  # already empty
        pass
    sq.stored(slot, 0, 0)
    return _set_trigger(sq, slot, _T_NONE, 0.0)
