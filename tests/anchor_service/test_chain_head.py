"""The head requests that verifications await (``ChainHead``) run on a thread of their own:
with every worker thread of the process taken, a verification still gets its head at once,
and the head it gets is one asked for after it arrived. The in-process chain; deterministic
(the worker threads are held by an event, not by timing)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
from starlette.concurrency import run_in_threadpool

from anchor_service.service import ChainHead
from localchain import InProcessChain
from verifier.chain import JsonRpcChainReader


def test_a_head_request_does_not_wait_for_the_worker_threads() -> None:
    chain = InProcessChain.start()
    executor = ThreadPoolExecutor(1, thread_name_prefix="chain-head")
    try:
        reader = JsonRpcChainReader(chain.w3, head_max_age=0)
        head = ChainHead(reader, executor)

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
    finally:
        executor.shutdown()
        chain.close()
