"""ground/fuzz/keyring.py, authmodel.py and gen_auth.py: the fuzzer's reading of SPEC §10 on the
spec's own examples, the replay window of §10.4 counter by counter, and each case family's
verdict (the one §10.3 gives) with the node's key and without it."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest

from ground.auth import dev_signer
from ground.fuzz import cases as fc
from ground.fuzz import gen_auth, model
from ground.fuzz.authmodel import ACCEPTED, FORGED, REPLAYED, AuthModel, layout
from ground.fuzz.case import MALFORMED, NONE, UNAUTHENTICATED, rej
from ground.fuzz.encoding import command, envelope
from ground.fuzz.keyring import FuzzKey, OpenError, foreign_key, protected, tag_of
from ground.fuzz.oracle import COMMAND_IDS, is_hazard
from protocol import cose, cose_sign

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"
EXAMPLE_KEY = bytes(range(32))
EXAMPLE_KID = b"\x01\x00"


@pytest.fixture(autouse=True)
def _boot_zero_then_foreign_key(boot_zero: None) -> Iterator[None]:
    """Commands bound to boot 0 (conftest); the generator's key put back to a foreign one."""
    yield
    gen_auth.bind_key(foreign_key())


def _spec_mac0s() -> list[tuple[bytes, bool, int, bytes]]:
    """(object, refused?, counter, payload) of every command example-mac block of §10."""
    out = []
    for block in re.findall(r"```example-mac\n(.*?)```", SPEC.read_text(), re.S):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1].isspace():
                fields[key] += line
            else:
                key, _, value = line.partition(":")
                fields[key] = value
        if fields.get("direction", "").strip() == "command" and "mac0" in fields \
                and fields.get("key", "").split()[:2] == ["00", "01"]:  # the example key
            out.append((bytes.fromhex(re.sub(r"\s", "", fields["mac0"])), "refused" in fields,
                        int(fields.get("counter", "0")),
                        bytes.fromhex(re.sub(r"\s", "", fields.get("payload", "")))))
    return out


def _example_key() -> FuzzKey:
    return FuzzKey(b"", 1, 0, key=EXAMPLE_KEY)


def test_the_spec_command_examples_get_the_spec_verdicts() -> None:
    examples = _spec_mac0s()
    assert len(examples) >= 3
    for obj, refused, counter, payload in examples:
        verdict = AuthModel([_example_key()]).verdict(obj)
        assert verdict.kind == (FORGED if refused else ACCEPTED), obj.hex()
        if not refused:
            assert (verdict.counter, verdict.payload) == (counter, payload)


def test_keyring_builds_the_bytes_protocol_cose_builds() -> None:
    key = _example_key()
    message = command(7, 1, [])
    obj, counter = key.sign(message, 300)
    node_key = cose.MacKey(EXAMPLE_KID, EXAMPLE_KEY)
    assert counter == 300
    assert obj == cose_sign.encode_mac0(node_key, cose.LABEL_COUNTER, 300, message,
                                        cose_sign.AAD_COMMAND)
    answer = cose_sign.encode_mac0(node_key, cose.LABEL_ANSWERS, 300, b"\x86\x01",
                                   cose_sign.AAD_VERIFICATION)
    assert key.open(answer) == (b"\x86\x01", 300)


@pytest.mark.parametrize("damage", ["tag", "command_aad", "kid", "label", "trailing"])
def test_keyring_refuses_answers_that_do_not_check_out(damage: str) -> None:
    key = _example_key()
    node_key = cose.MacKey(EXAMPLE_KID, EXAMPLE_KEY)
    label, aad = cose.LABEL_ANSWERS, cose_sign.AAD_VERIFICATION
    if damage == "command_aad":
        aad = cose_sign.AAD_COMMAND
    if damage == "label":
        label = cose.LABEL_COUNTER
    if damage == "kid":
        node_key = cose.MacKey(b"\x02\x00", EXAMPLE_KEY)
    answer = cose_sign.encode_mac0(node_key, label, 5, b"\x86\x01", aad)
    if damage == "tag":
        answer = answer[:-1] + bytes([answer[-1] ^ 1])
    if damage == "trailing":
        answer += b"\x00"
    with pytest.raises(OpenError):
        key.open(answer)


