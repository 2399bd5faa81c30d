"""An alliance of universities on a test chain, for the portfolio tests and benchmark: a body
("Demo Alliance") with universities under it, each a trusted issuer with its anchoring key and
its registered Ed25519 signing key; credentials signed and anchored by them (a real Merkle
tree, a real ``anchor`` transaction), recognitions recorded and withdrawn with the
recogniser's own anchoring key, and credentials revoked by their issuer."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor_service.chain import Transactor, add_signing_key
from anchor_service.chain import accredit as register
from localchain import send_transaction
from testkit.world import World, issuer_signing_key
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import (
    ALL_SCOPES,
    Kind,
    Scope,
    encode_status_indices,
    signing_key_id,
)
from verifier.credential import credential_digest, leaf_input, new_salt
from verifier.data_integrity import add_proof
from verifier.did import verification_method_id
from verifier.merkle import MerkleTree
from verifier.multikey import Multikey
from verifier.portfolio import (
    PortfolioEntry,
    PortfolioReport,
    entries_from_bundles,
    verify_portfolio,
)
from verifier.receipt import Anchor, Bundle, Receipt
from verifier.trust import TrustConfig, TrustedDeployment

__all__ = ["FD", "FND", "NF", "SCHEMA", "VC_V2", "Alliance", "Institution", "build_alliance",
           "ects_credential", "entries_of", "reverted", "university", "verify_bundles"]

VC_V2 = "https://www.w3.org/ns/credentials/v2"
#: The JSON schema of the portfolio report.
SCHEMA = json.loads((Path(__file__).parents[2] / "verifier/schemas/portfolio-report-v1.schema.json")
                    .read_text("utf-8"))
NF, FD, FND = "non-formal", "formal-degree", "formal-non-degree"
_FUNDS = 10**21


@dataclass
class Institution:
    """An entity of the registry with its anchoring key and (for an issuer) signing key."""

    name: str
    did: str
    entity_id: int
    key: LocalAccount
    signing: ed25519.Ed25519PrivateKey
    next_index: int = 0


@dataclass
class Alliance:
    """The world, its alliance body and universities, and the world's own issuer (an
    institution outside the alliance)."""

    world: World
    body: Institution
    unis: dict[str, Institution]
    outsider: Institution
    transactors: dict[str, Transactor] = field(default_factory=dict)

    def tx(self, who: Institution) -> Transactor:
        return self.tx_of(who.key)

    def trust(self) -> TrustConfig:
        world = self.world
        return TrustConfig(deployments=(TrustedDeployment(
            chain_id=world.chain.chain_id, anchor=world.anchor.address,
            registry=world.registry.address),), require_signature=True)

    def issue(self, who: Institution, credentials: Sequence[Mapping[str, Any]]) -> list[Bundle]:
        """``credentials`` signed by ``who`` (its issuer set to ``who``'s DID) and anchored in
        one batch by its anchoring key: their bundles, in order."""
        signed = []
        for credential in credentials:
            document = copy.deepcopy(dict(credential))
            document["issuer"] = {"id": who.did, "name": who.name}
            vm = verification_method_id(who.did, Multikey.from_public_key(
                who.signing.public_key()))
            signed.append(add_proof(document, suite="eddsa-jcs-2022", private_key=who.signing,
                                    verification_method=vm, created="2026-01-01T00:00:00Z"))
        salts = [new_salt() for _ in signed]
        digests = [credential_digest(c) for c in signed]
        indices = list(range(who.next_index, who.next_index + len(signed)))
        who.next_index += len(signed)
        leaves = [leaf_input(salt, digest, 0, index)
                  for salt, digest, index in zip(salts, digests, indices, strict=True)]
        tree = MerkleTree(leaves)
        root = tree.root
        world = self.world
        mined = self.tx(who).transact(world.anchor.functions.anchor(root, len(leaves)))
        anchor = Anchor(chain_id=world.chain.chain_id,
                        contract=bytes.fromhex(world.anchor.address[2:]),
                        transaction_hash=bytes(mined["transactionHash"]),
                        block_number=int(mined["blockNumber"]),
                        block_hash=bytes(mined["blockHash"]),
                        anchoring_key=bytes.fromhex(who.key.address[2:]))
        return [Bundle.create(credential, Receipt.create(
            credential_digest=digest, salt=salt, status_list=0, status_list_index=index,
            leaf_index=number, tree_size=len(leaves), audit_path=tree.inclusion_proof(number),
            root=root, anchor=anchor))
            for number, (credential, salt, digest, index)
            in enumerate(zip(signed, salts, digests, indices, strict=True))]

    def revoke(self, who: Institution, bundle: Bundle) -> None:
        receipt = bundle.receipt
        self.tx(who).transact(self.world.anchor.functions.revoke(
            who.entity_id, receipt.status_list, encode_status_indices([receipt.status_list_index]),
            1))

    def recognise(self, recogniser: Institution, subject: Institution, scope: Scope = ALL_SCOPES,
                  valid_from: int = 0, valid_until: int = 0, *,
                  key: LocalAccount | None = None) -> int:
        """Record that ``recogniser`` recognises ``subject`` (an issuer, or a body and every
        entity below it) for ``scope``, with its anchoring key or ``key`` (another of its
        keys): the recognition's id."""
        registry = self.world.registry
        sender = self.tx(recogniser) if key is None else self.tx_of(key)
        mined = sender.transact(registry.functions.recognise(
            recogniser.entity_id, subject.entity_id, int(scope), valid_from, valid_until))
        (event,) = registry.events.RecognitionRecorded().process_receipt(mined)
        return int(event["args"]["id"])

    def tx_of(self, key: LocalAccount) -> Transactor:
        found = self.transactors.get(key.address)
        if found is None:
            found = self.transactors[key.address] = Transactor(self.world.chain.w3, key)
        return found

    def add_key(self, who: Institution) -> LocalAccount:
        """A new funded anchoring key of ``who``, added by its accreditor (the alliance body
        for a university)."""
        key = _funded(self.world)
        self.tx(self.body).transact(self.world.registry.functions.addKey(
            who.entity_id, key.address, 0, 0))
        return key

    def revoke_key(self, key: LocalAccount, effective_from: int = 0) -> None:
        """The alliance body revokes ``key`` (of a university) from ``effective_from``
        (back-dated; 0: from the next second)."""
        self.tx(self.body).transact(self.world.registry.functions.revokeKey(
            key.address, effective_from))

    def add_university(self, name: str, scope: Scope) -> Institution:
        """Another trusted issuer under the alliance body, accredited for ``scope`` only,
        DID ``did:web:{name}.example`` (not added to ``unis``: a test's chain snapshot
        removes it again)."""
        return _entity(self.world, self.tx(self.body), self.body.entity_id,
                       Kind.TRUSTED_ISSUER, name=name, did=f"did:web:{name}.example",
                       scope=scope)

    def withdraw(self, recogniser: Institution, recognition_id: int) -> int:
        """Withdraw a recognition; the block time of the withdrawal."""
        mined = self.tx(recogniser).transact(
            self.world.registry.functions.withdrawRecognition(recognition_id))
        return int(self.world.chain.w3.eth.get_block(mined["blockNumber"])["timestamp"])


def _funded(world: World) -> LocalAccount:
    account: LocalAccount = Account.create()
    send_transaction(world.chain, world.admin, {"to": account.address, "value": _FUNDS})
    return account


def _entity(world: World, by: Transactor, parent: int, kind: Kind, *, name: str,
            did: str, scope: Scope = ALL_SCOPES) -> Institution:
    registry = world.registry
    entity_id = register(by, registry, parent=parent, kind=kind, did=did, scope=scope,
                         metadata_uri=f"https://{name}.example/meta.json",
                         metadata_hash=b"\x22" * 32)
    key = _funded(world)
    by.transact(registry.functions.addKey(entity_id, key.address, 0, 0))
    signing = issuer_signing_key(did)
    if kind is Kind.TRUSTED_ISSUER:
        add_signing_key(by, registry, entity_id=entity_id,
                        key=Multikey.from_public_key(signing.public_key()))
    return Institution(name, did, entity_id, key, signing)


def build_alliance(world: World, universities: int = 3, *, prefix: str = "") -> Alliance:
    """A body ``did:web:{prefix}alliance.example`` under the root, with ``universities``
    trusted issuers ``did:web:{prefix}u1.example``... under it (named u1, u2...), and the
    world's issuer ``did:web:uni-a.example`` (under the world's body) as the outsider."""
    admin = Transactor(world.chain.w3, world.admin)
    body = _entity(world, admin, 0, Kind.ACCREDITATION_BODY, name=f"{prefix}alliance",
                   did=f"did:web:{prefix}alliance.example")
    as_body = Transactor(world.chain.w3, body.key)
    unis = {f"u{n}": _entity(world, as_body, body.entity_id, Kind.TRUSTED_ISSUER,
                             name=f"{prefix}u{n}", did=f"did:web:{prefix}u{n}.example")
            for n in range(1, universities + 1)}
    outsider_did = "did:web:uni-a.example"
    signing = issuer_signing_key(outsider_did)
    key = Multikey.from_public_key(signing.public_key())
    if not JsonRpcChainReader(world.chain.w3).signing_key(world.registry.address,
                                                          signing_key_id(key)).known:
        add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id, key=key)
    outsider = Institution("uni-a", outsider_did, world.issuer_id, world.issuer, signing,
                           next_index=50_000)
    return Alliance(world, body, unis, outsider)


