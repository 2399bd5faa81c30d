"""How many connections each worker process holds, so that a worker holding clearly more than
its share asks a client to connect again (private: the server and the workers' supervisor use
it).

The kernel hashes each new connection to one worker's socket (``SO_REUSEPORT``): with a few
long-lived connections the shares are uneven, often 11 against 5 of 16, and the busier worker
runs out of CPU while the other idles. A worker whose open connections are at least
:data:`EXCESS` above the live workers' mean closes one connection after its current answer
(``Connection: close``, at most once every :data:`PAUSE` seconds); the client connects again
and the kernel hashes it anew. The shares then stay within a connection or two of each other,
at the cost of a reconnection now and then; clients see only a graceful close, which HTTP/1.1
clients handle.

The counts live in an anonymous shared mapping created before the fork: each worker writes
only its own slot (an aligned 64-bit integer), and reads the others'."""

from __future__ import annotations

import mmap
import struct
import time
from typing import Final

__all__ = ["EXCESS", "PAUSE", "WorkerBalance"]

EXCESS: Final = 2  # connections above the mean that make a worker close one
PAUSE: Final = 0.1  # seconds between two closes of one worker
_SLOT = struct.Struct("<q")
_GONE: Final = -1  # a slot whose worker is dead (its socket takes no connections)


class WorkerBalance:
    """The open connections of ``workers`` worker slots, shared by the processes forked after
    it is made."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * workers)  # MAP_SHARED: seen after fork
        for slot in range(workers):
            _SLOT.pack_into(self._memory, _SLOT.size * slot, _GONE)
        self._slot: int | None = None
        self._shed_at = 0.0

    def close(self) -> None:
        self._memory.close()

    def join(self, slot: int) -> None:
        """In a worker: this process serves ``slot``, with no connection yet."""
        self._slot = slot
        _SLOT.pack_into(self._memory, _SLOT.size * slot, 0)

    def left(self, slot: int) -> None:
        """In the supervisor: the worker of ``slot`` is dead."""
        _SLOT.pack_into(self._memory, _SLOT.size * slot, _GONE)

    def counts(self) -> list[int]:
        """Open connections per slot (``-1``: no live worker)."""
        return [_SLOT.unpack_from(self._memory, _SLOT.size * slot)[0]
                for slot in range(self.workers)]

    def opened(self) -> None:
        self._add(1)

    def closed(self) -> None:
        self._add(-1)

    def _add(self, delta: int) -> None:
        if self._slot is not None:
            offset = _SLOT.size * self._slot
            _SLOT.pack_into(self._memory, offset,
                            _SLOT.unpack_from(self._memory, offset)[0] + delta)

    def shed(self) -> bool:
        """Whether this worker should close a connection after its current answer: it holds
        at least :data:`EXCESS` more than the live workers' mean, and has closed none for
        this reason in the last :data:`PAUSE` seconds."""
        if self._slot is None:
            return False
        counts = [count for count in self.counts() if count != _GONE]
        if len(counts) < 2:
            return False
        mine = _SLOT.unpack_from(self._memory, _SLOT.size * self._slot)[0]
        if mine * len(counts) < sum(counts) + EXCESS * len(counts):
            return False
        now = time.monotonic()
        if now - self._shed_at < PAUSE:
            return False
        self._shed_at = now
        return True
