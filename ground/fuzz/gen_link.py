"""Generators of link-level damage: bad CRCs, noise, oversize, truncated and short frames, and
garbage in front of a good command."""

from __future__ import annotations

import random

from cobs import cobs

from ground.fuzz.case import (
    BAD_ARGUMENTS,
    BAD_CRC,
    FAIL,
    MAX_FRAME,
    MAX_MESSAGE,
    OK,
    OUT_OF_RANGE,
    RAW,
    Case,
    rej,
)
from ground.fuzz.encoding import args_raw, command, dumps, envelope, head
from ground.fuzz.gen_commands import safe_valid_command
from ground.fuzz.oracle import COMMAND_IDS, COMMANDS


def gen_bad_crc(rng: random.Random, seq: int) -> Case:
    cmd_id, args = safe_valid_command(rng, seq)
    return Case("bad_crc", COMMANDS[cmd_id].name, command(seq, cmd_id, args), framing=BAD_CRC,
                seq=seq, cmd_id=cmd_id)


def gen_noise(rng: random.Random, seq: int) -> Case:
    size = rng.choice([1, 2, 5, 17, 64, 255, 1100, rng.randrange(1, 400)])
    zeros = rng.random() < 0.5
    data = bytes(rng.randrange(0 if zeros else 1, 256) for _ in range(size))
    return Case("noise", "with_zeros" if zeros else "no_zeros", data, framing=RAW)


def gen_frame_errors(rng: random.Random, seq: int) -> Case:
    """Oversize frames, truncated COBS blocks and frames too short for a CRC."""
    choice = rng.randrange(4)
    if choice == 0:
        size = rng.choice([MAX_FRAME - 3, MAX_FRAME + 1, 2 * MAX_FRAME, 4000])
        message = envelope(seq, COMMAND_IDS["param_set"], args_raw([dumps(14),
                                                                    head(2, size) + bytes(size)]))
        return Case("frame_errors", f"oversize_{size}", message, seq=seq,
                    cmd_id=COMMAND_IDS["param_set"])
    if choice == 1:
        body = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 20)))
        code = len(body) + 1 + rng.randrange(1, 200)
        return Case("frame_errors", "cobs_truncated", b"\x00" + bytes([min(code, 255)]) + body
                    + b"\x00", framing=RAW)
    if choice == 2:
        short = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        return Case("frame_errors", "too_short", b"\x00" + cobs.encode(short) + b"\x00",
                    framing=RAW)
    # exactly at the limit: a 1020-byte message is legal, and must be answered
    cmd_id = COMMAND_IDS["param_set"]
    size = MAX_MESSAGE - len(envelope(seq, cmd_id, args_raw([dumps(14), head(2, 1000)])))
    while len(message := envelope(seq, cmd_id, args_raw([dumps(14),
                                                         head(2, size) + bytes(size)]))) \
            > MAX_MESSAGE:
        size -= 1
    return Case("frame_errors", "max_message", message, seq=seq, cmd_id=cmd_id,
                allowed=rej(BAD_ARGUMENTS, OUT_OF_RANGE) | {FAIL})


def gen_burst(rng: random.Random, seq: int) -> Case:
    """Garbage between frames, then a valid noop the node must still find and answer."""
    size = rng.randrange(1, 300)
    garbage = bytes(rng.randrange(256) for _ in range(size))
    cmd_id = COMMAND_IDS["noop"]
    return Case("burst", "noise_then_noop", command(seq, cmd_id, []), seq=seq, cmd_id=cmd_id,
                allowed=frozenset({OK}), prefix=garbage)
