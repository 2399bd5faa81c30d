"""Wallets for the verify-credential tests: genuine bundles anchored on a test chain, with a
trust file beside them, and the command that verifies them.

Credentials are signed by their issuer as the service signs them (``eddsa-jcs-2022``, the
verification method ``<issuer DID>#<publicKeyMultibase>``) before they are anchored, and the
world's issuer's signing key is registered on chain, so that a genuine bundle passes every
check, the signature checks included."""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account.signers.local import LocalAccount

from anchor_service.chain import add_signing_key
from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.store import BatchState, NewCredential, StatusPosition, Store
from testkit.world import World, issuer_signing_key
from verifier import bitstring
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import StatusPurpose, signing_key_id
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.data_integrity import Suite, add_proof
from verifier.did import verification_method_id
from verifier.multikey import Multikey, PrivateKey
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment

__all__ = ["SIGNED_AT", "anchored_bundles", "make_wallet", "register_signing_key", "sign",
           "signing_key_of", "trust_of", "verify_command", "with_status_entries"]

#: The proofs' ``created`` time: fixed, so that a credential signed twice is the same document.
SIGNED_AT = "2026-01-01T00:00:00Z"


def signing_key_of(did: str) -> ed25519.Ed25519PrivateKey:
    """The test signing key (Ed25519) of the issuer ``did``: derived from the DID, so every
    test signs for one issuer with one key (the key the test service signs with for the
    world's issuer, :func:`testkit.world.issuer_signing_key`)."""
    return issuer_signing_key(did)


def _issuer_did(credential: Mapping[str, Any]) -> str:
    issuer = credential["issuer"]
    return str(issuer if isinstance(issuer, str) else issuer["id"])


def sign(credential: Mapping[str, Any], *, private_key: PrivateKey | None = None,
         did: str | None = None, suite: Suite = "eddsa-jcs-2022") -> dict[str, Any]:
    """``credential`` with a ``DataIntegrityProof`` made by ``private_key`` (default: the
    issuer's test key), its verification method ``<did>#<publicKeyMultibase>`` (default: the
    credential's issuer)."""
    did = did or _issuer_did(credential)
    key = private_key or signing_key_of(did)
    vm = verification_method_id(did, Multikey.from_public_key(key.public_key()))
    # A deep copy: add_proof copies only the top level, and callers tamper with the result.
    return add_proof(copy.deepcopy(dict(credential)), suite=suite, private_key=key,
                     verification_method=vm, created=SIGNED_AT)


def register_signing_key(world: World, private_key: PrivateKey | None = None, *,
                         entity_id: int | None = None) -> bytes:
    """Register the public key of ``private_key`` (default: the test key of the world's
    issuer, ``did:web:uni-a.example``) for ``entity_id`` (default: the world's issuer), by the
    accreditation body, unless it is registered already. Its keyId."""
    key = Multikey.from_public_key(
        (private_key or signing_key_of("did:web:uni-a.example")).public_key())
    key_id = signing_key_id(key)
    reader = JsonRpcChainReader(world.chain.w3)
    if not reader.signing_key(world.registry.address, key_id).known:
        add_signing_key(world.tx(world.body), world.registry,
                        entity_id=world.issuer_id if entity_id is None else entity_id, key=key)
    return key_id


def with_status_entries(credential: Mapping[str, Any], position: StatusPosition, *,
                        did: str = "did:web:uni-a.example",
                        issuer_name: str = "uni-a") -> dict[str, Any]:
    """``credential`` with ``credentialStatus``: the two ``BitstringStatusListEntry`` entries of
    ``position`` in the lists the service publishes for issuer ``issuer_name`` (``did``)."""
    urls = {purpose: bitstring.status_list_url(did, issuer_name, position.list, purpose)
            for purpose in StatusPurpose}
    return {**credential, "credentialStatus": bitstring.status_entries(urls, position.index)}


def anchored_bundles(world: World, store: Store, key: LocalAccount,
                     credentials: list[dict[str, Any]], *, signed: bool = True,
                     status_entries: bool = False,
                     positions: Sequence[StatusPosition] | None = None) -> list[Bundle]:
    """The credentials accepted for the store's issuer 1 and anchored by ``key`` in one batch
    (by the real pipeline, on ``world``'s chain): their bundles, in order. With ``signed``
    (the default), each credential without a proof is first signed with its issuer's test key
    (:func:`sign`) and the world's issuer's signing key is registered. With
    ``status_entries``, each credential gets its status position first, and its
    ``credentialStatus`` entries naming it (:func:`with_status_entries`) before it is signed,
    as the service does. ``positions`` are the status positions to anchor the credentials at
    (by default the store allocates them)."""
    if positions is None and status_entries:
        positions = store.allocate_status(1, len(credentials))
    placed: list[StatusPosition | None] = ([None] * len(credentials) if positions is None
                                           else list(positions))
    if status_entries and positions is not None:
        credentials = [with_status_entries(c, p)
                       for c, p in zip(credentials, positions, strict=True)]
    if signed:
        register_signing_key(world)
        credentials = [c if "proof" in c else sign(c) for c in credentials]
    accepted = store.accept(1, [NewCredential(credential_digest(c), new_salt(), canonicalize(c),
                                              status=position)
                                for c, position in zip(credentials, placed, strict=True)])
    clock = _SteppedClock()
    pipeline = Pipeline(store, world.chain.w3, world.deployment, {1: key},
                        BatchPolicy(max_size=100, max_age=0), clock=clock)
    # Two rounds anchor a batch (send, then confirm). A transient failure of the node (a busy
    # machine) makes the pipeline back off for a while: the clock steps past that, a few
    # rounds at most.
    for _ in range(_ROUNDS):
        pipeline.run_once()
        if {b.state for b in store.batches()} == {BatchState.ANCHORED}:
            break
        clock.step(_BACKOFF_STEP)
    unfinished = [(b.id, b.state.value, pipeline.blocked_reason(b)) for b in store.batches()
                  if b.state is not BatchState.ANCHORED]
    assert not unfinished, unfinished
    receipts = Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)
    return [receipts.bundle(a.public_id) for a in accepted]


# Rounds of the pipeline tried, and how far its clock steps between them: past its longest
# backoff after a failed step (60 s).
_ROUNDS = 6
_BACKOFF_STEP = 61.0


class _SteppedClock:
    """Wall-clock time, plus the steps the caller has taken forward."""

    def __init__(self) -> None:
        self._offset = 0.0

    def __call__(self) -> float:
        return time.time() + self._offset

    def step(self, seconds: float) -> None:
        self._offset += seconds


def trust_of(world: World) -> TrustConfig:
    """A trust configuration of ``world``'s deployment."""
    return TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),))


def make_wallet(world: World, folder: Path, credentials: dict[str, dict[str, Any]], *,
                signed: bool = True) -> Path:
    """``folder`` with a genuine bundle ``<name>.json`` of each credential (signed unless
    ``signed`` is false, and anchored by ``world``'s issuer), and a trust file
    ``<folder>-trust.json`` beside it."""
    store = Store(folder.parent / f"{folder.name}.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    bundles = anchored_bundles(world, store, world.issuer, list(credentials.values()),
                               signed=signed)
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
