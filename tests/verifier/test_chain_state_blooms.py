"""The reader's answers kept from head to head while the blocks' log blooms show no change of
what they depend on, on the in-process chain and on anvil: a new head that changed nothing
(an empty block, another batch anchored) costs no ``eth_call``; a status change is seen at
the first head that holds it, and so is a registry change (a back-dated revocation of the
issuer); the blooms the nodes give are the ones :func:`bloom_mask` predicts; and
:class:`BloomWindow` answers as its definition says, within its bound."""

from __future__ import annotations

import secrets
from typing import Any, cast

from hexbytes import HexBytes
from hypothesis import given
from hypothesis import strategies as st

from testkit.world import World
from tests.anchor_service.rpc_proxy import ZeroBloomProxy
from tests.verifier.test_bounded_chain_reads import (
    POSITION,
    anchor_huge_batch,
    change_status,
    counted,
    reader_for,
)
from verifier._log_blooms import _MAX_BLOOMS, FULL_BLOOM, BloomWindow, bloom_mask
from verifier.chain import CacheMiss, JsonRpcChainReader, _bloom_of
from verifier.verify import CheckStatus, VerificationReport


def _failed(report: VerificationReport) -> set[str]:
    return {check.name for check in report.checks if check.status is CheckStatus.FAILED}


def _bloom_of_block(world: World, number: int) -> int:
    block = world.chain.w3.eth.get_block(number)
    return int.from_bytes(bytes(block["logsBloom"]), "big")


def _holds(bloom: int, value: bytes) -> bool:
    mask = bloom_mask(value)
    return bloom & mask == mask


def test_the_nodes_blooms_hold_every_log_as_bloom_mask_says(world: World) -> None:
    """Blocks with an anchor, a status change and a registry change: every log's address and
    topics are in its block's bloom as the node gives it; a block without logs has none, and
    an anchor's block has no bit of the registry's address."""
    anchored = world.tx(world.issuer).transact(
        world.anchor.functions.anchor(secrets.token_bytes(32), 4))
    change_status(world, "revoke", (1, 7))
    revoked = world.chain.w3.eth.get_block("latest")
    changed = world.tx(world.body).transact(world.registry.functions.updateMetadata(
        world.issuer_id, "https://example.org/elsewhere", b"\x22" * 32))
    for number in (anchored["blockNumber"], revoked["number"], changed["blockNumber"]):
        bloom = _bloom_of_block(world, number)
        hashes = cast(list[HexBytes], world.chain.w3.eth.get_block(number)["transactions"])
        receipts = [world.chain.w3.eth.get_transaction_receipt(tx) for tx in hashes]
        logs = [log for receipt in receipts for log in receipt["logs"]]
        assert logs
        for log in logs:
            assert _holds(bloom, bytes.fromhex(log["address"][2:]))
            assert all(_holds(bloom, bytes(topic)) for topic in log["topics"])
    assert not _holds(_bloom_of_block(world, anchored["blockNumber"]),
                      bytes.fromhex(world.registry.address[2:]))
    world.chain.mine(1)
    assert _bloom_of_block(world, world.chain.w3.eth.block_number) == 0


def test_answers_stay_while_the_heads_change_nothing_they_depend_on(world: World) -> None:
    """Verified once; then new heads, each verified again with the eth_calls counted: an
    empty block and another batch's anchor cost none; a status change costs the status window
    and is seen; a registry change costs the registry's answers and the anchor, and a
    back-dated revocation of the issuer is seen at once."""
    batch = anchor_huge_batch(world, 2, tree_size=4)
    reader = reader_for(world, retries=False, head_max_age=0)
    with counted(reader.w3) as cold:
        assert batch.verify(reader).valid
    assert cold.methods["eth_call"] >= 6  # anchor, its registry, trust, entity, keys, status

    def again() -> tuple[int, set[str]]:
        with counted(reader.w3) as calls:
            report = batch.verify(reader)
        return calls.methods["eth_call"], _failed(report)

    world.chain.mine(1)
    assert again() == (0, set())  # an empty block
    world.tx(world.issuer).transact(world.anchor.functions.anchor(secrets.token_bytes(32), 4))
    assert again() == (0, set())  # another batch anchored: its RootAnchored changes nothing
    change_status(world, "revoke", (POSITION[0], POSITION[1] + 1))
    assert again() == (1, set())  # a status change: the window again, nothing else
    change_status(world, "revoke", POSITION)
    assert again() == (1, {"not_revoked"})
    world.tx(world.body).transact(world.registry.functions.updateMetadata(
        world.issuer_id, "https://example.org/elsewhere", b"\x22" * 32))
    # A registry change: the anchor, trust, entity, signing key and its trust again.
    assert again() == (5, {"not_revoked"})
    world.tx(world.body).transact(world.registry.functions.revokeSince(world.issuer_id, 1))
    calls, failed = again()
    assert calls > 0
    assert "issuer_trusted_at_anchoring" in failed, failed


