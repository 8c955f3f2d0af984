"""The emulated Pico itself: one RP2040 in rp2040py, booting a user's MicroPython UF2.

    python -m ground.vpico_board --uf2 RPI_PICO.uf2 --flash FLASH.img --serial-fd N

Run by `ground.vpico.VirtualPico` (the supervisor), never by hand. It builds a Raspberry Pi
Pico in rp2040py, lays the persisted flash image (``--flash``: the whole 2 MiB flash, firmware
and filesystem) into the chip, writes the UF2 over it (so a newer UF2 keeps the filesystem, as
dragging a UF2 onto a real Pico does), boots, and bridges the board's USB CDC serial to the
inherited file descriptor ``--serial-fd`` (the master side of a pty the supervisor owns, so the
ground's open port survives a power cut). It writes ``up`` on stdout each time the board has
enumerated on USB.

**Write-through flash**: every sector erase and page program the firmware makes (littlefs,
``rp2.Flash``, ``mpremote romfs deploy``) is applied to the chip's flash and then written with
``os.pwrite`` to the same offsets of ``--flash``. Each flash operation reaches the file whole or
not at all, so SIGKILL of this process at any instant is a power cut: the next boot finds the
flash exactly as the chip had it (real littlefs on real firmware recovers from that, or not).

The watchdog is the chip's: rp2040py resets the RP2040 when ``machine.WDT`` is not fed, and
``machine.reset_cause()`` reports it. SIGTERM stops cleanly (exit 0), and so does the death
of the supervisor (this process is in its own session, so nothing else would stop it).

rp2040py is imported here only: nothing else in the ground needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Any, Final

FLASH_BYTES: Final = 2 * 1024 * 1024  # a Pico's W25Q16: 2 MiB
_ERASED: Final = b"\xff"


def open_flash(path: Path) -> int:
    """The persisted flash file, grown to FLASH_BYTES of erased (0xFF) flash; its fd."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    if size < FLASH_BYTES:
        os.pwrite(fd, _ERASED * (FLASH_BYTES - size), size)
    return fd


def persist_flash_writes(ssi: Any, flash: bytearray, fd: int) -> None:
    """Wrap the SSI's flash command so each erase/program is written through to ``fd``."""
    from rp2040py.peripherals import ssi as ssi_module

    erase_sizes = {ssi_module.CMD_SECTOR_ERASE: ssi_module.FLASH_SECTOR_SIZE,
                   ssi_module.CMD_BLOCK_ERASE: ssi_module.FLASH_BLOCK_SIZE}
    program = ssi_module.CMD_PAGE_PROGRAM
    page = ssi_module.FLASH_PAGE_SIZE
    apply = ssi._apply_command

    def apply_and_persist() -> None:
        command = bytes(ssi._tx_buffer)
        enabled = ssi._write_enabled
        apply()
        if not enabled or len(command) < 4:
            return
        address = (command[1] << 16) | (command[2] << 8) | command[3]
        if command[0] in erase_sizes:
            size = erase_sizes[command[0]]
            start = address & ~(size - 1)
        elif command[0] == program and len(command) > 4:
            start, size = address, min(len(command) - 4, page)
        else:
            return
        end = min(start + size, FLASH_BYTES)
        if start < end:
            os.pwrite(fd, bytes(flash[start:end]), start)

    ssi._apply_command = apply_and_persist


class _SerialBridge:
    """USB CDC ↔ the inherited pty master: rp2040py's pty bridge on a given descriptor."""

    def __init__(self, device: Any, serial_fd: int) -> None:
        from rp2040py.cli.pty_repl import PtyInteractiveRepl

        fd = serial_fd

        class Bridge(PtyInteractiveRepl):
            async def _on_start(self) -> None:
                # not PtyInteractiveRepl's: the supervisor owns the pty, we got its master
                self._master_fd = fd
                os.set_blocking(fd, False)
                await self._register_reader()

            async def _on_stop(self) -> None:
                if self._master_fd is not None:
                    await self._unregister()
                    self._master_fd = None

        self.repl = Bridge(device.cdc, device.simulator,
                           on_quit=device.simulator.shutdown_request.request)


async def run(uf2: Path, flash_path: Path, serial_fd: int) -> int:
    from rp2040py.boards import BOARDS, resolve_layout
    from rp2040py.device import MicroPythonDevice
    from rp2040py.device.load_flash import load_uf2

    pico = BOARDS["pico"]
    # the user's UF2, given directly: nothing is looked up or downloaded
    board = dataclasses.replace(pico, image=str(uf2), layout=resolve_layout(pico, "micropython"))
    device = MicroPythonDevice(board=board)
    fd = open_flash(flash_path)
    flash = device.mcu.flash
    flash[:FLASH_BYTES] = os.pread(fd, FLASH_BYTES, 0)
    load_uf2(uf2, device.mcu)  # the firmware over the old one; the filesystem stays
    os.pwrite(fd, bytes(flash[:FLASH_BYTES]), 0)
    persist_flash_writes(device.mcu.ssi, flash, fd)

    bridge = _SerialBridge(device, serial_fd).repl
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, device.simulator.shutdown_request.request, 0)

    def announce() -> None:
        print("up", flush=True)

    await bridge.start()
    try:
        await device.astart(timeout=None)
        announce()
        # later enumerations (a watchdog or machine.reset() reboot) announce themselves too
        device.cdc.on_device_connected = announce
        parent = os.getppid()
        while device.simulator.executing:
            if device.simulator.shutdown_request.event.is_set():
                break
            if os.getppid() != parent:  # the supervisor died (killed test run): no orphan
                break
            await asyncio.sleep(0.1)
        if device.simulator.engine_room_error is not None:
            raise device.simulator.engine_room_error
        return 0
    finally:
        device.stop()
        await bridge.stop()
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ground.vpico_board",
                                     description="one emulated Pico (run by ground.vpico)")
    parser.add_argument("--uf2", required=True, type=Path, help="MicroPython RPI_PICO UF2")
    parser.add_argument("--flash", required=True, type=Path, help="persisted 2 MiB flash image")
    parser.add_argument("--serial-fd", required=True, type=int, help="inherited pty master")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args.uf2, args.flash, args.serial_fd))
    except (OSError, ValueError) as exc:
        print(f"vpico: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
