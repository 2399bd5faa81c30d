"""Signing keys (verification methods) in the IssuerRegistry, on the in-process chain and on
anvil: who may add, shorten and revoke them, which bytes are keys, one entity forever, the
per-entity bound, validity windows, back-dated revocation, trust through the accreditation
chain, the events and the views of unknown keys."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from web3.exceptions import ContractCustomError

from anchor_service.chain import (
    Transactor,
    add_signing_key,
    revoke_signing_key,
    shorten_signing_key_expiry,
    signing_key_id,
)
from anchor_service.errors import ChainError, RevertError
from testkit.world import World, events
from verifier.contract_types import Kind, SigningKeyInfo, Status, Trust, TrustCode, read
from verifier.multikey import Multikey

NEVER = 2**40 - 1  # validUntil of a key that never expires (the largest uint40)
MAX_KEYS = 64


def _ed25519() -> Multikey:
    return Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())


def _p256() -> Multikey:
    return Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())


def _refused(tx: Transactor, call: Any) -> RevertError:
    """The custom error ``call`` reverts with (the test fails if it succeeds)."""
    with pytest.raises(RevertError) as caught:
        tx.transact(call)
    return caught.value


def _add(world: World, key: Multikey, entity_id: int | None = None, *, valid_from: int = 0,
         valid_until: int = 0) -> bytes:
    return add_signing_key(world.tx(world.body), world.registry,
                           entity_id=world.issuer_id if entity_id is None else entity_id,
                           key=key, valid_from=valid_from, valid_until=valid_until)


def _info(world: World, key_id: bytes) -> SigningKeyInfo:
    return read(SigningKeyInfo, world.registry.functions.signingKeyInfo(key_id))


def _trust(world: World, key_id: bytes, when: int) -> Trust:
    return read(Trust, world.registry.functions.signingKeyTrustedAt(key_id, when))


# ---------------------------------------------------------------------------- adding


def test_both_key_types_are_stored_and_read_back_byte_for_byte(world: World) -> None:
    registry = world.registry.functions
    anchoring_keys = registry.keyCount().call()
    first, second = _ed25519(), _p256()
    first_id = _add(world, first)
    second_id = add_signing_key(world.tx(world.admin), world.registry,
                                entity_id=world.issuer_id, key=second)
    assert (first_id, second_id) == (signing_key_id(first), signing_key_id(second))
    for index, (key, key_id) in enumerate(((first, first_id), (second, second_id))):
        info = _info(world, key_id)
        assert info.public_key == key.multicodec  # 34 and 35 bytes: the slot and its tail
        assert (info.key_id, info.entity_id, info.index) == (key_id, world.issuer_id, index)
        assert (info.valid_until, info.revoked_at) == (NEVER, 0)
        assert info.valid_from <= world.now()
        assert info.multikey() == key
    assert registry.entitySigningKeys(world.issuer_id).call() == [first_id, second_id]
    infos = registry.entitySigningKeyInfos(world.issuer_id).call()
    assert [read_info[6] for read_info in infos] == [first.multicodec, second.multicodec]
    assert registry.signingKeyCount().call() == 2
    assert registry.keyCount().call() == anchoring_keys  # anchoring keys are another list
    assert registry.entitySigningKeys(world.body_id).call() == []
    assert _trust(world, first_id, world.now()).trusted is True


def test_only_the_accreditor_and_root_administrators_add_signing_keys(world: World) -> None:
    key = _ed25519()
    call = world.registry.functions.addSigningKey(world.issuer_id, key.multicodec, 0, 0)
    # The entity's own anchoring key may not mint signing keys (a stolen key must not).
    for caller in (world.issuer, world.stranger, world.revoked):
        error = _refused(world.tx(caller), call)
        assert (error.name, error.args_) == ("NotAuthorized", (caller.address, world.issuer_id))
    # An issuer is not an accreditor of its sibling either.
    error = _refused(world.tx(world.issuer), world.registry.functions.addSigningKey(
        world.revoked_id, key.multicodec, 0, 0))
    assert error.name == "NotAuthorized"
    # Only root administrators add to a top-level body.
    error = _refused(world.tx(world.body), world.registry.functions.addSigningKey(
        world.body_id, key.multicodec, 0, 0))
    assert error.args_ == (world.body.address, world.body_id)
    assert _info(world, signing_key_id(key)).entity_id == 0
    add_signing_key(world.tx(world.admin), world.registry, entity_id=world.body_id, key=key)
    assert _info(world, signing_key_id(key)).entity_id == world.body_id


@pytest.mark.parametrize(("public_key", "why"), [
    (b"\xed\x01" + b"\x11" * 31, "Ed25519 one byte short"),
    (b"\xed\x01" + b"\x11" * 33, "Ed25519 one byte long"),
    (b"\xed\x02" + b"\x11" * 32, "wrong second header byte"),
    (b"\x80\x24\x04" + b"\x11" * 32, "P-256 uncompressed prefix"),
    (b"\x80\x24\x00" + b"\x11" * 32, "P-256 zero prefix"),
    (b"\x80\x24\x02" + b"\x11" * 31, "P-256 short"),
    (b"\x81\x24\x02" + b"\x11" * 48, "P-384"),
    (b"\x80\x24" + b"\x02" * 32, "34 bytes with the P-256 header"),
    (b"", "empty"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_only_ed25519_and_compressed_p256_multikeys_are_taken(
        world: World, public_key: bytes, why: str) -> None:
    error = _refused(world.tx(world.admin), world.registry.functions.addSigningKey(
        world.issuer_id, public_key, 0, 0))
    assert (error.name, error.args_) == ("InvalidSigningKey", (public_key,)), why


def test_p384_is_refused_before_sending(world: World) -> None:
    key = Multikey.from_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(ChainError, match="Ed25519 and P-256"):
        add_signing_key(world.tx(world.admin), world.registry, entity_id=world.issuer_id,
                        key=key)


def test_a_signing_key_belongs_to_one_entity_forever(world: World) -> None:
    key = _ed25519()
    key_id = _add(world, key)
    revoke_signing_key(world.tx(world.body), world.registry, key_id=key_id)
    for entity_id in (world.issuer_id, world.body_id):
        error = _refused(world.tx(world.admin), world.registry.functions.addSigningKey(
            entity_id, key.multicodec, 0, 0))
        assert (error.name, error.args_) == ("SigningKeyAlreadyRegistered",
                                             (key_id, world.issuer_id))


def test_a_revoked_entity_gets_no_signing_keys(world: World) -> None:
    error = _refused(world.tx(world.admin), world.registry.functions.addSigningKey(
        world.revoked_id, _ed25519().multicodec, 0, 0))
    assert (error.name, error.args_) == ("InvalidStatusChange",
                                         (world.revoked_id, Status.REVOKED, Status.REVOKED))
    error = _refused(world.tx(world.admin), world.registry.functions.addSigningKey(
        999, _ed25519().multicodec, 0, 0))
    assert (error.name, error.args_) == ("UnknownEntity", (999,))


def test_an_entity_has_at_most_max_signing_keys(world: World) -> None:
    registry = world.registry.functions
    assert registry.MAX_SIGNING_KEYS_PER_ENTITY().call() == MAX_KEYS
    tx = world.tx(world.body)
    for _ in range(MAX_KEYS):
        # Random bytes of the right form: the registry checks the form, not the point.
        tx.transact(registry.addSigningKey(world.issuer_id, b"\xed\x01" + os.urandom(32), 0, 0))
    error = _refused(tx, registry.addSigningKey(world.issuer_id, _ed25519().multicodec, 0, 0))
    assert (error.name, error.args_) == ("TooManySigningKeys", (world.issuer_id, MAX_KEYS))
    assert len(registry.entitySigningKeys(world.issuer_id).call()) == MAX_KEYS
    assert len(registry.entitySigningKeyInfos(world.issuer_id).call()) == MAX_KEYS
    # The bound is per entity.
    key = _ed25519()
    add_signing_key(world.tx(world.admin), world.registry, entity_id=world.body_id, key=key)
    assert _info(world, signing_key_id(key)).entity_id == world.body_id


# ---------------------------------------------------------------------------- time


def test_validity_window(world: World) -> None:
    now = world.now()
    start = now + 1000
    key_id = _add(world, _ed25519(), valid_from=start, valid_until=start + 5000)
    info = _info(world, key_id)
    assert (info.valid_from, info.valid_until) == (start, start + 5000)
    assert _trust(world, key_id, start - 1).code is TrustCode.KEY_NOT_YET_VALID
    assert _trust(world, key_id, start).trusted is True
    assert _trust(world, key_id, start + 4999).trusted is True
    assert _trust(world, key_id, start + 5000).code is TrustCode.KEY_EXPIRED
    # A validity in the past starts now: past trust answers are never rewritten.
    past_id = _add(world, _ed25519(), valid_from=now - 500)
    assert _info(world, past_id).valid_from > now - 500
    assert _trust(world, past_id, now - 500).code is TrustCode.KEY_NOT_YET_VALID
    for valid_from, valid_until in ((start, start), (0, now - 10)):
        error = _refused(world.tx(world.body), world.registry.functions.addSigningKey(
            world.issuer_id, _ed25519().multicodec, valid_from, valid_until))
        assert error.name == "InvalidValidity"


def test_shortening_the_expiry_rotates_the_key(world: World) -> None:
    key_id = _add(world, _ed25519())
    until = world.now() + 600
    # The entity's own anchoring key may shorten its signing key's expiry.
    tx = world.tx(world.issuer)
    receipt = tx.transact(world.registry.functions.shortenSigningKeyExpiry(key_id, until))
    (event,) = events(world.registry, "SigningKeyExpiryShortened", receipt)
    assert dict(event["args"]) == {"keyId": key_id, "validUntil": until,
                                   "by": world.issuer.address}
    assert _info(world, key_id).valid_until == until
    assert _trust(world, key_id, until - 1).trusted is True
    assert _trust(world, key_id, until).code is TrustCode.KEY_EXPIRED
    for later in (until, until + 1, world.now()):  # not later, not equal, not now
        error = _refused(world.tx(world.body),
                         world.registry.functions.shortenSigningKeyExpiry(key_id, later))
        assert (error.name, error.args_) == ("SigningKeyExpiryNotShortened",
                                             (key_id, until, later))
    shorten_signing_key_expiry(world.tx(world.admin), world.registry, key_id=key_id,
                               valid_until=until - 100)
    assert _info(world, key_id).valid_until == until - 100
    error = _refused(world.tx(world.stranger),
                     world.registry.functions.shortenSigningKeyExpiry(key_id, until - 200))
    assert (error.name, error.args_) == ("NotAuthorized", (world.stranger.address,
                                                            world.issuer_id))


def test_back_dated_revocation_untrusts_from_the_compromise_on(world: World) -> None:
    key_id = _add(world, _ed25519())
    world.chain.increase_time(1000)
    compromise = world.now() - 400
    receipt = world.tx(world.body).transact(
        world.registry.functions.revokeSigningKey(key_id, compromise))
    (event,) = events(world.registry, "SigningKeyRevoked", receipt)
    assert dict(event["args"]) == {"keyId": key_id, "effectiveFrom": compromise,
                                   "by": world.body.address}
    assert _trust(world, key_id, compromise - 1).trusted is True  # signed before: still good
    after = _trust(world, key_id, compromise)
    assert (after.trusted, after.code, after.entity_id) == (False, TrustCode.KEY_REVOKED,
                                                            world.issuer_id)
    assert _info(world, key_id).revoked_at == compromise
    # Only earlier, never later or in the future.
    error = _refused(world.tx(world.admin),
                     world.registry.functions.revokeSigningKey(key_id, compromise + 1))
    assert (error.name, error.args_) == ("SigningKeyRevocationNotEarlier",
                                         (key_id, compromise, compromise + 1))
    future = world.now() + 100
    error = _refused(world.tx(world.admin),
                     world.registry.functions.revokeSigningKey(key_id, future))
    assert (error.name, error.args_) == ("RevocationInFuture", (future,))
    assert revoke_signing_key(world.tx(world.admin), world.registry, key_id=key_id,
                              effective_from=compromise - 200) == compromise - 200
    assert _trust(world, key_id, compromise - 200).code is TrustCode.KEY_REVOKED


def test_the_entitys_own_key_revokes_now_but_cannot_back_date(world: World) -> None:
    key_id = _add(world, _ed25519())
    world.chain.increase_time(100)
    error = _refused(world.tx(world.issuer),
                     world.registry.functions.revokeSigningKey(key_id, world.now() - 10))
    assert (error.name, error.args_) == ("BackdatingNotAllowed", (world.issuer.address,))
    # Another issuer's key, and a stranger, may not revoke at all.
    for caller in (world.revoked, world.stranger):
        error = _refused(world.tx(caller), world.registry.functions.revokeSigningKey(key_id, 0))
        assert (error.name, error.args_) == ("NotAuthorized", (caller.address, world.issuer_id))
    effective = revoke_signing_key(world.tx(world.issuer), world.registry, key_id=key_id)
    revoked_in = world.now()
    assert effective == revoked_in + 1  # from the next second: this second's work stands
    assert _trust(world, key_id, revoked_in).trusted is True
    assert _trust(world, key_id, revoked_in + 1).code is TrustCode.KEY_REVOKED


def test_trust_follows_every_accreditation_body_above(world: World) -> None:
    key_id = _add(world, _ed25519())
    world.chain.increase_time(100)
    world.tx(world.admin).transact(world.registry.functions.setStatus(world.body_id,
                                                                      Status.SUSPENDED))
    suspended_from = world.now() + 1
    assert _trust(world, key_id, suspended_from - 1).trusted is True
    trust = _trust(world, key_id, suspended_from)
    assert (trust.trusted, trust.code, trust.failing_entity_id) == (
        False, TrustCode.ACCREDITOR_NOT_ACTIVE, world.body_id)
    assert (trust.kind, trust.entity_id) == (Kind.TRUSTED_ISSUER, world.issuer_id)
    # The issuer's own status counts too.
    world.chain.increase_time(10)
    world.tx(world.admin).transact(world.registry.functions.setStatus(world.body_id,
                                                                      Status.ACTIVE))
    world.tx(world.admin).transact(world.registry.functions.setStatus(world.issuer_id,
                                                                      Status.SUSPENDED))
    trust = _trust(world, key_id, world.now() + 1)
    assert (trust.code, trust.failing_entity_id) == (TrustCode.ENTITY_NOT_ACTIVE,
                                                     world.issuer_id)


# ---------------------------------------------------------------------------- events, views


def test_signing_key_added_event_names_everything(world: World) -> None:
    key = _p256()
    start = world.now() + 50
    receipt = world.tx(world.body).transact(world.registry.functions.addSigningKey(
        world.issuer_id, key.multicodec, start, start + 100))
    (event,) = events(world.registry, "SigningKeyAdded", receipt)
    assert dict(event["args"]) == {
        "entityId": world.issuer_id, "keyId": signing_key_id(key), "publicKey": key.multicodec,
        "index": 0, "validFrom": start, "validUntil": start + 100, "by": world.body.address}


def test_views_of_unknown_signing_keys(world: World) -> None:
    unknown = signing_key_id(_ed25519())
    info = _info(world, unknown)
    assert (info.known, info.key_id, info.entity_id, info.public_key) == (False, unknown, 0,
                                                                           b"")
    trust = _trust(world, unknown, world.now())
    assert (trust.trusted, trust.code, trust.entity_id) == (False, TrustCode.UNKNOWN_KEY, 0)
    for call in (world.registry.functions.revokeSigningKey(unknown, 0),
                 world.registry.functions.shortenSigningKeyExpiry(unknown, world.now() + 9)):
        error = _refused(world.tx(world.admin), call)
        assert (error.name, error.args_) == ("UnknownSigningKey", (unknown,))
    for view in (world.registry.functions.entitySigningKeys,
                 world.registry.functions.entitySigningKeyInfos):
        with pytest.raises(ContractCustomError) as caught:
            view(999).call()
        data = bytes.fromhex(str(caught.value.data).removeprefix("0x"))
        decoded = world.tx(world.admin).decode(data)
        assert (decoded.name, decoded.args_) == ("UnknownEntity", (999,))
