"""The head requests that verifications await (``ChainHead``) run on a thread of their own:
with every worker thread of the process taken, a verification still gets its head at once,
and the head it gets is one asked for after it arrived; the thread begins the next head
request itself, without waiting for the event loop; a failure reaches every request waiting.
The in-process chain; deterministic (threads are held by events, not by timing)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio.to_thread
import pytest
from starlette.concurrency import run_in_threadpool

from anchor_service.service import ChainHead
from localchain import InProcessChain
from verifier.chain import JsonRpcChainReader
from verifier.errors import ChainReadError


@dataclass(frozen=True)
class Heads:
    chain: InProcessChain
    reader: JsonRpcChainReader
    head: ChainHead


@pytest.fixture
def heads() -> Iterator[Heads]:
    """A ChainHead over a reader of the in-process chain, on a head thread of its own."""
    chain = InProcessChain.start()
    executor = ThreadPoolExecutor(1, thread_name_prefix="chain-head")
    try:
        reader = JsonRpcChainReader(chain.w3, head_max_age=0)
        yield Heads(chain, reader, ChainHead(reader, executor))
    finally:
        executor.shutdown()
        chain.close()


def test_a_head_request_does_not_wait_for_the_worker_threads(heads: Heads) -> None:
    chain, reader, head = heads.chain, heads.reader, heads.head

    async def run() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        release = threading.Event()
        # The process's only worker thread, held until the head has been seen.
        holder = asyncio.ensure_future(run_in_threadpool(release.wait, 30))
        await asyncio.sleep(0.05)
        try:
            mark = head.mark()
            chain.mine()
            await asyncio.wait_for(head.seen_after(mark), 10)
            pinned = reader.pinned_after(mark)
            assert pinned is not None
            assert pinned.head.number == chain.w3.eth.block_number
            assert not holder.done()  # the worker thread was still taken throughout
        finally:
            release.set()
            await holder

    asyncio.run(run())


def test_the_next_head_request_begins_without_a_turn_of_the_event_loop(
        heads: Heads, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that arrives while a head request is in flight waits for the next one, which
    the head thread begins as soon as the first ends: here the event loop is held (a blocking
    wait on it) from the first one's end until the next has begun."""
    reader, head = heads.reader, heads.head
    first_in_flight, release_first, next_began = (threading.Event(), threading.Event(),
                                                  threading.Event())
    observe = reader._observe_head
    began: list[int] = []

    def held_observe() -> object:
        began.append(reader.head_requests_begun())
        if len(began) == 1:
            first_in_flight.set()
            assert release_first.wait(30)
        else:
            next_began.set()
        return observe()

    monkeypatch.setattr(reader, "_observe_head", held_observe)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        first_mark = head.mark()
        first = asyncio.ensure_future(head.seen_after(first_mark))
        assert await loop.run_in_executor(None, first_in_flight.wait, 10)
        later_mark = head.mark()  # arrived after the first head request began
        assert later_mark > first_mark
        later = asyncio.ensure_future(head.seen_after(later_mark))
        await asyncio.sleep(0)  # it is waiting now
        release_first.set()
        # The event loop does not turn while this waits.
        assert next_began.wait(10), "the next head request waited for the event loop"
        await asyncio.wait_for(asyncio.gather(first, later), 10)
        assert reader.pinned_after(later_mark) is not None
        assert began == [first_mark + 1, later_mark + 1]

    asyncio.run(run())


def test_a_failed_head_request_reaches_every_request_waiting_for_it(
        heads: Heads, monkeypatch: pytest.MonkeyPatch) -> None:
    head = heads.head

    def unreachable() -> object:
        raise ChainReadError("cannot read the latest block: the node did not answer")

    monkeypatch.setattr(heads.reader, "_observe_head", unreachable)

    async def run() -> None:
        mark = head.mark()
        waiting = [asyncio.ensure_future(head.seen_after(mark)) for _ in range(3)]
        answers = await asyncio.wait_for(
            asyncio.gather(*waiting, return_exceptions=True), 10)
        assert [type(answer) for answer in answers] == [ChainReadError] * 3
        monkeypatch.undo()  # the node answers again: so does the next request
        await asyncio.wait_for(head.seen_after(head.mark()), 10)

    asyncio.run(run())
