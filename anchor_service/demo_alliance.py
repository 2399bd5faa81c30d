"""The local stack's demo alliance (``anchor-service stack``): one accreditation body, "Demo
Alliance", with three universities accredited under it, each a trusted issuer the stack serves
(its anchoring key in the keystore folder, its Ed25519 signing key registered on chain), and
recognitions among them, each signed by the recogniser's own anchoring key:

- university A recognises the alliance body for every kind: through the body, it recognises
  B's and C's credentials;
- university B recognises university C directly, for the formal kinds only;
- university C recognised university A, and withdrew it.

The keys are anvil's public development keys (never use them anywhere else). Seeding is
idempotent and completes an interrupted run: each step (an entity accredited, its anchoring
key added, its signing key registered, each recognition recorded and withdrawn) is checked on
chain on its own and done only when missing, so a restarted stack reuses what is there and
records nothing twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from eth_account.signers.local import LocalAccount

from anchor_service.chain import Deployment, Transactor, accredit, add_signing_key
from anchor_service.keystore import keystore_path, write_keystore
from anchor_service.recognitions import recognise, recognition, withdraw
from anchor_service.signing import SigningKeys
from anchor_service.store import Issuer, Store
from verifier.contract_types import (
    ALL_SCOPES,
    Kind,
    Recognition,
    Scope,
    scope_names,
    signing_key_id,
)
from verifier.multikey import Multikey
from verifier.times import iso_seconds

if TYPE_CHECKING:
    from web3.contract import Contract

__all__ = ["ALLIANCE_DID", "ALLIANCE_NAME", "UNIVERSITIES", "Alliance", "seed_alliance"]

log = logging.getLogger("anchor_service.stack")

ALLIANCE_NAME: Final = "Demo Alliance"
ALLIANCE_DID: Final = "did:web:demo-alliance.example"
#: The universities' names in the service (their DIDs are did:web:localhost:issuers:<name>,
#: served by the stack like the demo issuer's).
UNIVERSITIES: Final = ("alliance-uni-a", "alliance-uni-b", "alliance-uni-c")
# The keys are anvil's public development keys: their keystores protect nothing, so they are
# encrypted with a cheaper scrypt than the default (each is decrypted at every start).
_DEMO_SCRYPT_COST: Final = 2**14
_FORMAL: Final = Scope.FORMAL_DEGREE | Scope.FORMAL_NON_DEGREE


@dataclass(frozen=True, slots=True)
class SeededRecognition:
    """A recognition of the demo, as recorded, and what it shows."""

    recognition: Recognition
    recogniser: str
    subject: str
    shows: str


@dataclass
class Alliance:
    """What the stack seeded: the body's id, the universities as served, the recognitions."""

    body_id: int
    universities: list[Issuer] = field(default_factory=list)
    recognitions: list[SeededRecognition] = field(default_factory=list)

    def summary(self, tokens: dict[str, str]) -> str:
        """The lines of the stack's start-up summary about the alliance."""
        lines = [f"Demo alliance: {ALLIANCE_NAME}, body {self.body_id} ({ALLIANCE_DID})"]
        for uni in self.universities:
            lines.append(f"  {uni.name}: entity {uni.entity_id}  {uni.did}  "
                         f"issuer token {tokens.get(uni.name, '?')}")
        lines.append("  recognitions (anchor-service registry recognitions --as ENTITY):")
        for seeded in self.recognitions:
            item = seeded.recognition
            state = (f"withdrawn from {iso_seconds(item.withdrawn_at)}" if item.withdrawn_at
                     else "active")
            lines.append(f"    recognition {item.id}: {seeded.recogniser} (entity "
                         f"{item.recogniser_id}) recognises {seeded.subject} (entity "
                         f"{item.subject_id}) for {','.join(scope_names(item.scope))}: "
                         f"{seeded.shows}; {state}")
        return "\n".join(lines)

def did_of(name: str) -> str:
    """A university's DID: served by the stack at /issuers/<name>/did.json."""
    return f"did:web:localhost:issuers:{name}"


