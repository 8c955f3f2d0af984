"""ground keys and the key store (SPEC §10.7): owner-only, no secret printed, a provisioned
simulated node commanded with the store's key, counters never reused across sessions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ground.auth import Signer, dev_signer
from ground.cli import main
from ground.client import Client
from ground.errors import CommandRejected, UsageError, VerificationTimeout
from ground.keys import KeyStore, KeyStoreError
from ground.simnode import SimNode


def test_generate_is_owner_only_and_list_shows_no_secret(tmp_path: Path, capsys) -> None:
    store = tmp_path / "cfg" / "keys.json"
    assert main(["keys", "generate", "--operator", "3", "--key-store", str(store)]) == 0
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    master = json.loads(store.read_text())["operators"]["3"]["master"]
    capsys.readouterr()
    assert main(["keys", "list", "--key-store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "operator 3  key id 0300" in out and master not in out
    assert master not in repr(KeyStore(store))
    assert main(["keys", "generate", "--operator", "3", "--key-store", str(store)]) == 2


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_store_others_may_read_is_refused(tmp_path: Path, mode: int, capsys) -> None:
    store = tmp_path / "keys.json"
    KeyStore(store).generate(1)
    store.chmod(mode)
    with pytest.raises(KeyStoreError):
        KeyStore(store)
    assert main(["keys", "list", "--key-store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "group or others" in err and json.loads(store.read_text())["operators"]["1"][
        "master"] not in err


def test_provisioned_node_takes_the_stores_key_across_sessions(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    store.generate(1)
    state = tmp_path / "state"
    assert main(["keys", "provision", "--key-store", str(path), "--state-dir", str(state)]) == 0
    node = SimNode(seed=1, state_dir=state).start()
    last = 0
    try:
        for _session in range(2):
            signer = KeyStore(path).signer(1)
            first = signer.counter + 1
            assert first > last  # a new session never reuses a counter
            with Client(node.port, write_log=False, signer=signer) as c:
                c.command("noop")
                c.signer = None
                with pytest.raises(CommandRejected):
                    c.command("noop")
            reserved = json.loads(path.read_text())["operators"]["1"]["counter"]
            assert reserved >= signer.counter  # reserved in the store before use
            last = signer.counter
        # another key (the development key) gets no answer at all: refused quietly
        with pytest.raises(VerificationTimeout):
            Client(node.port, write_log=False, signer=dev_signer(), retries=1).connect(
                timeout=2)
    finally:
        node.stop()


def test_rotate_and_revoke_over_the_protocol(tmp_path: Path, capsys) -> None:
    """keys rotate / revoke send key_rotate / key_revoke (armed, signed) and update the store
    only once the node completed them; no key material travels (the node derives it)."""
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    store.generate(1)
    store.generate(2)
    state = tmp_path / "state"
    assert main(["keys", "provision", "--key-store", str(path), "--state-dir", str(state)]) == 0
    master1 = bytes.fromhex(store.entry(1)["master"])
    master2 = bytes.fromhex(store.entry(2)["master"])
    node = SimNode(seed=1, state_dir=state).start()
    common = ["--key-store", str(path), "--port", node.port, "--log", str(tmp_path / "s.log"),
              "--yes"]
    try:
        assert main(["keys", "rotate", "--operator", "1", *common]) == 0
        out = capsys.readouterr().out
        assert "generation 1" in out and master1.hex() not in out
        assert KeyStore(path).entry(1)["generation"] == 1
        with Client(node.port, write_log=False, signer=KeyStore(path).signer(1)) as c:
            c.command("noop")
        old = Signer(master1, 1, 0, last_counter=KeyStore(path).entry(1)["counter"])
        with pytest.raises(VerificationTimeout):  # generation 0: refused, unanswered
            Client(node.port, write_log=False, signer=old, retries=1).connect(timeout=2)
        assert main(["keys", "revoke", "--operator", "1", "--of", "2", *common]) == 0
        assert "REVOKED" in _listing(path, capsys)
        with pytest.raises(UsageError):
            KeyStore(path).signer(2)
        with pytest.raises(VerificationTimeout):
            Client(node.port, write_log=False, signer=Signer(master2, 2, 0),
                   retries=1).connect(timeout=2)
        # the last usable key: the node refuses (failed KEY_REFUSED), the store is unchanged
        assert main(["keys", "revoke", "--operator", "1", *common]) == 1
        assert KeyStore(path).entry(1).get("revoked", -1) == -1
    finally:
        node.stop()


def _listing(path: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["keys", "list", "--key-store", str(path)]) == 0
    return capsys.readouterr().out
