"""Is the node still answering? A heartbeat that tells a dead link from a quiet node.

The transport only knows whether the port is open; a node that was killed behind a pty, or a
board that hung, leaves the port open and silent. ``LinkWatch`` counts the frames the
downlink decodes; when none has arrived for ``period_s`` it sends a ``noop`` (the link check,
SPEC §5.2), so a node with every housekeeping packet disabled still answers. Only when
nothing at all has arrived for ``lost_after_s`` (heartbeats included) is the link ``lost``.

    watch = LinkWatch(client).start()
    watch.state()      # "up", "lost", or the transport's own state ("reconnecting", "closed")
    watch.silent_s()   # seconds since the last frame
    watch.stop()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

from ground.errors import GroundError

DEFAULT_PERIOD_S: Final = 0.5  # a heartbeat after this long without a frame
DEFAULT_LOST_AFTER_S: Final = 1.5  # nothing for this long, heartbeats included: lost
LOST: Final = "lost"


class LinkWatch:
    """Frames seen, heartbeats sent, and the link state a person should be shown."""

    def __init__(
        self,
        client: Any,  # ground.client.Client (Any: no import cycle, and fakes in tests)
        *,
        period_s: float = DEFAULT_PERIOD_S,
        lost_after_s: float = DEFAULT_LOST_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < period_s < lost_after_s:
            raise ValueError("LinkWatch: need 0 < period_s < lost_after_s")
        self.client = client
        self.period_s = period_s
        self.lost_after_s = lost_after_s
        self.clock = clock
        self.heartbeats = 0  # noops sent
        self._frames = client.downlink.messages
        self._last_frame = clock()
        self._last_sent = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LinkWatch:
        self._thread = threading.Thread(target=self._run, name="ilrs-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s / 4):
            self.poll()

    def poll(self) -> None:
        """Note new frames; send a heartbeat if the node has been quiet for ``period_s``."""
        now = self.clock()
        frames = self.client.downlink.messages
        if frames != self._frames:
            self._frames = frames
            self._last_frame = now
            return
        if now - self._last_frame < self.period_s or now - self._last_sent < self.period_s:
            return
        if self.client.link_state != "up":
            return  # the transport is reconnecting: a write would only wait
        self._last_sent = now
        try:
            self.client.send("noop")
            self.heartbeats += 1
        except GroundError:
            pass  # the transport says why in its own state; silence keeps counting

    def silent_s(self) -> float:
        """Seconds since the last frame from the node."""
        return max(0.0, self.clock() - self._last_frame)

    def state(self) -> str:
        """``up`` while frames arrive, ``lost`` after ``lost_after_s`` of silence, else the
        transport's state (``closed``, ``reconnecting``, ...)."""
        transport_state = str(self.client.link_state)
        if transport_state != "up":
            return transport_state
        if self.client.downlink.messages != self._frames:
            return "up"  # a frame the poll has not seen yet
        return LOST if self.silent_s() >= self.lost_after_s else "up"
