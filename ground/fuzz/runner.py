"""A fuzz campaign: batches of cases, then a health check; findings reduced and saved.

After each batch the runner asks for `status` (the ping) and waits for the next link
housekeeping packet, then checks:

- the node answers, with the same boot count and a larger uptime (else: *crash* when the
  simulated node's process is gone, *hang* when it is there but silent, *reboot*);
- every case whose verification can be matched by (command id, seq) got an outcome its case
  allows (*protocol* finding otherwise), and no case that must be refused was accepted;
- the link counters moved exactly as a reference deframer (protocol.framing) fed the same
  bytes says (frames_in, crc_errors, frame_errors, discarded_bytes), every verified frame is
  counted as a command accepted or rejected, and cmds_accepted grew by the acceptances seen
  (*counters* finding otherwise).
- authenticated objects (SPEC §10) got the verdict ground.fuzz.authmodel gives, refusals
  unanswered and counted in auth_forged / auth_replayed, the auth_refused events carrying
  counts that were true and at most one per 10 s, every answer to an accepted one signed for
  its counter (*auth* / *protocol* findings otherwise; ground.fuzz.authcheck).

The mode the model judges each case in is the set of modes the node may be in
(ground.fuzz.modes). The port's own commands (pings, floods, housekeeping settings) take seqs
no recent case carried with the same id, so the node never answers one from its idempotency
record with the answer of another moment.

A crash, hang or reboot is reduced (ddmin over the batch, then the bytes of each case) on a
restarted node and saved to the corpus as JSON. A reboot seen one batch late (a hung task
reset by the watchdog) is reproduced by waiting ``settle_s`` after the cases; so is the
previous batch, which is included in what is reduced.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ground.fuzz import cases as fc
from ground.fuzz import gen_auth
from ground.fuzz.authcheck import AuthCheck
from ground.fuzz.authmodel import ACCEPTED
from ground.fuzz.encoding import bound_boot
from ground.fuzz.flood import flood
from ground.fuzz.keyring import foreign_key
from ground.fuzz.model import Expectation
from ground.fuzz.modes import ModeTrack
from ground.fuzz.port import COMMANDING_PACKET, LINK_PACKET, NodePort, Status
from ground.fuzz.power import power_cycle
from ground.fuzz.reduce import reduce_cases
from protocol import dictionary
from protocol.dictionary_types import MODE_NOMINAL, MODE_SAFE, MODE_SCIENCE
from protocol.framing import Deframer

LINK_HK_RATE_HZ: Final = 20.0
CRASH_KINDS: Final = ("crash", "hang", "reboot")
# Addresses (command id, seq) of the latest cases: one that comes again (a damaged seq equal
# to an earlier one) may be a repeat the node answers from its record; it is not judged.
RECENT_KEYS: Final = 4096
# Frames the node may have numbered but not yet written when a link packet reads its counters.
IN_FLIGHT: Final = 4
MODE_NAMES: Final = {MODE_SAFE: "SAFE", MODE_NOMINAL: "NOMINAL", MODE_SCIENCE: "SCIENCE"}
_COUNTERS: Final = ("frames_in", "crc_errors", "frame_errors", "discarded_bytes",
                    "cmds_accepted", "cmds_rejected", "tx_dropped", "frames_out")


@dataclass
class Finding:
    kind: str  # crash | hang | reboot | protocol | counters | downlink | flood | power
    detail: str
    cases: list[fc.Case] = field(default_factory=list)
    batch: int = -1
    saved: Path | None = None


@dataclass
class Stats:
    cases: int = 0
    batches: int = 0
    per_category: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    reduce_s: float = 0.0
    min_heap_free: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    floods: int = 0
    power_cuts: int = 0
    flood_lost_verifications: int = 0
    flood_counters: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        fuzz_s = self.elapsed_s - self.reduce_s
        return self.cases / fuzz_s if fuzz_s > 0 else 0.0


class Campaign:
    def __init__(self, port: NodePort, *, seed: int, batch_size: int = 100,
                 corpus: Path | None = None, reduce: bool = True,
                 categories: Sequence[str] = fc.CATEGORIES, ping_timeout_s: float = 3.0,
                 max_findings: int = 20, settle_s: float = 9.0,
                 reduce_budget_s: float = 300.0, flood_commands: int = 1000,
                 flood_every: int = 100, flood_read_bytes_per_s: float = 20_000.0,
                 power_every: int = 100, sign_cases: bool = False) -> None:
        self.port = port
        self.seed = seed
        self.batch_size = batch_size
        self.corpus = corpus
        self.reduce = reduce
        self.categories = tuple(categories)
        self.ping_timeout_s = ping_timeout_s
        self.max_findings = max_findings
        self.settle_s = settle_s  # longer than the longest watchdog timeout (8 s)
        self.reduce_budget_s = reduce_budget_s  # per finding
        self.flood_commands = flood_commands  # noops per flood; 0: no floods
        self.flood_every = flood_every  # batches between floods (and one at the end)
        self.flood_read_bytes_per_s = flood_read_bytes_per_s
        self.power_every = power_every  # batches between power cuts (simulated node); 0: none
        # authentication (SPEC §10): the port holds the node's key or none; the cases are
        # signed with it (sign_cases, `ground fuzz --key`) or with a key the node lacks
        if sign_cases and port.key is None:
            raise ValueError("signing the cases needs the node's key on the port")
        self.sign_cases = sign_cases
        gen_auth.bind_key(port.key if sign_cases and port.key is not None else foreign_key())
        self.auth = AuthCheck(port)
        self.stats = Stats()
        self.findings: list[Finding] = []
        self._reference = Deframer()
        self._baseline: dict[str, int] = {}
        self._status: Status | None = None
        self._saved_kinds: set[tuple[str, str]] = set()
        self._last_batch: list[fc.Case] = []
        self._batch_status: Status | None = None
        self._own_keys: set[tuple[int, int]] = set()  # pings of this batch
        self._previous_keys: set[tuple[int, int]] = set()
        self._recent_keys: dict[tuple[int, int], None] = {}
        self._noncanonical_seen = 0
        self._tally: Counter[str] = Counter()
        self._link_seq = 0
        self._ping_attempts = 0
        self._drift: Counter[str] = Counter()
        self._window: dict[str, Any] = {}
        self._seen_here: dict[tuple[int, int], int] = {}  # this batch's addresses (counted)
        self._judged: list[tuple[Expectation, bytes, int | None] | None] = []
        self._track = ModeTrack(MODE_SAFE, 0)

    # --- set-up ------------------------------------------------------------------------------

    def start(self) -> None:
        status = self.port.wait_answering()
        if status is None:
            raise RuntimeError(f"node on {self.port.url} does not answer a status request")
        self._status = status
        self._noncanonical_seen = self.port.noncanonical  # a port used before: only new ones
        self._configure()
        self._rebaseline()

    def _configure(self) -> None:
        """Link and commanding counters quickly (rates are not parameters: a restart forgets
        them)."""
        hk_rate = next(c.id for c in dictionary.COMMANDS if c.name == "hk_rate")
        hk_enable = next(c.id for c in dictionary.COMMANDS if c.name == "hk_enable")
        for packet in (LINK_PACKET, COMMANDING_PACKET):
            self.port.command(hk_enable, [packet.id, True])
            self.port.command(hk_rate, [packet.id, LINK_HK_RATE_HZ])

    def _rebaseline(self) -> None:
        """Fresh reference deframer and counter snapshot, after a ping on a quiet link."""
        status = self.port.ping(self.ping_timeout_s)
        if status is None:
            raise RuntimeError(f"node on {self.port.url} stopped answering")
        link = self.port.link_after(status.node_time_ms, 3.0)
        if link is None:
            raise RuntimeError("no link housekeeping packet: is housekeeping enabled?")
        self._link_seq, counters = link
        self.port.downlink_log = [e for e in self.port.downlink_log or []
                                  if (e[0] - self._link_seq) & 0xFFFF < 0x8000]
        commanding = self.port.commanding_after(status.node_time_ms, 3.0)
        if commanding is None:
            raise RuntimeError("no commanding housekeeping packet: is housekeeping enabled?")
        if self._status is not None and status.boot_count != self._status.boot_count:
            self.auth.rebooted()
        self.auth.baseline(commanding)
        self._status = status
        self._baseline = {k: int(counters.get(k, 0) or 0) for k in _COUNTERS}
        self._reference = Deframer()
        self._reference.feed(b"\x00")  # the node is synchronised: the ping ended on 00

    def finish(self) -> None:
        """Leave the node as the campaign found it: saved parameters, default link rate."""
        names = {c.name: c.id for c in dictionary.COMMANDS}
        self.port.command(names["param_load"], [])
        for packet in (LINK_PACKET, COMMANDING_PACKET):
            self.port.command(names["hk_rate"], [packet.id, packet.rate_hz])

    # --- the campaign ------------------------------------------------------------------------

    def run(self, n_cases: int, progress: Callable[[int, Finding | None], None] | None = None,
            first_index: int = 0) -> list[Finding]:
        start = time.monotonic()
        index = first_index
        end = first_index + n_cases
        while index < end and len(self.findings) < self.max_findings:
            count = min(self.batch_size, end - index)
            batch = [self._generate(i) for i in range(index, index + count)]
            found = self.run_batch(batch, index)
            index += count
            if self.flood_commands and self.stats.batches % self.flood_every == 0:
                self.run_flood(index)
            if self.power_every and self.stats.batches % self.power_every == 0 and index < end:
                self.run_power_cut(index)  # the last one after the final checks
            self.stats.elapsed_s = time.monotonic() - start
            if progress is not None:
                progress(count, found[0] if found else None)
        if self.flood_commands and self.stats.batches % self.flood_every \
                and len(self.findings) < self.max_findings:
            self.run_flood(index)
        if self.stats.batches and len(self.findings) < self.max_findings:
            self.final_checks()
        if self.power_every and self.stats.batches and len(self.findings) < self.max_findings:
            self.run_power_cut(index)
        self.stats.elapsed_s = time.monotonic() - start
        return self.findings

    def _generate(self, index: int) -> fc.Case:
        # each plain case knows the boot its command is bound to, so that a reproducer (saved,
        # or replayed while reducing on a restarted node) is bound to the boot of then
        case = fc.generate(self.seed, index, self.port.next_seq(), self.categories,
                           keyed=self.sign_cases)
        return case if case.category == gen_auth.CATEGORY else replace(case, boot=bound_boot())

    def final_checks(self) -> list[Finding]:
        """After the last batch: the end of the last burst of refusals is reported."""
        started = time.monotonic()
        problems = self.auth.final_report()
        found = [Finding("auth", "; ".join(problems), [])] if problems else []
        self.findings.extend(found)
        self.stats.reduce_s += time.monotonic() - started  # waiting: not fuzzing time
        return found

    def run_power_cut(self, index: int) -> list[Finding]:
        """A power cut at a random moment after a command ran (ground.fuzz.power): the node
        comes back through commands sent during its boot, the command re-sent does not run
        again, event numbers are not reused. Simulated node only."""
        if not self.port.is_sim:
            return []
        started = time.monotonic()
        result = power_cycle(self.port, random.Random(f"{self.seed}:power:{index}"))
        self.stats.power_cuts += 1
        found = []
        if result.problems:
            found.append(Finding("power", "; ".join(result.problems), [], index))
            self.findings.extend(found)
        self.port.reset_downlink_accounting()
        self._configure()
        self._rebaseline()
        self._recent_keys.clear()
        self.stats.reduce_s += time.monotonic() - started  # not fuzzing time
        return found

    def run_flood(self, index: int) -> list[Finding]:
        """A flood of noops with a slow reader, every frame accounted for (ground.fuzz.flood);
        its time is not counted in the case rate."""
        started = time.monotonic()
        result = flood(self.port, self.flood_commands,
                       read_bytes_per_s=self.flood_read_bytes_per_s)
        self.stats.floods += 1
        self.stats.flood_lost_verifications += result.lost_verifications
        for k, v in result.deltas.items():
            self.stats.flood_counters[k] = self.stats.flood_counters.get(k, 0) + v
        found = []
        if result.problems:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.received_by_kind.items()))
            found.append(Finding("flood", f"{result.commands} noops, reader at "
                                 f"{self.flood_read_bytes_per_s:g} B/s: "
                                 + "; ".join(result.problems) + f" (received: {kinds}; "
                                 f"verifications lost: {result.lost_verifications})", [],
                                 index))
            self.findings.extend(found)
        self._rebaseline()
        self.stats.reduce_s += time.monotonic() - started  # not fuzzing time
        return found

    def run_batch(self, batch: list[fc.Case], first_index: int = 0) -> list[Finding]:
        port = self.port
        port.clear_verifications()
        self._batch_status = self._status
        self._own_keys = set()
        wire = b"".join(case.wire for case in batch)
        self.auth.flush_own()  # the port's commands before these cases
        for case in batch:
            self._reference.feed(case.wire)
        port.write(wire)
        self.stats.batches += 1
        self.stats.cases += len(batch)
        for case in batch:
            self.stats.per_category[case.category] += 1
        self._predict(batch)  # before the ping: its seq must be no case's
        crash = self._health(batch)
        if crash is not None:
            crash.batch = first_index
            if crash.kind == "reboot":  # perhaps the watchdog, late: the last batch counts too
                crash.cases = self._last_batch + crash.cases
            self._last_batch = []
            self._handle_crash(crash)
            return [crash]
        self._last_batch = list(batch)
        window = self._read_window()
        if window is None:
            found = [Finding("counters", "no link housekeeping packet after the ping", [],
                             first_index)]
            self.findings.extend(found)
            return found
        found = (self._check_outcomes(batch) + self._check_counters(batch)
                 + self._check_downlink() + self._check_auth(batch))
        for finding in found:
            finding.batch = first_index
            if finding.kind == "protocol" and self.corpus is not None:
                self._save_new_protocol_finding(finding, batch)
        self.findings.extend(found)
        return found

    def _save_new_protocol_finding(self, finding: Finding, batch: list[fc.Case]) -> None:
        """Keep one reproducer per kind of misbehaving case (category/name) per campaign: the
        batch up to that case, since what the node answers may depend on the cases before it
        (a set_mode, a repeated seq)."""
        new = [c for c in finding.cases if (c.category, c.name) not in self._saved_kinds]
        if new:
            assert self.corpus is not None
            self._saved_kinds.update((c.category, c.name) for c in new)
            upto = next((i for i, c in enumerate(batch) if c is new[0]), len(batch) - 1)
            finding.saved = save_finding(self.corpus, Finding("protocol", finding.detail,
                                                              batch[:upto + 1], finding.batch),
                                         self.seed)

    # --- checks ------------------------------------------------------------------------------

    def _ping(self) -> Status | None:
        """`status`, up to three times, each with a new seq: an answer the node had to drop
        (a congested downlink, counted in tx_dropped) is no hang."""
        status_id = fc.COMMAND_IDS["status"]
        self._ping_attempts = 0
        for _ in range(3):
            # not the address of a case of this batch or a recent one: the node would answer
            # the ping from its record, a status of another moment (SPEC §5.2)
            seq = self.port.fresh_seq(status_id)
            ping = self.port.own_command(status_id, [], seq)
            self._own_keys.add((status_id, seq))
            self._reference.feed(ping)
            self._ping_attempts += 1
            self.port.write(ping)
            final = self.port.wait_final(status_id, seq, self.ping_timeout_s / 3)
            if final is not None and final[0] == 2:
                return Status(final[2], final[3])
        return None

    def _health(self, batch: list[fc.Case]) -> Finding | None:
        status = self._ping()
        before = self._status
        if status is None:
            alive = self.port.alive()
            kind = "crash" if alive is False else "hang"
            return Finding(kind, f"no answer to status within {self.ping_timeout_s:g} s"
                           + ("; the node process has exited" if alive is False else ""),
                           list(batch))
        if before is not None and (status.boot_count != before.boot_count
                                   or status.uptime_ms < before.uptime_ms):
            return Finding("reboot", f"boot_count {before.boot_count} -> {status.boot_count}, "
                           f"uptime {before.uptime_ms} -> {status.uptime_ms} ms", list(batch))
        self._status = status
        return None

    def _predict(self, batch: list[fc.Case]) -> None:
        """The model's answer to each case, in the order sent (module ``modes``, ``authcheck``)
        and the addresses the batch uses; judged by ``_check_outcomes`` once answered."""
        status = self._batch_status
        start_mode = (status.mode if status is not None and isinstance(status.mode, int)
                      else MODE_SAFE)
        boot = status.boot_count if status is not None else 0
        seen_here: dict[tuple[int, int], int] = {}
        self._seen_here = seen_here
        tally = self._tally = Counter()
        # the model's answer for each correctly framed message in the mode the batch began
        # in (an authenticated object: the node's verdict on it first, in the order sent, then
        # the command inside); then the modes the node may be in as the batch's own set_mode
        # commands (judged or not) leave it (ground.fuzz.modes)
        track = self._track = ModeTrack(start_mode, boot, enforced=self.auth.enforced)
        judged: list[tuple[Expectation, bytes, int | None] | None] = []
        self._judged = judged
        for case in batch:
            item = None
            payload = case.bound_payload  # as sent: a stored case bound to the boot now
            if case.framing == fc.FRAME and 0 < len(payload) <= fc.MAX_MESSAGE:
                counter = None
                if payload[0] == 0xD1:  # COSE_Mac0 (SPEC §10.2): authentication first
                    verdict = self.auth.classify(payload)
                    if verdict.kind != ACCEPTED:
                        tally[verdict.kind] += 1  # refused: no answer, counted (§10.3)
                        self.stats.outcomes[f"auth {verdict.kind}"] += 1
                        judged.append(None)
                        continue
                    payload, counter = verdict.payload, verdict.counter
                    self.stats.outcomes["auth accepted"] += 1
                exp = track.expect(payload, start_mode, counter is not None)
                item = (exp, payload, counter)
                if exp.address is not None:
                    key = (exp.address[1], exp.address[0])
                    seen_here[key] = seen_here.get(key, 0) + 1
                else:
                    tally["silent"] += 1  # no seq and id: counted in cmds_rejected only
            judged.append(item)
        self.port.cases_sent(seen_here)  # the port's own commands take other seqs

    def _check_outcomes(self, batch: list[fc.Case]) -> list[Finding]:
        """Each case got exactly the answer the model gives, for exactly its seq and id, signed
        for its counter if it was an authenticated command the node accepted (SPEC §10.5); no
        verification arrived that nobody asked for."""
        bad: list[str] = []
        bad_cases: list[fc.Case] = []
        track, judged, seen_here, tally = self._track, self._judged, self._seen_here, self._tally
        own = self.port.own_keys  # the port's own commands: a case may repeat one's address
        for case, item in zip(batch, judged, strict=True):
            if item is None or item[0].address is None or not item[0].answered:
                continue
            exp, payload, counter = item
            signed = counter is not None
            seq, cmd_id = item[0].address
            key = (cmd_id, seq)
            if seen_here[key] > 1 or key in self._recent_keys or key in own:
                self.stats.outcomes["ambiguous"] += 1  # a repeated address: not judged
                tally["ambiguous"] += 1
                track.unjudged(exp, payload, signed)  # but a set_mode among them may have run
                continue
            stages = self.port.stages(*key)
            tally["accepted" if stages[:1] == [0] else "rejected" if stages[:1] == [1]
                  else "unanswered"] += 1
            outcome = self.port.outcome(*key)
            self.stats.outcomes[outcome] += 1
            if self._window.get("lost") and stages in ([], [2], [3]):
                # the node dropped downlink frames in this batch (counted, and checked
                # against tx_dropped): a missing stage may be one of them
                self.stats.outcomes["stage lost"] += 1
                track.unjudged(exp, payload, signed)
                continue
            before = track.modes
            what = f"{case.category}/{case.name} seq {key[1]} id {key[0]}"
            if not track.observe(exp, payload, outcome, stages, signed):
                expected = track.expected(payload, before, signed)
                modes = "/".join(MODE_NAMES.get(m, str(m)) for m in sorted(before))
                bad.append(f"{what}: got {outcome} (stages {stages}), expected "
                           f"{sorted(expected)} ({exp.reason}; mode {modes})")
                bad_cases.append(case)
            answers = self.port.answer_counters(*key)
            if any(c != counter for c in answers):
                bad.append(f"{what}: answers {'authenticated' if signed else 'plain'}"
                           f"{f' for counter {counter}' if signed else ''} came "
                           f"{['plain' if c is None else f'for counter {c}' for c in answers]}")
                bad_cases.append(case)
        # verifications nobody asked for: not a case's address, not a ping of ours
        asked = set(seen_here) | self._own_keys | self._previous_keys
        for key in sorted(self.port.verification_keys() - asked):
            bad.append(f"verification nobody asked for: id {key[0]} seq {key[1]} stages "
                       f"{self.port.stages(*key)}")
        self._previous_keys = set(seen_here)
        for key in seen_here:
            self._recent_keys[key] = None
        while len(self._recent_keys) > RECENT_KEYS:
            del self._recent_keys[next(iter(self._recent_keys))]
        if not bad:
            return []
        return [Finding("protocol", "; ".join(bad[:3]) + (f" (+{len(bad) - 3} more)"
                                                           if len(bad) > 3 else ""),
                        bad_cases or list(batch))]

    def _check_auth(self, batch: list[fc.Case]) -> list[Finding]:
        """The node's refusal counters, auth_refused events and auth_state (ground.fuzz.
        authcheck), from the commanding packet after the batch's ping."""
        status = self._status
        assert status is not None
        channels = self.port.commanding_after(status.node_time_ms, 3.0)
        if channels is None:
            return [Finding("auth", "no commanding housekeeping packet after the ping", [])]
        problems = self.auth.check(channels)
        return [Finding("auth", "; ".join(problems), list(batch))] if problems else []

    def _check_downlink(self) -> list[Finding]:
        """Every message the node sent is canonical CBOR (§4, §4.1) of six items (§5)."""
        port = self.port
        new = port.noncanonical - self._noncanonical_seen
        self._noncanonical_seen = port.noncanonical
        if new <= 0:
            return []
        examples = port.noncanonical_examples[-min(new, 3):]
        return [Finding("downlink", f"{new} message(s) not in the spec's canonical form: "
                        + "; ".join(examples), [])]

    def _read_window(self) -> dict[str, Any] | None:
        """The link packet B after the batch's ping, and the downlink numbered since the last
        one, A: ``span`` numbers in [sA, sB), ``received`` of them arrived (the rest were
        dropped: every dropped frame must be counted once in tx_dropped)."""
        status = self._status
        assert status is not None
        link = self.port.link_after(status.node_time_ms, 3.0)
        if link is None:
            return None
        seq_b, counters = link
        seq_a = self._link_seq
        span = (seq_b - seq_a) & 0xFFFF
        log = self.port.downlink_log or []
        received = len({e[0] for e in log if (e[0] - seq_a) & 0xFFFF < span})
        self.port.downlink_log = [e for e in log if (e[0] - seq_b) & 0xFFFF < 0x8000]
        self._link_seq = seq_b
        self._window = {"counters": counters, "span": span, "received": received,
                        "lost": span - received, "from": seq_a, "to": seq_b}
        self.stats.outcomes["downlink lost"] += span - received
        return self._window

    def _check_counters(self, batch: list[fc.Case]) -> list[Finding]:
        window = self._window
        counters = window["counters"]
        heap = counters.get("heap_free")
        if isinstance(heap, int):
            low = self.stats.min_heap_free
            self.stats.min_heap_free = heap if low is None else min(low, heap)
        now = {k: int(counters.get(k, 0) or 0) for k in _COUNTERS}
        delta = {k: now[k] - self._baseline.get(k, 0) for k in _COUNTERS}
        self._baseline = now
        for k, v in delta.items():
            self.stats.counters[k] = self.stats.counters.get(k, 0) + v
        ref = self._reference
        expected = {
            "frames_in": ref.frames, "crc_errors": ref.crc_errors,
            "frame_errors": ref.oversize + ref.truncated,
            "discarded_bytes": ref.discarded_bytes,
        }
        ref.frames = ref.crc_errors = ref.oversize = ref.truncated = ref.discarded_bytes = 0
        problems = [f"{k} +{delta[k]}, expected +{v}" for k, v in expected.items()
                    if delta[k] != v]
        commands = delta["cmds_accepted"] + delta["cmds_rejected"]
        # a repeat of a remembered (seq, id) is answered from the record, neither accepted
        # nor rejected anew: only a case whose address came again (ambiguous) may be one
        refused = self._tally["forged"] + self._tally["replayed"]  # not commands (§10.3)
        if not 0 <= delta["frames_in"] - commands - refused <= self._tally["ambiguous"]:
            problems.append(f"cmds_accepted + cmds_rejected +{commands} but frames_in "
                            f"+{delta['frames_in']} ({refused} authenticated objects refused, "
                            f"{self._tally['ambiguous']} repeated "
                            "addresses)")
        # Every frame numbered was written (frames_out) or dropped and counted (tx_dropped),
        # once: the received messages and the skipped numbers say which. A packet reads the
        # counters when it is built, so frames numbered before it but still queued show in
        # the next window: the running sums may differ by those (IN_FLIGHT), no more.
        self._drift["frames_out"] += delta["frames_out"] - window["received"]
        self._drift["tx_dropped"] += delta["tx_dropped"] - window["lost"]
        for name, what in (("frames_out", "messages received"),
                           ("tx_dropped", "downlink numbers skipped")):
            if abs(self._drift[name]) > IN_FLIGHT:
                problems.append(f"{name} is {self._drift[name]:+} from the {what} since the "
                                f"campaign began (this batch: {name} +{delta[name]}, "
                                f"{window['received']} received, {window['lost']} skipped in "
                                f"{window['from']}..{window['to'] - 1})")
                self._drift[name] = 0  # report once, then account afresh
        tally = self._tally
        if not window["lost"] and not tally["ambiguous"]:
            # every verification arrived: the counters must match what was seen, exactly
            accepted = tally["accepted"] + self._ping_attempts
            rejected = tally["rejected"] + tally["silent"]
            if delta["cmds_accepted"] != accepted:
                problems.append(f"cmds_accepted +{delta['cmds_accepted']} but {accepted} "
                                "acceptances were seen")
            if delta["cmds_rejected"] != rejected:
                problems.append(f"cmds_rejected +{delta['cmds_rejected']} but {tally['rejected']}"
                                f" rejections were seen and {tally['silent']} messages had no "
                                "seq and id to answer")
        if not problems:
            return []
        return [Finding("counters", "; ".join(problems), list(batch))]

    # --- crashes -----------------------------------------------------------------------------

    def _recover(self) -> None:
        self.port.restart()
        if self.port.wait_answering() is None:
            if not self.port.is_sim:
                raise RuntimeError(f"node on {self.port.url} did not come back after a reset")
            self.port.close()  # a fresh simulated node, then
            self.port.open()
            if self.port.wait_answering() is None:
                raise RuntimeError("a fresh simulated node does not answer")
        self._configure()
        self._rebaseline()

    def reproduces(self, cases: list[fc.Case], settle_s: float = 0.0) -> bool:
        """Does this sequence still crash, hang or reboot a freshly restarted node?

        ``settle_s``: also ping again after this long, for effects that take time (a hung
        task is only reset when the watchdog runs out)."""
        self._recover()
        before = self._status
        assert before is not None
        self.port.write(b"".join(case.wire for case in cases))
        for wait_s in (0.0, settle_s) if settle_s else (0.0,):
            time.sleep(wait_s)
            status = self.port.ping(self.ping_timeout_s)
            if status is None or status.boot_count != before.boot_count \
                    or status.uptime_ms < before.uptime_ms:
                return True
        return False

    def _handle_crash(self, finding: Finding) -> None:
        self.findings.append(finding)
        started = time.monotonic()
        try:
            # a reboot found one batch late may come from the watchdog: give it time
            settle = self.settle_s if finding.kind == "reboot" else 0.0

            deadline = started + self.reduce_budget_s

            def fails(cases: list[fc.Case]) -> bool:
                if time.monotonic() > deadline:
                    return False  # out of time: keep what we have
                return self.reproduces(cases, settle)

            if self.reduce and fails(finding.cases):
                finding.cases = reduce_cases(finding.cases, fails, max_tests=200)
                finding.detail += f"; reduced to {len(finding.cases)} case(s)"
            elif self.reduce:
                finding.detail += "; did not reproduce on a restarted node (whole batch saved)"
            if self.corpus is not None:
                finding.saved = save_finding(self.corpus, finding, self.seed)
        finally:
            self._recover()
            self.stats.reduce_s += time.monotonic() - started


def save_finding(corpus: Path, finding: Finding, seed: int) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    cases = [case.to_json() for case in finding.cases]
    digest = hashlib.sha1(json.dumps(cases, sort_keys=True).encode()).hexdigest()[:10]
    path = corpus / f"{finding.kind}-{digest}.json"
    record: dict[str, Any] = {
        "kind": finding.kind, "detail": finding.detail, "seed": seed, "batch": finding.batch,
        "found": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": cases,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load_corpus(corpus: Path) -> list[tuple[Path, list[fc.Case]]]:
    """Every reproducer in a corpus directory: (file, its cases in order)."""
    out = []
    for path in sorted(Path(corpus).glob("*.json")):
        record = json.loads(path.read_text())
        out.append((path, [fc.Case.from_json(c) for c in record["cases"]]))
    return out
