"""Housekeeping (SPEC §5.3): packets of channels at commanded rates, time-tagged.

Each packet has a period (from the dictionary's default rate, then hk_rate) and an enabled
flag (at boot from the hk_enabled_mask parameter, then hk_enable). One task sends what is due
and sleeps until the next packet is due (at most _MAX_SLEEP_MS, so the watchdog sees it
alive).

Schedule: a packet is due on the multiples of its period on the node's clock (a 50 Hz packet
at 0, 20, 40... ms since boot). Rates do not drift, a packet more than a period late skips to
the next multiple instead of going out in a burst, and packets whose periods divide one
another fall due in the same tick: ten packets at 50 Hz cost 50 wake-ups, 50 refreshes of the
software channels and 50 writes a second, not 500. The packets of one tick are framed into
the link's tx buffer and written together (``link.holding``, as for a command's answers).
The channels are refreshed once per tick, before its first packet, and the packets carrying
the link's counters (frames_out, tx_dropped...) are made first in their tick: their counters
then account for exactly the messages numbered before them (SPEC §5.8).
At boot, and when hk_enable turns a packet on, it goes out at once, then on its grid (hk_rate
and hk_enable: node.admin, imported per command).

No allocation: send(), tick() and the scheduler loop (asyncio.sleep_ms does not allocate).
"""

import asyncio

from micropython import const

from protocol.node_dictionary import (
    CHANNEL_TYPES,
    PACKET_CHANNEL0,
    PACKET_CHANNELS,
    PACKET_PERIODS,
    packet,
)

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_KIND_HOUSEKEEPING = const(2)
_PARAM_HK_ENABLED_MASK = const(13)
_TYPE_BOOL = const(0)
_TYPE_F32 = const(5)

_MAX_SLEEP_MS = const(100)
_LINK_FIRST = (1, 0)  # a tick's packets carrying the link counters, then the others


class Housekeeping:
    def __init__(self, link, telemetry, params, clock):
        self.link = link
        self.telemetry = telemetry
        self.tlm = telemetry.tlm
        self._now_ms = clock.now_ms
        n = len(PACKET_PERIODS) // 2  # tables by packet id, 0 unused
        self.count = n
        self.period_ms = [0] * n
        self.enabled = [False] * n
        self.due = [0] * n
        # bit pid: the packet carries the link's counters (a packet's channels and their
        # types are read from the dictionary's tables as it is encoded)
        self._link_counters = 0
        mask = params.get(_PARAM_HK_ENABLED_MASK)
        for pid in range(1, n):
            rec = packet(pid)
            if rec is None:
                continue
            period_ms, channels = rec
            self.period_ms[pid] = period_ms
            if any(ch in link.COUNTER_CHANNELS for ch in channels):
                self._link_counters |= 1 << pid
            self.enabled[pid] = bool(mask & (1 << (pid - 1)))
        self.hung = False
        self.progress = 0

    def send(self, pid):
        """Refresh the software channels, then encode and send packet pid now. No allocation."""
        self.telemetry.update_software()
        self._encode(pid)

    def _encode(self, pid):
        # The packet from the channel store as it is now. No allocation.
        tlm = self.tlm
        channels = PACKET_CHANNELS  # the packet's: channels[start:end]
        types = CHANNEL_TYPES
        start = PACKET_CHANNEL0[pid]
        end = PACKET_CHANNEL0[pid + 1]
        link = self.link
        enc = link.begin(_KIND_HOUSEKEEPING, pid)
        enc.array(end - start)
        for i in range(start, end):
            ch = channels[i]
            t = types[ch]
            v = tlm[ch]
            if t == _TYPE_F32:
                enc.float32(v)
            elif t == _TYPE_BOOL:
                enc.bool(v)
            else:
                enc.uint(v)
        link.end()

    def tick(self):
        """Send every packet that is due, in one write; return ms until the next is due.
        No allocation."""
        now = self._now_ms()
        wait = _MAX_SLEEP_MS
        enabled = self.enabled
        due = self.due
        period_ms = self.period_ms
        link = self.link
        link_counters = self._link_counters
        held = link.holding
        fresh = False
        try:
            # SPEC §5.8: the link's counters are read once, at the start of the tick, so the
            # packets carrying them go first: then they account for exactly the messages
            # numbered before them (none of this tick's is made, or held unwritten, yet)
            for first in _LINK_FIRST:
                for pid in range(1, self.count):
                    if not enabled[pid] or ((link_counters >> pid) & 1) != first:
                        continue
                    if now >= due[pid]:
                        if not fresh:  # once per tick: every packet of it has the same values
                            self.telemetry.update_software()
                            link.holding = True
                            fresh = True
                        self._encode(pid)
                        period = period_ms[pid]
                        due[pid] = (now // period + 1) * period
                    left = due[pid] - now
                    if left < wait:
                        wait = left
        finally:
            if fresh and not held:
                link.holding = False
                link.flush()
        return wait

    async def run(self):
        now = self._now_ms()
        for pid in range(1, self.count):
            self.due[pid] = now
        while True:
            if self.hung:  # fault injection: no progress, nothing sent
                await asyncio.sleep_ms(_MAX_SLEEP_MS)
                continue
            self.progress += 1
            await asyncio.sleep_ms(self.tick())
