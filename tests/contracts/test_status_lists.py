"""CredentialAnchor's status lists: every issuer's revocation and suspension lists addressed by
(entity, list, index), on the in-process chain and on anvil. Bulk changes with adjacent and
scattered indices, the past-tense events with the packed indices, the reads of one entry, of one
word and of a whole list, the bit order of the W3C bitstring, the gas targets, and the red-team
cases at and beyond every limit."""

from __future__ import annotations

import pytest

from anchor_service.errors import RevertError
from testkit.world import World, events
from tests.contracts.helpers import outcome, packed, raw_indices, view_error
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    StatusBits,
    StatusWords,
    decode_status_indices,
    read,
)

LAST_LIST = 2**32 - 1
FIRST_INDEX_GAS_LIMIT = 70_000
EXTRA_ADJACENT_INDEX_GAS_LIMIT = 1_000
FULL_WORD = 2**256 - 1


def _bits(world: World, status_list: int, index: int, entity: int | None = None) -> StatusBits:
    entity_id = world.issuer_id if entity is None else entity
    return read(StatusBits, world.anchor.functions.statusOf(entity_id, status_list, index))


def _words(world: World, status_list: int, first: int, count: int) -> StatusWords:
    return read(StatusWords, world.anchor.functions.statusWords(world.issuer_id, status_list,
                                                                 first, count))


def _refusal(world: World, call: object) -> RevertError:
    with pytest.raises(RevertError) as caught:
        world.tx(world.issuer).transact(call)  # type: ignore[arg-type]
    return caught.value


def _bitstring(words: tuple[int, ...]) -> bytes:
    return b"".join(word.to_bytes(32, "big") for word in words)


