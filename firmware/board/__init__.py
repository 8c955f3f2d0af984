"""The board layer: the only code that touches hardware.

Two implementations with one interface, chosen by the entry point (main.py on a Pico,
sim_main.py on the MicroPython Unix port); tests build the node with their own board.

Interface (every board):
    rx_stream               object asyncio can poll for input (StreamReader(rx_stream))
    rx_chunks               True if rx_stream.readinto(buf) returns what is there (else it
                            would block until buf is full: the link then reads one byte)
    read_into(buf) -> int   bytes available now, copied into buf; never blocks
    poll_ms(ms) -> bool     wait up to ms for input (blocking; only outside asyncio)
    write(buf, off, n) -> int  write what the link takes now of buf[off:off+n], without
                            waiting or allocating; the bytes written (0: full or nobody there)
    tx_wait(ms) -> bool     wait up to ms until write can take more
    ticks_ms()              free-running ms counter (time.ticks_ms semantics: wraps)
    wdt_start(timeout_ms), wdt_feed()
    reset_cause() -> int    RESET_* of protocol.ids, for this boot
    reset(cause)            does not return: reboot the node, reporting cause at next boot
    enter_maintenance()     leave the protocol for the REPL: rp2 resets with a MAINTENANCE
                            marker and main.py then stays in the REPL (a started WDT cannot
                            be stopped); sim exits and the host restarts it
    link_open(), link_close()  the protocol takes / gives back the serial link (USB: the
                            keyboard interrupt off / on; frames carry 0x03)
    boot_rx                 None, or the bytes the boot escape window read that were no
                            escape (board/escape.py): the link takes them before reading
    fs_root                 directory for persistent files (the flash)
    set_led(mode), led_tick(now_ms), set_load_pin(ch, on)
    mcu_temp_c() -> float or None (None: no sensor, the plant models it)
    node_id() -> int        the board's own identity, a uint32 other than 0 (rp2: CRC-32 of
                            machine.unique_id(); sim: the host's ILRS_NODE_ID, else one kept
                            in the state directory); the node_id parameter overrides it
    fs_sync                 True if files must be flushed to reach the flash
    log_exc(exc), log(text) diagnostics off the link (sim: stderr; rp2: kept, not printed)
    config                  dict of host overrides: 'seed', 'time_factor' (absent: params)
    name                    'rp2' or 'sim'

(docs/ARCHITECTURE.md lists ``write(mv)``; the boards take ``write(buf, off, n)`` instead, so
the link can write part of a preallocated buffer without making a memoryview. Whole frames,
priorities and tx_dropped are the link's: node/link.py.)

StreamTx: frame output to a non-blocking stream, shared by the rp2 and sim boards (here, not
in a module of its own: each module costs a Pico's heap about 300 bytes). The board only
moves bytes: ``write(buf, off, n)`` hands the stream what it takes now and returns how many
bytes that was (0 when it is full, or nobody is on the other side); ``tx_wait(ms)`` waits
until it can take more. Whole frames, queueing, priorities and the
drop count are the link's (node/link.py). Allocation-free: stream ``write(buf, off, len)``
takes an offset, so no memoryview per write.
"""

import select

from micropython import const

_POLLOUT = const(4)  # select.POLLOUT


class StreamTx:
    def _tx_init(self, out):
        self._out = out
        self._pout = select.poll()
        self._pout.register(out, _POLLOUT)

    def write(self, buf, off, n):
        """Write what the stream takes now of buf[off:off+n]; return the bytes written."""
        try:
            w = self._out.write(buf, off, n)  # type: ignore[call-arg]  # write(buf, off, len)
        except OSError:  # EIO/EPIPE: nobody on the other side
            return 0
        return w or 0

    def tx_wait(self, ms):
        """Wait up to ms until the stream can take more; True if it can."""
        return bool(self._pout.poll(ms))
