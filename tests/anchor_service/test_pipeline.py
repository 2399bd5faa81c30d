"""The anchoring pipeline against the real contracts, on the in-process chain and on anvil:
batches are cut, anchored (directly or relayed), confirmed, and their receipts verify on their
own and against the contract; a crash between sending and recording anchors nothing twice."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes

from anchor_service.errors import AnchorServiceError, NotAnchoredError, UnknownCredentialError
from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.samples import make_credential
from anchor_service.store import BatchState, NewCredential, Store
from testkit.net import check_inclusion
from testkit.world import World, check_on_chain
from verifier.chain import JsonRpcChainReader
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.receipt import Bundle, Receipt
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, VerificationReport, verify


@pytest.fixture
def store(tmp_path: Path, world: World) -> Store:
    db = Store(tmp_path / "service.sqlite3")
    db.add_issuer(
        "uni-a",
        entity_id=world.issuer_id,
        key_address=world.issuer.address,
        did="did:web:uni-a.example",
    )
    return db


def _pipeline(world: World, store: Store, **policy: Any) -> Pipeline:
    return Pipeline(
        store, world.chain.w3, world.deployment, {1: world.issuer}, BatchPolicy(**policy)
    )


def _accept(store: Store, count: int) -> tuple[list[str], list[dict[str, object]]]:
    credentials = [make_credential(os.urandom(4).hex(), n=n) for n in range(count)]
    accepted = store.accept(
        1, [NewCredential(credential_digest(c), new_salt(), canonicalize(c)) for c in credentials]
    )
    return [a.public_id for a in accepted], credentials


def _run_until_anchored(pipeline: Pipeline, rounds: int = 20) -> None:
    for _ in range(rounds):
        pipeline.run_once()
        if not pipeline.store.batches(states=[BatchState.BUILT, BatchState.SENT]):
            return
    raise AssertionError("batches did not get anchored")


def _receipts(world: World, store: Store) -> Receipts:
    return Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)


@pytest.mark.parametrize("relayed", [False, True], ids=["direct", "relayed"])
def test_credentials_end_up_with_receipts_that_verify(
    world: World, store: Store, relayed: bool
) -> None:
    ids, credentials = _accept(store, 25)
    pipeline = Pipeline(
        store,
        world.chain.w3,
        world.deployment,
        {1: world.issuer},
        BatchPolicy(max_size=10, max_age=0),
        relayer=world.stranger if relayed else None,
    )
    receipts = _receipts(world, store)
    with pytest.raises(NotAnchoredError, match="waiting for a batch"):
        receipts.receipt(ids[0])
    _run_until_anchored(pipeline)

    batches = store.batches()
    assert sorted(b.size for b in batches) == [5, 10, 10]
    assert all(b.state is BatchState.ANCHORED for b in batches)
    for public_id, credential in zip(ids, credentials, strict=True):
        receipt = Receipt.from_json(receipts.receipt(public_id).to_json())
        assert receipt.credential_digest == credential_digest(credential)
        check_inclusion(receipt)
        block = world.chain.w3.eth.get_block(receipt.anchor.block_number)
        assert bytes(block["hash"]) == receipt.anchor.block_hash
        tx = world.chain.w3.eth.get_transaction(HexBytes(receipt.anchor.transaction_hash))
        assert tx["blockNumber"] == receipt.anchor.block_number
        assert tx["from"] == (world.stranger if relayed else world.issuer).address
        check_on_chain(world, receipt)
    bundle = Bundle.from_json(receipts.bundle(ids[3]).to_json())
    assert bundle.credential == json.loads(json.dumps(credentials[3]))
    with pytest.raises(UnknownCredentialError):
        receipts.receipt(ids[0], issuer_id=2)  # another issuer's token sees nothing


def test_a_crash_between_send_and_record_anchors_nothing_twice(world: World, store: Store) -> None:
    _accept(store, 5)
    first = _pipeline(world, store, max_size=100, max_age=0)
    (batch,) = first.cut_due()
    # The transaction goes out, then the process dies before recording it.
    world.tx(world.issuer).transact(world.anchor.functions.anchor(batch.root, batch.size))
    sent_before = world.chain.w3.eth.get_transaction_count(world.issuer.address)

    restarted = _pipeline(world, store, max_size=100, max_age=0)
    _run_until_anchored(restarted)
    assert world.chain.w3.eth.get_transaction_count(world.issuer.address) == sent_before
    recorded = store.batch(batch.id)
    assert recorded is not None
    assert recorded.state is BatchState.ANCHORED
    assert recorded.tx_hash is not None
    tx = world.chain.w3.eth.get_transaction(HexBytes(recorded.tx_hash))
    assert tx["from"] == world.issuer.address


def test_a_crash_after_recording_the_send_resumes(world: World, store: Store) -> None:
    ids, _ = _accept(store, 3)
    first = _pipeline(world, store, max_size=100, max_age=0, confirmations=3)
    first.run_once()  # cut and sent, not yet confirmed
    (batch,) = store.batches()
    assert batch.state is BatchState.SENT
    with pytest.raises(NotAnchoredError, match="is sent"):
        _receipts(world, store).receipt(ids[0])

    restarted = _pipeline(world, store, max_size=100, max_age=0, confirmations=3)
    restarted.run_once()
    assert store.batches()[0].state is BatchState.SENT  # 1 of 3 confirmations
    world.chain.mine(2)
    restarted.run_once()
    assert store.batches()[0].state is BatchState.ANCHORED
    # The issuer key sent exactly one transaction in all: the one anchor.
    assert world.chain.w3.eth.get_transaction_count(world.issuer.address) == 1
    check_on_chain(world, _receipts(world, store).receipt(ids[0]))


def test_batches_are_cut_by_size_and_by_age(world: World, store: Store) -> None:
    now = [1_000_000.0]
    pipeline = Pipeline(
        store,
        world.chain.w3,
        world.deployment,
        {1: world.issuer},
        BatchPolicy(max_size=4, max_age=30),
        clock=lambda: now[0],
    )
    _accept(store, 3)
    assert pipeline.cut_due() == []  # neither full nor old (accepted at real time, see below)
    _accept(store, 6)
    assert [b.size for b in pipeline.cut_due()] == [4, 4]  # full ones only
    now[0] = 10**10  # much later
    assert [b.size for b in pipeline.cut_due()] == [1]
    _accept(store, 2)
    assert [b.size for b in pipeline.cut_now(1)] == [2]


def test_a_reverting_anchor_is_retried_not_fatal(world: World, store: Store) -> None:
    _accept(store, 2)
    world.tx(world.body).transact(world.registry.functions.revokeKey(world.issuer.address, 0))
    pipeline = _pipeline(world, store, max_size=100, max_age=0)
    pipeline.run_once()
    (batch,) = store.batches()
    assert batch.state is BatchState.BUILT  # KeyNotTrusted: nothing recorded as sent
    pipeline.run_once()  # within the backoff: not retried, not failing
    assert store.batches()[0].state is BatchState.BUILT


def test_the_key_must_match_the_issuer(world: World, store: Store) -> None:
    with pytest.raises(AnchorServiceError) as refused:
        Pipeline(store, world.chain.w3, world.deployment, {1: world.stranger})
    assert str(refused.value) == (
        f"the key given for issuer uni-a is {world.stranger.address}, but the issuer anchors "
        f"with {world.issuer.address}")


@pytest.mark.parametrize("mined_again", [False, True], ids=["dropped", "mined-again"])
def test_a_reorganised_anchor_is_detected_and_anchored_again(
    world: World, store: Store, mined_again: bool
) -> None:
    """Snapshot and revert rewrite the chain from before the anchor. Its transaction is then
    either gone (so the pipeline anchors again) or mined again in a later block, as a node
    does with the transactions of dropped blocks (so the pipeline adopts it)."""
    credentials = [make_credential(n, id_prefix="urn:reorg") for n in range(4)]
    ids = [a.public_id for a in store.accept(1, [
        NewCredential(credential_digest(c), new_salt(), canonicalize(c)) for c in credentials])]
    pipeline = _pipeline(world, store, max_size=100, max_age=0, reorg_check_every=0)
    before = world.chain.snapshot()
    world.chain.mine(2)  # so that the anchor lands at a height the new chain will reach again
    _run_until_anchored(pipeline)
    receipts = _receipts(world, store)
    old = receipts.receipt(ids[0])
    # About anchoring through a reorganisation: these credentials are anchored unsigned.
    trust = TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),), require_signature=False)
    assert _verified(world, credentials[0], old, trust).valid

    (batch,) = store.batches()
    world.chain.revert(before)
    world.chain.mine(6)
    if mined_again:
        world.tx(world.issuer).transact(world.anchor.functions.anchor(batch.root, batch.size))
    sent = world.chain.w3.eth.get_transaction_count(world.issuer.address)
    pipeline._watch_for_reorgs(1)  # the check at the start of every round
    reset = store.batch(batch.id)
    assert reset is not None
    assert reset.state is BatchState.SENT  # its transaction kept: a node may mine it again
    assert reset.block_number is None
    with pytest.raises(NotAnchoredError):
        receipts.receipt(ids[0])  # no receipt while it is not anchored again
    _run_until_anchored(pipeline)
    assert world.chain.w3.eth.get_transaction_count(world.issuer.address) == sent + (
        0 if mined_again else 1)
    new = receipts.receipt(ids[0])
    assert (new.anchor.block_number, new.anchor.block_hash) != (
        old.anchor.block_number, old.anchor.block_hash)
    assert _verified(world, credentials[0], new, trust).valid
    stale = _verified(world, credentials[0], old, trust)
    assert [c.name for c in stale.checks if c.status is CheckStatus.FAILED] == [
        "anchored_on_chain"]
    events = world.anchor.events.RootAnchored().get_logs(
        from_block=0, argument_filters={"entityId": world.issuer_id})
    assert [bytes(e["args"]["root"]) for e in events].count(batch.root) == 1


def _verified(world: World, credential: dict[str, object], receipt: Receipt,
              trust: TrustConfig) -> VerificationReport:
    return verify(credential, receipt, trust=trust, reader=JsonRpcChainReader(world.chain.w3))



def test_a_batch_of_1x_leaves_is_never_sent_to_the_2x_anchor(
    world: World, store: Store, tmp_path: Path
) -> None:
    """A batch built before migration 0004 (its credentials have no status position, its
    leaves are 1.x leaves) that comes back to be sent, lost or reorganised away after the
    upgrade, waits blocked with the reason instead of being anchored where its receipts could
    be neither served nor verified."""
    _accept(store, 2)
    pipeline = _pipeline(world, store, max_size=100, max_age=0)
    (batch,) = pipeline.cut_now(1)
    with sqlite3.connect(tmp_path / "service.sqlite3") as db:  # as migration 0004 leaves it
        db.execute("UPDATE credentials SET status_list = NULL, status_index = NULL "
                   "WHERE batch_id = ?", (batch.id,))
    sent = world.chain.w3.eth.get_transaction_count(world.issuer.address)
    pipeline.run_once()
    waiting = store.batch(batch.id)
    assert waiting is not None
    assert waiting.state is BatchState.BUILT
    assert "built on CredentialAnchor 1.x leaves" in (pipeline.blocked_reason(waiting) or "")
    assert world.chain.w3.eth.get_transaction_count(world.issuer.address) == sent
