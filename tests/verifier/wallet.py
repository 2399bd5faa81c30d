"""Wallets for the verify-credential tests: genuine bundles anchored on a test chain, with a
trust file beside them, and the command that verifies them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.store import NewCredential, Store
from tests.contracts.conftest import World
from verifier.credential import canonicalize, credential_digest, new_salt

__all__ = ["make_wallet", "verify_command"]


def make_wallet(world: World, folder: Path, credentials: dict[str, dict[str, Any]]) -> Path:
    """``folder`` with a genuine bundle ``<name>.json`` of each credential (anchored by
    ``world``'s issuer), and a trust file ``<folder>-trust.json`` beside it."""
    store = Store(folder.parent / f"{folder.name}.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    accepted = store.accept(1, [NewCredential(credential_digest(c), new_salt(), canonicalize(c))
                                for c in credentials.values()])
    pipeline = Pipeline(store, world.chain.w3, world.deployment, {1: world.issuer},
                        BatchPolicy(max_size=10, max_age=0))
    pipeline.run_once()
    pipeline.run_once()
    receipts = Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)
    for name, a in zip(credentials, accepted, strict=True):
        (folder / f"{name}.json").write_text(receipts.bundle(a.public_id).to_json())
    store.close()
    (folder.parent / f"{folder.name}-trust.json").write_text(json.dumps({"deployments": [{
        "name": "local", "chainId": world.chain.chain_id, "anchor": world.anchor.address,
        "registry": world.registry.address}]}))
    return folder


def verify_command(world: World, wallet: Path, *args: str) -> list[str]:
    """``verify-credential ARGS`` with the wallet's trust file, against ``world``'s node."""
    trust = wallet.parent / f"{wallet.name}-trust.json"
    return [sys.executable, "-m", "verifier.cli", *args, "--trust", str(trust),
            "--rpc-url", str(world.chain.rpc_url)]
