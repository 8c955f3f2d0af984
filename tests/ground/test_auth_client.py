"""The client's authenticated commanding (SPEC §10.4, §10.5) against the simulated node with
the development key: signed transmissions, and only authenticated answers to them count."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground import codec
from ground.auth import DEV_MASTER, Signer, dev_signer, next_block
from ground.client import Client
from ground.errors import CommandRejected, UsageError, VerificationTimeout
from ground.transport import sim_default_key, sim_options
from protocol import cose, cose_sign
from protocol.cbor_encoder import Encoder
from protocol.frame_writer import encode_frame
from protocol.messages import write_verification


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    log = tmp_path_factory.mktemp("auth") / "session.log"
    with Client("sim://?key=dev&seed=1", log=log) as c:
        yield c


def test_signed_commands_complete_with_authenticated_answers(client: Client) -> None:
    assert client.signer is not None
    before = client.signer.counter
    res = client.command("noop")
    assert [v.stage for v in res.verifications] == ["accepted", "completed"]
    assert client.signer.counter == before + 1
    assert client.downlink.auth_errors == 0


def test_plain_command_is_rejected_unauthenticated(client: Client) -> None:
    signer, client.signer = client.signer, None
    try:
        with pytest.raises(CommandRejected) as exc:
            client.command("noop")
        assert exc.value.code == 9
    finally:
        client.signer = signer


def _verification(seq: int, stage: int, time: int = 0) -> bytes:
    enc = Encoder()
    write_verification(enc, 0, time, 1, seq, stage, 0, None)
    return enc.getvalue()


def test_forged_and_misdirected_answers_never_complete_a_command(client: Client) -> None:
    """The node never hears the command; the downlink brings a plain `completed`, one under
    a wrong key, one under the right key answering another counter: none counts; then the
    right one does."""
    sent: list[bytes] = []
    real_write = client.transport.write
    client.transport.write = sent.append  # type: ignore[method-assign]
    result: list[object] = []
    try:
        t = threading.Thread(target=lambda: result.append(_try(client, 3.0)))
        t.start()
        while not sent:
            threading.Event().wait(0.01)
        seq = client._seq
        counter = client.signer.counter  # type: ignore[union-attr]
        key = cose.MacKey(b"\x00\x00", cose.derive_key(DEV_MASTER, b"\x00\x00"))
        wrong = cose.MacKey(b"\x00\x00", bytes(32))
        for stage in (0, 2):
            plain = _verification(seq, stage)
            client.downlink.feed(encode_frame(plain), 0)
            client.downlink.feed(encode_frame(cose_sign.encode_mac0(
                wrong, cose.LABEL_ANSWERS, counter, plain, cose_sign.AAD_VERIFICATION)), 0)
            client.downlink.feed(encode_frame(cose_sign.encode_mac0(
                key, cose.LABEL_ANSWERS, counter + 1000, plain, cose_sign.AAD_VERIFICATION)), 0)
            # the direction matters: a command-direction tag does not verify
            client.downlink.feed(encode_frame(cose_sign.encode_mac0(
                key, cose.LABEL_ANSWERS, counter, plain, cose_sign.AAD_COMMAND)), 0)
        t.join()
        assert isinstance(result[0], VerificationTimeout), result
        assert client.downlink.auth_errors >= 4
        # and the genuine answer completes one
        t = threading.Thread(target=lambda: result.append(_try(client, 5.0)))
        sent.clear()
        t.start()
        while not sent:
            threading.Event().wait(0.01)
        seq, counter = client._seq, client.signer.counter  # type: ignore[union-attr]
        for stage in (0, 2):
            client.downlink.feed(encode_frame(cose_sign.encode_mac0(
                key, cose.LABEL_ANSWERS, counter, _verification(seq, stage),
                cose_sign.AAD_VERIFICATION)), 0)
        t.join()
        assert not isinstance(result[1], Exception), result
    finally:
        client.transport.write = real_write  # type: ignore[method-assign]


def _try(client: Client, timeout: float) -> object:
    try:
        return client.command("noop", timeout=timeout)
    except Exception as exc:
        return exc


def test_no_key_material_in_reprs_or_the_session_log(client: Client) -> None:
    client.command("noop")
    key = cose.derive_key(DEV_MASTER, b"\x00\x00")
    texts = [repr(client.signer), repr(dev_signer()), repr(client.signer._key)]  # type: ignore[union-attr]
    assert client.log_path is not None
    texts.append(Path(client.log_path).read_text())
    for secret in (key, DEV_MASTER):
        for text in texts:
            assert secret.hex() not in text and secret.hex(" ") not in text


def test_counters_skip_a_block_after_another_boot() -> None:
    s = Signer(bytes(32), 1, 0, last_counter=300)
    assert s.counter == next_block(300) - 1 == 512
    s.new_boot(5)
    s.sign(b"\x80")
    s.new_boot(5)
    assert s.sign(b"\x80")[1] == 514
    s.new_boot(6)
    assert s.sign(b"\x80")[1] == next_block(514) == 769
    s.new_boot(0)
    assert s.sign(b"\x80")[1] == next_block(769) == 1025


def test_sim_key_option() -> None:
    assert sim_options("sim://?key=dev") == {"dev_key": True}
    assert sim_options("sim://?key=none") == {"dev_key": False}
    assert sim_options("sim://?key=dev", default_key=False) == {"dev_key": True}
    assert sim_default_key("sim", "none") == "sim://?key=none"
    assert sim_default_key("sim://?seed=2", "none") == "sim://?seed=2&key=none"
    assert sim_default_key("sim://?key=dev", "none") == "sim://?key=dev"
    assert sim_default_key("/dev/ttyACM0", "none") == "/dev/ttyACM0"
    with pytest.raises(UsageError):
        sim_options("sim://?key=mine")
    assert codec.AuthenticatedMessage(1, 1, 0, 0, 1, []).answers == 0