def _bit(bitstring: bytes, index: int) -> bool:
    """The W3C Bitstring Status List's bit: index 0 is the most significant bit of byte 0."""
    return bool(bitstring[index // 8] >> (7 - index % 8) & 1)


def test_revoke_suspend_reinstate_by_entity_list_and_index(world: World) -> None:
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    revoked = [0, 5, 255, 256, 599, STATUS_LIST_SIZE - 1]
    issuer.transact(anchor.revoke(world.issuer_id, 3, packed(*revoked), 3))
    probe = {*revoked, 1, 4, 6, 254, 257, 598, 600, STATUS_LIST_SIZE - 2}
    assert {i for i in probe if _bits(world, 3, i).revoked} == set(revoked)
    assert not any(_bits(world, 3, i).suspended for i in probe)
    # Another list of the same issuer, and the same list of another issuer, are untouched.
    assert not any(_bits(world, 2, i).revoked or _bits(world, 4, i).revoked for i in revoked)
    assert not any(_bits(world, 3, i, entity=world.revoked_id).revoked for i in revoked)

    issuer.transact(anchor.suspend(world.issuer_id, 3, packed(7, 300), 4))
    assert _bits(world, 3, 7) == StatusBits(revoked=False, suspended=True)
    issuer.transact(anchor.reinstate(world.issuer_id, 3, packed(7), 0))
    assert _bits(world, 3, 7) == StatusBits(revoked=False, suspended=False)
    assert _bits(world, 3, 300).suspended is True
    # Suspending a revoked entry keeps both bits; reinstating lifts only the suspension.
    issuer.transact(anchor.suspend(world.issuer_id, 3, packed(5), 0))
    assert _bits(world, 3, 5) == StatusBits(revoked=True, suspended=True)
    issuer.transact(anchor.reinstate(world.issuer_id, 3, packed(5), 0))
    assert _bits(world, 3, 5) == StatusBits(revoked=True, suspended=False)
    # Changes are idempotent: revoking twice, or reinstating what is not suspended, is no error.
    assert outcome(issuer, anchor.revoke(world.issuer_id, 3, packed(0, 0), 1)) == "ok"
    assert outcome(issuer, anchor.reinstate(world.issuer_id, 3, packed(8), 1)) == "ok"
    assert _bits(world, 3, 0).revoked is True


def test_bulk_with_scattered_unordered_and_repeated_indices(world: World) -> None:
    """The contract writes a word each time the run of indices leaves it: indices that jump
    between words, come back to a word already written, or repeat, all land."""
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    scattered = [STATUS_LIST_SIZE - 1, 0, 70_000, 1, 256, 70_001, 0, 255, 131_000, 2]
    issuer.transact(anchor.suspend(world.issuer_id, 9, packed(*scattered), 1))
    whole = _words(world, 9, 0, STATUS_LIST_WORDS)
    bitstring = _bitstring(whole.suspended)
    assert {i for i in range(STATUS_LIST_SIZE) if _bit(bitstring, i)} == set(scattered)
    assert whole.revoked == (0,) * STATUS_LIST_WORDS

    cleared = [2, 131_000, 0, 70_001]
    issuer.transact(anchor.reinstate(world.issuer_id, 9, packed(*cleared), 1))
    bitstring = _bitstring(_words(world, 9, 0, STATUS_LIST_WORDS).suspended)
    left = set(scattered) - set(cleared)
    assert {i for i in range(STATUS_LIST_SIZE) if _bit(bitstring, i)} == left


def test_the_words_are_the_w3c_bitstring_most_significant_bit_first(world: World) -> None:
    """Entry i is bit 255 - i % 256 of word i // 256: the words' big-endian bytes, joined, are
    the Recommendation's bitstring (index 0 = the most significant bit of byte 0)."""
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    issuer.transact(anchor.revoke(world.issuer_id, 0, packed(0, 9, 256, 511, 131_071), 1))
    words = _words(world, 0, 0, 2)
    assert words.revoked == ((1 << 255) | (1 << (255 - 9)), (1 << 255) | 1)
    assert _bitstring(words.revoked)[:2] == bytes([0b1000_0000, 0b0100_0000])
    assert _words(world, 0, STATUS_LIST_WORDS - 1, 1).revoked == (1,)
    whole = _bitstring(_words(world, 0, 0, STATUS_LIST_WORDS).revoked)
    assert len(whole) * 8 == STATUS_LIST_SIZE
    assert [i for i in range(STATUS_LIST_SIZE) if _bit(whole, i)] == [0, 9, 256, 511, 131_071]


def test_reads_of_one_word_and_of_a_whole_list_in_one_call(world: World) -> None:
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    issuer.transact(anchor.revoke(world.issuer_id, 1, packed(*range(256, 512)), 1))
    issuer.transact(anchor.suspend(world.issuer_id, 1, packed(1_000), 1))
    assert _words(world, 1, 1, 1) == StatusWords(revoked=(FULL_WORD,), suspended=(0,))
    assert _words(world, 1, 3, 1) == StatusWords(revoked=(0,), suspended=(1 << (255 - 232),))
    whole = _words(world, 1, 0, STATUS_LIST_WORDS)
    assert len(whole.revoked) == len(whole.suspended) == STATUS_LIST_WORDS
    assert whole.revoked[:3] == (0, FULL_WORD, 0)
    assert whole.suspended[3] == 1 << (255 - 232)
    assert _words(world, 1, 5, 0) == StatusWords(revoked=(), suspended=())
    # The whole list is one eth_call within the node's gas cap: it answered above without a
    # gas limit given, and its estimate fits a block.
    call = anchor.statusWords(world.issuer_id, 1, 0, STATUS_LIST_WORDS)
    gas_limit = int(world.chain.w3.eth.get_block("latest")["gasLimit"])
    assert call.estimate_gas() < min(gas_limit, 30_000_000)


@pytest.mark.parametrize(("first", "count", "expected"), [
    (0, STATUS_LIST_WORDS, "ok"),
    (STATUS_LIST_WORDS - 1, 1, "ok"),
    (STATUS_LIST_WORDS - 1, 0, "ok"),
    (STATUS_LIST_WORDS - 1, 2, "WordRangeOutOfList"),
    (STATUS_LIST_WORDS, 0, "WordRangeOutOfList"),
    (STATUS_LIST_WORDS, 1, "WordRangeOutOfList"),
    (0, STATUS_LIST_WORDS + 1, "WordRangeOutOfList"),
    (1, 2**256 - 1, "WordRangeOutOfList"),  # first + count would overflow
    (2**256 - 1, 1, "WordRangeOutOfList"),
])
def test_word_ranges_at_and_beyond_the_list(world: World, first: int, count: int,
                                            expected: str) -> None:
    call = world.anchor.functions.statusWords(world.issuer_id, LAST_LIST, first, count)
    assert view_error(world.tx(world.issuer), call) == expected


@pytest.mark.parametrize("function", ["revoke", "suspend", "reinstate"])
def test_indices_at_and_beyond_the_limits(world: World, function: str) -> None:
    change = getattr(world.anchor.functions, function)
    issuer = world.tx(world.issuer)
    assert outcome(issuer, change(world.issuer_id, 0, raw_indices([STATUS_LIST_SIZE - 1]), 1)) \
        == "ok"
    for index in (STATUS_LIST_SIZE, STATUS_LIST_SIZE + 255, 2**32 - 1):
        refused = _refusal(world, change(world.issuer_id, 0, raw_indices([index]), 1))
        assert (refused.name, refused.args_) == ("StatusIndexOutOfRange", (index,))
    # One bad index refuses the whole call: the good ones before it are not set either.
    refused = _refusal(world, change(world.issuer_id, 4, raw_indices([1, 2, STATUS_LIST_SIZE]), 1))
    assert refused.name == "StatusIndexOutOfRange"
    for malformed in (b"", b"\0", b"\0\0\0", b"\0\0\0\1\0", b"\0" * 7):
        refused = _refusal(world, change(world.issuer_id, 4, malformed, 1))
        assert (refused.name, refused.args_) == ("MalformedStatusIndices", (len(malformed),))


def test_revoke_at_the_limits_sets_exactly_the_bits_asked(world: World) -> None:
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    assert outcome(issuer, anchor.revoke(world.issuer_id, 4, raw_indices([1, 2, STATUS_LIST_SIZE]),
                                         1)) == "StatusIndexOutOfRange"
    assert _bits(world, 4, 1).revoked is False  # nothing of the refused call stayed
    # The highest list number is an ordinary list, apart from list 0.
    issuer.transact(anchor.revoke(world.issuer_id, LAST_LIST, packed(STATUS_LIST_SIZE - 1, 0), 1))
    assert _bits(world, LAST_LIST, STATUS_LIST_SIZE - 1).revoked is True
    assert _bits(world, LAST_LIST, 0).revoked is True
    assert _words(world, LAST_LIST, STATUS_LIST_WORDS - 1, 1).revoked == (1,)
    assert _bits(world, 0, 0).revoked is False
    assert _bits(world, 0, STATUS_LIST_SIZE - 1).revoked is False
    assert _bits(world, LAST_LIST - 1, STATUS_LIST_SIZE - 1).revoked is False
    # The last entry of one list and the first of the next are distinct words.
    issuer.transact(anchor.suspend(world.issuer_id, 6, packed(STATUS_LIST_SIZE - 1), 1))
    assert _bits(world, 7, 0).suspended is False
    assert _words(world, 7, 0, 1).suspended == (0,)
    for index in (STATUS_LIST_SIZE, 2**32 - 1):
        assert view_error(issuer, anchor.statusOf(world.issuer_id, 0, index)) \
            == "StatusIndexOutOfRange"


def test_every_change_emits_its_past_tense_event_with_the_packed_indices(world: World) -> None:
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    start = world.chain.w3.eth.block_number + 1
    indices = packed(3, 4, 5, 1_000, 131_071)
    changes = [
        ("CredentialsRevoked", world.issuer, anchor.revoke(world.issuer_id, 12, indices, 3)),
        ("CredentialsSuspended", world.issuer_key2,
         anchor.suspend(world.issuer_id, 12, indices, 4)),
        ("CredentialsReinstated", world.issuer, anchor.reinstate(world.issuer_id, 12, indices, 5)),
        ("RevocationsLifted", world.admin, anchor.liftRevocations(world.issuer_id, 12, indices, 6)),
    ]
    for reason, (name, caller, call) in enumerate(changes, start=3):
        receipt = world.tx(caller).transact(call)
        (event,) = events(world.anchor, name, receipt)
        args = event["args"]
        assert (args["entityId"], args["statusList"], args["reason"], args["by"]) == (
            world.issuer_id, 12, reason, caller.address)
        assert bytes(args["indices"]) == indices
        assert decode_status_indices(bytes(args["indices"])) == (3, 4, 5, 1_000, 131_071)
    assert _bits(world, 12, 1_000) == StatusBits(revoked=False, suspended=False)
    # A watcher finds a list's changes by its indexed entity and list number.
    issuer.transact(anchor.revoke(world.issuer_id, 13, packed(1), 0))
    logs = world.anchor.events.CredentialsRevoked().get_logs(
        from_block=start, argument_filters={"entityId": world.issuer_id, "statusList": 12})
    assert [bytes(log["args"]["indices"]) for log in logs] == [indices]


def test_status_gas_first_index_and_each_extra_adjacent_index(world: World) -> None:
    """Gas targets: the first index of a call at most 70,000, each extra adjacent index at
    most 1,000, within one word and over a run spanning words; every run writes fresh words
    (zero to non-zero, the dearest case)."""
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)

    def used(status_list: int, indices: range) -> int:
        receipt = issuer.transact(anchor.revoke(world.issuer_id, status_list, packed(*indices), 1))
        return int(receipt["gasUsed"])

    first = used(20, range(1))
    assert first <= FIRST_INDEX_GAS_LIMIT, first
    within_word = (used(21, range(100)) - first) / 99
    spanning = (used(22, range(200, 300)) - first) / 99  # words 0 and 1
    assert within_word <= EXTRA_ADJACENT_INDEX_GAS_LIMIT, within_word
    assert spanning <= EXTRA_ADJACENT_INDEX_GAS_LIMIT, spanning
    for change in (anchor.suspend, anchor.reinstate):
        receipt = issuer.transact(change(world.issuer_id, 23, packed(5), 1))
        assert receipt["gasUsed"] <= FIRST_INDEX_GAS_LIMIT, receipt["gasUsed"]


def test_ten_thousand_adjacent_indices_in_one_transaction(world: World) -> None:
    """An issuer revokes 10,000 credentials in one transaction (the service's chunk), each
    extra index within the target, and the list reads back exactly those entries."""
    anchor, issuer = world.anchor.functions, world.tx(world.issuer)
    first = int(issuer.transact(anchor.revoke(world.issuer_id, 30, packed(0), 1))["gasUsed"])
    # An explicit gas limit spares the in-process chain an estimate (a second execution).
    receipt = issuer.transact(anchor.revoke(world.issuer_id, 31, packed(*range(10_000)), 1),
                              gas=9_000_000)
    assert (receipt["gasUsed"] - first) / 9_999 <= EXTRA_ADJACENT_INDEX_GAS_LIMIT
    words = _words(world, 31, 0, 40).revoked
    assert words[:39] == (FULL_WORD,) * 39  # 39 * 256 = 9,984 entries
    assert words[39] == FULL_WORD ^ ((1 << 240) - 1)  # the next 16 entries
