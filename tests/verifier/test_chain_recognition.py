"""verifier.chain's recognition reads (entity_id_by_did, recognised_at, recognition) against the
deployed registry, on the in-process chain and on anvil: the registry's answers as models,
pinned to one head and cached with it, and refusals of arguments and answers that cannot be
right."""

from __future__ import annotations

from typing import Any

import pytest

from anchor_service.chain import accredit
from testkit.world import World
from verifier.chain import MAX_RECORDER_BLOCKS, JsonRpcChainReader
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
from verifier.errors import ChainReadError

DEGREE, NON_FORMAL = Scope.FORMAL_DEGREE, Scope.NON_FORMAL


def _recognise(world: World, subject: int, scope: int = ALL_SCOPES, valid_from: int = 0) -> int:
    """The world's issuer recognises ``subject``; the recognition's id."""
    registry = world.registry.functions
    world.tx(world.issuer).transact(registry.recognise(world.issuer_id, subject, scope,
                                                       valid_from, 0))
    return int(registry.recognitionCount().call())


def test_the_reader_answers_what_the_registry_holds(world: World) -> None:
    registry = world.registry.address
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    assert reader.entity_id_by_did(registry, "did:web:uni-a.example") == world.issuer_id
    assert reader.entity_id_by_did(registry, "did:web:body.example") == world.body_id
    assert reader.entity_id_by_did(registry, "did:web:nobody.example") == 0
    assert reader.entity_id_by_did(registry, "DID:WEB:UNI-A.EXAMPLE") == 0  # byte for byte

    start = world.now() - 1_000
    rid = _recognise(world, world.body_id, scope=int(DEGREE | NON_FORMAL), valid_from=start)
    found = reader.recognition(registry, rid)
    assert found == read(Recognition, world.registry.functions.recognition(rid))
    assert (found.recogniser_id, found.subject_id, found.scope, found.valid_from,
            found.valid_until, found.withdrawn_at) == (
        world.issuer_id, world.body_id, DEGREE | NON_FORMAL, start, OPEN_UNTIL, 0)

    # The revoked issuer is below the body: recognised through it, for the scope's kinds.
    answer = reader.recognised_at(registry, world.issuer_id, world.revoked_id, NON_FORMAL,
                                  start)
    assert answer == RecognitionAnswer(recognised=True, recognition_id=rid,
                                       recogniser_id=world.issuer_id, subject_id=world.body_id)
    assert answer.path(world.issuer_id, world.revoked_id) is RecognitionPath.THROUGH_BODY
    assert reader.recognised_at(registry, world.issuer_id, world.body_id, DEGREE,
                                start).path(world.issuer_id, world.body_id) \
        is RecognitionPath.DIRECT
    assert reader.recognised_at(registry, world.issuer_id, world.revoked_id,
                                Scope.FORMAL_NON_DEGREE, start).recognised is False
    assert reader.recognised_at(registry, world.issuer_id, world.revoked_id, NON_FORMAL,
                                start - 1).recognised is False
    assert reader.recognised_at(registry, world.body_id, world.body_id, DEGREE, 0).path(
        world.body_id, world.body_id) is RecognitionPath.SELF


