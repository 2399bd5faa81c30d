"""Trust over time: validity windows, back-dated key revocation, revoked accreditation bodies
and status history, with real time travel on both chains."""

from __future__ import annotations

import pytest
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from anchor_service.chain import RevertError
from tests.contracts.conftest import ACTIVE, ISSUER, REVOKED, SUSPENDED, World
from tests.contracts.helpers import outcome, random_root

TRUSTED, UNKNOWN, NOT_YET_VALID, EXPIRED, KEY_REVOKED, ENTITY_INACTIVE, ACCREDITOR_INACTIVE = range(
    7
)


def _anchor(world: World, root: bytes) -> int:
    """Anchor with the issuer's key; return the anchoring time."""
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 4))
    return int(world.anchor.functions.anchorOf(world.issuer.address, root).call()[3])


def _status(world: World, root: bytes) -> dict[str, object]:
    fields = [
        "anchored",
        "entityId",
        "key",
        "anchoredAt",
        "blockNumber",
        "treeSize",
        "indexInTree",
        "issuerTrustedAtAnchoring",
        "trustCode",
        "revoked",
        "suspended",
    ]
    return dict(
        zip(
            fields,
            world.anchor.functions.credentialStatus(world.issuer.address, root, 0).call(),
            strict=True,
        )
    )


def test_key_validity_window(world: World) -> None:
    fresh = world.chain.accounts[8]
    start = world.now() + 1000
    world.tx(world.body).transact(
        world.registry.functions.addKey(world.issuer_id, fresh.address, start, start + 5000)
    )
    trust = world.registry.functions.trustedAt(fresh.address, world.now()).call()
    assert trust[0] is False
    assert trust[1] == NOT_YET_VALID
    assert (
        outcome(world.tx(fresh), world.anchor.functions.anchor(random_root(), 1)) == "KeyNotTrusted"
    )

    world.chain.increase_time(1500)
    assert outcome(world.tx(fresh), world.anchor.functions.anchor(random_root(), 1)) == "ok"

    world.chain.increase_time(6000)
    assert world.registry.functions.trustedAt(fresh.address, world.now() + 1).call()[1] == EXPIRED
    assert (
        outcome(world.tx(fresh), world.anchor.functions.anchor(random_root(), 1)) == "KeyNotTrusted"
    )


def test_rotation_shortens_the_old_key(world: World) -> None:
    until = world.now() + 100
    world.tx(world.issuer).transact(
        world.registry.functions.shortenKeyExpiry(world.issuer_key2.address, until)
    )
    world.chain.increase_time(200)
    assert (
        outcome(world.tx(world.issuer_key2), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )
    # Expiry only ever moves earlier.
    assert (
        outcome(
            world.tx(world.body),
            world.registry.functions.shortenKeyExpiry(world.issuer_key2.address, until + 50),
        )
        == "ExpiryNotShortened"
    )


def test_back_dated_revocation_splits_anchors_at_the_compromise_time(world: World) -> None:
    before = random_root()
    t_before = _anchor(world, before)
    world.chain.increase_time(1000)
    after = random_root()
    t_after = _anchor(world, after)
    compromised_at = (t_before + t_after) // 2
    world.chain.increase_time(1000)

    world.tx(world.body).transact(
        world.registry.functions.revokeKey(world.issuer.address, compromised_at)
    )

    assert _status(world, before)["issuerTrustedAtAnchoring"] is True
    status_after = _status(world, after)
    assert status_after["issuerTrustedAtAnchoring"] is False
    assert status_after["trustCode"] == KEY_REVOKED
    info = world.registry.functions.keyInfo(world.issuer.address).call()
    assert info[5] == compromised_at
    # The revocation may move earlier, never later, and never into the future.
    assert (
        outcome(
            world.tx(world.body),
            world.registry.functions.revokeKey(world.issuer.address, compromised_at + 1),
        )
        == "RevocationNotEarlier"
    )
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.revokeKey(world.issuer_key2.address, world.now() + 10_000),
        )
        == "RevocationInFuture"
    )
    world.tx(world.admin).transact(
        world.registry.functions.revokeKey(world.issuer.address, t_before - 1)
    )
    assert _status(world, before)["issuerTrustedAtAnchoring"] is False


def test_revoking_the_accreditation_body_stops_its_issuers_from_then_on(world: World) -> None:
    earlier = random_root()
    _anchor(world, earlier)
    world.chain.increase_time(100)
    world.tx(world.admin).transact(world.registry.functions.setStatus(world.body_id, REVOKED))
    revoked_at = world.now() + 1  # status changes count from the next second

    assert _status(world, earlier)["issuerTrustedAtAnchoring"] is True
    trust = world.registry.functions.trustedAt(world.issuer.address, revoked_at).call()
    assert trust[0] is False
    assert trust[1] == ACCREDITOR_INACTIVE
    assert trust[3] == world.body_id  # failingEntityId
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )
    # Revoked is final, and nobody accredits under a revoked body.
    assert (
        outcome(world.tx(world.admin), world.registry.functions.setStatus(world.body_id, ACTIVE))
        == "InvalidStatusChange"
    )
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.accredit(
                world.body_id, ISSUER, "did:web:late.example", 1, "", b"\0" * 32
            ),
        )
        == "AccreditorNotTrusted"
    )