def test_a_cache_only_reader_answers_at_a_new_head_that_changed_nothing(world: World) -> None:
    """What the service's event loop tries: after an empty block the cache answers the new
    head's verification alone, as the asking reader would; after a status change it cannot."""
    batch = anchor_huge_batch(world, 1, tree_size=4)
    reader = reader_for(world, retries=False, head_max_age=0)
    asked = batch.verify(reader)
    assert asked.valid
    world.chain.mine(1)
    later = reader.head_requests_begun()
    reader.at_head()
    cached = batch.verify(reader.cached_since(later))  # type: ignore[arg-type]
    assert cached.to_dict() == batch.verify(reader).to_dict()
    change_status(world, "suspend", POSITION)
    later = reader.head_requests_begun()
    reader.at_head()
    try:
        batch.verify(reader.cached_since(later))  # type: ignore[arg-type]
    except CacheMiss:
        pass
    else:
        raise AssertionError("a status change was answered from the cache")
    assert "not_suspended" in _failed(batch.verify(reader))


# ---------------------------------------------------------------- BloomWindow

ADDRESS = b"\x11" * 20
TOPIC = b"\x22" * 32
HIT = bloom_mask(ADDRESS) | bloom_mask(TOPIC)


def _by_definition(first: int, head: int, blooms: dict[int, int],
                   topics: tuple[bytes, ...] | None) -> int:
    """The last block after ``first`` up to ``head`` whose bloom is not given or may hold a
    log of ADDRESS (with one of ``topics``), else ``first``: by brute force."""
    address = bloom_mask(ADDRESS)
    for at in range(head, first, -1):
        bloom = blooms.get(at)
        if bloom is None:
            return at
        if bloom & address == address and (
                topics is None or any(bloom & bloom_mask(t) == bloom_mask(t) for t in topics)):
            return at
    return first


@given(first=st.integers(0, 50), changes=st.lists(
    st.sampled_from([0, bloom_mask(ADDRESS), HIT, FULL_BLOOM, None]), max_size=40),
    chunks=st.lists(st.integers(1, 4), min_size=1), with_topic=st.booleans())
def test_unchanged_since_is_its_definition(first: int, changes: list[int | None],
                                           chunks: list[int], with_topic: bool) -> None:
    """For any run of blocks (empty, logs of the address without the topic, with it, unknown
    blooms, blocks not given), added a few at a time as heads arrive: after every addition,
    at the newest head (followed block by block) and at every older one (scanned), the block
    named is the last one that may hold a change, or the lineage's first head."""
    window = BloomWindow(first)
    topics = (TOPIC,) if with_topic else None
    blooms: dict[int, int] = {}
    added = 0
    while added < len(changes):
        step = chunks[added % len(chunks)]
        new = {first + 1 + at: bloom for at, bloom in enumerate(changes[added:added + step],
                                                                 added) if bloom is not None}
        added += step
        window.add(reversed(new.items()))  # as a head request walks them: newest first
        blooms.update(new)
        newest = first + min(added, len(changes))
        for head in (newest, *range(first, newest)):
            assert window.unchanged_since(head, ADDRESS, topics) == _by_definition(
                first, head, blooms, topics)


