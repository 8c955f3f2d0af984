"""The sequence upload: a bulk uplink of ordinary commands (SPEC §12.2, §12.3).

seq_upload_begin (resume or restart), seq_upload_part (append at or below the bytes held),
seq_upload_commit (size, SHA-256, validation, atomic store into the slot). The staging
(node.seqstore) is in flash, so an upload survives reboots and power cuts; every part is a
command, authenticated and replay-checked like any other before it reaches this module.

Checks (rejections, before `accepted`), in order: begin: digest a bstr (BAD_ARGUMENTS) of
32 bytes (OUT_OF_RANGE). part: data a bstr (BAD_ARGUMENTS) of 1..128 bytes (OUT_OF_RANGE), an
upload in progress for the slot (UPLOAD_STATE), offset + length within the announced size
(OUT_OF_RANGE), offset at or below the bytes held (UPLOAD_STATE). commit: an upload in
progress for the slot (UPLOAD_STATE), the slot not running (BUSY).

Allocates: commands only (the commit reads the image into a buffer of its size, hashes it
and decodes it step by step; nothing of it stays).
"""

import hashlib
import struct

from micropython import const

from node.seqcheck import validate
from protocol.cbor_decoder import Decoder

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_BAD_ARGUMENTS = const(2)
_BUSY = const(5)
_CMD_SEQ_UPLOAD_BEGIN = const(32)
_CMD_SEQ_UPLOAD_COMMIT = const(34)
_CMD_SEQ_UPLOAD_PART = const(33)
_EV_SEQ_INVALID = const(49)
_EV_SEQ_STORED = const(48)
_INVALID_SEQUENCE = const(25)
_OK = const(0)
_OUT_OF_RANGE = const(3)
_STORAGE_ERROR = const(17)
_UPLOAD_MISMATCH = const(24)
_UPLOAD_STATE = const(15)

_RUNNING = const(2)  # SEQ_STATES
_DIGEST = const(32)
_MAX_PART = const(128)  # protocol.dictionary.SEQ_MAX_PART
_MAX_STEPS = const(256)
_CHUNK = const(128)


class SeqUpload:
    def __init__(self, sequencer, events):
        self.seq = sequencer
        self.store = sequencer.store
        self.events = events

    def register(self, d):
        d.register(_CMD_SEQ_UPLOAD_BEGIN, self._cmd_begin, self._check_begin)
        d.register(_CMD_SEQ_UPLOAD_PART, self._cmd_part, self._check_part)
        d.register(_CMD_SEQ_UPLOAD_COMMIT, self._cmd_commit, self._check_commit)

    # --- checks -------------------------------------------------------------------------

    def _check_begin(self, d):
        digest = d.args[2]
        if type(digest) is not bytes:
            return _BAD_ARGUMENTS
        return _OK if len(digest) == _DIGEST else _OUT_OF_RANGE

    def _check_part(self, d):
        slot, offset, data = d.args[0], d.args[1], d.args[2]
        if type(data) is not bytes:
            return _BAD_ARGUMENTS
        n = len(data)
        if n < 1 or n > _MAX_PART:
            return _OUT_OF_RANGE
        store = self.store
        if store.up_slot != slot:
            return _UPLOAD_STATE
        if offset + n > store.up_size:
            return _OUT_OF_RANGE
        return _UPLOAD_STATE if offset > store.up_held else _OK

    def _check_commit(self, d):
        slot = d.args[0]
        if self.store.up_slot != slot:
            return _UPLOAD_STATE
        return _BUSY if self.seq.state[slot] == _RUNNING else _OK

    # --- handlers -----------------------------------------------------------------------

    def _cmd_begin(self, d):
        try:
            d.result = self.store.begin_upload(d.args[0], d.args[1], d.args[2])
        except OSError:
            self.store.discard_upload()
            return _STORAGE_ERROR
        finally:
            self.seq.update_tlm()
        return _OK

    def _cmd_part(self, d):
        try:
            d.result = self.store.append(d.args[1], d.args[2])
        except OSError:
            return _STORAGE_ERROR
        finally:
            self.seq.update_tlm()
        return _OK

    def _cmd_commit(self, d):
        slot = d.args[0]
        store = self.store
        size = store.up_size
        if store.up_held < size:
            return _UPLOAD_MISMATCH  # bytes missing: the upload goes on
        image = bytearray(size)
        if store.read_upload(image) != size:
            return _STORAGE_ERROR
        digest = hashlib.sha256(image).digest()
        if digest != store.up_digest:
            store.discard_upload()
            self.seq.update_tlm()
            return _UPLOAD_MISMATCH
        offsets = [0] * (_MAX_STEPS + 1)
        dec = Decoder(max_items=4 * size + 16, max_string=size)
        problem, step = validate(dec, image, size, offsets, [None] * 4)
        if problem:
            store.discard_upload()
            self.seq.update_tlm()
            self.events.emit(_EV_SEQ_INVALID, slot, step, problem)
            return _INVALID_SEQUENCE
        h = struct.unpack_from(">I", digest, 0)[0]
        try:
            store.store_slot(slot, step, h, offsets, image, size)
        except OSError:
            return _STORAGE_ERROR  # the old sequence is intact; the upload is kept
        store.discard_upload()
        self.seq.stored(slot, step, h)
        self.events.emit(_EV_SEQ_STORED, slot, h, step)
        d.result = h
        return _OK
