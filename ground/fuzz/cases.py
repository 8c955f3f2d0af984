"""Fuzz cases: structure-aware, dictionary-driven inputs for the node, with what each must do.

A `Case` is a message (or raw bytes) plus how it goes on the wire (`framing`) and the outcomes
the protocol allows for it (`allowed`): ``ground.fuzz.case``. The cases come from one generator
per category, picked by weight:

- ``gen_commands``: valid, boundary, bad_args, unknown_id (commands the dictionary knows, or
  nearly), with the outcomes of ``oracle``, the fuzzer's model of the node's checks;
- ``gen_messages``: envelope, malformed_cbor (damaged messages, correctly framed), built from
  the hand-made CBOR of ``encoding``;
- ``gen_link``: bad_crc, noise, frame_errors, burst (damage to the framing);
- ``gen_mutate``: address, bytes, items, short (good commands damaged at random);
- ``gen_auth``: auth (COSE_Mac0 objects, SPEC §10: signed around another category's message,
  or damaged in each part; refused as forged or replayed, or accepted and judged inside).

What a case must get is not the generator's to say: the runner asks ``model`` (the spec's
order of checks, from the bytes) for the one answer each correctly framed message must get.

Cases are generated from ``(seed, index)`` alone, so a campaign is reproducible and any case
can be regenerated from its number. The generators never produce a command that would reset
the node or change what the fuzzer relies on when it is valid (reboot, maintenance,
fault_inject, clear_counters, hk_rate, hk_enable, param_save and some parameters): those only
appear with arguments that must be rejected.

This module is the registry, and re-exports the names of the others (``fc.Case``,
``fc.command_outcomes``...) for the runner, the CLI and the tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final

from ground.fuzz import gen_auth
from ground.fuzz.case import (
    BAD_ARGUMENTS,
    BAD_CRC,
    BUSY,
    EXECUTES,
    EXECUTION_ERROR,
    FAIL,
    FRAME,
    MALFORMED,
    MAX_FRAME,
    MAX_MESSAGE,
    NONE,
    OK,
    OUT_OF_RANGE,
    RAW,
    UNKNOWN_COMMAND,
    UNSUPPORTED_VERSION,
    WRONG_MODE,
    Case,
    frame_bytes,
    outcome_allowed,
    rej,
)
from ground.fuzz.encoding import args_raw, command, dumps, envelope, head
from ground.fuzz.gen_commands import gen_bad_args, gen_boundary, gen_unknown_id, gen_valid
from ground.fuzz.gen_link import gen_bad_crc, gen_burst, gen_frame_errors, gen_noise
from ground.fuzz.gen_messages import gen_envelope, gen_malformed_cbor
from ground.fuzz.gen_mutate import gen_address, gen_bytes, gen_items, gen_short
from ground.fuzz.oracle import (
    COMMAND_IDS,
    COMMANDS,
    NEVER_SET,
    NEVER_VALID,
    PARAMS,
    WRONG_TYPES,
    boundary_values,
    check_value,
    command_outcomes,
    is_hazard,
    param_value_outcomes,
    valid_value,
)

__all__ = [
    "BAD_ARGUMENTS", "BAD_CRC", "BUSY", "CATEGORIES", "COMMANDS", "COMMAND_IDS", "EXECUTES",
    "EXECUTION_ERROR", "FAIL", "FRAME", "GENERATORS", "MALFORMED", "MAX_FRAME", "MAX_MESSAGE",
    "NEVER_SET", "NEVER_VALID", "NONE", "OK", "OUT_OF_RANGE", "PARAMS", "RAW",
    "UNKNOWN_COMMAND", "UNSUPPORTED_VERSION", "WRONG_MODE", "WRONG_TYPES", "Case", "Gen",
    "args_raw", "boundary_values", "case_rng", "check_value", "command", "command_outcomes",
    "dumps", "envelope", "frame_bytes", "generate", "head", "is_hazard", "outcome_allowed",
    "param_value_outcomes", "rej", "valid_value",
]

Gen = Callable[[random.Random, int], Case]

# Category name -> (generator, weight)
GENERATORS: Final[dict[str, tuple[Gen, int]]] = {
    "malformed_cbor": (gen_malformed_cbor, 30),
    "envelope": (gen_envelope, 12),
    "unknown_id": (gen_unknown_id, 5),
    "bad_args": (gen_bad_args, 14),
    "boundary": (gen_boundary, 14),
    "valid": (gen_valid, 5),
    "bad_crc": (gen_bad_crc, 6),
    "noise": (gen_noise, 6),
    "frame_errors": (gen_frame_errors, 5),
    "burst": (gen_burst, 3),
    "address": (gen_address, 6),
    "bytes": (gen_bytes, 10),
    "items": (gen_items, 10),
    "short": (gen_short, 4),
    "auth": (gen_auth.gen_auth, 10),
}
CATEGORIES: Final = tuple(GENERATORS)
# With the node's key (ground fuzz --key) half the cases are authenticated: most of them wrap
# another category's message, which then reaches the dispatcher's checks (gen_auth).
AUTH_WEIGHT_WITH_KEY: Final = 130
gen_auth.INNER.update({name: gen for name, (gen, _) in GENERATORS.items() if name != "auth"})


def case_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{index}")


def generate(seed: int, index: int, seq: int, categories: Sequence[str] = CATEGORIES,
             keyed: bool = False) -> Case:
    """Case number `index` of campaign `seed`, with command sequence number `seq` (``keyed``:
    the campaign holds the node's key; authenticated cases are signed with the key
    gen_auth.bind_key was given, and depend on the cases before them: their counters)."""
    rng = case_rng(seed, index)
    weights = [AUTH_WEIGHT_WITH_KEY if keyed and name == "auth" else GENERATORS[name][1]
               for name in categories]
    category = rng.choices(list(categories), weights)[0]
    return GENERATORS[category][0](rng, seq)
