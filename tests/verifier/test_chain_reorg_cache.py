"""The shared chain reader's head requests and caches on anvil, as the service uses it
(``head_max_age`` 0): a head request begun before a caller came never serves it (the chain
may have switched branch meanwhile), while one request serves every caller that came before
it began; answers read at the blocks of a head stay cached while the next head extends it,
and go when the chain reorganises; the caches stay within their bounds however many heads
and answers pass through."""

from __future__ import annotations

import gc
import secrets
import threading
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import verifier.chain
from testkit.world import World
from tests.anchor_service.rpc_proxy import CountingRpcProxy
from tests.verifier.test_bounded_chain_reads import (
    POSITION,
    HugeBatch,
    anchor_huge_batch,
    change_status,
)
from tests.verifier.test_shared_reader_consistency import WatchedLock
from verifier.chain import BlockInfo, CacheMiss, ChainReader, JsonRpcChainReader
from verifier.verify import VerificationReport, verify


@pytest.fixture
def node(anvil_world: World) -> Iterator[CountingRpcProxy]:
    with CountingRpcProxy(str(anvil_world.chain.rpc_url)) as proxy:
        yield proxy


def _wait_for(condition: Callable[[], bool]) -> None:
    event = threading.Event()
    for _ in range(3000):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("never happened")


