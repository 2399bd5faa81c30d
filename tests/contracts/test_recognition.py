"""Mutual recognition in IssuerRegistry, on the in-process chain and on anvil: an entity records
that it recognises another entity's credentials (an issuer's, or a body's: then those of every
entity below it), per kind and issuance-time window, and may withdraw it; ``recognisedAt``
answers for an entity and for the members of a body that recorded it, with the recognition
that answers. Each rule has its own test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from testkit.world import World, events
from tests.contracts.helpers import funded_account, outcome, refusal, view_refusal
from verifier.contract_types import (
    ALL_SCOPES,
    OPEN_UNTIL,
    Kind,
    Recognition,
    RecognitionAnswer,
    RecognitionPath,
    Scope,
    read,
)

DEGREE, NON_DEGREE, NON_FORMAL = Scope.FORMAL_DEGREE, Scope.FORMAL_NON_DEGREE, Scope.NON_FORMAL
MAX_PER_PAIR = 16
NOT_RECOGNISED = RecognitionAnswer(recognised=False, recognition_id=0, recogniser_id=0,
                                   subject_id=0)


@dataclass
class Alliance:
    """Beside the world's body B (issuer I, revoked issuer R): an alliance body AL (top level)
    with issuer X and sub-body SUB directly under it and issuer Y under SUB (two levels below
    AL); each with one anchoring key of its own."""

    al: int
    sub: int
    x: int
    y: int
    keys: dict[int, LocalAccount]


def _accredit(world: World, by: LocalAccount, parent: int, kind: Kind, *, did: str,
              key: LocalAccount) -> int:
    registry = world.registry.functions
    receipt = world.tx(by).transact(registry.accredit(parent, kind, did, ALL_SCOPES, "",
                                                      b"\0" * 32))
    (event,) = events(world.registry, "EntityAccredited", receipt)
    entity_id = int(event["args"]["id"])
    world.tx(by).transact(registry.addKey(entity_id, key.address, 0, 0))
    return entity_id


@pytest.fixture
def alliance(world: World) -> Alliance:
    w3, admin = world.chain.w3, world.admin
    k_al, k_sub, k_x, k_y = (funded_account(w3, admin) for _ in range(4))
    body, issuer = Kind.ACCREDITATION_BODY, Kind.TRUSTED_ISSUER
    al = _accredit(world, admin, 0, body, did="did:web:alliance.example", key=k_al)
    sub = _accredit(world, k_al, al, body, did="did:web:sub.example", key=k_sub)
    x = _accredit(world, k_al, al, issuer, did="did:web:uni-x.example", key=k_x)
    y = _accredit(world, k_sub, sub, issuer, did="did:web:uni-y.example", key=k_y)
    keys = {al: k_al, sub: k_sub, x: k_x, y: k_y, world.issuer_id: world.issuer,
            world.body_id: world.body}
    return Alliance(al, sub, x, y, keys)


def _recognise(world: World, alliance: Alliance, recogniser: int, subject: int, *,
               scope: int = ALL_SCOPES, valid_from: int = 0, valid_until: int = 0) -> int:
    """Record a recognition with the recogniser's own key; its id."""
    receipt = world.tx(alliance.keys[recogniser]).transact(world.registry.functions.recognise(
        recogniser, subject, scope, valid_from, valid_until))
    (event,) = events(world.registry, "RecognitionRecorded", receipt)
    return int(event["args"]["id"])


def _withdraw(world: World, alliance: Alliance, recognition_id: int) -> int:
    """Withdraw with the recogniser's own key; the withdrawal's effective time."""
    found = _recognition(world, recognition_id)
    receipt = world.tx(alliance.keys[found.recogniser_id]).transact(
        world.registry.functions.withdrawRecognition(recognition_id))
    (event,) = events(world.registry, "RecognitionWithdrawn", receipt)
    return int(event["args"]["withdrawnAt"])


def _answer(world: World, recogniser: int, subject: int, kind: int = DEGREE,
            when: int | None = None) -> RecognitionAnswer:
    at = world.now() if when is None else when
    return read(RecognitionAnswer, world.registry.functions.recognisedAt(recogniser, subject,
                                                                          kind, at))


def _recognition(world: World, recognition_id: int) -> Recognition:
    return read(Recognition, world.registry.functions.recognition(recognition_id))