def test_the_window_keeps_the_newest_blooms_within_its_bound() -> None:
    """Many more quiet blocks than the bound: memory stays within it; a contract first asked
    about after a longer quiet counts as changed at the oldest kept block (read once more),
    and is followed from then on, so that its answers stay however long it stays quiet."""
    window = BloomWindow(0)
    window.add((number, 0) for number in range(1, 5 * _MAX_BLOOMS))
    assert len(window._blooms) == _MAX_BLOOMS
    head = 5 * _MAX_BLOOMS - 1
    assert window.unchanged_since(head, ADDRESS) == head - _MAX_BLOOMS
    # Followed from here on: however long it stays quiet, the same block (no scan).
    window.add((number, 0) for number in range(head + 1, head + 3 * _MAX_BLOOMS))
    assert window.unchanged_since(head + 3 * _MAX_BLOOMS - 1, ADDRESS) == head - _MAX_BLOOMS
    window.add([(head + 3 * _MAX_BLOOMS, HIT)])
    assert window.unchanged_since(head + 3 * _MAX_BLOOMS, ADDRESS) == head + 3 * _MAX_BLOOMS


def test_a_bloom_is_taken_only_whole() -> None:
    """From JSON-RPC a bloom counts only as exactly 256 bytes: ``0x`` (some nodes give it for
    blocks with logs) or any other length is a change of everything; eth-tester's minimal
    bytes (its bloom as an integer) are taken only where they are allowed."""
    assert _bloom_of("0x" + "00" * 256) == 0
    assert _bloom_of("0x" + "00" * 255 + "01") == 1
    for short in ("0x", "0x00", "0x" + "00" * 255, "0x" + "00" * 257, None, 0):
        assert _bloom_of(short) == FULL_BLOOM, short
    assert _bloom_of(b"") == FULL_BLOOM
    assert _bloom_of(b"", minimal=True) == 0
    assert _bloom_of(b"\x01\x00", minimal=True) == 256
    assert _bloom_of(b"\x01" * 257, minimal=True) == FULL_BLOOM


def test_a_node_that_gives_no_bloom_gets_every_answer_read_again(
        anvil_world: World) -> None:
    """A node whose blocks come without a whole bloom: every new head reads the state anew
    (nothing is kept on the word of a bloom that is not there)."""
    world = anvil_world
    batch = anchor_huge_batch(world, 3, tree_size=4)
    reader = reader_for(world, retries=False, head_max_age=0)
    provider: Any = reader.w3.provider
    original = provider.make_request

    def without_blooms(method: str, params: Any) -> Any:
        answer = original(method, params)
        if method.startswith("eth_getBlockBy") and isinstance(answer.get("result"), dict):
            answer["result"]["logsBloom"] = "0x"
        return answer

    provider.make_request = without_blooms
    provider._request_func_cache = (None, None)
    try:
        assert batch.verify(reader).valid
        world.chain.mine(1)
        with counted(reader.w3) as calls:
            assert batch.verify(reader).valid
        assert calls.methods["eth_call"] >= 5, calls.methods
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)


def test_a_reader_that_does_not_trust_the_blooms_sees_what_wrong_blooms_hide(
        anvil_world: World) -> None:
    """Through a node whose blooms are all zeros: a reader that trusts them keeps the answer
    from before a revocation (what trusting a node's blooms risks); one made with
    ``trust_log_blooms=False`` reads the status again at the new head and sees it."""
    world = anvil_world
    position = (7, 4_242)  # this test's own entry of the module's chain
    batch = anchor_huge_batch(world, 2, tree_size=4, position=position)
    with ZeroBloomProxy(str(world.chain.rpc_url)) as node:
        trusting = JsonRpcChainReader(node.url, retries=False, head_max_age=0)
        distrusting = JsonRpcChainReader(node.url, retries=False, head_max_age=0,
                                         trust_log_blooms=False)
        assert (trusting.trusts_log_blooms, distrusting.trusts_log_blooms) == (True, False)
        try:
            assert batch.verify(trusting).valid
            assert batch.verify(distrusting).valid
            change_status(world, "revoke", position)
            assert _failed(batch.verify(trusting)) == set()  # kept on the word of the blooms
            assert _failed(batch.verify(distrusting)) == {"not_revoked"}
        finally:
            trusting.close()
            distrusting.close()
