"""CredentialAnchor: anchoring, EIP-712 replay protection, the one-call credential check with
the status position its leaf binds, gas targets, and Solidity's RFC 9162 check agreeing with
verifier.merkle. The status lists themselves: tests/contracts/test_status_lists.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.world import World, check_on_chain, events
from tests.contracts.helpers import credential_leaves, outcome, packed, random_root, sign_anchor
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    AnchorInfo,
    CredentialCheck,
    Kind,
    Scope,
    StatusBits,
    TrustCode,
    read,
)
from verifier.credential import leaf_input
from verifier.errors import ProofError
from verifier.merkle import MerkleTree, verify_inclusion
from verifier.receipt import Anchor, Receipt

ANCHOR_GAS_LIMIT = 60_000


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


def _check(world: World, leaf: bytes, index: int, proof: list[bytes], root: bytes, *,
           key: str | None = None) -> CredentialCheck:
    """checkCredential asked with ``key`` (the world's issuer's first key by default)."""
    return read(CredentialCheck, world.anchor.functions.checkCredential(
        key or world.issuer.address, leaf, index, proof, root))


def test_one_call_status_and_check_credential(world: World) -> None:
    """checkCredential reads the status at the list and index bound in the leaf input's last 8
    bytes, in the anchoring issuer's lists, beside the anchor, the trust and the inclusion."""
    positions = [(0, 0), (0, 1), (3, STATUS_LIST_SIZE - 1), (2**32 - 1, 7), (0, 256)]
    leaves = credential_leaves(positions)
    tree = MerkleTree(leaves)
    issuer = world.tx(world.issuer)
    issuer.transact(world.anchor.functions.anchor(tree.root, tree.size))
    issuer.transact(world.anchor.functions.suspend(world.issuer_id, 0, packed(1), 1))
    issuer.transact(world.anchor.functions.revoke(world.issuer_id, 3, packed(STATUS_LIST_SIZE - 1),
                                                  1))
    issuer.transact(world.anchor.functions.revoke(world.issuer_id, 2**32 - 1, packed(7), 1))
    expected = [(False, False), (False, True), (True, False), (True, False), (False, False)]
    for i, ((status_list, index), bits) in enumerate(zip(positions, expected, strict=True)):
        check = _check(world, leaves[i], i, tree.inclusion_proof(i),
                       tree.root)
        assert check.included is True
        status = check.status
        assert (status.status_list, status.status_list_index) == (status_list, index)
        assert (status.revoked, status.suspended) == bits
        assert status.anchored is True
        assert status.entity_id == world.issuer_id
        assert status.key == world.issuer.address
        assert status.tree_size == 5  # from the anchor
        assert status.index_in_tree is True
        assert status.issuer_trusted_at_anchoring is True
        assert status.trust_code is TrustCode.TRUSTED
    # Asked through the issuer's other key, the same answer: anchors and lists are the issuer's.
    other_key = _check(world, leaves[1], 1, tree.inclusion_proof(1), tree.root,
                       key=world.issuer_key2.address)
    assert (other_key.included, other_key.status.suspended) == (True, True)

    # A leaf pointed at another position (its last 8 bytes swapped for a revoked one's) reads
    # that position's bits but is not included: the proof binds the position.
    moved = leaves[0][:-8] + leaves[2][-8:]
    tampered = _check(world, moved, 0, tree.inclusion_proof(0), tree.root)
    assert tampered.status.revoked is True
    assert tampered.included is False
    wrong = _check(world, leaves[3], 2, tree.inclusion_proof(2), tree.root)
    assert wrong.included is False
    unanchored = _check(world, leaves[0], 0, tree.inclusion_proof(0),
                        random_root())
    assert unanchored.status.anchored is False
    assert (unanchored.status.revoked, unanchored.included) == (False, False)