def test_a_pinned_reader_answers_from_its_pinned_block(world: World) -> None:
    """A withdrawal (and a new entity) mined after pinning is not seen by that reader, and is
    by a reader pinned later."""
    registry = world.registry.address
    rid = _recognise(world, world.body_id)
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    pinned = reader.at_head()
    later = world.now() + 100  # a credential issued after the withdrawal below
    assert pinned.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE,
                                later).recognition_id == rid
    assert pinned.recognition(registry, rid).withdrawn_at == 0
    assert pinned.entity_id_by_did(registry, "did:web:late.example") == 0

    receipt = world.tx(world.issuer).transact(
        world.registry.functions.withdrawRecognition(rid))
    block_time = int(world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    late_id = accredit(world.tx(world.body), world.registry, parent=world.body_id,
                       kind=Kind.TRUSTED_ISSUER, did="did:web:late.example", scope=ALL_SCOPES,
                       metadata_uri="", metadata_hash=b"\0" * 32)

    # The pinned reader keeps its block's state; a fresh one sees the withdrawal.
    assert pinned.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE,
                                later).recognition_id == rid
    assert pinned.recognition(registry, rid).withdrawn_at == 0
    assert pinned.entity_id_by_did(registry, "did:web:late.example") == 0
    fresh = reader.at_head()
    withdrawn_at = fresh.recognition(registry, rid).withdrawn_at
    assert withdrawn_at == block_time + 1
    assert fresh.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE,
                               later).recognised is False
    assert fresh.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE,
                               withdrawn_at - 1).recognition_id == rid
    assert fresh.entity_id_by_did(registry, "did:web:late.example") == late_id
    # The unpinned reader's own methods read at the head too.
    assert reader.recognition(registry, rid).withdrawn_at == withdrawn_at
    assert reader.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE,
                                later).recognised is False
    assert reader.entity_id_by_did(registry, "did:web:late.example") == late_id


def test_answers_are_cached_per_head(anvil_world: World) -> None:
    """A pinned reader asks the node once per question: the same question again, from the
    same reader or another pinned to the same head, is answered from the head's cache."""
    world = anvil_world
    registry = world.registry.address
    rid = _recognise(world, world.revoked_id, scope=int(NON_FORMAL))
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False, head_max_age=60)
    calls: list[str] = []
    provider: Any = reader.w3.provider
    original = provider.make_request

    def counted(method: str, params: Any) -> Any:
        calls.append(method)
        return original(method, params)

    provider.make_request = counted
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        pinned = reader.at_head()
        for _ in range(2):
            for ask in (pinned, reader.at_head()):
                assert ask.recognition(registry, rid).id == rid
                assert ask.recognised_at(registry, world.issuer_id, world.revoked_id,
                                         NON_FORMAL, 5).recognition_id == rid
                assert ask.entity_id_by_did(registry, "did:web:revoked.example") \
                    == world.revoked_id
        assert calls.count("eth_call") == 3
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)


@pytest.mark.parametrize("kind", [0, 3, 7, 8, True, "non-formal"])
def test_a_kind_that_is_not_one_scope_bit_is_refused_before_any_request(
        world: World, kind: Any) -> None:
    reader = JsonRpcChainReader(world.chain.w3)
    with pytest.raises(ChainReadError, match="exactly one scope bit"):
        reader.recognised_at(world.registry.address, world.issuer_id, world.body_id, kind, 0)


@pytest.mark.parametrize("when", [-1, 2**40, 1.5, "0"])
def test_a_time_outside_uint40_is_refused_before_any_request(world: World, when: Any) -> None:
    reader = JsonRpcChainReader(world.chain.w3)
    with pytest.raises(ChainReadError, match=r"is not in 0\.\.1099511627775"):
        reader.recognised_at(world.registry.address, world.issuer_id, world.body_id, DEGREE,
                             when)


def test_unknown_entities_and_recognitions_are_failed_reads(world: World) -> None:
    registry = world.registry.address
    reader = JsonRpcChainReader(world.chain.w3)
    with pytest.raises(ChainReadError, match="recognition 999"):
        reader.recognition(registry, 999)
    with pytest.raises(ChainReadError, match="whether entity 2 recognises entity 999"):
        reader.recognised_at(registry, world.issuer_id, 999, DEGREE, 0)
    with pytest.raises(ChainReadError, match="whether entity 999 recognises entity 2"):
        reader.recognised_at(registry, 999, world.issuer_id, DEGREE, 0)
    with pytest.raises(ChainReadError, match="a DID is a string"):
        reader.entity_id_by_did(registry, b"did:web:uni-a.example")  # type: ignore[arg-type]


