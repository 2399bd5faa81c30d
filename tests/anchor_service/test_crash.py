"""Kill the service with SIGKILL in the middle of its work, several times, while clients keep
submitting; restart it. Every credential that got a 2xx ends up anchored exactly once and its
receipt verifies, and no root is anchored twice. Real processes, a real anvil, real HTTP."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.store import BatchState, NewCredential, Store
from testkit.net import check_inclusion, free_port
from testkit.processes import (
    ServiceProcess,
    Submitters,
    assert_anchored_exactly_once,
    prepare,
    wait_until_all_anchored,
)
from testkit.pytest_plugin import RunSizes
from testkit.world import World
from verifier.receipt import Bundle


# (database, service processes, client threads, credentials a request)
@pytest.mark.parametrize("case", [
    ("sqlite", 1, 3, 15), ("postgresql", 3, 3, 15),
    # Concurrent single-credential requests: their acceptances share group commits, and
    # a kill lands between units, inside a group, and between a group's COMMIT and answers.
    ("sqlite", 1, 16, 1), ("postgresql", 2, 16, 1)], ids=lambda case: "-".join(map(str, case)))
def test_sigkill_loses_nothing_and_anchors_nothing_twice(
    anvil_world: World, tmp_path: Path, request: pytest.FixtureRequest,
    case: tuple[str, int, int, int], *, sizes: RunSizes,
) -> None:
    """SQLite with one service process, and PostgreSQL with several replicas behind a
    round-robin client, with a few clients sending 15 credentials a request or 16 sending
    one: ``sizes.sigkills`` kills (20 with ``--full``, 8 otherwise) of a random process at a
    random moment."""
    database, replicas, clients, per_request = case
    world = anvil_world
    location = (request.getfixturevalue("postgres").new_database()
                if database == "postgresql" else None)
    env, first_port, location, issuer_id, token = prepare(world, tmp_path, location)
    ports = [first_port, *(free_port() for _ in range(replicas - 1))]
    services = [ServiceProcess({**env, "MICROCRED_PORT": str(p)}, p) for p in ports]
    from_block = world.chain.w3.eth.block_number + 1
    rng = random.Random(20261128)  # noqa: S311 - timing jitter, not security
    try:
        for service in services:
            service.start()
        with Submitters(ports, token, tag=f"{database}:{per_request}", threads=clients,
                        per_request=per_request) as submitters:
            for _ in range(sizes.sigkills):
                time.sleep(rng.uniform(0.1, 0.6))
                victim = rng.choice(services)
                victim.kill()
                # A lone service must be back before the next kill; among replicas the next
                # kill may also hit one that is still starting.
                victim.start(wait=replicas == 1)
            for service in services:
                service.wait_until_up()
            time.sleep(0.5)
        accepted = submitters.accepted
        reopened = Store(location)
        wait_until_all_anchored(reopened, issuer_id)
        # Whichever replica answers, a receipt is the same document.
        for public_id in sorted(accepted)[:: max(1, len(accepted) // 40)]:
            texts = {httpx.get(f"http://127.0.0.1:{p}/v1/credentials/{public_id}/receipt",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10).text
                     for p in ports}
            assert len(texts) == 1, texts
    finally:
        for service in services:
            service.kill()

    assert len(accepted) > 100
    assert_anchored_exactly_once(world, reopened, accepted, from_block)
    reopened.close()


def test_cli_direct_mode_anchors_without_a_service(anvil_world: World, tmp_path: Path) -> None:
    env, _, database, issuer_id, _ = prepare(anvil_world, tmp_path, signing=False)
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


def _three_waiting(world: World, tmp_path: Path, *, resend_after: float,
                   ) -> tuple[Store, Pipeline]:
    """A store with the issuer and three credentials waiting, and a pipeline for them."""
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    store.accept(1, [NewCredential(bytes([n]) * 32, bytes(16)) for n in range(3)])
    return store, Pipeline(store, world.chain.w3, world.deployment, {1: world.issuer},
                           BatchPolicy(max_size=100, max_age=0, resend_after=resend_after))


@pytest.mark.parametrize("fault", ["dropped", "stuck"])
def test_a_lost_or_stuck_transaction_is_replaced_not_queued_behind(
    anvil_world: World, tmp_path: Path, fault: str
) -> None:
    world = anvil_world
    snapshot = world.chain.snapshot()
    # A dropped transaction is unknown to the node: replaced at once, however long the
    # patience for stuck ones. A stuck one (pending, not mined) is replaced once it is due.
    store, pipeline = _three_waiting(world, tmp_path, resend_after=3600 if fault == "dropped"
                                     else 0)
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


def test_a_lost_answer_to_the_broadcast_sends_nothing_twice(
    anvil_world: World, tmp_path: Path
) -> None:
    """The node takes the transaction but its answer never arrives, and nothing is mined yet:
    the pipeline recorded the hash before broadcasting, finds the transaction pending on its
    next try, and sends no other."""
    world = anvil_world
    snapshot = world.chain.snapshot()
    store, pipeline = _three_waiting(world, tmp_path, resend_after=120)
    sender = pipeline._transactors[1]
    broadcast = sender.broadcast

    def answer_lost(signed: Any) -> bytes:
        broadcast(signed)
        raise requests.ConnectionError("the answer was lost")

    sender.broadcast = answer_lost  # type: ignore[method-assign]
    _rpc(world, "evm_setAutomine", False)
    try:
        for _ in range(3):  # each round retries at once, then backs off: no second send
            pipeline.run_once()
        eth = world.chain.w3.eth
        queued = (eth.get_transaction_count(world.issuer.address, "pending")
                  - eth.get_transaction_count(world.issuer.address, "latest"))
        (batch,) = store.batches()
        assert batch.state is BatchState.SENT
        assert batch.tx_hash is not None
        _rpc(world, "evm_mine")
    finally:
        _rpc(world, "evm_setAutomine", True)
    assert queued == 1  # one transaction, not one a try
    pipeline._retry_at.clear()
    pipeline.run_once()
    anchored = store.batch(batch.id)
    assert anchored is not None
    assert anchored.state is BatchState.ANCHORED
    assert anchored.tx_hash == batch.tx_hash
    world.chain.revert(snapshot)
