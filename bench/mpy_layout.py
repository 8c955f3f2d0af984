"""What a MicroPython .mpy file (format v6) asks the heap for when it is imported.

``parse(data)`` reads a .mpy file as ``py/persistentcode.c`` (v1.28) loads it and returns its
``Layout``: every raw code in load order (kind and length of its bytecode or machine code, a
viper function's rodata and bss), the lengths of its str and bytes constants, and its dynamic
qstrs. The heap rows of the bench use it for two things:

- native code: on a Pico a ``@micropython.native`` / ``@micropython.viper`` function's machine
  code is always copied into the heap, from a file or from ROMFS; the 32-bit VM the bench
  runs has no native emitter and runs those functions' bytecode instead, so the bench swaps one
  size for the other (``native_swap``);
- ROMFS: imported from a ROMFS image, a module's bytecode, str/bytes constants and qstr text
  stay in flash; from a file they are copied into the heap (``in_place_bytes``).

Sizes are heap bytes: each allocation takes whole GC blocks (``block``: 16 bytes on a 32-bit
port, 32 on a 64-bit one).
"""

from __future__ import annotations

from typing import NamedTuple

BYTECODE = "bytecode"
NATIVE = "native"
VIPER = "viper"
ASM = "asm"
_KINDS = (BYTECODE, NATIVE, VIPER, ASM)  # MP_CODE_BYTECODE + 0..3
_OBJ_STR, _OBJ_BYTES, _OBJ_TUPLE = 5, 6, 10  # MP_PERSISTENT_OBJ_*
_OBJ_NO_DATA = 4  # FUN_TABLE, NONE, FALSE, TRUE, ELLIPSIS: a type byte only
_FLAG_VIPERRELOC, _FLAG_VIPERRODATA, _FLAG_VIPERBSS = 0x10, 0x20, 0x40


class MpyFormatError(ValueError):
    """The data is not a .mpy file this parser understands (version 6)."""


class Code(NamedTuple):
    kind: str  # BYTECODE, NATIVE, VIPER or ASM
    length: int  # bytes of bytecode or machine code
    rodata: int = 0  # viper only
    bss: int = 0


class Layout(NamedTuple):
    codes: list[Code]  # depth first, in load order: the module, then each child in turn
    constants: list[int]  # byte lengths of the str and bytes constants (tuples opened)
    qstrs: list[bytes]  # dynamic qstrs (not the static ones the .mpy refers to by number)


def blocks(n: int, block: int) -> int:
    """Heap bytes of an allocation of n bytes: whole GC blocks."""
    return -(-n // block) * block if n > 0 else 0


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise MpyFormatError(f"truncated at byte {self.pos}")
        self.pos += 1
        return self.data[self.pos - 1]

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise MpyFormatError(f"truncated: {n} bytes wanted at byte {self.pos}")
        self.pos += n

    def take(self, n: int) -> bytes:
        start = self.pos
        self.skip(n)
        return self.data[start:self.pos]

    def uint(self) -> int:
        value = 0
        while True:
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value


def parse(data: bytes) -> Layout:
    """The layout of one .mpy file; raises MpyFormatError if it is not a v6 .mpy."""
    if data[:2] != b"M\x06":
        raise MpyFormatError("not a .mpy file of format version 6")
    r = _Reader(data)
    r.skip(2)
    if r.byte() & 0x40:  # MPY_FEATURE_ARCH_FLAGS (RISC-V extensions): a uint follows
        r.byte()
        r.uint()
    else:
        r.byte()  # small int bits
    n_qstr = r.uint()
    n_obj = r.uint()
    layout = Layout([], [], [])
    for _ in range(n_qstr):
        n = r.uint()
        if not n & 1:  # odd: a static qstr's number
            layout.qstrs.append(r.take(n >> 1))
            r.skip(1)  # NUL
    for _ in range(n_obj):
        _constant(r, layout.constants)
    _raw_code(r, layout.codes)
    if r.pos != len(data):
        raise MpyFormatError(f"{len(data) - r.pos} bytes left after the module")
    return layout


def _constant(r: _Reader, out: list[int]) -> None:
    kind = r.byte()
    if kind <= _OBJ_NO_DATA:
        return
    n = r.uint()
    if kind == _OBJ_TUPLE:
        for _ in range(n):
            _constant(r, out)
        return
    r.skip(n)
    if kind in (_OBJ_STR, _OBJ_BYTES):
        r.skip(1)  # NUL
        if n:  # b"" is the shared empty bytes
            out.append(n)


def _raw_code(r: _Reader, out: list[Code]) -> None:
    kind_len = r.uint()
    kind = _KINDS[kind_len & 3]
    length = kind_len >> 3
    r.skip(length)
    flags = rodata = bss = 0
    if kind == NATIVE:
        r.uint()  # prelude offset
    elif kind != BYTECODE:
        flags = r.uint()
        if kind == ASM:
            r.uint()
            r.uint()
        if kind == VIPER:
            rodata = r.uint() if flags & _FLAG_VIPERRODATA else 0
            bss = r.uint() if flags & _FLAG_VIPERBSS else 0
            r.skip(rodata)
    out.append(Code(kind, length, rodata, bss))
    if kind_len & 4:
        for _ in range(r.uint()):
            _raw_code(r, out)
    if kind in (VIPER, ASM) and flags & _FLAG_VIPERRELOC:  # relocations follow the children
        while (op := r.byte()) != 0xFF:
            if op & 1:
                r.uint()
            op >>= 1
            if op <= 5 and op & 1:
                r.uint()


def native_swap(pico: Layout, bytecode_only: Layout, block: int) -> tuple[int, int]:
    """(machine code bytes, bytecode bytes) of the functions that are native in ``pico`` (the
    module compiled with -march) and bytecode in ``bytecode_only`` (the same module compiled
    for the VM): what the Pico's heap holds for them, and what the VM's holds instead."""
    if len(pico.codes) != len(bytecode_only.codes):
        raise MpyFormatError("the two builds of the module have different functions")
    machine = twins = 0
    for code, twin in zip(pico.codes, bytecode_only.codes, strict=True):
        if code.kind != BYTECODE:
            machine += blocks(code.length, block)
            if code.rodata or code.bss:
                machine += blocks(code.rodata + code.bss, block)
            twins += blocks(twin.length, block)
    return machine, twins


def in_place_bytes(layout: Layout, block: int) -> int:
    """Heap a file import takes and a ROMFS import does not, qstr text aside: the bytecode and
    the str/bytes constants' data (a file import copies each constant with its NUL)."""
    code = sum(blocks(c.length, block) for c in layout.codes if c.kind == BYTECODE)
    return code + sum(blocks(n + 1, block) for n in layout.constants)