@contextmanager
def during_first_head_request(reader: JsonRpcChainReader,
                              action: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``action`` once, after the node has answered the reader's first request for the
    latest block and before the reader has that answer; yields the block parameters of
    every ``eth_getBlockByNumber`` the reader makes meanwhile."""
    provider: Any = reader.w3.provider
    original = provider.make_request
    asked: list[str] = []
    fired = threading.Event()

    def hooked(method: str, params: Any) -> Any:
        answer = original(method, params)
        if method == "eth_getBlockByNumber":
            asked.append(str(params[0]))
            if params[0] == "latest" and not fired.is_set():
                fired.set()
                action()
        return answer

    provider.make_request = hooked
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        yield asked
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)
    assert fired.is_set(), "no head request was made"


def test_callers_that_come_during_a_head_request_get_the_next_one_shared(
        anvil_world: World) -> None:
    """A head request is in flight; meanwhile the chain switches to another branch and eight
    callers come. None of them is served the answer of the request begun before it came (the
    abandoned branch's head); one more head request serves all eight."""
    world = anvil_world
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False, head_max_age=0)
    fork = world.chain.snapshot()
    world.chain.mine(2)
    watched = WatchedLock()
    reader._refreshing = watched  # type: ignore[assignment]  # to know when all are queued
    heads: list[BlockInfo] = []
    lock = threading.Lock()

    def late_caller() -> None:
        head = reader.at_head().head
        with lock:
            heads.append(head)

    callers = [threading.Thread(target=late_caller) for _ in range(8)]

    def switch_and_come() -> None:
        world.chain.revert(fork)
        world.chain.mine(5)  # another branch, higher
        for caller in callers:
            caller.start()
        _wait_for(lambda: watched.arrived == 1 + len(callers))

    with during_first_head_request(reader, switch_and_come) as asked:
        first = reader.at_head().head
        for caller in callers:
            caller.join(60)
    new_head = world.chain.w3.eth.get_block("latest")
    assert first.hash != bytes(new_head["hash"])  # the first caller's request began before
    assert len(heads) == len(callers)
    assert {head.hash for head in heads} == {bytes(new_head["hash"])}, heads
    assert asked.count("latest") == 2, asked


def test_answers_of_a_lineage_are_kept_while_heads_extend_it(
        anvil_world: World, node: CountingRpcProxy) -> None:
    """Verified once; a block is mined (the new head extends the old): verified again, no
    block is read again by number or hash (the anchor's block is of the lineage, and the new
    head's parent is the old head), nor any state (the empty block changed none: see
    test_chain_state_blooms). After a reorganisation that keeps the anchor, the block is read
    again."""
    world = anvil_world
    batch = anchor_huge_batch(world, 4, tree_size=8)
    reader = JsonRpcChainReader(node.url, retries=False, head_max_age=0)
    assert batch.verify(reader).valid
    lineage = reader.lineage()

    world.chain.mine(1)
    calls, blocks, by_hash = (node.calls("eth_call"), node.calls("eth_getBlockByNumber"),
                              node.calls("eth_getBlockByHash"))
    assert batch.verify(reader).valid
    assert reader.lineage() == lineage
    assert node.calls("eth_call") == calls
    assert node.calls("eth_getBlockByNumber") == blocks + 1  # the head, nothing else
    assert node.calls("eth_getBlockByHash") == by_hash

    world.chain.mine(3)  # three at once: the new head's ancestry is followed by hash
    assert batch.verify(reader).valid
    assert reader.lineage() == lineage
    assert node.calls("eth_getBlockByHash") == by_hash + 2

    fork = world.chain.snapshot()
    world.chain.mine(2)
    assert batch.verify(reader).valid
    world.chain.revert(fork)
    world.chain.mine(3)  # a reorganisation above the anchor: it stays
    blocks = node.calls("eth_getBlockByNumber")
    assert batch.verify(reader).valid
    assert reader.lineage() not in (None, lineage)
    assert node.calls("eth_getBlockByNumber") > blocks + 1  # the anchor's block, again


def test_the_caches_stay_bounded_over_many_heads_and_answers(
        anvil_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a small bound on answers, many heads of one lineage, each with new answers, never
    take the cache past it; the memory held stays flat once it is full; a reorganisation lets
    the old lineage's answers go (the objects are freed)."""
    world = anvil_world
    limit = 64
    monkeypatch.setattr(verifier.chain, "_MAX_SMALL_ENTRIES", limit)
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False, head_max_age=0)
    anchor, key = world.anchor.address, world.issuer.address
    lineage = None
    for _ in range(30):
        world.chain.mine(1)
        pinned = reader.at_head()
        for _ in range(4):
            pinned.anchor_of(anchor, key, secrets.token_bytes(32))
        assert reader.cache_entries()["small"] <= limit
        assert lineage in (None, pinned.lineage)
        lineage = pinned.lineage
    assert reader.cache_entries()["small"] == limit

    def read_many(count: int) -> None:
        pinned = reader.at_head()
        for _ in range(count):
            pinned.anchor_of(anchor, key, secrets.token_bytes(32))

    tracemalloc.start()
    try:
        read_many(200)
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        read_many(1000)
        gc.collect()
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # 1,000 answers more, each with its key, would hold hundreds of kilobytes.
    assert later - full < 64 * 1024, (full, later)

    view = reader._view
    assert view is not None
    old = weakref.ref(view.lineage)
    fork = world.chain.snapshot()
    world.chain.mine(1)
    reader.at_head()
    world.chain.revert(fork)
    world.chain.mine(2)
    pinned = reader.at_head()
    assert pinned.lineage != lineage
    assert reader.cache_entries()["small"] < limit
    del view
    gc.collect()
    assert old() is None


def judged(batch: HugeBatch, reader: ChainReader) -> VerificationReport:
    return verify(batch.bundle.credential, batch.bundle.receipt, trust=batch.trust,
                  reader=reader)


def test_a_cache_only_reader_answers_as_the_reader_or_not_at_all(anvil_world: World) -> None:
    """What the service tries on its event loop: a reader that answers from the cache alone.
    Cold (no head seen since the mark, or an answer not cached) it raises CacheMiss, which no
    check takes for a failed read; warm, its report is the one the asking reader gives."""
    world = anvil_world
    batch = anchor_huge_batch(world, 2, tree_size=4)
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False, head_max_age=0)
    mark = reader.head_requests_begun()
    with pytest.raises(CacheMiss):
        judged(batch, reader.cached_since(mark))  # no head seen after the mark
    reader.at_head()
    with pytest.raises(CacheMiss):
        judged(batch, reader.cached_since(mark))  # the head, but nothing read at it yet
    asked = judged(batch, reader.since(mark))
    assert asked.valid
    cached = judged(batch, reader.cached_since(mark))
    assert cached.to_dict() == asked.to_dict()
    change_status(world, "revoke", (POSITION[0], POSITION[1] + 1))
    later = reader.head_requests_begun()
    reader.at_head()
    with pytest.raises(CacheMiss):  # a new head with a status change, not read yet
        judged(batch, reader.cached_since(later))
