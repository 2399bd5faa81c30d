"""Bounded load run on loopback: many concurrent clients against the service for a fixed time,
then proof that nothing was lost. Prints requests/s and latency percentiles per kind of
request, beside the figures of the service before its throughput work (as ratios); exits 1 on
any error or loss.

    python scripts/load_test.py                          # 60 s, 50 clients, SQLite
    python scripts/load_test.py --duration 15 --clients 20
    python scripts/load_test.py --postgres               # a throwaway PostgreSQL server
    python scripts/load_test.py --database postgresql://USER@HOST:PORT/DB
    python scripts/load_test.py --workers 1 --mix old    # the mix the "before" figures ran

The service runs as its own process (`anchor-service serve`, with ``--workers`` worker
processes through ``MICROCRED_WORKERS``; default one per CPU, as the stack) against a real anvil
node; this process runs the clients (asyncio, one keep-alive connection each). Each client
loops over a mix of requests, drawn at random with these weights:

- ``new`` (default), a service in use: single-credential submissions (30 %, as a learning
  platform issues one credential when a learner finishes), bulk submissions of 100 to 1,000
  credentials (0.05 %: as many credentials as the single submissions carry, a cohort at a
  course's end; ``--bulk-share`` changes it), credential state reads (18 %), receipts (15 %:
  the credential's bundle, its receipt included; 409 while its batch is not anchored yet is
  the documented answer, counted apart), ``POST /v1/verify`` of a bundle (12 %), the VC-API's
  ``POST /credentials/verify`` of a credential (5 %) and status-list fetches (19.8 %: the path
  of a credential's ``statusListCredential``);
- ``old``, the mix the "before" figures were measured with: submissions of 1 to 20 credentials
  (60 %), state reads (20 %), receipts (15 %) and ``POST /v1/verify`` (5 %).

The verifications and status lists use credentials anchored earlier in the run (until there
are some, clients submit instead).

The service runs with its default settings and limits, except where 50 clients on one address
would meet a limit meant for many clients on many addresses: each client has its own issuer
token (its own request rate, as each learning platform has), the public per-address rate
limit is the default times the number of clients, and the verification slots (in all and per
address) are at least one per client, so no request has a reason to be refused.

An error is a transport failure, a 5xx (503 included), a 429, or any other status than the
documented one for the request. Afterwards every credential answered 2xx must be anchored
exactly once, with a receipt whose proof holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

# The private PostgreSQL server of the tests (tests/postgres.py), for --postgres.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchor_service.keystore import write_keystore
from anchor_service.samples import make_credential
from anchor_service.store import BatchState, Store
from localchain import AnvilChain
from testkit.net import free_port, wait_until_up
from testkit.processes import assert_anchored_exactly_once, serving_pids
from testkit.world import build_world, give_signing_key

#: The routes, in the order they are printed, with their documented answers.
EXPECTED: Final = {"submit": {202}, "bulk": {202}, "state": {200}, "receipt": {200, 409},
                   "verify": {200}, "vc-verify": {200}, "status-list": {200}}
MIXES: Final = {
    "new": {"submit": 0.30, "bulk": 0.0005, "state": 0.18, "receipt": 0.15, "verify": 0.12,
            "vc-verify": 0.05, "status-list": 0.198},
    "old": {"submit": 0.60, "state": 0.20, "receipt": 0.15, "verify": 0.05},
}
#: Routes that need a credential anchored earlier in the run.
_NEED_ANCHORED: Final = frozenset({"verify", "vc-verify", "status-list"})
_KEPT: Final = 200  # anchored bundles (and status-list paths) kept for those routes
_TIMEOUT: Final = 60.0  # seconds a request may take before it counts as an error
_IDLE_REUSE: Final = 2.0  # seconds a connection may have been idle to be used again


@dataclass(frozen=True)
class Before:
    """Figures of the service before its throughput work (commit a96b149: one process, each
    submission waiting for its own commit): 60 s, 50 clients, the ``old`` mix."""

    requests_per_second: float
    source: str
    routes: dict[str, tuple[float, float]] = field(default_factory=dict)  # p50, p99 (ms)


BEFORE: Final = {
    "SQLite": (
        Before(178.0, "as first reported", {"verify": (212.0, 580.0)}),
        Before(260.0, "re-measured on a quiet machine", {"submit": (269.0, 549.0)}),
    ),
    "PostgreSQL": (Before(131.0, "as first reported"),),
}


#: What the service should reach on a 2-core machine (printed, not enforced: timing on a
#: shared machine is no test failure).
TARGETS: Final = {"SQLite": 1000.0, "PostgreSQL": 700.0}
TARGET_P99_MS: Final = 250.0
#: The HTTP routes, with the kinds of request of the mix that use them.
ROUTES: Final = {"POST /v1/credentials": ("submit", "bulk"), "GET /v1/credentials/ID": ("state",),
                 "GET /v1/credentials/ID/bundle": ("receipt",), "POST /v1/verify": ("verify",),
                 "POST /credentials/verify": ("vc-verify",),
                 "GET status list": ("status-list",)}


# --------------------------------------------------------------------------- the client


class HttpError(Exception):
    """A transport failure: the connection broke, or the answer was not HTTP."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the service on loopback. Minimal on purpose:
    the clients share the machine's cores with the service, and a full client library
    (httpx) costs several times the CPU per request of this one, which the service's
    figures would pay for."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._host, self._port = host, port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             {"Host": f"{host}:{port}", **headers}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0  # time.monotonic() of the end of the last answer

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: str = "") -> tuple[int, bytes]:
        """The answer's status and body; :class:`HttpError` on a transport failure (the
        connection is then closed, and the next request opens another)."""
        try:
            return await asyncio.wait_for(self._exchange(method, path, body, headers),
                                          _TIMEOUT)
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, TimeoutError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, body: bytes,
                        headers: str) -> tuple[int, bytes]:
        reader, writer = self._reader, self._writer
        if reader is not None and (reader.at_eof() or
                                   time.monotonic() - self._idle_since > _IDLE_REUSE):
            # Closed by the server (its keep-alive time is 5 s), or about to be: a request
            # sent as it closes would be lost in between, which is no fault of the service.
            await self.close()
            reader = writer = None
        if reader is None or writer is None:
            reader, writer = await asyncio.open_connection(self._host, self._port)
            self._reader, self._writer = reader, writer
        length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
        writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}{headers}{length}\r\n".encode()
                     + body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            content = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            content = await _chunked(reader)
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:  # the body runs to the end of the connection
            content = await reader.read()
            fields["connection"] = "close"
        if fields.get("connection", "").lower() == "close":
            await self.close()
        self._idle_since = time.monotonic()
        return status, content

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent here
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


