"""Explicit step sequences of the registry and anchor state machine
(tests/contracts/test_state_machine.py), each run with real signed transactions mined into
blocks of the in-process chain (``mined=True``), checked step by step against the model as the
random run does.

The random run has found no disagreement between the contracts and the model. These sequences
keep the stories it reaches only rarely (a rule is one of twenty, and most draws are refused),
each of which a wrong contract or model fails at once: an accreditor's suspension stopping
every key below it, back-dated revocations rewriting the past from their time only, the
same-second rules of revocations, issuer-only status changes and root-only lifts, status
indices at the limits, nonces of signed anchors, validity windows and the hierarchy's limits.
They also check that the random run's unmined transactions (:class:`Evm`) behave as mined ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contracts.test_state_machine import (
    ROOTS,
    RegistryMachine,
    Stage,
    build_stage,
)
from verifier.contract_types import STATUS_LIST_SIZE, Kind, Status, TrustCode

OWN = -1  # the status rules' "the caller's own entity"
I1, I2, I3 = 3, 4, 5  # the prepared world's issuers (test_state_machine.build_stage)


def packed(*indices: int) -> bytes:
    return b"".join(index.to_bytes(4, "big") for index in indices)


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    prepared = build_stage()
    try:
        yield prepared
    finally:
        prepared.chain.close()


@pytest.fixture
def machine(stage: Stage) -> Iterator[RegistryMachine]:
    """A sequence from the prepared world, with mined transactions; its teardown asks every
    recorded past answer again."""
    sequence = RegistryMachine(stage, mined=True)
    yield sequence
    sequence.check_everything()
    sequence.teardown()


def test_suspending_a_body_stops_every_key_below_it_at_once(machine: RegistryMachine) -> None:
    m = machine
    m.anchor(who="i2", root=1, tree_size=1)
    m.set_status(who="bodyA", entity_id=2, status=Status.SUSPENDED)  # I2's accreditor
    m.anchor(who="i2", root=2, tree_size=1)  # refused: AccreditorNotActive now
    m.revoke_credentials(who="i2", entity_id=OWN, status_list=0, indices=packed(1), reason=0)
    m.check_credential(key="i2", leaf=0, leaf_index=0)  # anchored before: still trusted then
    m.check_trusted_at(key="i2", back=0)
    m.advance_time(seconds=59)
    m.set_status(who="bodyA", entity_id=2, status=Status.ACTIVE)
    m.anchor(who="i2", root=2, tree_size=1)
    m.check_trusted_at(key="i2", back=60)  # during the suspension: not trusted
    assert set(m.model.anchors) == {(I2, ROOTS[1]), (I2, ROOTS[2])}
    assert m.model.check_now(m._address("i2"), m.evm.now)[0] is TrustCode.TRUSTED
    assert not m.model.trusted_at(m._address("i2"), m.evm.now - 30).trusted


def test_a_back_dated_entity_revocation_changes_the_past_from_its_time_only(
        machine: RegistryMachine) -> None:
    m = machine
    m.anchor(who="i1", root=1, tree_size=1)
    m.advance_time(seconds=3600)
    m.anchor(who="i1b", root=2, tree_size=1)
    m.check_trusted_at(key="i1", back=3601)
    m.check_trusted_at(key="i1", back=1)
    m.revoke_since(who="bodyA", entity_id=I1, back=1000)  # between the two anchors
    m.check_credential(key="i1b", leaf=0, leaf_index=0)  # before the revocation: trusted
    m.check_credential(key="i1", leaf=1, leaf_index=0)  # after it: not
    m.set_status(who="admin", entity_id=I1, status=Status.ACTIVE)  # refused: Revoked is final
    m.revoke_since(who="admin", entity_id=I1, back=None)  # since its accreditation: earlier
    m.revoke_since(who="admin", entity_id=I1, back=None)  # refused: not earlier
    record = m.model.entities[I1]
    assert record.status is Status.REVOKED
    assert record.revoked_from == record.accredited_at
    assert m.backdated == 2
    assert m.refusals == 2


def test_a_key_revoked_in_a_second_keeps_what_it_anchored_earlier_in_that_second(
        machine: RegistryMachine) -> None:
    m = machine
    m.switch(mode="hold blocks")  # the next transactions share a block and a second
    anchored_at = m.evm.now
    m.anchor(who="i1", root=1, tree_size=1)
    m.revoke_key(who="i1", key="i1", back=None)  # the key pulls its own plug: from next second
    m.anchor(who="i1", root=2, tree_size=1)  # refused: unusable at once
    m.switch(mode="mine")
    assert m.evm.now == anchored_at + 1
    m.check_credential(key="i1", leaf=0, leaf_index=0)  # still trusted at anchoring
    m.check_trusted_at(key="i1", back=1)
    m.revoke_key(who="i1b", key="i1b", back=30)  # refused: its own key may not back-date
    m.revoke_key(who="bodyA", key="i1", back=1)  # the accreditor back-dates to that second
    m.check_credential(key="i1", leaf=0, leaf_index=0)  # now not trusted at anchoring
    assert m.model.keys[m._address("i1")].revoked_at == anchored_at
    assert not m.model.trusted_at(m._address("i1"), anchored_at).trusted
    assert (I1, ROOTS[2]) not in m.model.anchors


def test_only_the_issuer_changes_status_and_only_root_administrators_lift(
        machine: RegistryMachine) -> None:
    m = machine
    m.revoke_credentials(who="i1", entity_id=OWN, status_list=0, indices=packed(5, 300),
                         reason=1)
    m.suspend_credentials(who="i1b", entity_id=OWN, status_list=0, indices=packed(5, 6),
                          reason=2)
    m.reinstate_credentials(who="i1", entity_id=OWN, status_list=0, indices=packed(5, 6),
                            reason=3)  # lifts the suspensions, not the revocation
    for who in ("admin", "bodyA", "i2", "i3", "r", "i1old", "s1"):  # none of I1's trusted keys
        m.revoke_credentials(who=who, entity_id=I1, status_list=0, indices=packed(7), reason=0)
        m.suspend_credentials(who=who, entity_id=I1, status_list=0, indices=packed(7),
                              reason=0)
    for who in ("i1", "bodyA", "s1"):  # only root administrators lift
        m.lift_revocations(who=who, entity_id=I1, status_list=0, indices=packed(5), reason=0)
    m.lift_revocations(who="admin2", entity_id=I1, status_list=0, indices=packed(300),
                       reason=4)
    m.check_status(entity_id=I1, status_list=0, index=5, first=0, count=2)
    assert m.model.status_of(I1, 0, 5) == (True, False)
    assert m.model.status_of(I1, 0, 300) == (False, False)
    assert m.model.status_of(I1, 0, 6) == (False, False)
    assert m.model.status_of(I1, 0, 7) == (False, False)
    assert m.refusals == 17


def test_status_indices_at_and_beyond_the_limits(machine: RegistryMachine) -> None:
    m = machine
    last = STATUS_LIST_SIZE - 1
    m.revoke_credentials(who="i3", entity_id=OWN, status_list=0, indices=packed(last, 0),
                         reason=0)
    m.suspend_credentials(who="i3", entity_id=OWN, status_list=2**32 - 1,
                          indices=packed(0, 255, 256, 0), reason=0)
    for indices in (packed(STATUS_LIST_SIZE), packed(2**32 - 1), packed(1, STATUS_LIST_SIZE),
                    b"", b"\x00\x00\x01", packed(1) + b"\x00"):
        m.revoke_credentials(who="i3", entity_id=OWN, status_list=0, indices=indices,
                             reason=0)  # refused, and nothing written
    m.check_status(entity_id=I3, status_list=0, index=last, first=511, count=1)
    m.check_status(entity_id=I3, status_list=2**32 - 1, index=STATUS_LIST_SIZE, first=512,
                   count=0)
    m.check_status(entity_id=I3, status_list=1, index=last, first=510, count=3)
    m.check_status(entity_id=I3, status_list=0, index=0, first=0, count=512)  # a whole list
    assert m.model.status_of(I3, 0, last) == (True, False)
    assert m.model.status_of(I3, 0, 1) == (False, False)
    assert m.model.status_of(I3, 2**32 - 1, 256) == (False, True)
    assert m.refusals == 6


def test_a_long_status_history_answers_every_past_time(machine: RegistryMachine) -> None:
    """Suspensions and reactivations ten seconds apart: ``trustedAt`` finds the status of each
    past second by binary search in the history, which must agree with the model's scan."""
    m = machine
    for status in (Status.SUSPENDED, Status.ACTIVE) * 4:
        m.set_status(who="admin2", entity_id=I3, status=status)
        m.advance_time(seconds=10)
    for back in range(0, 90, 3):
        m.check_trusted_at(key="i3", back=back)
    m.check_entity(entity_id=I3)
    assert len(m.model.entities[I3].history) == 9
    assert m.refusals == 0


