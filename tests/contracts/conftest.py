"""Fixtures for the contract tests: a deployed registry and anchor, with a cast of callers, on
both the in-process chain and a real anvil node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from anchor_service.chain import Deployment, Transactor, deploy
from anchor_service.chain import accredit as register
from localchain import AnvilChain, InProcessChain, LocalChain
from verifier.receipt import Receipt

BODY, ISSUER = 1, 2  # IIssuerRegistry.Kind
ACTIVE, SUSPENDED, REVOKED = 1, 2, 3  # IIssuerRegistry.Status
ALL_SCOPES = 0b111


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


def _start_chain(kind: str) -> LocalChain:
    if kind == "anvil":
        return AnvilChain.start()
    return InProcessChain.start()


@pytest.fixture(scope="module", params=["inprocess", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[LocalChain]:
    local = _start_chain(str(request.param))
    try:
        yield local
    finally:
        local.close()


def build_world(chain: LocalChain) -> World:
    admin, body, issuer, issuer_key2, revoked, stranger = chain.accounts[:6]
    deployment = deploy(Transactor(chain.w3, admin), admin_transfer_delay=3600)
    registry, anchor = deployment.contracts(chain.w3)
    as_admin, as_body = Transactor(chain.w3, admin), Transactor(chain.w3, body)

    def accredit(tx: Transactor, parent: int, kind: int, did: str) -> int:
        return register(tx, registry, parent=parent, kind=kind, did=did, scope=ALL_SCOPES,
                        metadata_uri=f"https://example.org/{did}", metadata_hash=b"\x11" * 32)

    body_id = accredit(as_admin, 0, BODY, "did:web:body.example")
    as_admin.transact(registry.functions.addKey(body_id, body.address, 0, 0))
    issuer_id = accredit(as_body, body_id, ISSUER, "did:web:uni-a.example")
    as_body.transact(registry.functions.addKey(issuer_id, issuer.address, 0, 0))
    as_body.transact(registry.functions.addKey(issuer_id, issuer_key2.address, 0, 0))
    revoked_id = accredit(as_body, body_id, ISSUER, "did:web:revoked.example")
    as_body.transact(registry.functions.addKey(revoked_id, revoked.address, 0, 0))
    as_body.transact(registry.functions.setStatus(revoked_id, REVOKED))
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


@pytest.fixture(scope="module")
def deployed(chain: LocalChain) -> World:
    return build_world(chain)


@pytest.fixture
def world(deployed: World) -> Iterator[World]:
    """The deployed world, reset after each test by a chain snapshot."""
    snapshot = deployed.chain.snapshot()
    try:
        yield deployed
    finally:
        deployed.chain.revert(snapshot)


def events(contract: Contract, name: str, receipt: Any) -> list[Any]:
    return list(getattr(contract.events, name)().process_receipt(receipt))


def check_on_chain(world: World, receipt: Receipt) -> None:
    """The contract's own view of a receipt: the credential is in an anchored batch of the
    world's issuer, who was trusted when it anchored (``checkCredential``, one call)."""
    status, included = world.anchor.functions.checkCredential(
        world.issuer.address,
        receipt.leaf_input,
        receipt.leaf_index,
        list(receipt.audit_path),
        receipt.root,
    ).call()
    assert included is True
    assert status[0] is True  # anchored
    assert status[1] == world.issuer_id
    assert status[7] is True  # issuer trusted at anchoring time
