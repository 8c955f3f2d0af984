"""The station's MQTT topic scheme, version 1 (docs/station.md is the prose; this is the code).

Every topic is ``ilrs/v1/{station}/{node}/{kind}``. ``station`` and ``node`` are names the
operator chooses (letters, digits, ``-`` and ``_``), so a topic level never holds a wildcard
or a separator. The payload of every protocol kind is ONE protocol message exactly as the node
sent it or as the operator built it: the CBOR array of SPEC §4, without the CRC and COBS of the
serial link (MQTT delivers whole messages, checked by TCP). A gateway reframes a command for
the node's link, and a subscriber reframes a downlink message to feed the ground's usual
decoders, so the session log (``down``/``up`` records) is byte for byte what a serial session
writes.

=========  =====  ========  ======================================================================
kind       dir    retained  payload
=========  =====  ========  ======================================================================
``cmd``    up     no        a command message (SPEC kind 0), forwarded unchanged (QoS 1)
``vr``     down   no        verification (kind 1)
``tm``     down   no        housekeeping (kind 2)
``ev``     down   no        event (kind 3)
``pm``     down   no        parameter (kind 4)
``tc``     down   no        time correlation (kind 5)
``bk``     down   no        bulk (kind 6)
``bad``    down   no        a CRC-verified frame whose kind could not be read (not dropped)
``status`` down   yes       link state, JSON (below); the gateway's last will says ``gone``
``dict``   down   yes       JSON ``{"hash": "0x...", "source": ...}``: the node's dictionary hash
``refused`` down  no        JSON: a command the gateway did not forward, and why
=========  =====  ========  ======================================================================

``status`` is ``{"link": L, "detail": "...", "gateway": "...", "node_id": "0x..." or null,
"t_ns": N}`` with L one of ``up`` (the gateway has the node's port open), ``lost`` (port lost,
the gateway is reopening it), ``down`` (the gateway stopped cleanly), ``gone`` (the broker
published the gateway's last will: its connection died) and ``wrong_node`` (the port carries
a node whose ``node_id``, SPEC §5.3, is not the one this topic names: nothing of it is
published and no command is sent). ``node_id`` is the identity the gateway holds this topic
to (given, or the first one the node's housekeeping showed); null before it is known. A
subscriber that finds no retained status knows nothing: no gateway has ever served that node.
Only ``up`` lets a command through.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Final

ROOT: Final = "ilrs"
VERSION: Final = "v1"

CMD: Final = "cmd"
STATUS: Final = "status"
DICT: Final = "dict"
REFUSED: Final = "refused"
BAD: Final = "bad"
# SPEC §4 kind number → topic kind, for the node's downlink.
DOWN_KINDS: Final[dict[int, str]] = {1: "vr", 2: "tm", 3: "ev", 4: "pm", 5: "tc", 6: "bk"}
DOWNLINK: Final = (*DOWN_KINDS.values(), BAD)

UP: Final = "up"
LOST: Final = "lost"
DOWN: Final = "down"
GONE: Final = "gone"
WRONG_NODE: Final = "wrong_node"
LINK_STATES: Final = (UP, LOST, DOWN, GONE, WRONG_NODE)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def check_name(what: str, name: str) -> str:
    """A station or node name usable as one topic level; ValueError saying why not."""
    if not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r}: use 1 to 64 letters, digits, '-' or '_' "
            "(it is one MQTT topic level)"
        )
    return name


def topic(station: str, node: str, kind: str) -> str:
    return f"{ROOT}/{VERSION}/{station}/{node}/{kind}"


def parse(name: str) -> tuple[str, str, str] | None:
    """``ilrs/v1/S/N/K`` → (S, N, K); None for a topic outside this scheme."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != ROOT or parts[1] != VERSION:
        return None
    return parts[2], parts[3], parts[4]


def kind_of(message: bytes) -> str:
    """The topic kind of a downlink message, read from its second CBOR item without decoding
    the whole message: ``83``/``86`` array head, version uint, then kind uint 0..23."""
    # A message is a 6-item array (0x86), its version a small uint, its kind a small uint.
    if len(message) >= 3 and message[0] == 0x86 and message[1] < 0x18:
        return DOWN_KINDS.get(message[2], BAD)
    return BAD


def node_id_text(node_id: int | None) -> str | None:
    return None if node_id is None else f"0x{node_id:08x}"


def status_payload(link: str, detail: str, gateway: str, node_id: int | None = None) -> bytes:
    body = {"link": link, "detail": detail, "gateway": gateway,
            "node_id": node_id_text(node_id), "t_ns": time.time_ns()}
    return json.dumps(body, separators=(",", ":")).encode()


def read_status(payload: bytes) -> dict[str, Any]:
    """A status payload as a dict with at least ``link`` (``unknown`` if unreadable)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {"link": "unknown", "detail": f"unreadable status {payload[:40]!r}"}
    if not isinstance(body, dict) or body.get("link") not in LINK_STATES:
        return {"link": "unknown", "detail": f"unreadable status {payload[:40]!r}"}
    return body