def test_status_history_is_kept_and_answers_past_times(world: World) -> None:
    accredited = world.registry.functions.entity(world.issuer_id).call()[6]
    world.chain.increase_time(100)
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, SUSPENDED))
    suspended_at = world.now() + 1
    world.chain.increase_time(100)
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, ACTIVE))
    reactivated_at = world.now() + 1

    history = world.registry.functions.statusHistory(world.issuer_id).call()
    assert [tuple(h) for h in history] == [
        (ACTIVE, accredited),
        (SUSPENDED, suspended_at),
        (ACTIVE, reactivated_at),
    ]
    is_active = world.registry.functions.isActiveAt
    assert is_active(world.issuer_id, accredited - 1).call() is False
    assert is_active(world.issuer_id, accredited).call() is True
    assert is_active(world.issuer_id, suspended_at).call() is False
    assert is_active(world.issuer_id, reactivated_at - 1).call() is False
    assert is_active(world.issuer_id, reactivated_at).call() is True


def test_a_key_belongs_to_one_entity_forever(world: World) -> None:
    world.tx(world.admin).transact(world.registry.functions.revokeKey(world.issuer_key2.address, 0))
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.addKey(world.body_id, world.issuer_key2.address, 0, 0),
        )
        == "KeyAlreadyRegistered"
    )
    with pytest.raises(ContractCustomError) as caught:
        world.registry.functions.keyInfo(world.stranger.address).call()
    data = bytes.fromhex(str(caught.value.data).removeprefix("0x"))
    assert world.tx(world.admin).decode(data).name == "UnknownKey"


def test_scope_and_did_rules(world: World) -> None:
    admin = world.tx(world.admin)
    registry = world.registry.functions
    narrow = admin.transact(
        registry.accredit(0, 1, "did:web:narrow.example", 0b001, "", b"\0" * 32)
    )
    (event,) = world.registry.events.EntityAccredited().process_receipt(narrow)
    narrow_id = int(event["args"]["id"])
    assert (
        outcome(
            admin,
            registry.accredit(narrow_id, ISSUER, "did:web:wide.example", 0b011, "", b"\0" * 32),
        )
        == "InvalidScope"
    )
    assert (
        outcome(admin, registry.accredit(0, 1, "did:web:zero.example", 0, "", b"\0" * 32))
        == "InvalidScope"
    )
    assert (
        outcome(admin, registry.accredit(0, 1, "did:web:body.example", 1, "", b"\0" * 32))
        == "DidAlreadyRegistered"
    )
    assert outcome(admin, registry.accredit(0, 1, "", 1, "", b"\0" * 32)) == "InvalidDid"
    assert (
        outcome(
            admin,
            registry.accredit(world.issuer_id, ISSUER, "did:web:x.example", 1, "", b"\0" * 32),
        )
        == "InvalidKind"
    )
    assert registry.entityIdByDid("did:web:uni-a.example").call() == world.issuer_id


def test_contract_revert_is_typed(world: World) -> None:
    with pytest.raises(RevertError) as caught:
        world.tx(world.stranger).transact(world.anchor.functions.anchor(random_root(), 1))
    assert caught.value.name == "KeyNotTrusted"
    assert caught.value.args_ == (world.stranger.address, UNKNOWN)


def test_versions(deployed: World) -> None:
    assert deployed.registry.functions.version().call() == "1.0.0"
    assert deployed.anchor.functions.version().call() == "1.0.0"
    assert deployed.anchor.functions.registry().call() == deployed.registry.address
    assert TRUSTED == 0


def test_own_key_revocation_cannot_reach_back_even_one_second(world: World) -> None:
    root = random_root()
    anchored_at = _anchor(world, root)
    receipt = world.tx(world.issuer_key2).transact(
        world.registry.functions.revokeKey(world.issuer.address, 0)
    )
    revoked_in = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert world.registry.functions.keyInfo(world.issuer.address).call()[5] == revoked_in + 1
    assert revoked_in + 1 > anchored_at
    assert _status(world, root)["issuerTrustedAtAnchoring"] is True


def test_key_validity_never_starts_in_the_past(world: World) -> None:
    fresh = world.chain.accounts[8]
    receipt = world.tx(world.body).transact(
        world.registry.functions.addKey(world.issuer_id, fresh.address, 1, 0)
    )
    added_at = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert world.registry.functions.keyInfo(fresh.address).call()[3] == added_at
    assert world.registry.functions.trustedAt(fresh.address, added_at - 1).call()[1] == (
        NOT_YET_VALID
    )


