"""ground keys: operator master secrets for authenticated commanding (SPEC §10.7).

    ground keys generate --operator 1          # a new 32-byte master secret in the key store
    ground keys list                           # operators, key ids, counters (never secrets)
    ground keys provision --state-dir DIR      # a simulated node's key table (every operator)
    ground keys provision --board /dev/ttyACM0 # a Pico at the REPL, through mpremote
    ground cmd noop --operator 1               # commands signed with operator 1's key
    ground keys rotate --operator 1 --port P   # operator 1 moves to its next generation
    ground keys revoke --operator 0 --of 1 --port P  # operator 0 has operator 1 refused

The development key (``ground.auth``: public, simulated nodes only) has a store of its own,
``dev_store()`` (``$XDG_STATE_HOME/ilrs/dev-keys.json``, else ~/.local/state/...): a node that
outlives one command (the background node of ``ground sim start``, a node behind a gateway
reached with ``mqtt://...?key=dev``) keeps its replay window across sessions (SPEC §10.4), so
every session must continue the key's counters, as with an operator's key.

The key store (``--key-store``, default ``$ILRS_KEYS`` else ~/.config/ilrs/keys.json) is created
owner-only (0600) and refused when its group or others may read it. A key table reaches a
board only through the maintenance path (``mpremote cp`` to /data/keys.bin, the board at its
REPL), never over the protocol. ``KeyStore.signer(operator)`` gives the client a
``ground.auth.Signer`` whose counter reservations are persisted in the store before use.

Rotation and revocation go over the protocol without key material: ``rotate`` sends
``key_rotate`` (hazardous: the client arms it) signed by ``--operator``, for ``--of``
(default: the same operator); the node derives the new generation from the master it holds
(SPEC §10.7). Only once the node completed it does the store move to the new generation; a
``noop`` under the new key then retires the old one on the node. ``revoke`` sends
``key_revoke`` for ``--of`` (``--generation G``: generations up to G; default all, for good)
and records it in the store; a revoked operator's key is then refused here too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR, Signer, node_key_table
from ground.errors import EXIT_LINK, EXIT_USAGE, GroundError, UsageError

STORE_ENV: Final = "ILRS_KEYS"
BOARD_KEYS: Final = ":/data/keys.bin"  # node.auth's keys.bin under board/rp2.py's fs_root


class KeyStoreError(GroundError):
    """The key store cannot be used (permissions, format): says which file and why."""

    exit_code = EXIT_USAGE


class ProvisionError(GroundError):
    """mpremote could not write the key table to the board."""

    exit_code = EXIT_LINK


def default_store() -> Path:
    env = os.environ.get(STORE_ENV)
    return Path(env) if env else Path.home() / ".config" / "ilrs" / "keys.json"


class KeyStore:
    """Operators' master secrets, generations and counter reservations, one JSON file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.operators: dict[int, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, operators={sorted(self.operators)})"

    def _load(self) -> None:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{self.path}: group or others may access it (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {self.path}` if it was not read by anyone else, else "
                "generate new keys")
        try:
            data = json.loads(self.path.read_text())
            self.operators = {int(k): v for k, v in data["operators"].items()}
            for entry in self.operators.values():
                if len(bytes.fromhex(entry["master"])) != 32:
                    raise ValueError("a master secret is not 32 bytes")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{self.path}: not a key store ({type(exc).__name__})") from None

    def save(self) -> None:
        """Write atomically, owner-only from the first byte."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"operators": {str(k): v for k, v in sorted(self.operators.items())}},
                          indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def generate(self, operator: int) -> None:
        if not 0 <= operator <= 255:
            raise UsageError(f"operator {operator}: 0..255")
        if operator in self.operators:
            raise UsageError(f"operator {operator} already has a key in {self.path}")
        self.operators[operator] = {"master": secrets.token_bytes(32).hex(), "generation": 0,
                                    "counter": 0}
        self.save()

    def entry(self, operator: int) -> dict[str, Any]:
        try:
            return self.operators[operator]
        except KeyError:
            raise UsageError(f"operator {operator} has no key in {self.path} "
                             "(ground keys generate)") from None

    def signer(self, operator: int) -> Signer:
        entry = self.entry(operator)
        if entry.get("revoked", -1) >= entry["generation"]:
            raise UsageError(f"operator {operator}'s key generation {entry['generation']} is "
                             "revoked (ground keys rotate it from another operator)")

        def store(reserved: int) -> None:
            entry["counter"] = reserved
            self.save()

        return Signer(bytes.fromhex(entry["master"]), operator, entry["generation"],
                      entry["counter"], store)

    def node_table(self, operators: list[int]) -> bytes:
        return node_key_table([(op, bytes.fromhex(self.entry(op)["master"]),
                                self.entry(op)["generation"]) for op in operators])


def dev_store() -> KeyStore:
    """The development key's store (created on first use): its counter reservations."""
    from ground.daemon import state_home

    return dev_store_at(state_home() / "ilrs" / "dev-keys.json")


def dev_key_signer(store: str | os.PathLike[str] | None = None) -> Signer:
    """A Signer of the development key that continues its counters from ``dev_store()``, or
    from the store at ``store`` (a virtual Pico's, beside its flash image)."""
    return (dev_store() if store is None else dev_store_at(Path(store))).signer(DEV_OPERATOR)


def dev_store_at(path: Path) -> KeyStore:
    """A store holding only the development key (created on first use) at ``path``."""
    store = KeyStore(path)
    if DEV_OPERATOR not in store.operators:
        store.operators[DEV_OPERATOR] = {"master": DEV_MASTER.hex(),
                                         "generation": DEV_GENERATION, "counter": 0}
        store.save()
    return store


def provision_steps(port: str, table: Path, mpremote: list[str] | None = None) -> list[Any]:
    """The mpremote command lines (ground.flash.Step) that put the key table file ``table`` on
    a board at its REPL: its data directory made (the node makes it at its first boot, so a
    board just deployed has none), then the file copied."""
    from ground.flash import Step, mkdir_script, mpremote_base

    base = mpremote_base(port, mpremote)
    folder = BOARD_KEYS[1:].rsplit("/", 1)[0]
    return [Step(f"make {folder}", [*base, "exec", mkdir_script(folder)], 0),
            Step(f"provision the key table ({BOARD_KEYS[1:]})",
                 [*base, "fs", "cp", str(table), BOARD_KEYS], 1)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    # --operator N, --key-store PATH, --port URL are the common link options (ground.cli)
    p.add_argument("action", choices=("generate", "list", "provision", "rotate", "revoke"),
                   help="generate: --operator N; provision: --operator N, or every operator; "
                   "rotate / revoke: signed by --operator, for --of (default the same)")
    p.add_argument("--state-dir", metavar="DIR", help="provision: a simulated node's state dir")
    p.add_argument("--board", metavar="PORT", help="provision: a Pico at its REPL (mpremote)")
    p.add_argument("--of", type=int, metavar="M", help="rotate / revoke: whose key")
    p.add_argument("--generation", type=int, metavar="G", default=255,
                   help="revoke: generations up to G (default 255: all, for good)")
    p.add_argument("--yes", action="store_true", help="rotate / revoke: do not ask")


def run(args: argparse.Namespace) -> int:
    store = KeyStore(args.key_store or default_store())
    ops: list[int] = [] if args.operator is None else [args.operator]
    if args.action == "generate":
        if len(ops) != 1:
            raise UsageError("keys generate: give one --operator")
        store.generate(ops[0])
        print(f"operator {ops[0]}: new master secret in {store.path}")
    elif args.action == "list":
        for op, entry in sorted(store.operators.items()):
            revoked = entry.get("revoked", -1)
            note = "" if revoked < 0 else (
                "  REVOKED" if revoked == 255 else f"  generations <= {revoked} revoked")
            print(f"operator {op}  key id {op:02x}{entry['generation']:02x}  "
                  f"generation {entry['generation']}  counters reserved to {entry['counter']}"
                  + note)
    elif args.action in ("rotate", "revoke"):
        return _change(store, args)
    else:
        ops = ops or sorted(store.operators)
        if not ops:
            raise UsageError(f"no keys in {store.path} (ground keys generate)")
        table = store.node_table(ops)
        if bool(args.state_dir) == bool(args.board):
            raise UsageError("keys provision: give --state-dir or --board")
        if args.state_dir:
            path = Path(args.state_dir) / "keys.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(table)
            print(f"wrote {path} ({len(ops)} keys); the node boots ENFORCED")
        else:
            _provision_board(args.board, table)
            print(f"provisioned {args.board} ({len(ops)} keys): reset it to boot ENFORCED")
    return 0


def _change(store: KeyStore, args: argparse.Namespace) -> int:
    """keys rotate / revoke: the node command (armed and signed by --operator), then the store."""
    from ground.client import Client
    from ground.subcommands import port_of

    if args.operator is None:
        raise UsageError(f"keys {args.action}: give --operator (the key that signs)")
    of = args.operator if args.of is None else args.of
    signer = store.signer(args.operator)
    if args.action == "rotate":
        generation = store.entry(of)["generation"] + 1 if of in store.operators else None
        if generation is None or generation > 254:
            raise UsageError(f"keys rotate: operator {of} has no key in {store.path}, or no "
                             "generation left")
        name, kwargs = "key_rotate", {"operator": of, "generation": generation}
        what = f"operator {of}'s key moves to generation {generation}"
    else:
        if not 0 <= args.generation <= 255:
            raise UsageError("keys revoke: --generation 0..255")
        name, kwargs = "key_revoke", {"operator": of, "generation": args.generation}
        what = (f"operator {of} is refused for good" if args.generation == 255 else
                f"operator {of}'s generations up to {args.generation} are refused")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"keys {args.action} is hazardous ({what}): add --yes")
        if input(f"{what}. Type yes to send: ").strip() != "yes":
            print("not sent")
            return 1
    with Client(port_of(args), log=args.log, signer=signer) as client:
        client.command(name, timeout=args.timeout, **kwargs)
        if of in store.operators:
            entry = store.entry(of)
            if args.action == "rotate":
                entry["generation"] = kwargs["generation"]
            else:
                entry["revoked"] = max(entry.get("revoked", -1), args.generation)
            store.save()
        print(f"done: {what}")
        if args.action == "rotate" and of == args.operator:
            client.signer = new = store.signer(of)
            client.downlink.opener = new.open
            client.command("noop", timeout=args.timeout)
            print(f"generation {kwargs['generation']} used: the node refuses the old one now")
    return 0


def _provision_board(port: str, table: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "keys.bin"
        src.write_bytes(table)
        for step in provision_steps(port, src, ["mpremote"]):
            try:
                done = subprocess.run(step.argv, capture_output=True, text=True, timeout=60,
                                      check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ProvisionError(f"mpremote on {port}: {type(exc).__name__}") from None
            if done.returncode != 0:
                raise ProvisionError(f"mpremote on {port} failed (is the board at its REPL? "
                                  f"`ground cmd maintenance` first): "
                                  f"{done.stderr.strip().splitlines()[-1:]}")