def test_check_credential_with_a_leaf_that_binds_no_readable_position(world: World) -> None:
    """A leaf input shorter than 8 bytes binds no position, and one binding an index beyond a
    list binds none either: no status bits (entry 0 is not read in their place), no revert;
    the position read is reported as it stands (the verifier refuses such receipts)."""
    beyond = os.urandom(48) + (5).to_bytes(4, "big") + STATUS_LIST_SIZE.to_bytes(4, "big")
    leaves = [b"short", beyond, *credential_leaves([(0, 0)])]
    tree = MerkleTree(leaves)
    world.tx(world.issuer).transact(world.anchor.functions.anchor(tree.root, tree.size))
    world.tx(world.issuer).transact(
        world.anchor.functions.revoke(world.issuer_id, 0, packed(0), 1))
    world.tx(world.issuer).transact(
        world.anchor.functions.suspend(world.issuer_id, 5, packed(STATUS_LIST_SIZE - 1), 1))
    short = _check(world, leaves[0], 0, tree.inclusion_proof(0), tree.root)
    assert short.included is True
    assert (short.status.status_list, short.status.status_list_index) == (0, 0)
    assert (short.status.revoked, short.status.suspended) == (False, False)
    out = _check(world, leaves[1], 1, tree.inclusion_proof(1), tree.root)
    assert out.included is True
    assert (out.status.status_list, out.status.status_list_index) == (5, STATUS_LIST_SIZE)
    assert (out.status.revoked, out.status.suspended) == (False, False)
    real = _check(world, leaves[2], 2, tree.inclusion_proof(2), tree.root)
    assert (real.included, real.status.revoked) == (True, True)


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
    # The other issuer cannot touch the first issuer's status, and its own lists are its own.
    leaves = credential_leaves([(0, 0)])
    tree = MerkleTree(leaves)
    world.tx(world.issuer).transact(world.anchor.functions.anchor(tree.root, 1))
    assert (
        outcome(world.tx(other_key),
                world.anchor.functions.revoke(world.issuer_id, 0, packed(0), 1))
        == "NotAuthorized"
    )
    world.tx(other_key).transact(world.anchor.functions.revoke(other_id, 0, packed(0), 1))
    status = world.anchor.functions.statusOf
    assert read(StatusBits, status(other_id, 0, 0)).revoked is True
    assert read(StatusBits, status(world.issuer_id, 0, 0)).revoked is False
    mine_checked = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address, leaves[0], 0, [], tree.root))
    assert (mine_checked.included, mine_checked.status.revoked) == (True, False)


def test_root_admin_can_lift_revocations_made_with_a_compromised_key(world: World) -> None:
    world.tx(world.issuer).transact(
        world.anchor.functions.revoke(world.issuer_id, 2, packed(1, 2), 6))
    receipt = world.tx(world.admin).transact(
        world.anchor.functions.liftRevocations(world.issuer_id, 2, packed(1), 7)
    )
    (event,) = events(world.anchor, "RevocationsLifted", receipt)
    assert bytes(event["args"]["indices"]) == packed(1)
    status = world.anchor.functions.statusOf
    assert read(StatusBits, status(world.issuer_id, 2, 1)).revoked is False
    assert read(StatusBits, status(world.issuer_id, 2, 2)).revoked is True
    # The issuer cannot lift its own revocations.
    assert outcome(world.tx(world.issuer),
                   world.anchor.functions.liftRevocations(world.issuer_id, 2, packed(2), 7)) \
        == "NotAuthorized"


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


def test_a_v2_receipt_checks_on_chain_at_the_position_it_carries(world: World) -> None:
    """testkit's check_on_chain, as the service tests use it: a receipt v2 of a real anchored
    tree, its leaf input binding its status position, which checkCredential reads."""
    digests = [os.urandom(32) for _ in range(3)]
    salts = [os.urandom(16) for _ in range(3)]
    positions = [(0, 40), (0, 41), (1, 0)]
    leaves = [leaf_input(salt, digest, *position)
              for salt, digest, position in zip(salts, digests, positions, strict=True)]
    tree = MerkleTree(leaves)
    anchored = world.tx(world.issuer).transact(world.anchor.functions.anchor(tree.root, tree.size))
    where = Anchor.model_validate({
        "chainId": world.chain.w3.eth.chain_id, "contract": world.anchor.address.lower(),
        "transactionHash": bytes(anchored["transactionHash"]),
        "blockNumber": anchored["blockNumber"], "blockHash": bytes(anchored["blockHash"]),
        "anchoringKey": world.issuer.address.lower()})
    receipt = Receipt.create(credential_digest=digests[1], salt=salts[1], status_list=0,
                             status_list_index=41, leaf_index=1, tree_size=3,
                             audit_path=tree.inclusion_proof(1), root=tree.root, anchor=where)
    assert receipt.leaf_input == leaves[1]
    check_on_chain(world, receipt)
    world.tx(world.issuer).transact(world.anchor.functions.revoke(world.issuer_id, 0,
                                                                  packed(41), 1))
    check = read(CredentialCheck, world.anchor.functions.checkCredential(
        world.issuer.address, receipt.leaf_input, 1, list(receipt.audit_path), receipt.root))
    assert (check.included, check.status.revoked) == (True, True)