def test_a_signed_anchor_uses_its_nonce_once(machine: RegistryMachine) -> None:
    m = machine
    request = {"root": 1, "tree_size": 1}
    m.anchor_with_signature(relayer="s9", signer="key", key="i1", nonce=0, deadline=60,
                            **request)
    m.anchor_with_signature(relayer="s9", signer="key", key="i1", nonce=-1, deadline=60,
                            root=2, tree_size=1)  # refused: the used nonce again
    m.anchor_with_signature(relayer="s9", signer="key", key="i1", nonce=1, deadline=60,
                            root=2, tree_size=1)  # refused: a nonce ahead
    m.anchor_with_signature(relayer="s9", signer="i1b", key="i1", nonce=0, deadline=60,
                            root=2, tree_size=1)  # refused: another key signed it
    m.anchor_with_signature(relayer="s9", signer="key", key="i1", nonce=0, deadline=-1,
                            root=2, tree_size=1)  # refused: expired
    m.use_nonce(who="i1")
    m.anchor_with_signature(relayer="i1", signer="key", key="i1", nonce=-1, deadline=0,
                            root=2, tree_size=1)  # refused: cancelled by useNonce
    m.anchor_with_signature(relayer="s9", signer="key", key="i2", nonce=0, deadline=0,
                            **request)  # the same root, another issuer: its own anchor
    m.anchor_with_signature(relayer="s9", signer="key", key="i1b", nonce=0, deadline=0,
                            **request)  # refused: I1 anchored this root already
    assert set(m.model.anchors) == {(I1, ROOTS[1]), (I2, ROOTS[1])}
    assert m.model.nonces[m._address("i1")] == 2
    assert m.refusals == 6


