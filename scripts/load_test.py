"""Bounded load run on loopback: many concurrent clients against the service for a fixed time,
then proof that nothing was lost. Prints figures; exits 1 on any error or loss.

    python scripts/load_test.py                          # 60 s, 50 clients, SQLite
    python scripts/load_test.py --duration 10 --clients 20
    python scripts/load_test.py --database postgresql://USER@HOST:PORT/DB

The service runs as its own process (`anchor-service serve`, default settings, rate limits
included, except that the clients, all on 127.0.0.1, may have as many verifications in flight
as there are clients) against a real anvil node; this process runs the clients (asyncio,
one connection each). Each client loops over a mix: submit 1 to 20 credentials (60 %), read
a credential's state (20 %), fetch a receipt (15 %; 409 while its batch is not anchored yet is
the documented answer, counted apart) and verify a bundle through POST /v1/verify (5 %).

An error is a transport failure, a 5xx, or any other status than the documented one for the
request. Afterwards every credential answered 2xx must be anchored exactly once, with a
receipt whose proof holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from anchor_service.keystore import write_keystore
from anchor_service.samples import make_credential
from anchor_service.store import BatchState, Store
from localchain import AnvilChain
from testkit.net import free_port, wait_until_up
from testkit.processes import assert_anchored_exactly_once
from testkit.world import build_world, give_signing_key

EXPECTED = {"submit": {202}, "state": {200}, "receipt": {200, 409}, "verify": {200}}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    anchored_bundles: list[bytes] = field(default_factory=list)
    receipts_not_yet: int = 0
    credentials: int = 0


async def client(number: int, http: httpx.AsyncClient, deadline: float, tally: Tally,
                 rng: random.Random) -> None:
    sequence = 0
    mine: list[str] = []
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.60 or not mine:
            kind = "submit"
            count = rng.randint(1, 20)
            credentials = [make_credential(sequence + i, id_prefix=f"urn:load:{number}",
                                           subject={"n": sequence + i}) for i in range(count)]
            sequence += count
            request = http.build_request("POST", "/v1/credentials",
                                         json={"credentials": credentials})
        elif roll < 0.80:
            kind = "state"
            request = http.build_request("GET", f"/v1/credentials/{rng.choice(mine)}")
        elif roll < 0.95:
            kind = "receipt"
            request = http.build_request("GET", f"/v1/credentials/{rng.choice(mine)}/bundle")
        else:
            if not tally.anchored_bundles:
                continue
            kind = "verify"
            request = http.build_request(
                "POST", "/v1/verify", content=rng.choice(tally.anchored_bundles),
                headers={"Content-Type": "application/json", "Authorization": ""})
        started = time.perf_counter()
        try:
            answer = await http.send(request)
        except httpx.HTTPError as exc:
            tally.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        tally.latencies[kind].append(time.perf_counter() - started)
        if answer.status_code not in EXPECTED[kind]:
            tally.errors.append(f"{kind}: HTTP {answer.status_code}: {answer.text[:200]}")
            continue
        if kind == "submit":
            ids = [item["id"] for item in answer.json()["accepted"]]
            tally.accepted.update(ids)
            tally.credentials += len(ids)
            mine.extend(ids)
        elif kind == "receipt" and answer.status_code == 409:
            tally.receipts_not_yet += 1
        elif kind == "receipt" and len(tally.anchored_bundles) < 200:
            tally.anchored_bundles.append(answer.content)
        elif kind == "verify" and not answer.json()["valid"]:
            tally.errors.append(f"verify: a genuine bundle was reported not valid: {answer.text}")


async def run_clients(url: str, token: str, clients: int, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    rng = random.Random(20261128)  # noqa: S311 - load mix, not security
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                               headers={"Authorization": f"Bearer {token}"})
             for _ in range(clients)]
    try:
        await asyncio.gather(*(client(n, http, deadline, tally,
                                      random.Random(rng.random()))  # noqa: S311
                               for n, http in enumerate(https)))
    finally:
        for http in https:
            await http.aclose()
    return tally


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        data = Path(tmp)
        world = build_world(chain)
        (data / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
        write_keystore(data / "keys", world.issuer, "pw")
        location = args.database or str(data / "service.sqlite3")
        store = Store(location)
        # With its signing key, registered on chain: every credential is signed at acceptance.
        issuer = give_signing_key(store, world, store.add_issuer(
            "load", entity_id=world.issuer_id, key_address=world.issuer.address,
            did="did:web:uni-a.example"), data / "keys")
        token = store.add_token(role="issuer", issuer_id=issuer.id)
        port = free_port()
        env = {**os.environ, "MICROCRED_RPC_URL": str(chain.rpc_url),
               "MICROCRED_DEPLOYMENT": str(data / "deployment.json"),
               "MICROCRED_DATABASE_URL": location if "://" in location
               else f"sqlite:///{location}",
               "MICROCRED_KEYSTORE_DIR": str(data / "keys"), "MICROCRED_KEYSTORE_PASSWORD": "pw",
               "MICROCRED_PORT": str(port), "MICROCRED_BATCH_MAX_AGE": "2",
               # Every client here comes from 127.0.0.1; in service each would have its own
               # address, and its own share of the verification slots.
               "MICROCRED_VERIFY_PER_CLIENT": str(args.clients)}
        from_block = chain.w3.eth.block_number + 1
        service = subprocess.Popen([sys.executable, "-m", "anchor_service", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(f"{url}/healthz", service)
            started = time.monotonic()
            tally = asyncio.run(run_clients(url, token, args.clients, args.duration))
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 120
            while store.pending(issuer.id)[0] or store.batches(
                    states=[BatchState.BUILT, BatchState.SENT]):
                if time.monotonic() > deadline:
                    tally.errors.append("not everything was anchored within 120 s of the end")
                    break
                time.sleep(0.2)
        finally:
            service.terminate()
            service.wait(30)
        lost = ""
        try:
            assert_anchored_exactly_once(world, store, tally.accepted, from_block)
        except AssertionError as exc:
            lost = f"LOST OR DUPLICATED: {exc}"
        store.close()
    requests = sum(len(v) for v in tally.latencies.values())
    print(f"load: {args.clients} clients for {elapsed:.1f} s on loopback "
          f"({'PostgreSQL' if args.database else 'SQLite'})")
    print(f"  {requests:,} requests, {requests / elapsed:,.0f}/s; {tally.credentials:,} "
          f"credentials accepted, {tally.credentials / elapsed:,.0f}/s")
    for kind in ("submit", "state", "receipt", "verify"):
        values = tally.latencies.get(kind, [])
        if values:
            print(f"  {kind:<8} {len(values):>7,}  p50 {statistics.median(values) * 1000:6.1f} ms"
                  f"  p95 {percentile(values, 0.95) * 1000:6.1f} ms"
                  f"  p99 {percentile(values, 0.99) * 1000:6.1f} ms"
                  f"  max {max(values) * 1000:6.1f} ms")
    print(f"  receipts asked before their batch was anchored (409, documented): "
          f"{tally.receipts_not_yet:,}")
    print(f"  errors: {len(tally.errors)}")
    for error in tally.errors[:10]:
        print(f"    {error}")
    print(f"  every accepted credential anchored exactly once, receipt verified: "
          f"{'no: ' + lost if lost else 'yes'} ({len(tally.accepted):,} credentials)")
    return 1 if tally.errors or lost else 0


if __name__ == "__main__":
    sys.exit(main())
