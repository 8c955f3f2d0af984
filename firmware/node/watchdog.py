"""The watchdog task: fed only while every task shows progress.

Each monitored task object has ``progress`` (a counter it bumps every loop, at least every
~100 ms) and ``hung`` (fault injection: HANG_TASK makes the task stop making progress). A
task may also have ``idle``: True while it waits for input (the link), which counts as alive.
Every check (timeout/4) the watchdog feeds only if every task moved since the last feed; a
task that stays stuck for the whole timeout therefore resets the node, and the next boot
reports reset cause WATCHDOG with a watchdog_reset event.

The timeout is the watchdog_timeout_ms parameter as it was at boot (a running machine.WDT
cannot be reconfigured). Allocation-free after start.
"""

import asyncio

from micropython import const

# Ids and codes from protocol.ids / protocol.messages, inlined at compile time
# (tests/firmware/test_consts.py checks them against the protocol package).
_PARAM_WATCHDOG_TIMEOUT_MS = const(9)


_MIN_CHECK_MS = const(50)


class Watchdog:
    def __init__(self, board, params):
        self.board = board
        self.timeout_ms = params.get(_PARAM_WATCHDOG_TIMEOUT_MS)
        self.tasks = []
        self._seen = []
        self.hung = False
        self.progress = 0
        self.feeds = 0
        self.stalled = -1  # index of the first task found stuck, for diagnostics

    def add(self, task):
        """Monitor task (an object with .progress, .hung and maybe .idle); returns its index."""
        self.tasks.append(task)
        self._seen.append(-1)
        return len(self.tasks) - 1

    def all_moved(self):
        tasks = self.tasks
        seen = self._seen
        for i in range(len(tasks)):
            t = tasks[i]
            if t.progress == seen[i] and not getattr(t, "idle", False):
                if self.stalled < 0:
                    self.stalled = i
                return False
        return True

    def feed_if_alive(self):
        if self.hung or not self.all_moved():
            return False
        tasks = self.tasks
        seen = self._seen
        for i in range(len(tasks)):
            seen[i] = tasks[i].progress
        self.board.wdt_feed()
        self.feeds += 1
        self.stalled = -1
        return True

    async def run(self):
        self.board.wdt_start(self.timeout_ms)
        check_ms = max(self.timeout_ms // 4, _MIN_CHECK_MS)
        while True:
            self.progress += 1
            self.feed_if_alive()
            await asyncio.sleep_ms(check_ms)
