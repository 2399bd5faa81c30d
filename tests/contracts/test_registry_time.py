"""Trust over time: validity windows, back-dated key revocation, revoked accreditation bodies
and status history, with real time travel on both chains."""

from __future__ import annotations

import pytest
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from anchor_service.errors import RevertError
from testkit.world import World
from tests.contracts.helpers import outcome, packed, random_root
from verifier.contract_types import (
    AnchorInfo,
    CredentialCheck,
    CredentialStatus,
    Entity,
    KeyInfo,
    Kind,
    Scope,
    Status,
    StatusChange,
    Trust,
    TrustCode,
    decode_all,
    read,
)

ACTIVE, SUSPENDED, REVOKED = Status.ACTIVE, Status.SUSPENDED, Status.REVOKED
BODY, ISSUER = Kind.ACCREDITATION_BODY, Kind.TRUSTED_ISSUER


def _anchor(world: World, root: bytes) -> int:
    """Anchor with the issuer's key; return the anchoring time."""
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 4))
    return read(AnchorInfo, world.anchor.functions.anchorOf(world.issuer.address, root)).anchored_at


def _status(world: World, root: bytes) -> CredentialStatus:
    """The anchor of ``root`` and the issuer's trust at anchoring time, as checkCredential
    answers them (for any leaf: these fields do not depend on it)."""
    anchor = world.anchor.functions
    check = read(CredentialCheck, anchor.checkCredential(world.issuer.address, b"", 0, [], root))
    return check.status


def _trust(world: World, key: str, when: int) -> Trust:
    return read(Trust, world.registry.functions.trustedAt(key, when))


def _key(world: World, key: str) -> KeyInfo:
    return read(KeyInfo, world.registry.functions.keyInfo(key))


def _entity(world: World, entity_id: int) -> Entity:
    return read(Entity, world.registry.functions.entity(entity_id))


def _history(world: World, entity_id: int) -> list[tuple[Status, int]]:
    changes = decode_all(StatusChange, world.registry.functions.statusHistory(entity_id).call())
    return [(change.status, change.since) for change in changes]


def test_key_validity_window(world: World) -> None:
    fresh = world.chain.accounts[8]
    start = world.now() + 1000
    world.tx(world.body).transact(
        world.registry.functions.addKey(world.issuer_id, fresh.address, start, start + 5000)
    )
    trust = _trust(world, fresh.address, world.now())
    assert trust.trusted is False
    assert trust.code is TrustCode.KEY_NOT_YET_VALID
    assert (
        outcome(world.tx(fresh), world.anchor.functions.anchor(random_root(), 1)) == "KeyNotTrusted"
    )

    world.chain.increase_time(1500)
    assert outcome(world.tx(fresh), world.anchor.functions.anchor(random_root(), 1)) == "ok"

    world.chain.increase_time(6000)
    assert _trust(world, fresh.address, world.now() + 1).code is TrustCode.KEY_EXPIRED
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

    assert _status(world, before).issuer_trusted_at_anchoring is True
    status_after = _status(world, after)
    assert status_after.issuer_trusted_at_anchoring is False
    assert status_after.trust_code is TrustCode.KEY_REVOKED
    assert _key(world, world.issuer.address).revoked_at == compromised_at
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
    assert _status(world, before).issuer_trusted_at_anchoring is False


def test_revoking_the_accreditation_body_stops_its_issuers_from_then_on(world: World) -> None:
    earlier = random_root()
    _anchor(world, earlier)
    world.chain.increase_time(100)
    world.tx(world.admin).transact(world.registry.functions.setStatus(world.body_id, REVOKED))
    revoked_at = world.now() + 1  # status changes count from the next second

    assert _status(world, earlier).issuer_trusted_at_anchoring is True
    trust = _trust(world, world.issuer.address, revoked_at)
    assert trust.trusted is False
    assert trust.code is TrustCode.ACCREDITOR_NOT_ACTIVE
    assert trust.failing_entity_id == world.body_id
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
                world.body_id, ISSUER, "did:web:late.example", Scope.FORMAL_DEGREE, "",
                b"\0" * 32
            ),
        )
        == "AccreditorNotTrusted"
    )


