"""Wallets for the verify-credential tests: genuine bundles anchored on a test chain, with a
trust file beside them, and the command that verifies them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.store import BatchState, NewCredential, Store
from testkit.world import World
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment

__all__ = ["anchored_bundles", "make_wallet", "trust_of", "verify_command"]


def anchored_bundles(world: World, store: Store, key: LocalAccount,
                     credentials: list[dict[str, Any]]) -> list[Bundle]:
    """The credentials accepted for the store's issuer 1 and anchored by ``key`` in one batch
    (by the real pipeline, on ``world``'s chain): their bundles, in order."""
    accepted = store.accept(1, [NewCredential(credential_digest(c), new_salt(), canonicalize(c))
                                for c in credentials])
    pipeline = Pipeline(store, world.chain.w3, world.deployment, {1: key},
                        BatchPolicy(max_size=100, max_age=0))
    pipeline.run_once()
    pipeline.run_once()
    assert [b.state for b in store.batches()] == [BatchState.ANCHORED]
    receipts = Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)
    return [receipts.bundle(a.public_id) for a in accepted]


def trust_of(world: World) -> TrustConfig:
    """A trust configuration of ``world``'s deployment."""
    return TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),))


def make_wallet(world: World, folder: Path, credentials: dict[str, dict[str, Any]]) -> Path:
    """``folder`` with a genuine bundle ``<name>.json`` of each credential (anchored by
    ``world``'s issuer), and a trust file ``<folder>-trust.json`` beside it."""
    store = Store(folder.parent / f"{folder.name}.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    bundles = anchored_bundles(world, store, world.issuer, list(credentials.values()))
    for name, bundle in zip(credentials, bundles, strict=True):
        (folder / f"{name}.json").write_text(bundle.to_json())
    store.close()
    trust = folder.parent / f"{folder.name}-trust.json"
    trust.write_text(trust_of(world).model_dump_json(by_alias=True))
    return folder


def verify_command(world: World, wallet: Path, *args: str) -> list[str]:
    """``verify-credential ARGS`` with the wallet's trust file, against ``world``'s node."""
    trust = wallet.parent / f"{wallet.name}-trust.json"
    return [sys.executable, "-m", "verifier.cli", *args, "--trust", str(trust),
            "--rpc-url", str(world.chain.rpc_url)]
