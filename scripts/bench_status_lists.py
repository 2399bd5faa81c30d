"""Benchmark of published status lists, on this machine. Prints figures; asserts nothing.

    python scripts/bench_status_lists.py              # 10 s per load phase
    python scripts/bench_status_lists.py --seconds 3  # shorter

Figures, each measured in this one run against a real anvil node:
  1. rendering one 131,072-entry list from chain state (target <= 50 ms), split into its
     parts: the one ``statusWords(entity, list, 0, 512)`` eth_call with its block check (both
     purposes), GZIP + multibase of one purpose, and signing one list credential
     (eddsa-jcs-2022, RFC 8785 included); and a whole rendering (one read, both purposes
     encoded and signed), as the service does it. The list has 10,000 revoked and 1,000
     suspended entries at random indices (revoked in one transaction each), so GZIP works on
     a realistic list, not zeros;
  2. serving the cached list over real HTTP (`anchor-service serve`, SQLite, the public rate
     limit off) to wrk with 16 connections: requests/s with p50 and p99 latency (target >=
     2,000/s on 2 cores), the same with If-None-Match (304), and GET /healthz for comparison.
     wrk runs on the same 2 cores as the service.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from anchor_service.signing import IssuerSigner
from anchor_service.status_lists import StatusLists
from anchor_service.store import Store
from localchain import AnvilChain
from testkit.net import wait_until_up
from testkit.processes import prepare
from testkit.world import World, build_world, issuer_signing_key
from testkit.wrk import CONNECTIONS, wrk, wrk_missing
from verifier.bitstring import encode_list
from verifier.contract_types import STATUS_LIST_SIZE, StatusPurpose, encode_status_indices

ROUNDS = 50


def fill(world: World, revoked: int, suspended: int) -> None:
    """Revoke and suspend entries of the world's issuer's list 0 at random indices."""
    chosen = random.Random(13).sample(  # noqa: S311 - a spread, not a secret
        range(STATUS_LIST_SIZE), revoked + suspended)
    for action, indices in (("revoke", sorted(chosen[:revoked])),
                            ("suspend", sorted(chosen[revoked:]))):
        function = getattr(world.anchor.functions, action)
        world.tx(world.issuer).transact(function(
            world.issuer_id, 0, encode_status_indices(indices), 0))


def timed(function: Callable[[], object], rounds: int = ROUNDS) -> tuple[float, float]:
    """Median and worst of ``rounds`` runs, in milliseconds (after one warm-up run)."""
    function()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def render_figures(world: World, data: Path) -> None:
    store = Store(data / "store" / "service.sqlite3")
    issuer = store.issuer_named("uni-a")
    if issuer is None:
        raise SystemExit("the benchmark's issuer uni-a is not in the database")
    signer = IssuerSigner(issuer.did, issuer_signing_key())
    lists = StatusLists(world.chain.w3, world.deployment, store, lambda _: signer,
                        validity=300, confirmations=1)
    head = lists.confirmed_head()
    bits = lists.read(issuer.entity_id, 0, head)
    revoked = bits[StatusPurpose.REVOCATION]

    read = timed(lambda: lists.read(issuer.entity_id, 0, head))
    gzip_one = timed(lambda: encode_list(revoked))
    sign_both = timed(lambda: lists.sign(issuer, signer, 0, head, bits))
    whole = timed(lambda: lists.render(issuer, 0, lists.confirmed_head()))
    sizes = {p.value: len(encode_list(b)) for p, b in bits.items()}
    print(f"1. rendering a {STATUS_LIST_SIZE:,}-entry list from anvil (median / worst of "
          f"{ROUNDS}):")
    print(f"   statusWords eth_call (both purposes, 1,024 words) and block check: "
          f"{read[0]:.1f} / {read[1]:.1f} ms")
    print(f"   GZIP + multibase of one purpose: {gzip_one[0]:.1f} / {gzip_one[1]:.1f} ms "
          f"(encodedList {sizes['revocation']:,} chars revocation, "
          f"{sizes['suspension']:,} suspension)")
    print(f"   encoding and signing both purposes (eddsa-jcs-2022): {sign_both[0]:.1f} / "
          f"{sign_both[1]:.1f} ms")
    print(f"   whole rendering (head, read, both purposes encoded and signed): "
          f"{whole[0]:.1f} / {whole[1]:.1f} ms (target <= 50 ms)")
    store.close()


def serve_figures(env: dict[str, str], port: int, data: Path, seconds: float) -> None:
    env.update({"MICROCRED_LOG_JSON": "true", "MICROCRED_PUBLIC_RATE_LIMIT": "0"})
    process = subprocess.Popen([sys.executable, "-m", "anchor_service", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", process)
        path = f"{url}/issuers/uni-a/status-lists/0/revocation"
        first = httpx.get(path, timeout=60)
        first.raise_for_status()
        etag = first.headers["etag"]
        print(f"2. serving the cached list ({len(first.content):,} bytes) from {url} "
              f"(SQLite, anvil), wrk with {CONNECTIONS} connections, {os.cpu_count()} cpus, "
              f"{seconds:g} s per phase:")
        full = wrk(path, seconds, None)
        print(f"   GET 200: {full['rate']:,.0f} requests/s, p50 {full['p50']:.1f} ms, "
              f"p99 {full['p99']:.1f} ms, non-2xx {full['non_2xx']:.0f} "
              "(target >= 2,000/s)")
        script = data / "etag.lua"
        script.write_text(f"wrk.headers[\"If-None-Match\"] = '{etag}'\n", encoding="utf-8")
        cached = wrk(path, seconds, script)
        print(f"   GET 304 (If-None-Match): {cached['rate']:,.0f} requests/s, "
              f"p50 {cached['p50']:.1f} ms, p99 {cached['p99']:.1f} ms")
        health = wrk(f"{url}/healthz", seconds, None)
        print(f"   GET /healthz, same connections: {health['rate']:,.0f}/s, "
              f"p50 {health['p50']:.1f} ms, p99 {health['p99']:.1f} ms")
        again = httpx.get(path, timeout=60)
        print(f"   the list served after the load is the same rendering: "
              f"{again.headers['etag'] == etag}")
    finally:
        process.terminate()
        process.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    args = parser.parse_args(argv)
    if wrk_missing("bench_status_lists"):
        return 2
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        data = Path(tmp)
        (data / "store").mkdir()
        world = build_world(chain)
        fill(world, revoked=10_000, suspended=1_000)
        # The database, the issuer (did:web:uni-a.example) and its signing key, and the env.
        env, port, _, _, _ = prepare(world, data / "store")
        render_figures(world, data)
        serve_figures(env, port, data, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