def _refusal(world: World, caller: LocalAccount, call: Any) -> tuple[str, tuple[Any, ...]]:
    return refusal(world.tx(caller), call)


# ------------------------------------------------------------------------- the paths


def test_direct_recognition(world: World, alliance: Alliance) -> None:
    """I recognises X: the answer names that recognition, I and X; without it, not
    recognised (all zero), and a recognition in the other direction does not count."""
    i, x = world.issuer_id, alliance.x
    assert _answer(world, i, x) == NOT_RECOGNISED
    _recognise(world, alliance, x, i)  # X recognises I: says nothing of I recognising X
    assert _answer(world, i, x) == NOT_RECOGNISED
    rid = _recognise(world, alliance, i, x)
    answer = _answer(world, i, x)
    assert answer == RecognitionAnswer(recognised=True, recognition_id=rid, recogniser_id=i,
                                       subject_id=x)
    assert answer.path(i, x) is RecognitionPath.DIRECT


def test_recognising_a_body_covers_the_issuers_below_it_at_any_depth(
        world: World, alliance: Alliance) -> None:
    i = world.issuer_id
    rid = _recognise(world, alliance, i, alliance.al)
    for below in (alliance.x, alliance.sub, alliance.y):  # y is two levels below AL
        answer = _answer(world, i, below)
        assert answer == RecognitionAnswer(recognised=True, recognition_id=rid,
                                           recogniser_id=i, subject_id=alliance.al), below
        assert answer.path(i, below) is RecognitionPath.THROUGH_BODY
    # Recognising the sub-body covers Y but not its parent's other issuer X.
    assert _answer(world, alliance.y, world.revoked_id) == NOT_RECOGNISED  # not below AL
    _recognise(world, alliance, alliance.x, alliance.sub)
    assert _answer(world, alliance.x, alliance.y).subject_id == alliance.sub
    assert _answer(world, alliance.x, alliance.al) == NOT_RECOGNISED


def test_a_bodys_recognition_applies_to_its_members(world: World, alliance: Alliance) -> None:
    """AL recognises I: X and Y (AL's members, Y two levels down) recognise I through AL; an
    entity outside AL (the revoked issuer under B) does not."""
    i = world.issuer_id
    rid = _recognise(world, alliance, alliance.al, i)
    for member in (alliance.x, alliance.sub, alliance.y):
        answer = _answer(world, member, i)
        assert answer == RecognitionAnswer(recognised=True, recognition_id=rid,
                                           recogniser_id=alliance.al, subject_id=i), member
        assert answer.path(member, i) is RecognitionPath.THROUGH_BODY
    assert _answer(world, alliance.al, i).path(alliance.al, i) is RecognitionPath.DIRECT
    assert _answer(world, world.revoked_id, i) == NOT_RECOGNISED
    # A member's recognition does not apply to its body.
    _recognise(world, alliance, alliance.x, world.revoked_id)
    assert _answer(world, alliance.al, world.revoked_id) == NOT_RECOGNISED


def test_a_body_recognising_a_body_covers_members_on_both_sides(
        world: World, alliance: Alliance) -> None:
    rid = _recognise(world, alliance, alliance.al, world.body_id)
    assert _answer(world, alliance.y, world.issuer_id) == RecognitionAnswer(
        recognised=True, recognition_id=rid, recogniser_id=alliance.al,
        subject_id=world.body_id)


# ------------------------------------------------------------------------- withdrawal


def test_withdrawn_recognition_covers_only_credentials_issued_before(
        world: World, alliance: Alliance) -> None:
    i, x = world.issuer_id, alliance.x
    rid = _recognise(world, alliance, i, x)
    before = world.now()
    withdrawn_at = _withdraw(world, alliance, rid)
    assert withdrawn_at == world.now() + 1  # effective from the next second
    assert _recognition(world, rid).withdrawn_at == withdrawn_at
    assert _answer(world, i, x, when=before).recognition_id == rid
    assert _answer(world, i, x, when=withdrawn_at - 1).recognition_id == rid
    assert _answer(world, i, x, when=withdrawn_at) == NOT_RECOGNISED
    assert _answer(world, i, x, when=withdrawn_at + 10**6) == NOT_RECOGNISED


