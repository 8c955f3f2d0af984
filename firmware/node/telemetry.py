"""The telemetry store: one list indexed by channel id, written by the plant and services.

Channel values keep their dictionary type (bool, int or float) from the start (node.boot
makes the store so), so the housekeeping encoder never meets a None. ``update_software``
refreshes the node's own channels (uptime, link counters) just before a packet is encoded; it
allocates nothing while the values are small ints. heap_free is sampled after a garbage
collection, once a second.
"""

import gc

from micropython import const

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_CH_BOOT_COUNT = const(2)
_CH_HEAP_FREE = const(6)
_CH_MODE = const(1)
_CH_NODE_ID = const(63)
_CH_RESET_CAUSE = const(5)
_CH_UPTIME_S = const(4)


class Telemetry:
    def __init__(self, tlm, clock, link, boot_count, reset_cause):
        self.tlm = tlm
        self._clock = clock
        self._link = link
        tlm[_CH_BOOT_COUNT] = boot_count
        tlm[_CH_RESET_CAUSE] = reset_cause
        tlm[_CH_MODE] = 0

    def set_node_id(self, param_value, board_id):
        """The node_id channel: the parameter when set (not 0), else the board's own id."""
        self.tlm[_CH_NODE_ID] = param_value or board_id

    def update_software(self):
        self.tlm[_CH_UPTIME_S] = self._clock.uptime_s()
        self._link.update_tlm()

    def sample_heap(self):
        """Collect, then record the free heap: without the collection the value would saw
        down to zero and back with every garbage cycle. Called at 1 Hz (the FDIR task)."""
        gc.collect()
        self.tlm[_CH_HEAP_FREE] = gc.mem_free()