def test_recognitions_are_read_as_the_registry_stood_at_a_past_block(world: World) -> None:
    """A newer recognition of the same pair, and a withdrawal, made after block ``then``:
    read at ``then``, the registry answers as it did then."""
    registry = world.registry.address
    first = _recognise(world, world.body_id, scope=int(NON_FORMAL))
    then = int(world.chain.w3.eth.block_number)
    world.chain.increase_time(10)
    world.tx(world.issuer).transact(world.registry.functions.withdrawRecognition(first))
    newer = _recognise(world, world.body_id)
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    pinned = reader.at_head()
    when = world.now() - 100  # an issuance time both recognitions cover
    assert pinned.recognised_at(registry, world.issuer_id, world.revoked_id, NON_FORMAL,
                                when).recognition_id == newer
    assert pinned.recognised_at(registry, world.issuer_id, world.revoked_id, NON_FORMAL,
                                when, at_block=then).recognition_id == first
    assert pinned.recognised_at(registry, world.issuer_id, world.revoked_id, DEGREE, when,
                                at_block=then).recognised is False
    assert pinned.recognition(registry, first).withdrawn_at != 0
    assert pinned.recognition(registry, first, at_block=then).withdrawn_at == 0
    with pytest.raises(ChainReadError, match=f"recognition {newer}"):
        pinned.recognition(registry, newer, at_block=then)  # not recorded yet then
    # The unpinned reader takes the block too.
    assert reader.recognised_at(registry, world.issuer_id, world.revoked_id, NON_FORMAL,
                                when, at_block=then).recognition_id == first
    assert reader.recognition(registry, first, at_block=then).withdrawn_at == 0
    with pytest.raises(ChainReadError, match="is not in the chain up to"):
        pinned.recognition(registry, first, at_block=pinned.latest_block() + 5)


def test_the_key_that_recorded_a_recognition_is_read_from_its_event(world: World) -> None:
    registry = world.registry.address
    functions = world.registry.functions
    world.tx(world.issuer_key2).transact(functions.recognise(world.issuer_id, world.body_id,
                                                             ALL_SCOPES, 0, 0))
    by_second = int(functions.recognitionCount().call())
    world.chain.increase_time(5)  # the two in different seconds
    by_first = _recognise(world, world.revoked_id)
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    for rid, key in ((by_second, world.issuer_key2), (by_first, world.issuer)):
        recorded_at = reader.recognition(registry, rid).recorded_at
        assert reader.recognition_recorder(registry, rid, recorded_at) == key.address.lower()
        assert reader.at_head().recognition_recorder(registry, rid, recorded_at,
                                                     at_block=world.chain.w3.eth.block_number
                                                     ) == key.address.lower()
    recorded_at = reader.recognition(registry, by_first).recorded_at
    with pytest.raises(ChainReadError, match=f"who recorded recognition {by_first}"):
        reader.recognition_recorder(registry, by_first, recorded_at + 10_000)  # no block then
    with pytest.raises(ChainReadError, match="RecognitionRecorded events"):
        reader.recognition_recorder(registry, by_second, recorded_at)  # not its block
    with pytest.raises(ChainReadError, match="is not in 0"):
        reader.recognition_recorder(registry, by_first, -1)


def test_more_blocks_in_one_second_than_searched_are_refused(anvil_world: World) -> None:
    """Blocks sharing the recognition's second beyond MAX_RECORDER_BLOCKS: refused, not
    scanned."""
    world = anvil_world
    registry = world.registry.address
    snapshot = world.chain.snapshot()
    try:
        rid = _recognise(world, world.revoked_id)
        recorded_at = world.now()
        reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
        assert reader.recognition_recorder(registry, rid, recorded_at) \
            == world.issuer.address.lower()
        provider: Any = world.chain.w3.provider
        provider.make_request("evm_setNextBlockTimestamp", [recorded_at])
        provider.make_request("anvil_mine", [hex(MAX_RECORDER_BLOCKS), hex(0)])
        assert world.now() == recorded_at
        refused = rf"\d+ blocks were made at {recorded_at}, more than the {MAX_RECORDER_BLOCKS}"
        with pytest.raises(ChainReadError, match=refused):
            JsonRpcChainReader(world.chain.w3, head_max_age=0).recognition_recorder(
                registry, rid, recorded_at)
    finally:
        world.chain.revert(snapshot)