def test_keys_act_only_within_their_window(machine: RegistryMachine) -> None:
    m = machine
    m.add_key(who="bodyA", entity_id=I1, key="s3", valid_from=3600, valid_until=None)
    m.add_key(who="i1", entity_id=I1, key="s4", valid_from=None, valid_until=None)  # refused
    m.add_key(who="bodyA", entity_id=I1, key="s4", valid_from=None, valid_until=0)  # refused
    m.anchor(who="s3", root=1, tree_size=1)  # refused: not yet valid
    m.advance_time(seconds=3600)
    m.anchor(who="s3", root=1, tree_size=1)
    m.shorten_key_expiry(who="s3", key="s3", until=2)  # its own trusted key may rotate it
    m.shorten_key_expiry(who="s3", key="s3", until=3)  # refused: not earlier
    m.advance_time(seconds=2)
    m.anchor(who="s3", root=2, tree_size=1)  # refused: expired
    m.check_trusted_at(key="s3", back=1)
    m.add_key(who="bodyA", entity_id=I1, key="s3", valid_from=None, valid_until=None)  # refused
    m.add_key(who="bodyA", entity_id=6, key="s5", valid_from=None, valid_until=None)  # refused
    assert (I1, ROOTS[1]) in m.model.anchors
    assert m.model.keys[m._address("s3")].valid_until < m.evm.now
    assert m._address("s4") not in m.model.keys
    assert m.refusals == 7


def test_the_hierarchy_keeps_its_depth_and_scopes(machine: RegistryMachine) -> None:
    m = machine
    m.accredit(who="bodyB", parent=2, kind=Kind.ACCREDITATION_BODY, scope=1, did="new")  # 7
    m.accredit(who="admin", parent=7, kind=Kind.ACCREDITATION_BODY, scope=1, did="new")  # 8
    m.accredit(who="admin", parent=8, kind=Kind.TRUSTED_ISSUER, scope=1, did="new")  # refused
    m.accredit(who="admin2", parent=7, kind=Kind.TRUSTED_ISSUER, scope=4, did="new")  # refused
    m.accredit(who="bodyA", parent=7, kind=Kind.TRUSTED_ISSUER, scope=1, did="new")  # refused
    m.accredit(who="admin", parent=I1, kind=Kind.TRUSTED_ISSUER, scope=1, did="new")  # refused
    m.accredit(who="admin", parent=0, kind=Kind.TRUSTED_ISSUER, scope=1, did="taken")  # refused
    m.accredit(who="admin", parent=0, kind=Kind.TRUSTED_ISSUER, scope=1, did="longest")
    m.accredit(who="admin", parent=0, kind=Kind.TRUSTED_ISSUER, scope=1, did="too long")
    m.set_status(who="bodyA", entity_id=2, status=Status.SUSPENDED)
    m.accredit(who="admin", parent=7, kind=Kind.TRUSTED_ISSUER, scope=1, did="new")  # refused
    m.check_entity(entity_id=8)
    m.check_entity(entity_id=9)
    assert [m.model.entities[i].depth for i in (7, 8, 9)] == [3, 4, 1]
    assert m.refusals == 7


def test_a_body_key_cannot_change_status_lists_even_its_own_entitys(
        machine: RegistryMachine) -> None:
    """Only trusted issuers' keys change status: an accreditation body's trusted key is
    refused even for its own entity's lists (bodies anchor nothing, so have no status)."""
    m = machine
    m.suspend_credentials(who="bodyA", entity_id=OWN, status_list=0, indices=packed(1),
                          reason=0)  # refused: NotAuthorized
    m.anchor(who="bodyA", root=1, tree_size=1)  # refused: NotAnIssuer
    assert m.model.status_of(1, 0, 1) == (False, False)
    assert m.refusals == 2
