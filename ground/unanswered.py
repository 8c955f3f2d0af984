"""Commands sent through a broker and not yet answered, to publish again after an outage.

A broker that restarts (or a gateway that reconnects to it) loses what was published while
nobody was subscribed to ``cmd``: MQTT has no store for a topic without a subscriber. The
client re-sends a command only a few times, quickly, so all of them can fall into one outage.
The ``mqtt://`` port therefore keeps each command it published until a final verification
(``completed``, ``failed`` or ``rejected``) for its (seq, command id) comes down, and publishes
the unanswered ones of the last ``window_s`` seconds again when the node's link is reported
``up`` after the operator's broker connection came back. That is safe by the protocol: the
node answers a repeated (seq, id) from its memory of the last 32 accepted commands instead
of executing it again (SPEC §5.2).

The command is never changed or decoded beyond its head: a plain command message (SPEC kind 0,
six items or seven with the boot binding) gives (seq, id) directly; one wrapped in a CBOR tag
or an array whose third item is the command message's bytes (as a COSE_Mac0 is) is looked
into for it. A payload neither of these
is not tracked (and so not re-sent).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Final

import cbor2

_COMMAND: Final = 0
_VERIFICATION: Final = 1
_ACCEPTED: Final = 0
_MAX_TRACKED: Final = 32  # what the node remembers; older ones could execute again


def command_key(payload: bytes) -> tuple[int, int] | None:
    """(seq, command id) of a command message, plain or wrapped; None if not readable."""
    try:
        item: Any = cbor2.loads(payload)
    except Exception:  # any bytes may arrive: unreadable is simply untracked
        return None
    return _key(item, depth=0)


def _key(item: Any, depth: int) -> tuple[int, int] | None:
    if depth > 2:
        return None
    if isinstance(item, cbor2.CBORTag):
        return _key(item.value, depth + 1)
    if isinstance(item, list | tuple):  # cbor2 makes arrays inside a tag tuples
        if len(item) in (6, 7) and item[1] == _COMMAND and isinstance(item[2], int) \
                and isinstance(item[4], int):
            return item[2], item[4]
        if len(item) >= 3 and isinstance(item[2], bytes):
            try:
                return _key(cbor2.loads(item[2]), depth + 1)
            except Exception:
                return None
    return None


def final_verification(message: bytes) -> tuple[int, int] | None:
    """(seq, command id) a final verification message answers; None for anything else."""
    if len(message) < 3 or message[2] != _VERIFICATION:
        return None
    try:
        _v, _k, _s, _t, cmd_id, body = cbor2.loads(message)
        cmd_seq, stage = body[0], body[1]
    except Exception:
        return None
    if stage == _ACCEPTED or not isinstance(cmd_seq, int) or not isinstance(cmd_id, int):
        return None
    return cmd_seq, cmd_id


class Unanswered:
    def __init__(self, window_s: float = 30.0) -> None:
        self.window_s = window_s
        self._sent: OrderedDict[tuple[int, int], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.resent = 0

    def sent(self, payload: bytes) -> None:
        key = command_key(payload)
        if key is None:
            return
        with self._lock:
            self._sent.pop(key, None)
            self._sent[key] = (payload, time.monotonic())
            while len(self._sent) > _MAX_TRACKED:
                self._sent.popitem(last=False)

    def answered(self, message: bytes) -> None:
        key = final_verification(message)
        if key is not None:
            with self._lock:
                self._sent.pop(key, None)

    def due(self) -> list[bytes]:
        """The unanswered commands of the last window_s seconds, oldest first."""
        now = time.monotonic()
        with self._lock:
            out = [p for p, t in self._sent.values() if now - t <= self.window_s]
        self.resent += len(out)
        return out
