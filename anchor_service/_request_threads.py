"""The threads a service process runs its requests' blocking work on (database, chain,
signing), handed each call at once.

Starlette's ``run_in_threadpool`` first waits for a turn of the event loop (anyio's limiter
checks for cancellation), and under the load test a turn of a busy loop took 15 ms, 50-80 ms
at the 99th percentile: more than most of the calls it hands over.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar, TypeVarTuple

#: Threads per process: as many as anyio gives Starlette's thread pool by default.
REQUEST_THREADS: Final = 40

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


class RequestThreads:
    """A pool of :data:`REQUEST_THREADS` threads, made at first use, that the event loops of a
    process hand blocking calls to."""

    def __init__(self, size: int = REQUEST_THREADS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, call: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """``call(*args)`` on one of the threads, in the caller's context, while the event
        loop serves other requests. A request that goes away meanwhile does not stop a call
        that has begun (what it stores stays stored, as when an answer is lost on the way);
        one still waiting for a thread is dropped."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="request")
                pool = self._pool
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(context.run, call, *args))

    def close(self) -> None:
        """Wait for the calls that have begun; drop those waiting for a thread (their
        requests have gone: a server stops once it has answered). A later call makes new
        threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
