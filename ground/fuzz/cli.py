"""live protocol fuzzing: structure-aware, dictionary-driven cases against a node

    ground fuzz [--port URL] [--cases N] [--seed S] [--corpus DIR] [--batch N] [--no-reduce]
                [--key] [--operator N]

Replays the corpus first (every saved reproducer must now pass), then runs N generated cases
in batches, checking after each batch that the node still answers and that its counters and
verifications are what the protocol says. A crash, hang or unexpected reboot is reduced to
the smallest reproducer found and saved in the corpus. Prints a summary table; the exit code
is 1 when there was any finding, 0 otherwise.

Authentication (SPEC §10): the fuzzer holds the node's key when there is one to hold: the
development key of ``sim://?key=dev``, or ``--operator N``'s from the key store. It then signs
its own status and housekeeping commands, and opens the node's authenticated answers. The
``auth`` cases (COSE_Mac0 objects damaged in every part, replayed, nested...) are signed with a
key the node does not hold unless ``--key`` is given: then they are signed with the node's key,
half the cases are authenticated, and a valid object around another case's message takes it
to the dispatcher's checks. Every refusal must be counted in auth_forged or auth_replayed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ground.errors import EXIT_INTERRUPTED
from ground.fuzz import cases as fc
from ground.fuzz.keyring import FuzzKey
from ground.fuzz.port import NodePort
from ground.fuzz.runner import Campaign, Finding, load_corpus
from ground.keys import KeyStore
from ground.micropython import REPO_ROOT
from ground.transport import DEFAULT_UPLINK_BYTES_PER_S, is_sim

DEFAULT_CORPUS: Final = REPO_ROOT / "hil" / "corpus"
PORT_ENV: Final = "ILRS_PORT"
EXIT_FINDINGS: Final = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fuzzing")
    g.add_argument("--cases", type=int, default=1000, metavar="N",
                   help="generated cases to run (default 1000)")
    g.add_argument("--seed", type=int, default=1, metavar="S",
                   help="campaign seed: case i is the same for the same seed (default 1)")
    g.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, metavar="DIR",
                   help=f"reproducers to replay first and to save findings in "
                        f"(default {DEFAULT_CORPUS.relative_to(REPO_ROOT)})")
    g.add_argument("--batch", type=int, default=100, metavar="N",
                   help="cases between health checks (default 100)")
    g.add_argument("--first", type=int, default=0, metavar="I",
                   help="index of the first case (resume or re-run part of a campaign)")
    g.add_argument("--categories", default=",".join(fc.CATEGORIES), metavar="LIST",
                   help="comma-separated case categories (default: all)")
    g.add_argument("--max-findings", type=int, default=20, metavar="N",
                   help="stop after this many findings (default 20)")
    g.add_argument("--no-reduce", action="store_true",
                   help="save a crashing batch as it is, without reducing it")
    g.add_argument("--flood", type=int, default=1000, metavar="N",
                   help="noops per flood with a slow reader, every frame accounted for "
                        "(default 1000; 0: no floods)")
    g.add_argument("--flood-every", type=int, default=100, metavar="B",
                   help="batches between floods, and one at the end (default 100)")
    g.add_argument("--flood-read-rate", type=float, default=20_000.0, metavar="B/S",
                   help="how fast the ground reads during a flood (default 20000)")
    g.add_argument("--power-every", type=int, default=100, metavar="B",
                   help="batches between power cuts of the simulated node, and one at the "
                        "end (default 100; 0: none)")
    g.add_argument("--key", action="store_true",
                   help="sign the authenticated cases with the node's key (the development key "
                        "on sim://?key=dev, else --operator's from the key store), so that "
                        "authenticated but malformed commands reach the dispatcher; without "
                        "it every authenticated case must be refused as forged")
    g.add_argument("--uplink-rate", type=float, default=None, metavar="B/S",
                   help="pace uplink bytes (default: none for sim and USB; "
                        f"{DEFAULT_UPLINK_BYTES_PER_S:g} suits a 115200-baud UART)")


def _categories(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in fc.GENERATORS]
    if unknown:
        from ground.errors import UsageError

        raise UsageError(f"unknown categories {unknown}: choose from {', '.join(fc.CATEGORIES)}")
    return names


def node_key(args: argparse.Namespace, url: str) -> FuzzKey | None:
    """The node's key as the fuzzer holds it: ``--operator N`` (or $ILRS_OPERATOR) from the
    key store, counters reserved in the store as the ground does; else the development key of
    ``sim://?key=dev`` or ``vpico://?key=dev`` (a kept virtual Pico's counters from the store
    beside its flash); else none."""
    from ground.auth import DEV_GENERATION, DEV_MASTER, DEV_OPERATOR
    from ground.keys import default_store, dev_store_at
    from ground.vpico import is_vpico, key_store_of

    operator = args.operator
    if operator is None and os.environ.get("ILRS_OPERATOR"):
        operator = int(os.environ["ILRS_OPERATOR"])
    if operator is not None:
        return _stored_key(KeyStore(args.key_store or default_store()), operator)
    # the URL's own key=dev, not a default: the fuzzer's node is open unless asked
    options = parse_qs(urlsplit(url).query if "://" in url else "")
    if options.get("key", [""])[-1] != "dev" or not (is_sim(url) or is_vpico(url)):
        return None
    flash = options.get("flash", [""])[-1]
    if is_vpico(url) and flash:
        return _stored_key(dev_store_at(key_store_of(Path(flash))), DEV_OPERATOR)
    return FuzzKey(DEV_MASTER, DEV_OPERATOR, DEV_GENERATION)


def _stored_key(store: KeyStore, operator: int) -> FuzzKey:
    entry = store.entry(operator)

    def reserve(counter: int) -> None:
        entry["counter"] = counter
        store.save()

    return FuzzKey(bytes.fromhex(entry["master"]), operator, int(entry["generation"]),
                   last_counter=int(entry["counter"]), store=reserve)


def replay_corpus(campaign: Campaign, corpus: Path) -> list[Finding]:
    """Send every reproducer in the corpus; each must leave the node healthy."""
    found: list[Finding] = []
    for path, cases in load_corpus(corpus):
        for finding in campaign.run_batch(cases, -1):
            finding.detail = f"corpus {path.name}: {finding.detail}"
            found.append(finding)
    return found


def summary_table(campaign: Campaign, findings: list[Finding]) -> Table:
    stats = campaign.stats
    table = Table(title=f"fuzz: {stats.cases} cases, seed {campaign.seed}, "
                        f"{stats.rate:,.0f} cases/s, {len(findings)} finding(s)")
    table.add_column("category")
    table.add_column("cases", justify="right")
    table.add_column("findings", justify="right")
    by_category: dict[str, int] = {}
    for finding in findings:
        # a crash or protocol finding names its cases; a counters finding, its whole batch
        named = {c.category for c in finding.cases} if len(finding.cases) <= 5 else set()
        for category in named or {"(batch)"}:
            by_category[category] = by_category.get(category, 0) + 1
    for category in fc.CATEGORIES:
        if stats.per_category[category] or by_category.get(category):
            table.add_row(category, f"{stats.per_category[category]:,}",
                          str(by_category.get(category, 0)))
    if by_category.get("(batch)"):
        table.add_row("(whole batch)", "", str(by_category["(batch)"]))
    table.add_section()
    table.add_row("total", f"{stats.cases:,}", str(len(findings)))
    return table


def _details(console: Console, campaign: Campaign, findings: list[Finding]) -> None:
    stats = campaign.stats
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.outcomes.items()))
    console.print(f"outcomes: {outcomes or '-'}")
    counters = ", ".join(f"{k} +{v:,}" for k, v in stats.counters.items())
    console.print(f"node counters: {counters or '-'}; lowest heap_free "
                  f"{stats.min_heap_free if stats.min_heap_free is not None else '?'} B")
    if stats.power_cuts:
        console.print(f"power cuts: {stats.power_cuts}")
    if stats.floods:
        flooded = ", ".join(f"{k} +{v:,}" for k, v in stats.flood_counters.items())
        console.print(f"floods: {stats.floods} ({flooded}; verifications lost "
                      f"{stats.flood_lost_verifications:,})")
    console.print(f"time: {stats.elapsed_s:.1f} s ({stats.reduce_s:.1f} s reducing or "
                  "flooding), "
                  f"{stats.batches} batches")
    for finding in findings:
        where = f" -> {finding.saved}" if finding.saved else ""
        console.print(f"[bold red]{finding.kind}[/] (batch at case {finding.batch}): "
                      f"{finding.detail}{where}", highlight=False)


def run(args: argparse.Namespace) -> int:
    url = args.port or os.environ.get(PORT_ENV) or "sim"
    categories = _categories(args.categories)
    rate = args.uplink_rate
    out = Console()
    err = Console(stderr=True)
    interrupted = False
    key = node_key(args, url)
    if args.key and key is None:
        from ground.errors import UsageError

        raise UsageError("--key needs the node's key: --operator N (a key in the key store) "
                         "or a simulated node with the development key (sim://?key=dev)")
    with NodePort(url, uplink_bytes_per_s=rate, log_path=args.log, key=key) as port:
        campaign = Campaign(port, seed=args.seed, batch_size=max(1, args.batch),
                            corpus=args.corpus, reduce=not args.no_reduce,
                            categories=categories, ping_timeout_s=min(args.timeout, 5.0),
                            max_findings=args.max_findings, flood_commands=max(0, args.flood),
                            flood_every=max(1, args.flood_every),
                            flood_read_bytes_per_s=args.flood_read_rate,
                            power_every=max(0, args.power_every), sign_cases=args.key)
        campaign.start()
        findings: list[Finding] = []
        if args.corpus is not None and args.corpus.is_dir():
            findings += replay_corpus(campaign, args.corpus)
        columns = (TextColumn("fuzz"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>7} cases/s"),
                   TextColumn("findings {task.fields[findings]}"), TimeElapsedColumn())
        with Progress(*columns, console=err, disable=not err.is_terminal) as progress:
            task = progress.add_task("fuzz", total=args.cases, rate="-",
                                     findings=len(findings))

            def advance(n: int, finding: Finding | None) -> None:
                done[0] += n
                progress.update(task, advance=n, rate=f"{campaign.stats.rate:,.0f}",
                                findings=len(findings) + len(campaign.findings))

            done = [args.first]  # the first case not yet run to the end of its batch
            try:
                campaign.run(args.cases, advance, first_index=args.first)
            except KeyboardInterrupt:  # Ctrl-C: stop cleanly, summarise, say how to resume
                interrupted = True
        findings += campaign.findings
        campaign.finish()
    out.print(summary_table(campaign, findings))
    _details(out, campaign, findings)
    if findings and not is_sim(url):
        out.print("the board may need a power cycle before the next session")
    if interrupted:
        left = args.first + args.cases - done[0]
        out.print(f"interrupted before case {done[0]} (seed {args.seed}, {left:,} cases left); "
                  f"resume with:\n  {resume_command(args, done[0], left)}", highlight=False)
        return EXIT_INTERRUPTED
    return EXIT_FINDINGS if findings else 0


def resume_command(args: argparse.Namespace, first: int, cases: int) -> str:
    """The command line that runs the rest of an interrupted campaign."""
    words = ["ground", "fuzz"]
    if args.port:
        words += ["--port", args.port]
    if args.operator is not None:
        words += ["--operator", str(args.operator)]
    words += ["--seed", str(args.seed), "--first", str(first), "--cases", str(cases)]
    defaults = {"batch": 100, "max_findings": 20, "categories": ",".join(fc.CATEGORIES),
                "corpus": DEFAULT_CORPUS, "uplink_rate": None}
    for name, default in defaults.items():
        value = getattr(args, name)
        if value != default:
            words += ["--" + name.replace("_", "-"), str(value)]
    if args.no_reduce:
        words.append("--no-reduce")
    if args.key:
        words.append("--key")
    return shlex.join(words)


def main(argv: list[str] | None = None) -> int:  # python -m ground.fuzz.cli
    from ground.cli import main as ground_main

    return ground_main(["fuzz", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