def test_a_recognition_is_withdrawn_once(world: World, alliance: Alliance) -> None:
    rid = _recognise(world, alliance, world.issuer_id, alliance.x)
    withdrawn_at = _withdraw(world, alliance, rid)
    world.chain.increase_time(100)
    assert _refusal(world, world.issuer, world.registry.functions.withdrawRecognition(rid)) == (
        "RecognitionAlreadyWithdrawn", (rid, withdrawn_at))
    assert _recognition(world, rid).withdrawn_at == withdrawn_at  # not moved


def test_after_a_withdrawal_an_older_recognition_still_answers(
        world: World, alliance: Alliance) -> None:
    """Newest first: of two covering recognitions of a pair the newer answers; withdrawn, the
    older answers for credentials issued after the withdrawal."""
    i, x = world.issuer_id, alliance.x
    older = _recognise(world, alliance, i, x)
    newer = _recognise(world, alliance, i, x)
    assert _answer(world, i, x).recognition_id == newer
    withdrawn_at = _withdraw(world, alliance, newer)
    assert _answer(world, i, x, when=withdrawn_at).recognition_id == older
    assert _answer(world, i, x, when=withdrawn_at - 1).recognition_id == newer


# ------------------------------------------------------------------------- windows


def test_the_window_is_of_issuance_time_from_inclusive_until_exclusive(
        world: World, alliance: Alliance) -> None:
    """A window wholly in the past is allowed; validFrom counts, validUntil does not."""
    i, x = world.issuer_id, alliance.x
    start, end = world.now() - 5_000, world.now() - 1_000
    rid = _recognise(world, alliance, i, x, valid_from=start, valid_until=end)
    assert _answer(world, i, x, when=start - 1) == NOT_RECOGNISED
    assert _answer(world, i, x, when=start).recognition_id == rid
    assert _answer(world, i, x, when=end - 1).recognition_id == rid
    assert _answer(world, i, x, when=end) == NOT_RECOGNISED
    assert _answer(world, i, x) == NOT_RECOGNISED  # now is after the window


def test_a_future_window_and_an_open_end(world: World, alliance: Alliance) -> None:
    i, x = world.issuer_id, alliance.x
    start = world.now() + 10_000
    rid = _recognise(world, alliance, i, x, valid_from=start)
    assert _recognition(world, rid).valid_until == OPEN_UNTIL  # 0 is stored as open
    assert _answer(world, i, x) == NOT_RECOGNISED  # not yet
    assert _answer(world, i, x, when=start).recognition_id == rid
    assert _answer(world, i, x, when=OPEN_UNTIL - 1).recognition_id == rid
    assert _answer(world, i, x, when=OPEN_UNTIL) == NOT_RECOGNISED
    # validFrom 0 covers any issuance time, back to 0.
    other = _recognise(world, alliance, i, alliance.y)
    assert _answer(world, i, alliance.y, when=0).recognition_id == other


@pytest.mark.parametrize("window", [(1_000, 1_000), (1_000, 999), (2**40 - 1, 0)])
def test_an_empty_window_is_refused(world: World, alliance: Alliance,
                                    window: tuple[int, int]) -> None:
    valid_from, valid_until = window
    call = world.registry.functions.recognise(world.issuer_id, alliance.x, ALL_SCOPES,
                                              valid_from, valid_until)
    stored_until = OPEN_UNTIL if valid_until == 0 else valid_until
    assert _refusal(world, world.issuer, call) == ("InvalidValidity", (valid_from, stored_until))


# ------------------------------------------------------------------------- kinds


def test_a_recognition_covers_only_its_kinds(world: World, alliance: Alliance) -> None:
    i, x = world.issuer_id, alliance.x
    rid = _recognise(world, alliance, i, x, scope=DEGREE | NON_FORMAL)
    assert _answer(world, i, x, kind=DEGREE).recognition_id == rid
    assert _answer(world, i, x, kind=NON_FORMAL).recognition_id == rid
    assert _answer(world, i, x, kind=NON_DEGREE) == NOT_RECOGNISED
    assert _recognition(world, rid).scope == DEGREE | NON_FORMAL


@pytest.mark.parametrize("kind", [0, 3, 7, 8, 16, 2**31])
def test_a_kind_is_exactly_one_known_scope_bit(world: World, kind: int) -> None:
    call = world.registry.functions.recognisedAt(world.issuer_id, world.body_id, kind, 0)
    assert view_refusal(world.tx(world.admin), call) == ("InvalidScope", (kind, ALL_SCOPES))
    # Even for an entity and itself.
    same = world.registry.functions.recognisedAt(world.issuer_id, world.issuer_id, kind, 0)
    assert view_refusal(world.tx(world.admin), same)[0] == "InvalidScope"


