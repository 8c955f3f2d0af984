"""The generated node dictionary and ids: fresh, faithful to the dictionary, hashed per SPEC §7."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import cbor2
import pytest

from protocol import cbor, ids, messages, node_description, node_dictionary
from protocol import dictionary as D
from protocol.dictionary_types import F32, IN_ANY, U8, Arg, Channel, Command, Event, Packet, Param

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tools" / "gen_node_dictionary.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_node_dictionary", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mpy_messages_runner",
                                                  Path(__file__).with_name("mpy_messages_runner.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()  # its compact(): the form rebuilt through the node's accessors


@pytest.mark.parametrize("path", ["protocol/node_dictionary.py", "protocol/node_description.py",
                                  "protocol/ids.py"])
def test_generated_files_are_fresh(path: str) -> None:
    expected = gen.generated()[REPO / path]
    actual = (REPO / path).read_text(encoding="utf-8")
    assert actual == expected, f"{path} is stale: run {gen.REGENERATE}"


def test_generation_is_deterministic_across_processes() -> None:
    outputs = []
    for seed in ("0", "1"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        script = ("import importlib.util as u; "
                  f"s=u.spec_from_file_location('g', {str(GENERATOR)!r}); "
                  "m=u.module_from_spec(s); s.loader.exec_module(m); "
                  "print(hex(m.dict_hash(m.compact())));"
                  "print(m.render_node_dictionary() == open(m.NODE_DICTIONARY_PATH).read())")
        outputs.append(subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO,
                                      capture_output=True, text=True, check=True).stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].split() == [hex(node_dictionary.DICT_HASH), "True"]


def test_hash_is_sha256_of_the_canonical_cbor_of_the_compact_form() -> None:
    description = cbor2.dumps(gen.compact(), canonical=True)
    digest = hashlib.sha256(description).digest()
    assert node_dictionary.DICT_HASH == int.from_bytes(digest[:4], "big")
    assert node_dictionary.DESCRIPTION_SIZE == len(description)


def test_the_description_is_the_canonical_cbor_of_the_compact_form() -> None:
    assert node_description.DESCRIPTION == cbor2.dumps(gen.compact(), canonical=True)
    assert len(node_description.DESCRIPTION) == node_dictionary.DESCRIPTION_SIZE
    assert cbor.loads(node_description.DESCRIPTION, max_items=4096) == \
        cbor2.loads(node_description.DESCRIPTION)


def test_the_byte_tables_hold_exactly_the_description() -> None:
    """Rebuilt from the byte tables through the node's accessors, the compact form encodes to
    the description byte for byte (tests/protocol/test_messages.py does it on MicroPython)."""
    rebuilt = runner.compact()
    assert cbor2.dumps(rebuilt, canonical=True) == node_description.DESCRIPTION
    fmt, commands, _types, _limits, packets, _events, params, loads = rebuilt
    assert fmt == node_dictionary.FORMAT == 1
    assert commands[ids.CMD_LOAD_SWITCH] == [12, 0, [[1, 0, 9], [0, None, None]]]
    assert len(packets) == ids.PKT_MAX + 1 and packets[0] is None
    assert len(params) == ids.PARAM_MAX + 1 and len(loads) == ids.LOAD_COUNT


def test_the_node_tables_are_byte_strings() -> None:
    """What keeps them in flash under ROMFS: no tuple, list or float at module level."""
    tables = {name: value for name, value in vars(node_dictionary).items()
              if name.isupper() and not isinstance(value, int)}
    assert set(tables) >= {"COMMAND_MODES", "PARAM_VALUES", "LOAD_CURRENTS"}
    assert all(type(value) is bytes for value in tables.values()), tables
    assert type(node_description.DESCRIPTION) is bytes


def test_accessors_decode_absent_values_and_unused_ids() -> None:
    nd = node_dictionary
    assert nd.packet(0) is None and nd.param(0) is None and nd.command_args(0) == ()
    assert nd.EVENT_SEVERITY[0] == nd.NO_RECORD and nd.COMMAND_MODES[0] == 0
    fdir_enabled = nd.param(ids.PARAM_FDIR_ENABLED)
    assert fdir_enabled == (messages.TYPE_BOOL, True, None, None, True)
    assert nd.command_args(ids.CMD_EVENT_LOG_DOWNLINK) == ((messages.TYPE_U32, 0, 2**32 - 1),)
    heap_row = nd.LIMIT_CHANNELS.index(ids.CH_HEAP_FREE)
    assert nd.limit(heap_row) == (ids.CH_HEAP_FREE, 24000, None, 12000, None)


def test_a_value_of_type_any_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="type any"):
        gen.pack_value(messages.TYPE_ANY, 1)
    assert gen.pack_value(messages.TYPE_ANY, None) == bytes(4)


def _changed(mutate: Any) -> int:
    d = SimpleNamespace(**{k: copy.deepcopy(getattr(D, k)) for k in dir(D) if k.isupper()})
    mutate(d)
    return int(gen.dict_hash(gen.compact(d)))


def test_hash_changes_with_what_the_node_checks_and_only_that() -> None:
    base = _changed(lambda d: None)
    assert base == node_dictionary.DICT_HASH

    def widen(d: Any) -> None:
        d.COMMANDS[1].args[0].hi = 4

    def limit(d: Any) -> None:
        d.CHANNELS[10].yellow = (31.0, None)

    def default(d: Any) -> None:
        d.PARAMS[0].default = 61.0

    def period(d: Any) -> None:
        d.PACKETS[0].rate_hz = 2.0

    def reword(d: Any) -> None:
        d.COMMANDS[0].help = "ping"
        d.CHANNELS[0].description = "the mode"
        d.EVENTS[0].format = "boot {boot_count} ({reset_cause})"

    for mutate in (widen, limit, default, period):
        assert _changed(mutate) != base, mutate.__name__
    assert _changed(reword) == base


def test_tables_follow_the_dictionary() -> None:
    nd = node_dictionary
    for c in D.COMMANDS:
        modes, flags, args = nd.COMMAND_MODES[c.id], nd.COMMAND_FLAGS[c.id], nd.command_args(c.id)
        assert modes == c.modes and len(args) == len(c.args)
        assert bool(flags & nd.FLAG_HAZARDOUS) == c.hazardous
        assert bool(flags & nd.FLAG_TEST_ONLY) == c.test_only
        for (type_code, lo, hi), a in zip(args, c.args, strict=True):
            assert messages.TYPE_NAMES[type_code] == a.type
            if a.lo is not None:
                assert (lo, hi) == (messages.f32(a.lo), messages.f32(a.hi)) if a.type == F32 \
                    else (lo, hi) == (a.lo, a.hi)
    for ch in D.CHANNELS:
        assert messages.TYPE_NAMES[nd.CHANNEL_TYPES[ch.id]] == ch.type
    assert sum(t != nd.NO_CHANNEL for t in nd.CHANNEL_TYPES) == len(D.CHANNELS)
    for p in D.PACKETS:
        period_ms, channels = nd.packet(p.id)
        assert period_ms == round(1000 / p.rate_hz)
        assert [getattr(ids, "CH_" + n.upper()) for n in p.channels] == list(channels)
    for e in D.EVENTS:
        assert (nd.EVENT_SEVERITY[e.id], nd.EVENT_NARGS[e.id]) == (e.severity, len(e.args))
    for p in D.PARAMS:
        type_code, default, lo, hi, persisted = nd.param(p.id)
        assert messages.TYPE_NAMES[type_code] == p.type and persisted == p.persisted
        assert default == (messages.f32(p.default) if p.type == F32 else p.default)
    for row, ch_id in enumerate(nd.LIMIT_CHANNELS):
        ch = next(c for c in D.CHANNELS if c.id == ch_id)
        assert [messages.f32(v) if isinstance(v, float) else v for v in
                (*(ch.yellow or (None, None)), *(ch.red or (None, None)))] == \
            list(nd.limit(row)[1:])
    assert len(nd.LOAD_CURRENTS) == 8 * len(D.LOADS)


def test_floats_are_exact_single_precision_values() -> None:
    nd = node_dictionary
    records = [*(nd.command_args(c.id) for c in D.COMMANDS),
               *(nd.limit(i) for i in range(len(nd.LIMIT_CHANNELS))),
               *(nd.param(p.id) for p in D.PARAMS), *(nd.load(i) for i in range(len(D.LOADS)))]

    def floats(obj: Any) -> list[float]:
        if isinstance(obj, float):
            return [obj]
        if isinstance(obj, tuple):
            return [f for x in obj for f in floats(x)]
        return []

    values = floats(tuple(records))
    assert values and all(messages.f32(v) == v for v in values)


def test_ids_name_every_record_and_named_value() -> None:
    for prefix, records in (("CMD_", D.COMMANDS), ("CH_", D.CHANNELS), ("PKT_", D.PACKETS),
                            ("EV_", D.EVENTS), ("PARAM_", D.PARAMS)):
        for r in records:
            assert getattr(ids, prefix + r.name.upper()) == r.id
    for prefix, values in (("MODE_", D.MODES), ("LOAD_", D.LOAD_NAMES), ("RESET_", D.RESET_CAUSES),
                           ("FAULT_", D.FAULTS), ("TASK_", D.TASKS), ("SENSOR_", D.SENSORS),
                           ("HEATER_MODE_", D.HEATER_MODES), ("BULK_", D.BULK_TYPES),
                           ("SAFE_", D.SAFE_REASONS)):
        for value, name in values.items():
            assert getattr(ids, prefix + name.upper()) == value
    assert ids.LOADS_ESSENTIAL_MASK == sum(1 << i for i, x in enumerate(D.LOADS) if x[3])
    assert (ids.HEATER_LOAD_BATTERY, ids.HEATER_LOAD_ELECTRONICS) == D.HEATER_LOADS
    assert ids.IN_ANY == IN_ANY and ids.CH_MAX == len(node_dictionary.CHANNEL_TYPES) - 1
    assert ids.BULK_EVENT_LOG == 1 and ids.BULK_DICTIONARY == 2  # SPEC §5.7


def test_spec_toy_dictionary_is_what_the_generator_writes() -> None:
    """The worked example of SPEC §7.2, built as a dictionary and run through the generator."""
    toy = SimpleNamespace(
        COMMANDS=(Command(1, "noop", (), IN_ANY, "-"),
                  Command(2, "set", (Arg("a", U8, 1, 3), Arg("b", F32, -40.0, 40.0)), IN_ANY,
                          "-", hazardous=True)),
        CHANNELS=(Channel(1, "mode", U8, "", "-"), Channel(2, "boot_count", "u16", "", "-"),
                  Channel(3, "dict_hash", "u32", "", "-"),
                  Channel(4, "soc", F32, "%", "-", yellow=(30.0, None), red=(15.0, None))),
        PACKETS=(Packet(1, "p", ("mode", "boot_count", "dict_hash", "soc"), 1.0, "-"),),
        EVENTS=(Event(1, "boot", 1, "{a} {b}", ("a", "b")),),
        PARAMS=(Param(1, "time_factor", F32, 60.0, 1.0, 1000000.0, "x", "-"),),
        LOADS=(("relay", 0.6, 1.5, True),),
    )
    spec = (REPO / "protocol" / "SPEC.md").read_text(encoding="utf-8")
    block = spec[spec.index("A worked example with a toy dictionary"):]
    hex_text = block[block.index("hex:") + 4:block.index("sha256:")]
    assert gen.encode_compact(gen.compact(toy)) == bytes.fromhex("".join(hex_text.split()))
    assert f"hash: 0x{gen.dict_hash(gen.compact(toy)):08X}" in block