def test_the_development_key_is_the_grounds() -> None:
    """sim://?key=dev: the fuzzer's key and ground.auth's development Signer agree."""
    from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR

    key = FuzzKey(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)
    signer = dev_signer()
    signer.counter = 299
    obj, counter = signer.sign(command(7, 1, []))
    assert (obj, counter) == (key.sign(command(7, 1, []), 300)[0], 300)


def test_the_replay_window_counter_by_counter() -> None:
    """§10.4: above the highest; or one of the 24 below it not yet accepted; a boot counts
    every counter up to the reservation as accepted."""
    key = _example_key()
    auth = AuthModel([key])

    def send(counter: int) -> str:
        return auth.verdict(key.sign(command(1, 1, []), counter)[0]).kind

    assert send(300) == ACCEPTED
    assert send(300) == REPLAYED  # the highest itself
    assert send(276) == ACCEPTED  # 300 - 24: the oldest in the window
    assert send(275) == REPLAYED  # below it
    assert send(276) == REPLAYED
    assert send(310) == ACCEPTED
    assert send(300) == REPLAYED  # accepted before the window moved
    assert send(301) == ACCEPTED
    assert send(285) == REPLAYED  # now below 310 - 24
    assert (auth.forged, auth.replayed) == (0, 5)
    auth.reboot()  # R was written as 512 when 300 was accepted
    assert (auth.forged, auth.replayed) == (0, 0)
    assert send(309) == REPLAYED and send(511) == REPLAYED and send(512) == REPLAYED
    assert send(513) == ACCEPTED
    assert send(600) == ACCEPTED  # below the reservation of 768: no write, same verdict


@pytest.mark.parametrize(("header", "why"), [
    (cbor2.dumps({1: 5, 4: EXAMPLE_KID, -65537: 0}), "counter"),
    (cbor2.dumps({1: 5, 4: EXAMPLE_KID, -65537: 2**30}), "counter"),
    (cbor2.dumps({4: EXAMPLE_KID, 1: 5, -65537: 9}), "keys"),
    (b"\xa3\x01\x05\x04\x42\x01\x00\x3a\x00\x01\x00\x00\x19\x00\x09", "shortest"),
    (cbor2.dumps({1: 4, 4: EXAMPLE_KID, -65537: 9}), "algorithm"),
    (cbor2.dumps({1: 5, 4: b"\x01", -65537: 9}), "kid"),
])
def test_layout_refuses_what_the_node_must_refuse(header: bytes, why: str) -> None:
    message = command(1, 1, [])
    obj = b"\xd1\x84" + cbor2.dumps(header) + b"\xa0" + cbor2.dumps(message) + cbor2.dumps(
        tag_of(EXAMPLE_KEY, header, message))
    result = layout(obj)
    assert isinstance(result, str) and why in result
    assert AuthModel([_example_key()]).verdict(obj).kind == FORGED


def test_plain_commands_to_a_node_that_enforces_are_unauthenticated_after_section_5() -> None:
    noop = command(4, COMMAND_IDS["noop"], [])
    assert model.expect(noop, enforced=True).outcomes == rej(UNAUTHENTICATED)
    assert model.expect(noop, enforced=True, signed=True).outcomes == {"ok", "fail"}
    wrong_kind = envelope(4, COMMAND_IDS["noop"], b"\x80", kind=1)  # §5's checks come first
    assert model.expect(wrong_kind, enforced=True).outcomes == rej(MALFORMED)
    policy = command(5, COMMAND_IDS["auth_policy"], [False])
    assert model.expect(policy).outcomes == rej(UNAUTHENTICATED)  # plain, whatever the state
    # authenticated, it is hazardous: NOT_ARMED without the arm just before it (§10.8)
    assert model.expect(policy, signed=True).outcomes == rej(11)
    assert not is_hazard(COMMAND_IDS["auth_policy"], [False], signed=True)


