"""Live fuzzing as a regression test: the committed corpus replays clean, and a short
fixed-seed campaign finds nothing. On ``sim`` the fuzzer runs its own simulated node (it
needs the port to itself); on a board it uses the target's port.

The authentication layer (SPEC §10) both ways, on a simulated node with the development key:
with the key (``ground fuzz --key``: authenticated cases reach the dispatcher, every answer
signed) and without it (every authenticated case refused and counted, every plain command
UNAUTHENTICATED). A board's key is the operator's: ``ground fuzz --key --operator N``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR
from ground.fuzz.case import Case
from ground.fuzz.cli import DEFAULT_CORPUS
from ground.fuzz.encoding import bound_boot, command
from ground.fuzz.keyring import FuzzKey
from ground.fuzz.oracle import COMMAND_IDS
from ground.fuzz.port import NodePort
from ground.fuzz.runner import Campaign, load_corpus
from hil.session import HilTarget

pytestmark = [
    pytest.mark.byte_link(reason="raw and malformed frames"),
    pytest.mark.slow_target(
        reason="2,000 cases and the corpus through a link of about 8 kB/s on a clock 34x slow"),
]

CI_CASES: Final = 2000
CI_SEED: Final = 2026


@pytest.fixture(scope="module")
def fuzz_port(hil_target: HilTarget) -> Iterator[NodePort]:
    url = "sim" if hil_target.is_sim else hil_target.url
    with NodePort(url, uplink_bytes_per_s=hil_target.uplink_bytes_per_s) as port:
        yield port


def _describe(campaign: Campaign) -> str:
    return "; ".join(f"{f.kind}: {f.detail}" for f in campaign.findings)


@pytest.mark.parametrize("path", [p for p, _ in load_corpus(DEFAULT_CORPUS)] or [None],
                         ids=lambda p: p.name if isinstance(p, Path) else "empty")
def test_corpus_replays_clean(fuzz_port: NodePort, path: Path | None, tmp_path: Path) -> None:
    if path is None:
        pytest.skip(f"no reproducers in {DEFAULT_CORPUS}")
    cases = dict(load_corpus(path.parent))[path]
    campaign = Campaign(fuzz_port, seed=0, corpus=tmp_path, reduce=False)
    campaign.start()
    assert campaign.run_batch(cases) == [], _describe(campaign)


def test_fixed_seed_campaign_finds_nothing(fuzz_port: NodePort, tmp_path: Path) -> None:
    campaign = Campaign(fuzz_port, seed=CI_SEED, corpus=tmp_path, reduce=False, max_findings=5)
    campaign.start()
    findings = campaign.run(CI_CASES)
    campaign.finish()
    assert campaign.stats.cases == CI_CASES or findings
    assert not findings, _describe(campaign)


@pytest.fixture(scope="module")
def keyed_port(hil_target: HilTarget) -> Iterator[NodePort]:
    if not hil_target.is_sim:
        pytest.skip("a board's key is its operator's: ground fuzz --key --operator N")
    key = FuzzKey(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)
    with NodePort("sim://?key=dev", key=key) as port:
        yield port


@pytest.mark.parametrize("sign_cases", [True, False], ids=["with_key", "without_key"])
def test_fixed_seed_campaign_on_a_node_with_a_key_finds_nothing(
        keyed_port: NodePort, tmp_path: Path, sign_cases: bool) -> None:
    campaign = Campaign(keyed_port, seed=CI_SEED, corpus=tmp_path, reduce=False,
                        max_findings=5, sign_cases=sign_cases)
    campaign.start()
    assert campaign.auth.enforced
    findings = campaign.run(CI_CASES)
    campaign.finish()
    assert not findings, _describe(campaign)
    outcomes = campaign.stats.outcomes
    assert outcomes["auth forged"] > 0
    if sign_cases:  # authenticated commands reached the dispatcher, and replays were refused
        assert outcomes["auth accepted"] > CI_CASES // 5 and outcomes["auth replayed"] > 0
        assert outcomes["ok"] > 0 and outcomes["rej:6"] > 0
    else:  # nothing authenticated got through; every well-formed plain command refused
        assert outcomes["auth accepted"] == outcomes["auth replayed"] == 0
        assert outcomes["ok"] == 0 and outcomes["rej:9"] > 0


def test_cases_with_the_addresses_of_the_fuzzers_own_commands(fuzz_port: NodePort,
                                                              tmp_path: Path) -> None:
    """The seed-11 1M finding at case 603600: a damaged case carried the seq the ping after its
    batch was about to use, with the status id; the node answered the ping from its record
    (SPEC §5.2: a status of mid-batch, the mode before a later set_mode), and the oracle took
    the repeat for a second execution. The ping must take another seq, and a case repeating an
    address of the port's own commands is not judged as a fresh one."""
    campaign = Campaign(fuzz_port, seed=0, corpus=tmp_path, reduce=False)
    campaign.start()
    status, set_mode = COMMAND_IDS["status"], COMMAND_IDS["set_mode"]
    own = next(seq for cmd_id, seq in reversed(list(fuzz_port.own_keys)) if cmd_id == status)
    u = (fuzz_port._seq + 1) & 0xFFFF  # the next seq the port hands out: the ping's

    def case(name: str, seq: int, cmd_id: int, args: list[object]) -> Case:
        return Case("own", name, command(seq & 0xFFFF, cmd_id, args), boot=bound_boot())

    # a status with the ping's seq while SAFE, then NOMINAL: a ping answered from the record
    # would say SAFE, and the next batch's set_mode NOMINAL would be expected to complete
    batch = [case("safe", u + 7, set_mode, [1]), case("next_ping_seq", u, status, []),
             case("nominal", u + 8, set_mode, [2]), case("last_ping_seq", own, status, [])]
    assert campaign.run_batch(batch) == [], _describe(campaign)
    assert campaign.run_batch([case("nominal_again", u + 20, set_mode, [2])]) == [], \
        _describe(campaign)
    assert campaign.run_batch([case("safe_again", u + 21, set_mode, [1])]) == [], \
        _describe(campaign)


def test_a_flood_never_repeats_the_address_of_a_recent_case(fuzz_port: NodePort,
                                                           tmp_path: Path) -> None:
    """The seed-11 1M finding at case 858100 (after the fixes above): a noop case with a seq
    the flood after its batch was about to use; the node answered that flood noop from its
    record, not as a command accepted anew (SPEC §5.2), and the flood's count came one short.
    The port's own commands take seqs no recent case carried."""
    campaign = Campaign(fuzz_port, seed=0, corpus=tmp_path, reduce=False, flood_commands=50)
    campaign.start()
    ahead = (fuzz_port._seq + 3) & 0xFFFF  # two pings take the next seqs, the flood this one
    noop = Case("own", "flood_seq", command(ahead, COMMAND_IDS["noop"], []), boot=bound_boot())
    assert campaign.run_batch([noop]) == [], _describe(campaign)
    assert campaign.run_flood(0) == [], _describe(campaign)
