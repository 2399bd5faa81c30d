"""Kill the service with SIGKILL in the middle of its work, several times, while clients keep
submitting; restart it. Every credential that got a 2xx ends up anchored exactly once and its
receipt verifies, and no root is anchored twice. Real processes, a real anvil, real HTTP."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.service import write_keystore
from anchor_service.store import BatchState, NewCredential, Store
from tests.contracts.conftest import World
from tests.support import check_inclusion, free_port, wait_until_up
from verifier.receipt import Bundle, Receipt

KILLS = 4



class ServiceProcess:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "anchor_service", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def _prepare(world: World, tmp_path: Path) -> tuple[dict[str, str], int, Path, int, str]:
    """Deployment record, keystore, database with the issuer and a token; the service env."""
    (tmp_path / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
    write_keystore(tmp_path / "keys", world.issuer, "pw")
    database = tmp_path / "service.sqlite3"
    store = Store(database)
    issuer = store.add_issuer(
        "uni-a",
        entity_id=world.issuer_id,
        key_address=world.issuer.address,
        did="did:web:uni-a.example",
    )
    token = store.add_token(role="issuer", issuer_id=issuer.id)
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "MICROCRED_RPC_URL": str(world.chain.rpc_url),
        "MICROCRED_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "MICROCRED_DATABASE_URL": f"sqlite:///{database}",
        "MICROCRED_KEYSTORE_DIR": str(tmp_path / "keys"),
        "MICROCRED_KEYSTORE_PASSWORD": "pw",
        "MICROCRED_PORT": str(port),
        "MICROCRED_BATCH_MAX_SIZE": "40",
        "MICROCRED_BATCH_MAX_AGE": "0.1",
        "MICROCRED_POLL_INTERVAL": "0.02",
    }
    return env, port, database, issuer.id, token


def _wait_until_all_anchored(store: Store, issuer_id: int) -> None:
    deadline = time.monotonic() + 60
    while store.pending(issuer_id)[0] or store.batches(states=[BatchState.BUILT, BatchState.SENT]):
        assert time.monotonic() < deadline, "the restarted service did not finish"
        time.sleep(0.1)


def test_sigkill_loses_nothing_and_anchors_nothing_twice(
    anvil_world: World, tmp_path: Path
) -> None:
    world = anvil_world
    env, port, database, issuer_id, token = _prepare(world, tmp_path)
    service = ServiceProcess(env, port)
    accepted: set[str] = set()
    stop = threading.Event()
    rng = random.Random(20261128)  # noqa: S311 - timing jitter, not security

    def client(number: int) -> None:
        sequence = 0
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            while not stop.is_set():
                credentials = [{"id": f"urn:crash:{number}:{sequence + i}"} for i in range(15)]
                sequence += 15
                try:
                    answer = http.post("/v1/credentials", json={"credentials": credentials})
                except httpx.HTTPError:
                    time.sleep(0.05)  # the service is down: try again
                    continue
                if answer.status_code == 202:
                    accepted.update(a["id"] for a in answer.json()["accepted"])

    service.start()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for thread in clients:
        thread.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.0))
            service.kill()
            service.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    reopened = Store(database)
    try:
        _wait_until_all_anchored(reopened, issuer_id)
    finally:
        service.kill()

    assert len(accepted) > 100
    batches = reopened.batches(limit=100_000)
    # Every batch root anchored on chain exactly once, by this issuer, and nothing else.
    events = world.anchor.events.RootAnchored().get_logs(
        from_block=0, argument_filters={"entityId": world.issuer_id}
    )
    roots = [bytes(e["args"]["root"]) for e in events]
    assert sorted(roots) == sorted(b.root for b in batches)
    assert len(set(roots)) == len(roots)
    # Every credential answered 2xx is in exactly one anchored batch, and its receipt verifies.
    receipts = Receipts(reopened, chain_id=world.chain.chain_id, contract=world.anchor.address)
    for public_id in accepted:
        receipt = Receipt.from_json(receipts.receipt(public_id).to_json())
        check_inclusion(receipt)
    assert sum(b.size for b in batches) >= len(accepted)


def test_cli_direct_mode_anchors_without_a_service(anvil_world: World, tmp_path: Path) -> None:
    env, _, database, issuer_id, _ = _prepare(anvil_world, tmp_path)
    folder = tmp_path / "credentials"
    folder.mkdir()
    for n in range(3):
        (folder / f"d{n}.json").write_text(f'{{"id": "urn:direct:{n}"}}', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "anchor_service", "submit", str(folder), "--direct", "uni-a",
         "--quiet"], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    for n in range(3):
        bundle = (folder / f"d{n}.bundle.json").read_text(encoding="utf-8")
        receipt = Bundle.from_json(bundle).receipt
        check_inclusion(receipt)
    store = Store(database)
    assert store.pending(issuer_id)[0] == 0
    assert all(b.state is BatchState.ANCHORED for b in store.batches())


def _rpc(world: World, method: str, *params: object) -> object:
    return world.chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["dropped", "stuck"])
def test_a_lost_or_stuck_transaction_is_replaced_not_queued_behind(
    anvil_world: World, tmp_path: Path, fault: str
) -> None:
    world = anvil_world
    snapshot = world.chain.snapshot()
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    pipeline = Pipeline(store, world.chain.w3, world.deployment, {1: world.issuer},
                        BatchPolicy(max_size=100, max_age=0, resend_after=0))
    store.accept(1, [NewCredential(bytes([n]) * 32, bytes(16)) for n in range(3)])
    _rpc(world, "evm_setAutomine", False)
    try:
        pipeline.run_once()  # cut and sent; not mined
        (batch,) = store.batches()
        assert batch.state is BatchState.SENT
        assert batch.tx_hash is not None
        if fault == "dropped":
            _rpc(world, "anvil_dropTransaction", "0x" + batch.tx_hash.hex())
        pipeline.run_once()  # lost (dropped) or not mined in time: replaced, same nonce
        replaced = store.batch(batch.id)
        assert replaced is not None
        assert replaced.tx_hash != batch.tx_hash
        _rpc(world, "evm_mine")
    finally:
        _rpc(world, "evm_setAutomine", True)
    pipeline.run_once()
    anchored = store.batch(batch.id)
    assert anchored is not None
    assert anchored.state is BatchState.ANCHORED
    assert anchored.tx_hash == replaced.tx_hash
    events = world.anchor.events.RootAnchored().get_logs(
        from_block=0, argument_filters={"root": batch.root})
    assert len(events) == 1
    world.chain.revert(snapshot)