def test_status_history_is_kept_and_answers_past_times(world: World) -> None:
    accredited = _entity(world, world.issuer_id).accredited_at
    world.chain.increase_time(100)
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, SUSPENDED))
    suspended_at = world.now() + 1
    world.chain.increase_time(100)
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, ACTIVE))
    reactivated_at = world.now() + 1

    assert _history(world, world.issuer_id) == [
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
        read(KeyInfo, world.registry.functions.keyInfo(world.stranger.address))
    data = bytes.fromhex(str(caught.value.data).removeprefix("0x"))
    assert world.tx(world.admin).decode(data).name == "UnknownKey"


def test_scope_and_did_rules(world: World) -> None:
    admin = world.tx(world.admin)
    registry = world.registry.functions
    narrow = admin.transact(
        registry.accredit(0, BODY, "did:web:narrow.example", Scope.FORMAL_DEGREE, "", b"\0" * 32)
    )
    (event,) = world.registry.events.EntityAccredited().process_receipt(narrow)
    narrow_id = int(event["args"]["id"])
    assert (
        outcome(
            admin,
            registry.accredit(narrow_id, ISSUER, "did:web:wide.example",
                              Scope.FORMAL_DEGREE | Scope.FORMAL_NON_DEGREE, "", b"\0" * 32),
        )
        == "InvalidScope"
    )
    assert (
        outcome(admin, registry.accredit(0, BODY, "did:web:zero.example", Scope(0), "",
                                         b"\0" * 32))
        == "InvalidScope"
    )
    assert (
        outcome(admin, registry.accredit(0, BODY, "did:web:body.example", Scope.FORMAL_DEGREE,
                                         "", b"\0" * 32))
        == "DidAlreadyRegistered"
    )
    assert outcome(admin, registry.accredit(0, BODY, "", Scope.FORMAL_DEGREE, "",
                                            b"\0" * 32)) == "InvalidDid"
    assert (
        outcome(
            admin,
            registry.accredit(world.issuer_id, ISSUER, "did:web:x.example", Scope.FORMAL_DEGREE,
                              "", b"\0" * 32),
        )
        == "InvalidKind"
    )
    assert registry.entityIdByDid("did:web:uni-a.example").call() == world.issuer_id


def test_contract_revert_is_typed(world: World) -> None:
    with pytest.raises(RevertError) as caught:
        world.tx(world.stranger).transact(world.anchor.functions.anchor(random_root(), 1))
    assert caught.value.name == "KeyNotTrusted"
    assert caught.value.args_ == (world.stranger.address, TrustCode.UNKNOWN_KEY)


def test_versions(deployed: World) -> None:
    assert deployed.registry.functions.version().call() == "2.1.0"
    assert deployed.anchor.functions.version().call() == "2.0.0"
    assert deployed.anchor.functions.registry().call() == deployed.registry.address


def test_own_key_revocation_cannot_reach_back_even_one_second(world: World) -> None:
    root = random_root()
    anchored_at = _anchor(world, root)
    receipt = world.tx(world.issuer_key2).transact(
        world.registry.functions.revokeKey(world.issuer.address, 0)
    )
    revoked_in = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert _key(world, world.issuer.address).revoked_at == revoked_in + 1
    assert revoked_in + 1 > anchored_at
    assert _status(world, root).issuer_trusted_at_anchoring is True


def test_key_validity_never_starts_in_the_past(world: World) -> None:
    fresh = world.chain.accounts[8]
    receipt = world.tx(world.body).transact(
        world.registry.functions.addKey(world.issuer_id, fresh.address, 1, 0)
    )
    added_at = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert _key(world, fresh.address).valid_from == added_at
    assert _trust(world, fresh.address, added_at - 1).code is TrustCode.KEY_NOT_YET_VALID


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
    changes = [(ACTIVE, _entity(world, world.issuer_id).accredited_at)]
    for i in range(9):
        world.chain.increase_time(50)
        status = SUSPENDED if i % 2 == 0 else ACTIVE
        world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, status))
        changes.append((status, world.now() + 1))
    assert _history(world, world.issuer_id) == changes
    times = [since for _, since in changes]
    for probe in range(times[0] - 1, times[-1] + 2):
        expected = any(
            since <= probe and (nxt is None or probe < nxt) and status is ACTIVE
            for (status, since), nxt in zip(changes, [*times[1:], None], strict=True)
        )
        assert world.registry.functions.isActiveAt(world.issuer_id, probe).call() is expected


def test_a_revoked_key_stops_acting_at_once_but_keeps_this_seconds_anchors(world: World) -> None:
    root = random_root()
    anchored_at = _anchor(world, root)
    world.tx(world.body).transact(world.registry.functions.revokeKey(world.issuer.address, 0))
    revoked_from = _key(world, world.issuer.address).revoked_at
    assert revoked_from == world.now() + 1
    assert revoked_from > anchored_at
    assert _status(world, root).issuer_trusted_at_anchoring is True
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
    # Nor a status change of the issuer's credentials; its other key still may.
    revoke = world.anchor.functions.revoke(world.issuer_id, 0, packed(0), 1)
    assert outcome(world.tx(world.issuer), revoke) == "NotAuthorized"
    assert outcome(world.tx(world.issuer_key2), revoke) == "ok"


def test_a_suspended_issuer_stops_at_once(world: World) -> None:
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, SUSPENDED))
    assert (
        outcome(world.tx(world.issuer), world.anchor.functions.anchor(random_root(), 1))
        == "KeyNotTrusted"
    )
    # Its keys change no status either, until the issuer is active again.
    anchor = world.anchor.functions
    for change in (anchor.revoke, anchor.suspend, anchor.reinstate):
        assert outcome(world.tx(world.issuer), change(world.issuer_id, 0, packed(4), 1)) \
            == "NotAuthorized"
    world.tx(world.body).transact(world.registry.functions.setStatus(world.issuer_id, ACTIVE))
    assert outcome(world.tx(world.issuer), anchor.suspend(world.issuer_id, 0, packed(4), 1)) == "ok"


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
    body = _entity(world, world.body_id)
    assert body.revoked_from == fraud_since
    assert body.status is REVOKED
    assert _status(world, before).issuer_trusted_at_anchoring is True
    late = _status(world, after)
    assert late.issuer_trusted_at_anchoring is False
    assert late.trust_code is TrustCode.ACCREDITOR_NOT_ACTIVE
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