# ------------------------------------------------------------------------------ the run


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    bundles: list[bytes] = field(default_factory=list)  # anchored bundles, for /v1/verify
    vc_requests: list[bytes] = field(default_factory=list)  # VC-API verify bodies
    status_paths: list[str] = field(default_factory=list)  # statusListCredential paths
    receipts_not_yet: int = 0
    credentials: int = 0

    def keep_anchored(self, bundle: bytes) -> None:
        """Keep an anchored bundle (and what the VC-API and status-list requests need)."""
        if len(self.bundles) >= _KEPT:
            return
        document = json.loads(bundle)
        credential = document["credential"]
        self.bundles.append(bundle)
        self.vc_requests.append(json.dumps({"verifiableCredential": credential}).encode())
        entries = credential.get("credentialStatus", [])
        for entry in entries if isinstance(entries, list) else [entries]:
            path = urlsplit(entry["statusListCredential"]).path
            if path not in self.status_paths:
                self.status_paths.append(path)


def _credentials(rng: random.Random, kind: str, mix: str, client: int,
                 sequence: int) -> list[dict[str, object]]:
    count = (rng.randint(100, 1000) if kind == "bulk" else
             1 if mix == "new" else rng.randint(1, 20))
    return [make_credential(sequence + i, id_prefix=f"urn:load:{client}",
                            subject={"n": sequence + i}) for i in range(count)]


_JSON: Final = "Content-Type: application/json\r\n"