def _campaign_verdicts(key: FuzzKey, n: int, seed: int = 1) -> dict[str, Counter[str]]:
    """Generate n auth cases signed with ``key`` and judge them in order with a model that
    knows the node's key: per family, the verdicts."""
    node_key = FuzzKey(b"\x00" * 32, 0, 0)  # the key the node holds
    gen_auth.bind_key(key)
    auth = AuthModel([node_key])
    out: dict[str, Counter[str]] = {}
    for i in range(n):
        case = gen_auth.gen_auth(random.Random(f"{seed}:{i}"), 1000 + i)
        if case.payload[:1] != b"\xd1" or len(case.payload) > fc.MAX_MESSAGE:
            out.setdefault(case.name, Counter())["plain or too long"] += 1
            continue
        out.setdefault(case.name, Counter())[auth.verdict(case.payload).kind] += 1
    return out


def test_with_the_nodes_key_each_family_gets_its_verdict() -> None:
    verdicts = _campaign_verdicts(FuzzKey(b"\x00" * 32, 0, 0), 3000)
    for family in ("protected", "unprotected", "kid", "tag_length", "tag_bits",
                   "payload_bits"):
        assert set(verdicts[family]) == {FORGED}, (family, verdicts[family])
    for family in ("signed", "ahead", "nested"):
        assert set(verdicts[family]) - {"plain or too long"} == {ACCEPTED}, family
    assert verdicts["held"][ACCEPTED] and verdicts["held"][REPLAYED]  # in and out of window
    assert verdicts["replay"][REPLAYED] > verdicts["replay"][ACCEPTED]
    assert set(verdicts["old_counter"]) == {REPLAYED}
    assert verdicts["shape"][FORGED] and verdicts["shape"]["plain or too long"]


def test_without_the_nodes_key_every_authenticated_case_is_forged() -> None:
    verdicts = _campaign_verdicts(foreign_key(), 2000)
    total: Counter[str] = Counter()
    for counts in verdicts.values():
        total.update(counts)
    assert set(total) <= {FORGED, "plain or too long"} and total[FORGED] > 1500


def test_signed_cases_carry_other_categories_messages_but_no_hazard() -> None:
    """With the key, a signed case's message is any category's, never one that would run a
    hazard authenticated (reboot, maintenance, auth_policy...)."""
    key = FuzzKey(b"\x00" * 32, 0, 0)
    gen_auth.bind_key(key)
    auth = AuthModel([FuzzKey(b"\x00" * 32, 0, 0)])
    inner_ids: Counter[object] = Counter()
    for i in range(3000):
        case = gen_auth.gen_auth(random.Random(f"h:{i}"), 2000 + i)
        if case.name != "signed" or len(case.payload) > fc.MAX_MESSAGE:
            continue
        verdict = auth.verdict(case.payload)
        assert verdict.kind == ACCEPTED
        exp = model.expect(verdict.payload, signed=True)
        inner_ids[exp.reason.split(":")[0]] += 1
        if exp.command is not None:
            assert not is_hazard(exp.command[0], list(exp.command[1]), signed=True)
        else:
            assert exp.outcomes != {"ok"} or exp.address is None or NONE in exp.outcomes
    assert inner_ids["not one item under the profile"] and inner_ids["well-formed (authenticated)"]


def test_generate_with_the_key_makes_half_the_cases_authenticated() -> None:
    n = 2000
    plain = Counter(fc.generate(5, i, i, fc.CATEGORIES).category == "auth" for i in range(n))
    keyed = Counter(fc.generate(5, i, i, fc.CATEGORIES, keyed=True).category == "auth"
                    for i in range(n))
    assert 0.04 < plain[True] / n < 0.11
    assert 0.4 < keyed[True] / n < 0.6


def test_a_protected_header_with_the_right_tag_is_still_checked_for_layout() -> None:
    key = _example_key()
    message = command(1, 1, [])
    good = protected(EXAMPLE_KID, 9)
    assert AuthModel([key]).verdict(key.sign(message, 9)[0]).kind == ACCEPTED
    extra = cbor2.dumps({1: 5, 4: EXAMPLE_KID, 5: b"", -65537: 9})
    assert extra != good
    obj = b"\xd1\x84" + cbor2.dumps(extra) + b"\xa0" + cbor2.dumps(message) + cbor2.dumps(
        tag_of(EXAMPLE_KEY, extra, message))
    assert AuthModel([key]).verdict(obj).kind == FORGED