@pytest.mark.parametrize("scope", [0, 8, 9, 2**31])
def test_a_recognitions_scope_is_not_empty_and_known(world: World, alliance: Alliance,
                                                     scope: int) -> None:
    call = world.registry.functions.recognise(world.issuer_id, alliance.x, scope, 0, 0)
    assert _refusal(world, world.issuer, call) == ("InvalidScope", (scope, ALL_SCOPES))


# ------------------------------------------------------------------------- self, unknowns


def test_an_entity_recognises_itself(world: World) -> None:
    for entity in (world.issuer_id, world.body_id, world.revoked_id):
        for kind in Scope:
            answer = _answer(world, entity, entity, kind=kind, when=0)
            assert answer == RecognitionAnswer(recognised=True, recognition_id=0,
                                               recogniser_id=entity, subject_id=entity)
            assert answer.path(entity, entity) is RecognitionPath.SELF


def test_recording_a_recognition_of_oneself_is_refused(world: World) -> None:
    call = world.registry.functions.recognise(world.issuer_id, world.issuer_id, ALL_SCOPES, 0, 0)
    assert _refusal(world, world.issuer, call) == ("SelfRecognition", (world.issuer_id,))


def test_unknown_entities(world: World) -> None:
    registry, admin = world.registry.functions, world.tx(world.admin)
    unknown = int(registry.entityCount().call()) + 1
    for recogniser, subject in ((world.issuer_id, unknown), (unknown, world.issuer_id),
                                (0, world.issuer_id), (world.issuer_id, 0)):
        missing = unknown if unknown in (recogniser, subject) else 0
        assert view_refusal(admin, registry.recognisedAt(recogniser, subject, 1, 0)) == (
            "UnknownEntity", (missing,))
    assert _refusal(world, world.issuer, registry.recognise(world.issuer_id, unknown, 1, 0,
                                                            0)) == ("UnknownEntity", (unknown,))


def test_unknown_recognitions(world: World, alliance: Alliance) -> None:
    registry, admin = world.registry.functions, world.tx(world.admin)
    for rid in (0, 1, 2**64 - 1):
        assert view_refusal(admin, registry.recognition(rid)) == ("UnknownRecognition", (rid,))
        assert _refusal(world, world.issuer, registry.withdrawRecognition(rid)) == (
            "UnknownRecognition", (rid,))
    rid = _recognise(world, alliance, world.issuer_id, alliance.x)
    assert view_refusal(admin, registry.recognition(rid + 1)) == ("UnknownRecognition",
                                                                   (rid + 1,))


def test_at_most_16_recognitions_per_pair_withdrawn_ones_included(
        world: World, alliance: Alliance) -> None:
    i, x = world.issuer_id, alliance.x
    ids = [_recognise(world, alliance, i, x, scope=NON_FORMAL) for _ in range(MAX_PER_PAIR)]
    _withdraw(world, alliance, ids[0])
    call = world.registry.functions.recognise(i, x, ALL_SCOPES, 0, 0)
    assert _refusal(world, world.issuer, call) == ("TooManyRecognitions", (i, x, MAX_PER_PAIR))
    assert world.registry.functions.recognitionIdsBetween(i, x).call() == ids
    # Other pairs, the reverse direction included, are not limited by it.
    assert outcome(world.tx(world.issuer), world.registry.functions.recognise(
        i, alliance.y, ALL_SCOPES, 0, 0)) == "ok"
    _recognise(world, alliance, x, i)
    # The newest of the full pair answers.
    assert _answer(world, i, x, kind=NON_FORMAL).recognition_id == ids[-1]


# ------------------------------------------------------------------------- search order


def test_the_recognisers_own_recognition_of_the_issuer_comes_before_one_of_its_body(
        world: World, alliance: Alliance) -> None:
    """Direct before through a body, whatever their age: I recognises X (older), then AL
    (newer): the answer for X is the direct one."""
    i = world.issuer_id
    direct = _recognise(world, alliance, i, alliance.x)
    through = _recognise(world, alliance, i, alliance.al)
    assert _answer(world, i, alliance.x).recognition_id == direct
    assert _answer(world, i, alliance.y).recognition_id == through
    # The nearest body of the subject comes before a farther one.
    nearer = _recognise(world, alliance, i, alliance.sub)
    assert _answer(world, i, alliance.y).recognition_id == nearer


