"""Service processes for the fault tests and the benchmark scripts: real ``anchor-service
serve`` processes on a real chain, client threads that submit while faults happen, and the
check that everything answered 2xx was anchored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx

from anchor_service.keystore import write_keystore
from anchor_service.receipts import Receipts
from anchor_service.samples import make_credential
from anchor_service.store import BatchState, Store
from testkit.net import check_inclusion, free_port, wait_until_up
from testkit.world import World, serve_issuer
from verifier.receipt import Receipt


class ServiceProcess:
    """``anchor-service serve`` as a child process; its log is appended to ``log`` if given
    (to see what it did when a test fails)."""

    def __init__(self, env: dict[str, str], port: int, log: Path | None = None) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        with open(self.log or os.devnull, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "anchor_service", "serve"],
                env={**self.env, "MICROCRED_LOG_JSON": "false"},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_until_up()

    def wait_until_up(self) -> None:
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class Submitters:
    """Client threads that submit credentials, ``per_request`` a request, round robin over
    the services' ports, until the ``with`` block ends; ``accepted`` holds every id that was
    answered 2xx."""

    def __init__(self, ports: list[int], token: str, *, tag: str, threads: int = 3,
                 per_request: int = 15) -> None:
        self.ports, self.token, self.tag = ports, token, tag
        self.per_request = per_request
        self.accepted: set[str] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._submit, args=(n,))
                         for n in range(threads)]

    def __enter__(self) -> Submitters:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _submit(self, number: int) -> None:
        sequence = 0
        https = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=10,
                              headers={"Authorization": f"Bearer {self.token}"})
                 for p in self.ports]
        try:
            while not self._stop.is_set():
                prefix = f"urn:crash:{self.tag}:{number}"
                credentials = [make_credential(sequence + i, id_prefix=prefix)
                               for i in range(self.per_request)]
                http = https[sequence // self.per_request % len(https)]
                sequence += self.per_request
                try:
                    answer = http.post("/v1/credentials", json={"credentials": credentials})
                except httpx.HTTPError:
                    time.sleep(0.05)  # that service is down: go on with the next
                    continue
                if answer.status_code == 202:
                    self.accepted.update(a["id"] for a in answer.json()["accepted"])
        finally:
            for http in https:
                http.close()


def serving_pids(pid: int) -> list[int]:
    """The processes that serve for the service whose process is ``pid`` (Linux /proc): the
    workers its supervisor forked (children with its command line), or the service itself
    when it has none. Other children (a process's signing helper, a fresh interpreter with
    its own command line) serve no request."""
    own = _command_line(pid)
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with suppress(OSError):
            children += [int(child) for child in task.read_text().split()]
    workers = [child for child in children if _command_line(child) == own]
    return workers or [pid]


def _command_line(pid: int) -> bytes | None:
    """The command line of process ``pid`` (None once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def prepare(world: World, tmp_path: Path, location: str | None = None, *,
            signing: bool = True) -> tuple[dict[str, str], int, str, int, str]:
    """Deployment record, keystore, database (SQLite in tmp_path unless ``location`` says
    otherwise) with the issuer and a token; the service env. With ``signing`` (the default)
    the issuer has its signing key, registered on chain (the chain must answer): the service
    signs its credentials, whose ``issuer`` must then be the world's issuer's DID."""
    (tmp_path / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
    # A cheap scrypt: the service is started dozens of times here.
    write_keystore(tmp_path / "keys", world.issuer, "pw", scrypt_cost=2**10)
    database = location or str(tmp_path / "service.sqlite3")
    store = Store(database)
    issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys" if signing else None)
    token = store.add_token(role="issuer", issuer_id=issuer.id)
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "MICROCRED_RPC_URL": str(world.chain.rpc_url),
        "MICROCRED_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "MICROCRED_DATABASE_URL": database if "://" in database else f"sqlite:///{database}",
        "MICROCRED_KEYSTORE_DIR": str(tmp_path / "keys"),
        "MICROCRED_KEYSTORE_PASSWORD": "pw",
        "MICROCRED_PORT": str(port),
        "MICROCRED_BATCH_MAX_SIZE": "40",
        "MICROCRED_BATCH_MAX_AGE": "0.1",
        "MICROCRED_POLL_INTERVAL": "0.02",
    }
    return env, port, database, issuer.id, token


def wait_until_all_anchored(store: Store, issuer_id: int) -> None:
    deadline = time.monotonic() + 90
    while store.pending(issuer_id)[0] or store.batches(states=[BatchState.BUILT, BatchState.SENT]):
        assert time.monotonic() < deadline, "the restarted service did not finish"
        time.sleep(0.1)


def assert_anchored_exactly_once(world: World, store: Store, accepted: set[str],
                                 from_block: int) -> None:
    """Every batch root (since ``from_block``) anchored on chain exactly once, by this issuer,
    and nothing else; every credential answered 2xx in exactly one anchored batch, with a
    receipt that verifies."""
    batches = store.batches(limit=100_000)
    events = world.anchor.events.RootAnchored().get_logs(
        from_block=from_block, argument_filters={"entityId": world.issuer_id}
    )
    roots = [bytes(e["args"]["root"]) for e in events]
    assert sorted(roots) == sorted(b.root for b in batches)
    assert len(set(roots)) == len(roots)
    receipts = Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)
    for public_id in accepted:
        receipt = Receipt.from_json(receipts.receipt(public_id).to_json())
        check_inclusion(receipt)
    assert sum(b.size for b in batches) >= len(accepted)