@dataclass
class Client:
    """One client: its connections (with its token, and without, as a verifier asks), and
    the credentials it submitted."""

    number: int
    http: Connection
    public: Connection
    mix: str
    rng: random.Random
    sequence: int = 0
    mine: list[str] = field(default_factory=list)

    def draw(self, tally: Tally) -> str:
        weights = MIXES[self.mix]
        (kind,) = self.rng.choices(list(weights), weights=list(weights.values()))
        if not self.mine or (kind in _NEED_ANCHORED and not tally.bundles):
            return "submit"
        return kind

    def request(self, kind: str, tally: Tally) -> tuple[Connection, str, str, bytes, str]:
        """The connection, method, path, body and extra header lines of a request."""
        if kind in ("submit", "bulk"):
            credentials = _credentials(self.rng, kind, self.mix, self.number, self.sequence)
            self.sequence += len(credentials)
            body = json.dumps({"credentials": credentials}).encode()
            return self.http, "POST", "/v1/credentials", body, _JSON
        if kind == "state":
            return self.http, "GET", f"/v1/credentials/{self.rng.choice(self.mine)}", b"", ""
        if kind == "receipt":
            path = f"/v1/credentials/{self.rng.choice(self.mine)}/bundle"
            return self.http, "GET", path, b"", ""
        if kind == "verify":
            return self.public, "POST", "/v1/verify", self.rng.choice(tally.bundles), _JSON
        if kind == "vc-verify":
            body = self.rng.choice(tally.vc_requests)
            return self.public, "POST", "/credentials/verify", body, _JSON
        return self.public, "GET", self.rng.choice(tally.status_paths), b"", ""

    def take(self, kind: str, status: int, content: bytes, tally: Tally) -> None:
        """Record a documented answer."""
        if kind in ("submit", "bulk"):
            ids = [item["id"] for item in json.loads(content)["accepted"]]
            tally.accepted.update(ids)
            tally.credentials += len(ids)
            self.mine.extend(ids)
        elif kind == "receipt" and status == 409:
            tally.receipts_not_yet += 1
        elif kind == "receipt":
            tally.keep_anchored(content)
        elif kind == "verify" and not json.loads(content)["valid"]:
            tally.errors.append(f"verify: a genuine bundle was reported not valid: {content!r}")
        elif kind == "vc-verify" and not json.loads(content)["verified"]:
            tally.errors.append(f"vc-verify: a genuine credential was not verified: {content!r}")

    async def run(self, deadline: float, tally: Tally) -> None:
        while time.monotonic() < deadline:
            kind = self.draw(tally)
            connection, method, path, body, headers = self.request(kind, tally)
            started = time.perf_counter()
            try:
                status, content = await connection.request(method, path, body, headers)
            except HttpError as exc:
                tally.errors.append(f"{kind}: {exc}")
                continue
            tally.latencies[kind].append(time.perf_counter() - started)
            if status not in EXPECTED[kind]:
                tally.errors.append(f"{kind} {path}: HTTP {status}: {content[:200]!r}")
                continue
            self.take(kind, status, content, tally)


