"""Bulk downlinks (SPEC §5.7): parts collected per transfer, joined, decoded.

The node answers ``event_log_downlink`` and ``dict_downlink`` with bulk messages
``[transfer, index, last, payload]`` whose ``transfer`` is the command's seq. ``BulkTransfers``
listens to the downlink and keeps each completed transfer until it is collected with
``wait``; parts may arrive before or after the command's ``completed``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Final

import cbor2

from ground import codec
from ground.downlink import BULK, Downlink
from ground.errors import WaitTimeout

EVENT_LOG: Final = 1
DICTIONARY: Final = 2
TT_QUEUE: Final = 4  # the time-tagged queue (tt_list, SPEC §11.4)
_KEEP: Final = 16  # completed transfers nobody collected: forget the oldest


class BulkTransfers:
    def __init__(self, downlink: Downlink) -> None:
        self._parts: dict[tuple[int, int], list[bytes]] = {}
        self._done: dict[tuple[int, int], bytes] = {}
        self._cond = threading.Condition()
        downlink.listen(BULK, self._on_bulk)

    def _on_bulk(self, msg: codec.Message) -> None:
        transfer, index, last, payload = msg.body
        key = (msg.id, transfer)
        with self._cond:
            parts = self._parts.setdefault(key, [])
            if index != len(parts):
                if index > len(parts):  # a part was lost: this transfer cannot complete
                    self._parts.pop(key, None)
                return  # (index below: a repeat)
            parts.append(payload)
            if last:
                self._done[key] = b"".join(self._parts.pop(key))
                while len(self._done) > _KEEP:
                    self._done.pop(next(iter(self._done)))
                self._cond.notify_all()

    def wait(
        self, bulk_type: int, transfer: int, timeout: float, what: str, log_path: str | None
    ) -> bytes:
        """The joined payload of a transfer, or WaitTimeout saying how much arrived."""
        key = (bulk_type, transfer)
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(
                lambda: key in self._done, max(0.0, deadline - time.monotonic())
            ):
                got = len(self._parts.pop(key, []))
                raise WaitTimeout(
                    f"complete bulk transfer for {what}",
                    timeout,
                    f"{got} part(s) arrived",
                    log_path,
                )
            return self._done.pop(key)


def decode_payload(what: str, payload: bytes) -> Any:
    try:
        return cbor2.loads(payload)
    except Exception as exc:
        raise codec.DecodeFailure(f"{what}: bulk payload is not CBOR: {exc}") from None


def dictionary_hash(description: bytes) -> int:
    """SPEC §7: the first four bytes of the SHA-256 of the compact dictionary, big-endian."""
    return int.from_bytes(hashlib.sha256(description).digest()[:4], "big")