def seed_alliance(deployment: Deployment, admin: Transactor, *, body_key: LocalAccount,
                  university_keys: list[LocalAccount], store: Store, keys: Path,
                  password: str) -> Alliance:
    """Accredit the alliance and its universities, serve them, give them signing keys, and
    record the recognitions, each once (see the module's docstring): every step is checked on
    the chain of ``deployment`` and done only when missing there, so this completes a run that
    was interrupted, and keys the database already has are registered again on new
    contracts."""
    w3 = admin.w3
    registry, _ = deployment.contracts(w3)
    body = Transactor(w3, body_key)
    body_id = int(registry.functions.entityIdByDid(ALLIANCE_DID).call()) or accredit(
        admin, registry, parent=0, kind=Kind.ACCREDITATION_BODY, did=ALLIANCE_DID,
        scope=ALL_SCOPES, metadata_uri=f"data:,{ALLIANCE_NAME.replace(' ', '%20')}")
    if int(registry.functions.entityOfKey(body_key.address).call()) != body_id:
        admin.transact(registry.functions.addKey(body_id, body_key.address, 0, 0))
    # The body's key in the keystore folder too: the admin API records recognitions for it.
    _keystore(keys, body_key, password)
    alliance = Alliance(body_id)
    signing = SigningKeys(keys, password)
    for name, key in zip(UNIVERSITIES, university_keys, strict=True):
        did = did_of(name)
        entity_id = int(registry.functions.entityIdByDid(did).call())
        if not entity_id:
            entity_id = accredit(body, registry, parent=body_id, kind=Kind.TRUSTED_ISSUER,
                                 did=did, scope=ALL_SCOPES)
        # Checked apart from the accreditation: a run stopped between the two left an entity
        # without its key, whose recognitions and anchoring would all be refused.
        if int(registry.functions.entityOfKey(key.address).call()) != entity_id:
            body.transact(registry.functions.addKey(entity_id, key.address, 0, 0))
        _keystore(keys, key, password)
        issuer = store.add_issuer(name, entity_id=entity_id, key_address=key.address, did=did)
        alliance.universities.append(_signing_key(store, issuer, registry, body, signing))
    a, b, c = alliance.universities
    txs = {uni.entity_id: Transactor(w3, key)
           for uni, key in zip(alliance.universities, university_keys, strict=True)}
    plan = ((a.entity_id, a.name, body_id, ALLIANCE_NAME, ALL_SCOPES,
             f"through the body, {a.name} recognises {b.name} and {c.name}", False),
            (b.entity_id, b.name, c.entity_id, c.name, _FORMAL,
             "direct, formal kinds only", False),
            (c.entity_id, c.name, a.entity_id, a.name, ALL_SCOPES, "direct, withdrawn", True))
    for recogniser, recogniser_name, subject, subject_name, scope, shows, withdrawn in plan:
        ids = registry.functions.recognitionIdsBetween(recogniser, subject).call()
        if ids:
            item = recognition(registry, int(ids[0]))
        else:
            item = recognise(txs[recogniser], registry, recogniser=recogniser,
                             subject=subject, scope=scope)
        if withdrawn and not item.withdrawn:
            item = withdraw(txs[recogniser], registry, item.id)
        alliance.recognitions.append(SeededRecognition(item, recogniser_name, subject_name,
                                                       shows))
    log.info("demo alliance: body %s, universities %s", body_id,
             ", ".join(str(uni.entity_id) for uni in alliance.universities))
    return alliance


def _keystore(keys: Path, account: LocalAccount, password: str) -> None:
    if not keystore_path(keys, account.address).exists():
        write_keystore(keys, account, password, scrypt_cost=_DEMO_SCRYPT_COST)


def _signing_key(store: Store, issuer: Issuer, registry: Contract, body: Transactor,
                 signing: SigningKeys) -> Issuer:
    """The university's Ed25519 signing key, made once and registered by the alliance body
    whenever the registry does not have it among the entity's signing keys (new contracts, or
    a run stopped before the registration)."""
    if issuer.signing_key is not None:
        key_id = signing_key_id(Multikey.from_multibase(issuer.signing_key))
        registered = {bytes(known) for known in
                      registry.functions.entitySigningKeys(issuer.entity_id).call()}
        if key_id not in registered:
            add_signing_key(body, registry, entity_id=issuer.entity_id,
                            key=Multikey.from_multibase(issuer.signing_key))
        return issuer
    key, _path = signing.create("ed25519")
    add_signing_key(body, registry, entity_id=issuer.entity_id, key=key)
    return store.set_signing_key(issuer.id, key.multibase, "eddsa-jcs-2022")