async def run_clients(port: int, tokens: list[str], mix: str, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    rng = random.Random(20261128)  # noqa: S311 - load mix, not security
    clients = [Client(n, Connection("127.0.0.1", port, {"Authorization": f"Bearer {token}"}),
                      Connection("127.0.0.1", port, {}), mix,
                      random.Random(rng.random()))  # noqa: S311
               for n, token in enumerate(tokens)]
    try:
        await asyncio.gather(*(c.run(deadline, tally) for c in clients))
    finally:
        for c in clients:
            await c.http.close()
            await c.public.close()
    return tally


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A private PostgreSQL server with a fresh database, as the tests start one; its URL.
    Stopped and removed on exit."""
    from tests.postgres import PostgresServer  # noqa: PLC0415 - only --postgres needs it

    # Outside this run's temp dir, which the postgres user may not enter.
    root = Path(tempfile.mkdtemp(prefix="microcred-load-pg-"))
    server = PostgresServer(root).start()
    try:
        yield server.new_database()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Outcome:
    tally: Tally
    elapsed: float
    lost: str
    log_tail: str
    processes: int  # processes that served the load
    client_cpu: float  # CPU seconds the clients took (they share the cores with the service)


def run(args: argparse.Namespace, location: str | None) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        data = Path(tmp)
        world = build_world(chain)
        (data / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
        write_keystore(data / "keys", world.issuer, "pw")
        location = location or str(data / "service.sqlite3")
        store = Store(location)
        # With its signing key, registered on chain: every credential is signed at acceptance.
        issuer = give_signing_key(store, world, store.add_issuer(
            "load", entity_id=world.issuer_id, key_address=world.issuer.address,
            did="did:web:uni-a.example"), data / "keys")
        tokens = [store.add_token(role="issuer", issuer_id=issuer.id)
                  for _ in range(args.clients)]
        port = free_port()
        clients = str(args.clients)
        env = {**os.environ, "MICROCRED_RPC_URL": str(chain.rpc_url),
               "MICROCRED_DEPLOYMENT": str(data / "deployment.json"),
               "MICROCRED_DATABASE_URL": location if "://" in location
               else f"sqlite:///{location}",
               "MICROCRED_KEYSTORE_DIR": str(data / "keys"), "MICROCRED_KEYSTORE_PASSWORD": "pw",
               "MICROCRED_PORT": str(port), "MICROCRED_BATCH_MAX_AGE": "2",
               "MICROCRED_WORKERS": str(args.workers), "MICROCRED_LOG_JSON": "false",
               # Every client here comes from 127.0.0.1; in service each would have its own
               # address, with its own share of the public rate and verification slots.
               "MICROCRED_PUBLIC_RATE_LIMIT": str(50 * args.clients),
               "MICROCRED_PUBLIC_RATE_LIMIT_BURST": str(100 * args.clients),
               "MICROCRED_VERIFY_PER_CLIENT": clients,
               "MICROCRED_VERIFY_CONCURRENCY": str(max(16, args.clients))}
        from_block = chain.w3.eth.block_number + 1
        log = data / "service.log"
        with open(log, "wb") as output:
            service = subprocess.Popen([sys.executable, "-m", "anchor_service", "serve"],
                                       env=env, stdout=output, stderr=subprocess.STDOUT)
        elapsed = 0.0
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", service)
            started, cpu = time.monotonic(), time.process_time()
            tally = asyncio.run(run_clients(port, tokens, args.mix, args.duration))
            elapsed = time.monotonic() - started
            client_cpu = time.process_time() - cpu
            processes = len(serving_pids(service.pid))
            deadline = time.monotonic() + 120
            while store.pending(issuer.id)[0] or store.batches(
                    states=[BatchState.BUILT, BatchState.SENT]):
                if time.monotonic() > deadline:
                    tally.errors.append("not everything was anchored within 120 s of the end")
                    break
                time.sleep(0.2)
        finally:
            service.terminate()
            try:
                service.wait(30)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(10)
        lost = ""
        try:
            assert_anchored_exactly_once(world, store, tally.accepted, from_block)
        except AssertionError as exc:
            lost = f"LOST OR DUPLICATED: {exc}"
        store.close()
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
        return Outcome(tally, elapsed, lost, "\n".join(tail), processes, client_cpu)


def _print_beside(args: argparse.Namespace, database: str, rate: float, tally: Tally) -> None:
    """The figures before, with the ratios now/before, and the targets (met or not)."""
    befores = BEFORE.get(database, ())
    differs = [what for what, same in (("the new mix", args.mix == "old"),
                                       (f"{args.clients} clients", args.clients == 50),
                                       (f"{args.duration:g} s", args.duration == 60))
               if not same]
    if befores:
        print(f"  beside the figures before (a96b149: one process, 60 s, 50 clients, the old "
              f"mix{'; this run: ' + ', '.join(differs) if differs else ''}), now/before:")
    for before in befores:
        lines = [("requests/s", before.requests_per_second, rate)]
        for kind, (p50, p99) in before.routes.items():
            values = tally.latencies.get(kind, [])
            if values:
                lines += [(f"{kind} p50 ms", p50, percentile(values, 0.50) * 1000),
                          (f"{kind} p99 ms", p99, percentile(values, 0.99) * 1000)]
        for label, then, now in lines:
            print(f"    {label:<16} before {then:>7,.0f}  now {now:>7,.1f}  x{now / then:.2f}"
                  f"  ({before.source})")
    if args.mix == "new":
        target = TARGETS[database]
        # Per HTTP route: single and bulk submissions are one route.
        slow = []
        for route, kinds in ROUTES.items():
            values = [v for kind in kinds for v in tally.latencies.get(kind, [])]
            if values and (p99 := percentile(values, 0.99) * 1000) >= TARGET_P99_MS:
                slow.append(f"{route} {p99:.0f} ms")
        print(f"  targets (60 s, 50 clients): >= {target:,.0f} requests/s: "
              f"{'met' if rate >= target else 'not met'}; p99 < {TARGET_P99_MS:.0f} ms on "
              f"every HTTP route (single and bulk submissions are one): "
              f"{'met' if not slow else 'not met (' + ', '.join(slow) + ')'}")


def report(args: argparse.Namespace, database: str, outcome: Outcome) -> None:
    tally, elapsed = outcome.tally, outcome.elapsed
    requests = sum(len(v) for v in tally.latencies.values())
    rate = requests / elapsed if elapsed else 0.0
    bulk = f", bulk share {MIXES['new']['bulk']:g}" if args.mix == "new" else ""
    print(f"load: {args.clients} clients for {elapsed:.1f} s on loopback ({database}, mix "
          f"{args.mix!r}{bulk}; workers asked {args.workers}, processes serving "
          f"{outcome.processes})")
    print(f"  {requests:,} requests, {rate:,.0f}/s; {tally.credentials:,} credentials "
          f"accepted, {tally.credentials / max(elapsed, 1e-9):,.0f}/s; the clients took "
          f"{outcome.client_cpu / max(elapsed, 1e-9):.0%} of a core")
    print(f"  {'route':<12} {'count':>8} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")
    for kind in EXPECTED:
        values = tally.latencies.get(kind, [])
        if values:
            print(f"  {kind:<12} {len(values):>8,} {len(values) / elapsed:>7,.0f} "
                  f"{percentile(values, 0.50) * 1000:>8.1f} "
                  f"{percentile(values, 0.95) * 1000:>8.1f} "
                  f"{percentile(values, 0.99) * 1000:>8.1f} {max(values) * 1000:>8.1f}")
    _print_beside(args, database, rate, tally)
    print(f"  receipts asked before their batch was anchored (409, documented): "
          f"{tally.receipts_not_yet:,}")
    print(f"  errors: {len(tally.errors)}")
    for error in tally.errors[:10]:
        print(f"    {error}")
    print(f"  every accepted credential anchored exactly once, receipt verified: "
          f"{'no: ' + outcome.lost if outcome.lost else 'yes'} "
          f"({len(tally.accepted):,} credentials)")
    if tally.errors or outcome.lost:
        print("  the service's last log lines:")
        for line in outcome.log_tail.splitlines():
            print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="the service's worker processes (default: one per CPU, "
                        f"{os.cpu_count() or 1} here)")
    parser.add_argument("--mix", choices=sorted(MIXES), default="new",
                        help="new (default): the mix of a service in use; old: the mix of "
                        "the 'before' figures")
    parser.add_argument("--bulk-share", type=float, default=None, metavar="P",
                        help="the new mix's share of bulk submissions (default "
                        f"{MIXES['new']['bulk']:g}; each carries 100 to 1,000 credentials)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="a PostgreSQL URL (default: a SQLite file)")
    where.add_argument("--postgres", action="store_true",
                       help="start a throwaway PostgreSQL server for the run (Debian's "
                       "postgresql, as the tests use)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.workers < 1:
        parser.error("--duration must be positive, --clients and --workers at least 1")
    if args.bulk_share is not None:
        if not 0 <= args.bulk_share < 1:
            parser.error("--bulk-share must be at least 0 and below 1")
        MIXES["new"]["bulk"] = args.bulk_share
    if args.postgres:
        with throwaway_postgres() as url:
            outcome = run(args, url)
    else:
        outcome = run(args, args.database)
    report(args, "PostgreSQL" if args.postgres or args.database else "SQLite", outcome)
    return 1 if outcome.tally.errors or outcome.lost else 0


if __name__ == "__main__":
    sys.exit(main())
