"""CredentialAnchor: anchoring, EIP-712 replay protection, bitmap status, the one-call views,
gas targets, and Solidity's RFC 9162 check agreeing with verifier.merkle."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.world import World, events
from tests.contracts.helpers import outcome, random_root, sign_anchor
from verifier.contract_types import AnchorInfo, CredentialCheck, Kind, Scope, TrustCode, read
from verifier.errors import ProofError
from verifier.merkle import MerkleTree, verify_inclusion

ANCHOR_GAS_LIMIT = 60_000
EXTRA_REVOKE_GAS_LIMIT = 5_000


def test_anchor_records_key_entity_time_block_and_size(world: World) -> None:
    root = random_root()
    receipt = world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 1_000_000))
    info = read(AnchorInfo, world.anchor.functions.anchorOf(world.issuer.address, root))
    block = world.chain.w3.eth.get_block(receipt["blockNumber"])
    assert info == AnchorInfo(
        anchored=True,
        entity_id=world.issuer_id,
        key=world.issuer.address,
        anchored_at=block["timestamp"],
        block_number=receipt["blockNumber"],
        tree_size=1_000_000,
    )
    (event,) = events(world.anchor, "RootAnchored", receipt)
    assert event["args"]["root"] == root
    assert event["args"]["entityId"] == world.issuer_id
    assert event["args"]["key"] == world.issuer.address
    assert event["args"]["treeSize"] == 1_000_000
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(root, 5))
        == "RootAlreadyAnchored"
    )
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(b"\0" * 32, 5)) == "ZeroRoot"
    )
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 0))
        == "InvalidTreeSize"
    )
    never = random_root()
    unanchored = read(AnchorInfo, world.anchor.functions.anchorOf(world.issuer.address, never))
    assert unanchored.anchored is False


@pytest.mark.parametrize("tree_size", [1, 1_000, 2**53 - 1])
def test_one_anchor_costs_at_most_60000_gas_whatever_the_size(world: World, tree_size: int) -> None:
    receipt = world.tx(world.issuer).transact(
        world.anchor.functions.anchor(random_root(), tree_size)
    )
    assert receipt["gasUsed"] <= ANCHOR_GAS_LIMIT, receipt["gasUsed"]


def test_bulk_revoke_costs_under_5000_per_extra_credential(world: World) -> None:
    issuer = world.tx(world.issuer)
    used = {}
    for count in (1, 10, 100):
        root = random_root()
        issuer.transact(world.anchor.functions.anchor(root, 1000))
        receipt = issuer.transact(
            world.anchor.functions.revoke(world.issuer_id, root, list(range(count)), 1)
        )
        used[count] = receipt["gasUsed"]
    per_extra = (used[100] - used[1]) / 99
    assert per_extra <= EXTRA_REVOKE_GAS_LIMIT, used


def test_signed_anchor_is_bound_to_nonce_deadline_chain_and_contract(world: World) -> None:
    anchor, issuer = world.anchor, world.issuer
    relayer = world.tx(world.stranger)
    root = random_root()
    deadline = world.now() + 3600
    nonce = anchor.functions.nonces(issuer.address).call()
    good = sign_anchor(anchor, issuer, root, tree_size=9, nonce=nonce, deadline=deadline)

    def submit(
        signature: bytes, *, root_: bytes = root, nonce_: int = nonce, deadline_: int = deadline
    ) -> str:
        return outcome(
            relayer,
            anchor.functions.anchorWithSignature(
                root_, 9, issuer.address, nonce_, deadline_, signature
            ),
        )

    other_chain = sign_anchor(
        anchor, issuer, root, tree_size=9, nonce=nonce, deadline=deadline, chain_id=1
    )
    other_contract = sign_anchor(
        anchor,
        issuer,
        root,
        tree_size=9,
        nonce=nonce,
        deadline=deadline,
        verifying_contract=world.registry.address,
    )
    assert submit(other_chain) == "InvalidSignature"
    assert submit(other_contract) == "InvalidSignature"
    assert submit(good, nonce_=nonce + 1) == "InvalidSignature"
    assert submit(good, deadline_=deadline + 1) == "InvalidSignature"
    assert submit(good) == "ok"
    # Replaying the same signature fails, for the root and for the nonce.
    assert submit(good) in {"RootAlreadyAnchored", "InvalidAccountNonce"}
    again = sign_anchor(anchor, issuer, random_root(), tree_size=9, nonce=nonce, deadline=deadline)
    assert (
        outcome(
            relayer,
            anchor.functions.anchorWithSignature(
                random_root(), 9, issuer.address, nonce, deadline, again
            ),
        )
        == "InvalidSignature"
    )
    expired_root = random_root()
    past = world.now() - 1
    expired = sign_anchor(anchor, issuer, expired_root, tree_size=9, nonce=nonce + 1, deadline=past)
    assert (
        submit(expired, root_=expired_root, nonce_=nonce + 1, deadline_=past) == "SignatureExpired"
    )
    info = read(AnchorInfo, anchor.functions.anchorOf(issuer.address, root))
    assert info.key == issuer.address  # the signer is recorded, not the relayer


def test_revoke_suspend_reinstate_bitmaps(world: World) -> None:
    issuer = world.tx(world.issuer)
    root = random_root()
    issuer.transact(world.anchor.functions.anchor(root, 600))
    indices = [0, 5, 255, 256, 599]
    receipt = issuer.transact(world.anchor.functions.revoke(world.issuer_id, root, indices, 3))
    (event,) = events(world.anchor, "CredentialsRevoked", receipt)
    assert list(event["args"]["leafIndices"]) == indices
    assert event["args"]["reason"] == 3
    probe = [*indices, 1, 4, 6, 254, 257, 598]  # the revoked ones and their neighbours
    revoked = {
        i for i in probe if world.anchor.functions.isRevoked(world.issuer.address, root, i).call()
    }
    assert revoked == set(indices)

    issuer.transact(world.anchor.functions.suspend(world.issuer_id, root, [7, 300], 4))
    assert world.anchor.functions.isSuspended(world.issuer.address, root, 7).call() is True
    issuer.transact(world.anchor.functions.reinstate(world.issuer_id, root, [7], 0))
    assert world.anchor.functions.isSuspended(world.issuer.address, root, 7).call() is False
    assert world.anchor.functions.isSuspended(world.issuer.address, root, 300).call() is True
    # Reinstating never lifts a revocation.
    issuer.transact(world.anchor.functions.reinstate(world.issuer_id, root, [5], 0))
    assert world.anchor.functions.isRevoked(world.issuer.address, root, 5).call() is True

    assert (
        outcome(issuer, world.anchor.functions.revoke(world.issuer_id, root, [600], 1))
        == "LeafIndexOutOfRange"
    )
    assert (
        outcome(issuer, world.anchor.functions.revoke(world.issuer_id, root, [], 1))
        == "NoLeafIndices"
    )
    assert (
        outcome(issuer, world.anchor.functions.revoke(world.issuer_id, random_root(), [0], 1))
        == "UnknownRoot"
    )


def test_one_call_status_and_check_credential(world: World) -> None:
    leaves = [os.urandom(16) + os.urandom(32) for _ in range(5)]
    tree = MerkleTree(leaves)
    world.tx(world.issuer).transact(world.anchor.functions.anchor(tree.root, tree.size))
    world.tx(world.issuer).transact(
        world.anchor.functions.suspend(world.issuer_id, tree.root, [2], 1)
    )
    check = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address, leaves[2], 2, tree.inclusion_proof(2), tree.root
    ))
    assert check.included is True
    status = check.status
    assert status.anchored is True
    assert status.entity_id == world.issuer_id
    assert status.key == world.issuer.address
    assert status.tree_size == 5  # from the anchor
    assert status.index_in_tree is True
    assert status.issuer_trusted_at_anchoring is True
    assert status.trust_code is TrustCode.TRUSTED
    assert status.revoked is False
    assert status.suspended is True
    wrong = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address, leaves[3], 2, tree.inclusion_proof(2), tree.root
    ))
    assert wrong.included is False
    unanchored = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address, leaves[0], 0, tree.inclusion_proof(0), random_root()
    ))
    assert unanchored.status.anchored is False
    assert unanchored.included is False


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    leaves=st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=70, unique=True),
    data=st.data(),
)
def test_solidity_inclusion_agrees_with_python(
    deployed: World, leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, tree.size - 1))
    proof = tree.inclusion_proof(index)
    check = deployed.anchor.functions.verifyInclusion
    cases = [
        (leaves[index], index, tree.size, proof, tree.root),
        (leaves[index] + b"!", index, tree.size, proof, tree.root),
        (leaves[index], index + 1, tree.size, proof, tree.root),
        (leaves[index], index, tree.size + 1, proof, tree.root),
        (leaves[index], index, tree.size, proof[:-1], tree.root),
        (leaves[index], index, tree.size, [*proof, tree.root], tree.root),
        (leaves[index], index, tree.size, proof, bytes(32)),
    ]
    if proof:
        flipped = bytearray(proof[0])
        flipped[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        cases.append((leaves[index], index, tree.size, [bytes(flipped), *proof[1:]], tree.root))
    for leaf, i, size, path, root in cases:
        try:
            verify_inclusion(leaf, i, size, path, root)
            python = True
        except ProofError:
            python = False
        assert check(leaf, i, size, path, root).call() is python, (i, size, len(path))


def test_another_issuer_cannot_take_over_a_root(world: World) -> None:
    """Anchors belong to their issuer: a second issuer anchoring (or front-running) the same
    root makes its own, separate claim, and gains no power over the first issuer's batch."""
    other_key = world.chain.accounts[7]
    receipt = world.tx(world.body).transact(
        world.registry.functions.accredit(
            world.body_id, Kind.TRUSTED_ISSUER, "did:web:uni-b.example", Scope.FORMAL_DEGREE, "",
            b"\0" * 32
        )
    )
    other_id = int(events(world.registry, "EntityAccredited", receipt)[0]["args"]["id"])
    world.tx(world.body).transact(
        world.registry.functions.addKey(other_id, other_key.address, 0, 0)
    )

    root = random_root()
    world.tx(other_key).transact(world.anchor.functions.anchor(root, 7))  # front-runs
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 1000))
    mine = read(AnchorInfo, world.anchor.functions.anchorOf(world.issuer.address, root))
    theirs = read(AnchorInfo, world.anchor.functions.anchorOf(other_key.address, root))
    assert (mine.entity_id, mine.tree_size) == (world.issuer_id, 1000)
    assert (theirs.entity_id, theirs.tree_size) == (other_id, 7)
    # The same issuer still cannot anchor a root twice, with any of its keys.
    assert (
        outcome(world.tx(world.issuer_key2), world.anchor.functions.anchor(root, 5))
        == "RootAlreadyAnchored"
    )
    # The other issuer cannot touch the first issuer's credentials.
    assert (
        outcome(world.tx(other_key), world.anchor.functions.revoke(world.issuer_id, root, [0], 1))
        == "NotAuthorized"
    )
    world.tx(other_key).transact(world.anchor.functions.revoke(other_id, root, [0], 1))
    assert world.anchor.functions.isRevoked(other_key.address, root, 0).call() is True
    assert world.anchor.functions.isRevoked(world.issuer.address, root, 0).call() is False


