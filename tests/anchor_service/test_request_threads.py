"""The request threads of a service process (``RequestThreads``): a call is handed to a thread
in the step that asks for it, without waiting for a turn of the event loop (Starlette's
``run_in_threadpool`` waits for one); it runs in the caller's context; closing waits for the
calls begun and drops those still waiting. Deterministic: threads are held by events."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from anchor_service._request_threads import RequestThreads

_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_a_call_is_handed_over_without_a_turn_of_the_event_loop() -> None:
    threads = RequestThreads()
    began = threading.Event()

    def call(value: int) -> tuple[int, str]:
        began.set()
        return value * 2, _REQUEST.get()

    async def run() -> None:
        _REQUEST.set("r-1")
        task = asyncio.ensure_future(threads.run(call, 21))
        await asyncio.sleep(0)  # the task's first step has run: nothing else on the loop
        # The event loop does not turn while this waits.
        assert began.wait(10), "the call waited for a turn of the event loop"
        assert await task == (42, "r-1")

    try:
        asyncio.run(run())
    finally:
        threads.close()


def test_closing_waits_for_the_calls_begun_and_drops_those_waiting() -> None:
    threads = RequestThreads(size=1)
    release, began = threading.Event(), threading.Event()
    done: list[str] = []

    def held() -> None:
        began.set()
        assert release.wait(10)
        done.append("held")

    async def run() -> None:
        first = asyncio.ensure_future(threads.run(held))
        waiting = asyncio.ensure_future(threads.run(done.append, "waiting"))
        assert await asyncio.get_running_loop().run_in_executor(None, began.wait, 10)
        threading.Timer(0.2, release.set).start()
        threads.close()  # returns once the held call has ended
        assert done == ["held"]
        await first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert done == ["held"]
        # Used again after closing: new threads.
        assert await threads.run(sum, [1, 2]) == 3

    try:
        asyncio.run(run())
    finally:
        threads.close()