def ects_credential(number: int, ects: str | float | None, kind: str | None, *,
                    achievement: str | None = None,
                    subject: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A credential in the project's plain form: ``credentialSubject.ectsCredits`` and
    ``learningScope`` (left out when None), and ``credentialSubject.achievement``."""
    credential_subject: dict[str, Any] = {"id": "did:example:learner"}
    if ects is not None:
        credential_subject["ectsCredits"] = ects
    if achievement is not None:
        credential_subject["achievement"] = achievement
    credential_subject.update(subject or {})
    credential: dict[str, Any] = {
        "@context": [VC_V2], "type": ["VerifiableCredential"],
        "id": f"urn:uuid:00000000-0000-4000-8000-{number:012d}",
        "issuer": "did:web:placeholder.example",
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": credential_subject}
    if kind is not None:
        credential["learningScope"] = kind
    return credential


def reverted(built: Alliance) -> Iterator[Alliance]:
    """``built``, its chain reverted to where it is now once the caller is done (the body of a
    fixture that resets the chain after each test)."""
    snapshot = built.world.chain.snapshot()
    try:
        yield built
    finally:
        built.world.chain.revert(snapshot)


def entries_of(bundles: Sequence[Bundle]) -> list[PortfolioEntry]:
    """The portfolio entries of ``bundles``, read as files ``b0.json``, ``b1.json``..."""
    return entries_from_bundles([(f"b{n}.json", b.to_json()) for n, b in enumerate(bundles)])


def verify_bundles(alliance: Alliance, bundles: Sequence[Bundle],
                   **options: Any) -> PortfolioReport:
    """The portfolio report of ``bundles``, trusting the alliance's deployment and reading its
    chain; ``options`` as :func:`verifier.portfolio.verify_portfolio` takes them."""
    return verify_portfolio(entries_of(bundles), trust=alliance.trust(),
                            reader=JsonRpcChainReader(alliance.world.chain.w3), **options)


def university(alliance: Alliance, name: str) -> Institution:
    """The alliance's university ``name`` (u1, u2...)."""
    return alliance.unis[name]