def test_root_admin_can_lift_revocations_made_with_a_compromised_key(world: World) -> None:
    root = random_root()
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 10))
    world.tx(world.issuer).transact(world.anchor.functions.revoke(world.issuer_id, root, [1, 2], 6))
    receipt = world.tx(world.admin).transact(
        world.anchor.functions.liftRevocations(world.issuer_id, root, [1], 7)
    )
    (event,) = events(world.anchor, "RevocationsLifted", receipt)
    assert list(event["args"]["leafIndices"]) == [1]
    assert world.anchor.functions.isRevoked(world.issuer.address, root, 1).call() is False
    assert world.anchor.functions.isRevoked(world.issuer.address, root, 2).call() is True


def test_use_nonce_cancels_a_signed_request(world: World) -> None:
    anchor, issuer = world.anchor, world.issuer
    root = random_root()
    nonce = anchor.functions.nonces(issuer.address).call()
    deadline = world.now() + 3600
    signature = sign_anchor(anchor, issuer, root, tree_size=3, nonce=nonce, deadline=deadline)
    receipt = world.tx(issuer).transact(anchor.functions.useNonce())
    assert events(anchor, "NonceUsed", receipt)[0]["args"]["nonce"] == nonce
    assert (
        outcome(
            world.tx(world.stranger),
            anchor.functions.anchorWithSignature(
                root, 3, issuer.address, nonce, deadline, signature
            ),
        )
        == "InvalidAccountNonce"
    )
