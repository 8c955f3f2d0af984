"""Validate a sequence image against the node's dictionary (SPEC §12.1, §12.3).

``validate(dec, buf, n, offsets, args)`` checks buf[0:n] in the order of §12.3 and returns
``(problem, step)``: problem 0 when the image is valid (then step is the number of steps and
``offsets[0:steps + 1]`` where each step begins and where the last ends), else a code of
protocol.dictionary.SEQ_PROBLEMS and the index of the offending step (None outside the
steps). ``dec`` is a protocol.cbor_decoder.Decoder made with room for a whole image (item
budget, string length); ``args`` a list with room for a command's arguments.

Command arguments are checked with protocol.envelope.read_args, the very checks a command
from the ground gets (§5.1), so a stored step can fail at run time only for its mode, an
``any`` argument or the command's own checks. Allocates (texts, floats): commit time only.
"""

from micropython import const

from protocol.envelope import read_args
from protocol.errors import ProtocolError
from protocol.node_dictionary import (
    CHANNEL_TYPES,
    COMMAND_FLAGS,
    COMMAND_MODES,
    DICT_HASH,
    FLAG_HAZARDOUS,
    NO_CHANNEL,
    command_args,
)

# SEQ_PROBLEMS codes (protocol.dictionary), inlined
_P_CBOR = const(1)
_P_FORMAT = const(2)
_P_DICT_HASH = const(3)
_P_NAME = const(4)
_P_STEPS = const(5)
_P_STEP_SHAPE = const(6)
_P_COMMAND = const(7)
_P_ARGUMENTS = const(8)
_P_CHANNEL = const(9)
_P_OP = const(10)
_P_VALUE = const(11)
_P_ON_FAIL = const(12)
_P_TIME = const(13)

MAX_STEPS = const(256)
MAX_STEP_BYTES = const(256)
MAX_NAME = const(16)
_KIND_COMMAND = const(0)
_KIND_WAIT = const(1)
_OP_MAX = const(5)
_ON_FAIL_MAX = const(2)
_TYPE_BOOL = const(0)
_U32_MAX = const(0xFFFFFFFF)


def _major(dec):
    ib = dec.peek()
    return ib >> 5 if ib >= 0 else -1


def validate(dec, buf, n, offsets, args):
    dec.reset(buf, 0, n)
    try:
        dec.skip()
        dec.done()
    except ProtocolError:
        return _P_CBOR, None
    dec.reset(buf, 0, n)
    try:  # the whole image is well formed now: a ProtocolError below is a wrong type
        if dec.array() != 4 or _major(dec) != 0 or dec.uint() != 1:
            return _P_FORMAT, None
        if _major(dec) != 0 or dec.uint() != DICT_HASH:
            return _P_DICT_HASH, None
        if _major(dec) != 3 or len(dec.text().encode()) > MAX_NAME:
            return _P_NAME, None
        if _major(dec) != 4:
            return _P_STEPS, None
        steps = dec.array()
        if steps < 1 or steps > MAX_STEPS:
            return _P_STEPS, None
    except ProtocolError:
        return _P_FORMAT, None
    for i in range(steps):
        start = dec.pos
        offsets[i] = start
        dec.skip()
        end = dec.pos
        dec.pos = start
        problem = _step(dec, args) if end - start <= MAX_STEP_BYTES else _P_STEP_SHAPE
        if problem:
            return problem, i
        dec.pos = end
    offsets[steps] = dec.pos
    return 0, steps


def _uint32(dec):
    # A uint below 2**32 at dec, or -1.
    if _major(dec) != 0:
        dec.skip()
        return -1
    v = dec.uint()
    return v if v <= _U32_MAX else -1


def _step(dec, args):
    # One step at dec (well formed, within MAX_STEP_BYTES): 0 or a problem code.
    if _major(dec) != 4:
        return _P_STEP_SHAPE
    count = dec.array()
    if count == 0 or _major(dec) != 0:
        return _P_STEP_SHAPE
    kind = dec.uint()
    if kind == _KIND_COMMAND:
        if count != 5:
            return _P_STEP_SHAPE
        if _uint32(dec) < 0:
            return _P_TIME
        if _major(dec) != 0:
            return _P_COMMAND
        cmd = dec.uint()
        if cmd >= len(COMMAND_MODES) or not COMMAND_MODES[cmd]:
            return _P_COMMAND
        if COMMAND_FLAGS[cmd] & FLAG_HAZARDOUS:  # never armed from a sequence (SPEC §12.3)
            return _P_COMMAND
        if _major(dec) != 4:
            return _P_ARGUMENTS
        nargs = dec.array()
        if read_args(dec, nargs, command_args(cmd), args):
            return _P_ARGUMENTS
        for i in range(len(args)):
            args[i] = None
    elif kind == _KIND_WAIT:
        if count != 6:
            return _P_STEP_SHAPE
        if _major(dec) != 0:
            return _P_CHANNEL
        ch = dec.uint()
        if ch >= len(CHANNEL_TYPES) or CHANNEL_TYPES[ch] == NO_CHANNEL:
            return _P_CHANNEL
        if _major(dec) != 0 or dec.uint() > _OP_MAX:
            return _P_OP
        value = dec.item()
        t = type(value)
        if t is bool:
            if CHANNEL_TYPES[ch] != _TYPE_BOOL:
                return _P_VALUE
        elif t is not int and t is not float:
            return _P_VALUE
        if _uint32(dec) < 0:
            return _P_TIME
    else:
        return _P_STEP_SHAPE
    if _major(dec) != 0 or dec.uint() > _ON_FAIL_MAX:
        return _P_ON_FAIL
    return 0
