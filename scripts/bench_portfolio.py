"""Benchmark of portfolio verification: a learner's portfolio of 100 credentials from 5
issuers, verified against anvil. Prints figures; asserts nothing.

    python scripts/bench_portfolio.py             # 100 credentials, 7 runs
    python scripts/bench_portfolio.py --runs 20

Five universities under one alliance body sign (eddsa-jcs-2022) and anchor the credentials
(plain form: ectsCredits and learningScope). The first university recognises the body for
every kind, so each credential is also asked about: "does it recognise this issuer for this
kind at this issuance time?". Each run verifies the whole portfolio (every check of every
credential, the credits, the recognition) with a FRESH reader, so no answer is cached from a
run before; the figure is wall-clock time of ``verify_portfolio`` (target < 1 s).

Two shapes: the credentials anchored in one batch per issuer (5 batches: how a learner's
credentials from one university often arrive), and each credential in its own batch (100
batches: every anchor read separately, the worst case)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# The alliance helper of the portfolio tests (tests/verifier/portfolio_support.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localchain import AnvilChain
from testkit.world import build_world
from tests.verifier.portfolio_support import (
    Alliance,
    build_alliance,
    ects_credential,
)
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import ALL_SCOPES
from verifier.portfolio import entries_from_bundles, verify_portfolio
from verifier.receipt import Bundle

ISSUERS = 5
CREDENTIALS = 100
KINDS = ("non-formal", "formal-degree", "formal-non-degree")


def _bundles(alliance: Alliance, *, batches_per_issuer: int) -> list[Bundle]:
    per_issuer = CREDENTIALS // ISSUERS
    per_batch = per_issuer // batches_per_issuer
    bundles: list[Bundle] = []
    number = 0
    for uni in alliance.unis.values():
        for _ in range(batches_per_issuer):
            credentials = []
            for _ in range(per_batch):
                number += 1
                credentials.append(ects_credential(number, 5, KINDS[number % 3],
                                                   achievement=f"urn:course:{number}"))
            bundles += alliance.issue(uni, credentials)
    return bundles


def _time(alliance: Alliance, bundles: list[Bundle], runs: int) -> list[float]:
    named = [(f"b{n}.json", bundle.to_json()) for n, bundle in enumerate(bundles)]
    trust = alliance.trust()
    recogniser = alliance.unis["u1"].did
    times = []
    for _ in range(runs):
        reader = JsonRpcChainReader(alliance.world.chain.w3)  # fresh: nothing cached
        start = time.perf_counter()
        report = verify_portfolio(entries_from_bundles(named), trust=trust, reader=reader,
                                  recognised_by=recogniser)
        times.append(time.perf_counter() - start)
        if len(report.counted) != len(bundles):
            raise SystemExit(f"only {len(report.counted)} of {len(bundles)} counted: "
                             f"{report.to_dict()['totals']['notCounted'][:3]}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with AnvilChain.start() as chain:
        world = build_world(chain)
        alliance = build_alliance(world, ISSUERS)
        alliance.recognise(alliance.unis["u1"], alliance.body, ALL_SCOPES)
        print(f"{CREDENTIALS} credentials from {ISSUERS} issuers, anvil, fresh reader per run, "
              f"{args.runs} runs (target < 1 s)")
        for label, batches in (("one batch per issuer (5 batches)", 1),
                               ("one batch per credential (100 batches)",
                                CREDENTIALS // ISSUERS)):
            bundles = _bundles(alliance, batches_per_issuer=batches)
            times = _time(alliance, bundles, args.runs)
            print(f"  {label}: median {statistics.median(times) * 1000:.0f} ms, "
                  f"worst {max(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
