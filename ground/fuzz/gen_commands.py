"""Generators of commands the dictionary knows, or nearly: valid ones, arguments at and
beyond their bounds, wrong argument counts and types, and unknown command ids."""

from __future__ import annotations

import random
from typing import Any

from ground.fuzz.case import UNKNOWN_COMMAND, Case, rej
from ground.fuzz.encoding import command
from ground.fuzz.oracle import (
    COMMANDS,
    PARAMS,
    WRONG_TYPES,
    boundary_values,
    command_outcomes,
    is_hazard,
    valid_value,
)
from protocol import dictionary


def _some_command(rng: random.Random) -> Any:
    return rng.choice(dictionary.COMMANDS)


def _valid_args(rng: random.Random, cmd: Any) -> list[object]:
    return [valid_value(rng, a.type, a.lo, a.hi) for a in cmd.args]


def safe_valid_command(rng: random.Random, seq: int) -> tuple[int, list[object]]:
    """(command id, arguments) of a valid command that is no hazard to the campaign."""
    while True:
        cmd = _some_command(rng)
        args = _valid_args(rng, cmd)
        if cmd.name == "param_set":
            args[0] = rng.choice(list(PARAMS))
            param = PARAMS[int(args[0])]  # type: ignore[call-overload]
            args[1] = valid_value(rng, param.type, param.lo, param.hi)
        if not is_hazard(cmd.id, args):
            return cmd.id, args


def gen_valid(rng: random.Random, seq: int) -> Case:
    cmd_id, args = safe_valid_command(rng, seq)
    return Case("valid", COMMANDS[cmd_id].name, command(seq, cmd_id, args), seq=seq,
                cmd_id=cmd_id, allowed=command_outcomes(cmd_id, args))


def _guarded(category: str, name: str, seq: int, cmd_id: int, args: list[object]) -> Case:
    """A command case, turned into an unknown-id case if it could run something hazardous."""
    if is_hazard(cmd_id, args):
        args = [*args, 0]  # one argument too many: must be rejected
    return Case(category, name, command(seq, cmd_id, args), seq=seq, cmd_id=cmd_id,
                allowed=command_outcomes(cmd_id, args))


def gen_boundary(rng: random.Random, seq: int) -> Case:
    cmd = rng.choice([c for c in dictionary.COMMANDS if c.args])
    args = _valid_args(rng, cmd)
    i = rng.randrange(len(cmd.args))
    arg = cmd.args[i]
    args[i] = rng.choice(boundary_values(arg.type, arg.lo, arg.hi))
    if cmd.name == "param_set" and i == 1:
        param = PARAMS[rng.choice(list(PARAMS))]
        args[0] = param.id
        args[1] = rng.choice(boundary_values(param.type, param.lo, param.hi))
    return _guarded("boundary", f"{cmd.name}.{arg.name}", seq, cmd.id, args)


def gen_bad_args(rng: random.Random, seq: int) -> Case:
    cmd = _some_command(rng)
    args = _valid_args(rng, cmd)
    choice = rng.randrange(3)
    if choice == 0 or not cmd.args:
        args.append(rng.choice(WRONG_TYPES))
        name = "too_many"
    elif choice == 1:
        args.pop(rng.randrange(len(args)))
        name = "too_few"
    else:
        i = rng.randrange(len(args))
        args[i] = rng.choice(WRONG_TYPES)
        name = f"type.{cmd.args[i].name}"
    return _guarded("bad_args", f"{cmd.name}.{name}", seq, cmd.id, args)


def gen_unknown_id(rng: random.Random, seq: int) -> Case:
    known = set(COMMANDS)
    cmd_id = rng.choice([0, max(known) + 1, rng.randrange(max(known) + 1, 256),
                         rng.randrange(256, 65536), 65535])
    while cmd_id in known:
        cmd_id += 1
    body: list[object] = rng.choice([[], [1], [1, True], ["x"]])
    return Case("unknown_id", str(cmd_id), command(seq, cmd_id, body), seq=seq, cmd_id=cmd_id,
                allowed=rej(UNKNOWN_COMMAND))