def test_handing_over_the_top_admin_moves_the_root_admin_role(world: World) -> None:
    successor = world.chain.accounts[8]
    world.tx(world.admin).transact(
        world.registry.functions.beginDefaultAdminTransfer(successor.address)
    )
    assert (
        outcome(world.tx(successor), world.registry.functions.acceptDefaultAdminTransfer())
        == "AccessControlEnforcedDefaultAdminDelay"
    )
    world.chain.increase_time(3600 + 1)
    world.tx(successor).transact(world.registry.functions.acceptDefaultAdminTransfer())
    assert world.registry.functions.isRootAdmin(successor.address).call() is True
    assert world.registry.functions.isRootAdmin(world.admin.address).call() is False
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.setStatus(world.issuer_id, SUSPENDED),
        )
        == "NotAuthorized"
    )


def test_long_status_history_answers_every_past_time(world: World) -> None:
    changes = [(ACTIVE, world.registry.functions.entity(world.issuer_id).call()[6])]
    for i in range(9):
        world.chain.increase_time(50)
        status = SUSPENDED if i % 2 == 0 else ACTIVE
        world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, status))
        changes.append((status, world.now() + 1))
    history = world.registry.functions.statusHistory(world.issuer_id).call()
    assert [tuple(h) for h in history] == changes
    for probe in range(changes[0][1] - 1, changes[-1][1] + 2):
        expected = any(
            since <= probe and (nxt is None or probe < nxt) and status == ACTIVE
            for (status, since), nxt in zip(
                changes, [c[1] for c in changes[1:]] + [None], strict=True
            )
        )
        assert world.registry.functions.isActiveAt(world.issuer_id, probe).call() is expected


def test_a_revoked_key_stops_acting_at_once_but_keeps_this_seconds_anchors(world: World) -> None:
    root = random_root()
    anchored_at = _anchor(world, root)
    world.tx(world.body).transact(world.registry.functions.revokeKey(world.issuer.address, 0))
    revoked_from = world.registry.functions.keyInfo(world.issuer.address).call()[5]
    assert revoked_from == world.now() + 1
    assert revoked_from > anchored_at
    assert _status(world, root)["issuerTrustedAtAnchoring"] is True
    # No new action with the key, even within the same second.
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )
    assert (
        outcome(
            world.tx(world.issuer),
            world.registry.functions.updateMetadata(world.issuer_id, "x", b"\0" * 32),
        )
        == "NotAuthorized"
    )


def test_a_suspended_issuer_stops_at_once(world: World) -> None:
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, SUSPENDED))
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )


def test_a_renouncing_top_admin_stops_being_a_root_admin(world: World) -> None:
    zero = "0x" + "00" * 20
    world.tx(world.admin).transact(world.registry.functions.beginDefaultAdminTransfer(zero))
    world.chain.increase_time(3600 + 1)
    admin_role = world.registry.functions.DEFAULT_ADMIN_ROLE().call()
    world.tx(world.admin).transact(
        world.registry.functions.renounceRole(admin_role, world.admin.address)
    )
    assert world.registry.functions.isRootAdmin(world.admin.address).call() is False
    assert world.registry.functions.defaultAdmin().call() == zero


def test_back_dated_body_revocation_splits_its_issuers_anchors(world: World) -> None:
    before = random_root()
    t_before = _anchor(world, before)
    world.chain.increase_time(1000)
    after = random_root()
    t_after = _anchor(world, after)
    fraud_since = (t_before + t_after) // 2
    world.chain.increase_time(100)
    receipt = world.tx(world.admin).transact(
        world.registry.functions.revokeSince(world.body_id, fraud_since)
    )
    (event,) = world.registry.events.EntityRevokedSince().process_receipt(
        receipt, errors=DISCARD  # the receipt holds other events too
    )
    assert event["args"]["effectiveFrom"] == fraud_since
    assert world.registry.functions.entity(world.body_id).call()[12] == fraud_since
    assert world.registry.functions.entity(world.body_id).call()[3] == REVOKED
    assert _status(world, before)["issuerTrustedAtAnchoring"] is True
    late = _status(world, after)
    assert late["issuerTrustedAtAnchoring"] is False
    assert late["trustCode"] == ACCREDITOR_INACTIVE
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )
    # Only earlier, never later or in the future.
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.revokeSince(world.body_id, fraud_since + 5),
        )
        == "EntityRevocationNotEarlier"
    )
    assert (
        outcome(
            world.tx(world.admin),
            world.registry.functions.revokeSince(world.issuer_id, world.now() + 999),
        )
        == "RevocationInFuture"
    )
