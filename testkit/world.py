"""The deployed world the tests and the benchmark scripts share: a registry and an anchor on a
local chain (in-process or anvil), with a cast of callers."""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from anchor_service.chain import Deployment, Transactor, add_signing_key, deploy
from anchor_service.chain import accredit as register
from anchor_service.keystore import signing_key_path, write_signing_key
from anchor_service.store import Issuer, Store
from localchain import LocalChain
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import (
    ALL_SCOPES,
    CredentialCheck,
    Kind,
    Status,
    read,
    signing_key_id,
)
from verifier.multikey import Multikey
from verifier.receipt import Receipt

__all__ = ["World", "build_world", "check_on_chain", "events", "give_signing_key",
           "issuer_signing_key", "register_issuer_signing_key", "serve_issuer"]


@dataclass
class World:
    """A deployed registry and anchor, and who is who."""

    chain: LocalChain
    deployment: Deployment
    registry: Contract
    anchor: Contract
    admin: LocalAccount  # root administrator (and top administrator)
    body: LocalAccount  # key of accreditation body `body_id`
    issuer: LocalAccount  # key of trusted issuer `issuer_id`, under the body
    issuer_key2: LocalAccount  # second key of the same issuer
    revoked: LocalAccount  # key of an issuer whose entity is revoked
    stranger: LocalAccount  # holds no role and no key
    body_id: int
    issuer_id: int
    revoked_id: int

    def tx(self, who: LocalAccount) -> Transactor:
        return Transactor(self.chain.w3, who)

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def accounts_by_role(self) -> dict[str, LocalAccount]:
        return {
            "root admin": self.admin,
            "body": self.body,
            "issuer": self.issuer,
            "revoked issuer": self.revoked,
            "stranger": self.stranger,
        }


def build_world(chain: LocalChain) -> World:
    admin, body, issuer, issuer_key2, revoked, stranger = chain.accounts[:6]
    deployment = deploy(Transactor(chain.w3, admin), admin_transfer_delay=3600)
    registry, anchor = deployment.contracts(chain.w3)
    as_admin, as_body = Transactor(chain.w3, admin), Transactor(chain.w3, body)

    def accredit(tx: Transactor, parent: int, kind: Kind, did: str) -> int:
        return register(tx, registry, parent=parent, kind=kind, did=did, scope=ALL_SCOPES,
                        metadata_uri=f"https://example.org/{did}", metadata_hash=b"\x11" * 32)

    body_id = accredit(as_admin, 0, Kind.ACCREDITATION_BODY, "did:web:body.example")
    as_admin.transact(registry.functions.addKey(body_id, body.address, 0, 0))
    issuer_id = accredit(as_body, body_id, Kind.TRUSTED_ISSUER, "did:web:uni-a.example")
    as_body.transact(registry.functions.addKey(issuer_id, issuer.address, 0, 0))
    as_body.transact(registry.functions.addKey(issuer_id, issuer_key2.address, 0, 0))
    revoked_id = accredit(as_body, body_id, Kind.TRUSTED_ISSUER, "did:web:revoked.example")
    as_body.transact(registry.functions.addKey(revoked_id, revoked.address, 0, 0))
    as_body.transact(registry.functions.setStatus(revoked_id, Status.REVOKED))
    return World(
        chain,
        deployment,
        registry,
        anchor,
        admin,
        body,
        issuer,
        issuer_key2,
        revoked,
        stranger,
        body_id,
        issuer_id,
        revoked_id,
    )


def events(contract: Contract, name: str, receipt: Any) -> list[Any]:
    return list(getattr(contract.events, name)().process_receipt(receipt))


def check_on_chain(world: World, receipt: Receipt) -> None:
    """The contract's own view of a receipt: the credential is in an anchored batch of the
    world's issuer, who was trusted when it anchored, and the status read is the one at the
    receipt's status list and index, which its leaf input binds (``checkCredential``, one
    call)."""
    check = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address,
        receipt.leaf_input,
        receipt.leaf_index,
        list(receipt.audit_path),
        receipt.root,
    ))
    assert check.included is True
    assert check.status.anchored is True
    assert check.status.entity_id == world.issuer_id
    assert check.status.issuer_trusted_at_anchoring is True
    assert (check.status.status_list, check.status.status_list_index) == (
        receipt.status_list, receipt.status_list_index)


def serve_issuer(store: Store, world: World, name: str = "uni-a", *,
                 revoked: bool = False, keystore_dir: Path | None = None,
                 password: str = "pw") -> Issuer:  # noqa: S107 - the tests' keystore password
    """Serve one of the world's issuers from ``store``: its trusted issuer, or with ``revoked``
    the issuer whose entity is revoked (the service can read for it, not anchor). With
    ``keystore_dir``, the trusted issuer also gets its signing key (:func:`give_signing_key`):
    the service signs its credentials."""
    entity_id, key, did = ((world.revoked_id, world.revoked, "did:web:revoked.example")
                           if revoked else
                           (world.issuer_id, world.issuer, "did:web:uni-a.example"))
    issuer = store.add_issuer(name, entity_id=entity_id, key_address=key.address, did=did)
    if keystore_dir is not None and not revoked:
        issuer = give_signing_key(store, world, issuer, keystore_dir, password)
    return issuer


def issuer_signing_key(did: str = "did:web:uni-a.example") -> ed25519.Ed25519PrivateKey:
    """The test signing key (Ed25519) of the issuer ``did``: derived from the DID (as
    tests/verifier/wallet.py derives it), so every test signs for one issuer with one key."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        sha256(b"signing key " + did.encode()).digest())


def register_issuer_signing_key(world: World) -> Multikey:
    """Register the world's issuer's test signing key on chain for its entity (by the
    accreditation body), unless it is registered already; its public key."""
    key = Multikey.from_public_key(issuer_signing_key().public_key())
    reader = JsonRpcChainReader(world.chain.w3)
    if not reader.signing_key(world.registry.address, signing_key_id(key)).known:
        add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id,
                        key=key)
    return key


def give_signing_key(store: Store, world: World, issuer: Issuer, keystore_dir: Path,
                     password: str = "pw") -> Issuer:  # noqa: S107 - the tests' password
    """Give the served ``issuer`` (the world's trusted issuer) its test signing key: registered
    on chain, written encrypted to ``keystore_dir`` (with a cheap scrypt: tests start services
    over and over), and recorded in ``store`` as its current key (eddsa-jcs-2022)."""
    key = register_issuer_signing_key(world)
    path = signing_key_path(keystore_dir, signing_key_id(key))
    if not path.exists():
        write_signing_key(path, issuer_signing_key(), password, scrypt_cost=2**4)
    return store.set_signing_key(issuer.id, key.multibase)