def test_the_entitys_own_recognitions_come_before_its_bodys(
        world: World, alliance: Alliance) -> None:
    """The recogniser chain is searched outer: X's own recognition of I's body answers before
    AL's recognition of I itself, though the latter is direct to I and newer."""
    x, i = alliance.x, world.issuer_id
    own = _recognise(world, alliance, x, world.body_id)
    body = _recognise(world, alliance, alliance.al, i)
    assert _answer(world, x, i) == RecognitionAnswer(recognised=True, recognition_id=own,
                                                     recogniser_id=x, subject_id=world.body_id)
    # For another member of AL without its own, AL's answers.
    assert _answer(world, alliance.y, i).recognition_id == body
    # A recognition that does not cover the question is skipped, and the search goes on.
    withdrawn_at = _withdraw(world, alliance, own)
    assert _answer(world, x, i, when=withdrawn_at).recognition_id == body


def test_entity_status_is_not_part_of_the_answer(world: World, alliance: Alliance) -> None:
    """The revoked issuer is still recognised (trust is trustedAt's question)."""
    rid = _recognise(world, alliance, world.issuer_id, world.revoked_id)
    assert _answer(world, world.issuer_id, world.revoked_id).recognition_id == rid


# ------------------------------------------------------------------------- records, events


def test_events_carry_every_field(world: World, alliance: Alliance) -> None:
    registry = world.registry.functions
    start = world.now() - 3_000
    receipt = world.tx(world.issuer).transact(registry.recognise(
        world.issuer_id, alliance.al, NON_DEGREE | NON_FORMAL, start, 0))
    (recorded,) = events(world.registry, "RecognitionRecorded", receipt)
    rid = int(registry.recognitionCount().call())
    assert dict(recorded["args"]) == {
        "id": rid, "recogniserId": world.issuer_id, "subjectId": alliance.al,
        "scope": NON_DEGREE | NON_FORMAL, "validFrom": start, "validUntil": OPEN_UNTIL,
        "recordedBy": world.issuer.address}
    # The second key of the issuer withdraws it.
    receipt = world.tx(world.issuer_key2).transact(registry.withdrawRecognition(rid))
    (withdrawn,) = events(world.registry, "RecognitionWithdrawn", receipt)
    block_time = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert dict(withdrawn["args"]) == {
        "id": rid, "recogniserId": world.issuer_id, "subjectId": alliance.al,
        "withdrawnAt": block_time + 1, "withdrawnBy": world.issuer_key2.address}
    assert not world.registry.events.RecognitionRecorded().process_receipt(receipt,
                                                                          errors=DISCARD)


def test_the_record_count_and_ids_between(world: World, alliance: Alliance) -> None:
    registry = world.registry.functions
    count = int(registry.recognitionCount().call())
    start, end = world.now() - 100, world.now() + 100
    receipt = world.tx(world.issuer).transact(registry.recognise(
        world.issuer_id, alliance.x, DEGREE, start, end))
    recorded_at = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    first = count + 1
    assert _recognition(world, first) == Recognition(
        id=first, recogniser_id=world.issuer_id, subject_id=alliance.x, scope=DEGREE,
        valid_from=start, valid_until=end, recorded_at=recorded_at, withdrawn_at=0)
    second = _recognise(world, alliance, alliance.x, world.issuer_id)
    third = _recognise(world, alliance, world.issuer_id, alliance.x)
    assert (second, third) == (first + 1, first + 2)  # ids run on, across pairs
    assert int(registry.recognitionCount().call()) == count + 3
    assert registry.recognitionIdsBetween(world.issuer_id, alliance.x).call() == [first, third]
    assert registry.recognitionIdsBetween(alliance.x, world.issuer_id).call() == [second]
    assert registry.recognitionIdsBetween(alliance.y, world.issuer_id).call() == []
    assert _recognition(world, second).to_dict() == {
        "id": second, "recogniserId": alliance.x, "subjectId": world.issuer_id,
        "scope": ["formal-degree", "formal-non-degree", "non-formal"], "validFrom": 0,
        "validUntil": None, "recordedAt": _recognition(world, second).recorded_at,
        "withdrawnAt": None}
