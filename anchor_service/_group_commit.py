"""Group commit: concurrent small write transactions of one process share one COMMIT, hence
one fsync. Private: :class:`anchor_service.store.Store` uses it for credential acceptance and
status allocation.

A caller hands in a unit of work (a function of the connection) and blocks, or, on an
event loop, awaits it (:meth:`GroupCommit.run_async`: no thread waits for it), or leaves it
with a callback (:meth:`GroupCommit.run_later`). One caller at a time leads (for units no
thread waits for, the group commit's own writer thread): it opens one write transaction, then
takes what is queued (at most ``max_units`` units and ``max_rows`` rows, at least one unit:
what queued while it waited for the database's writer slot goes in too), runs each unit under
its own SAVEPOINT (a unit that raises is rolled back alone and gets its own exception; the
others go on), COMMITs once, and only then hands every caller its result. While a leader
waits for its fsync the next callers queue up, and the next leader takes them all: the busier
the service, the more units a commit carries. Nobody gets a result before the COMMIT that
holds their writes returned, and a COMMIT that fails fails every unit of its group, so no
caller is told "stored" for something that is not.

On PostgreSQL, which takes several write transactions at once, a unit of ``alone_rows`` rows
or more (a bulk submission) handed to :meth:`GroupCommit.run` is written in a transaction of
its own, in its caller's thread: its statements would otherwise hold back the COMMIT of every
small unit that shares its group or queues behind it. At most ``alone_at_once`` of them run at
a time, so that they never hold every connection of the pool. On SQLite every transaction
waits for the one writer slot anyway.

On PostgreSQL two processes' groups can deadlock (each group's units take row locks in their
own order): the unit the server chose as the victim is rolled back to its savepoint, and it
is run again alone, in a transaction of its own, once the group has committed; a whole group
that fails that way is run again unit by unit.

Units that say how to :class:`Merge` with others of their kind are written together, in a few
statements for the whole group, rather than each in its own savepoint: every statement of a
write transaction gives up Python's global lock while SQLite works, and taking it back can cost
up to the interpreter's switch interval when request threads are busy, all while the
transaction holds the database's only writer slot (every worker process's). A merge that
cannot be done together (a credential sent again, whose row is already there) rolls the
transaction back, and the group is run again unit by unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from anchor_service._database import Backend, Connection, sql
from anchor_service.errors import StoreError, TransientStoreError

__all__ = ["GroupCommit", "Merge"]

log = logging.getLogger("anchor_service.store")

_T = TypeVar("_T")
_SAVEPOINT: Final = sql("SAVEPOINT unit")
_ROLLBACK_TO: Final = sql("ROLLBACK TO SAVEPOINT unit")
_RELEASE: Final = sql("RELEASE SAVEPOINT unit")
#: Tries of a unit that keeps losing deadlocks to other processes' transactions.
_TRIES: Final = 3


@dataclass(frozen=True, eq=False)
class Merge:
    """How a unit is written together with the other units of a group that have the same
    ``writer``: ``writer(db, payloads)`` writes every payload and returns each one's result,
    in order, or returns None when they cannot be written together (the group's transaction is
    then rolled back and every unit run on its own, as its ``work``). Its results must be what
    each unit's ``work`` would have returned."""

    writer: Callable[[Connection, Sequence[Any]], Sequence[Any] | None]
    payload: object


class _UnmergedError(Exception):
    """A group's merged writes could not be done together: roll back, run unit by unit."""


class _Unit(Generic[_T]):
    __slots__ = ("callback", "done", "error", "future", "merge", "result", "rows", "wake",
                 "work")

    def __init__(self, work: Callable[[Connection], _T], rows: int,
                 merge: Merge | None, future: asyncio.Future[_T] | None = None,
                 callback: Callable[[_T | None, BaseException | None], None] | None = None,
                 *, wake: threading.Event | None = None) -> None:
        self.work, self.rows, self.merge = work, rows, merge
        self.done = False
        self.result: _T | None = None
        self.error: BaseException | None = None
        # A unit a thread waits for: set once, when the unit is done or when its thread is to
        # lead the next group. One event a unit, so that a commit wakes only the threads it
        # concerns (and none for the units no thread waits for: one is made per request).
        self.wake = wake
        # A unit awaited on an event loop: settled there once done.
        self.future = future
        # A unit nobody waits for: this is called with its result or error once done.
        self.callback = callback

    @property
    def threaded(self) -> bool:
        """Whether a thread waits for this unit (and can lead a group)."""
        return self.wake is not None


def _settle(units: list[_Unit[object]]) -> None:
    """On their event loop: hand each awaited unit its result (unless its waiter is gone)."""
    for unit in units:
        future = unit.future
        if future is None or future.done():
            continue
        if unit.error is not None:
            future.set_exception(unit.error)
        else:
            future.set_result(unit.result)


#: How often an idle writer thread checks whether it should end (see GroupCommit.close).
_WRITER_IDLE: Final = 1.0


class GroupCommit:
    """Runs units of work of many threads in shared write transactions of ``backend``."""

    def __init__(self, backend: Backend, *, max_units: int = 256, max_rows: int = 10_000,
                 alone_rows: int | None = None, alone_at_once: int = 1) -> None:
        self._backend = backend
        self._max_units, self._max_rows = max_units, max_rows
        self._alone_rows = alone_rows  # units this big are written alone (None: never)
        # Units written alone at once, at most: each holds a connection of the database's
        # pool for its whole transaction, and the groups and reads need the others.
        self._alone_slots = threading.BoundedSemaphore(alone_at_once)
        self._queue: deque[_Unit[object]] = deque()
        self._cond = threading.Lock()
        self._leading = False
        self._commits = 0
        self._units = 0
        # The writer of units awaited on event loops, started at the first one, and the event
        # that hands it the lead.
        self._writer: tuple[threading.Thread, threading.Event] | None = None

    def stats(self) -> tuple[int, int]:
        """(commits, units): write transactions committed for units, and units committed."""
        with self._cond:
            return self._commits, self._units

    def queued(self) -> int:
        """Units waiting for a leader (not those of the group being committed)."""
        with self._cond:
            return len(self._queue)

    def run(self, work: Callable[[Connection], _T], *, rows: int = 1,
            merge: Merge | None = None) -> _T:
        """Run ``work`` in a write transaction, perhaps shared with other threads' units, and
        return its result once that transaction has committed (durably); raise its own
        exception if it raised (its writes rolled back, the others' kept), or the error of
        the COMMIT if the transaction failed as a whole (nothing of it kept). ``rows``: how
        many rows it writes, to bound a group's size. ``merge``: the same writes in a form
        the group can do together with its other units of that kind (see :class:`Merge`).
        A unit of ``alone_rows`` rows or more is written in a transaction of its own."""
        wake = threading.Event()
        unit: _Unit[_T] = _Unit(work, rows, merge, wake=wake)
        if self._alone_rows is not None and rows >= self._alone_rows:
            with self._alone_slots:
                self._run_alone(unit)  # type: ignore[arg-type] # (results handed back typed)
            if unit.error is not None:
                raise unit.error
            return unit.result  # type: ignore[return-value] # (set whenever error is None)
        with self._cond:
            self._queue.append(unit)  # type: ignore[arg-type] # (results are handed back typed)
            lead = not self._leading
            self._leading = True
        if not lead:
            wake.wait()  # done by another leader, or handed the lead
        while not unit.done:
            group: list[_Unit[object]] = []
            try:
                self._commit(self._taker(group))
            finally:
                self._finish(group)
                if unit.done:
                    with self._cond:
                        self._pass_lead()
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[return-value] # (set whenever error is None)

    async def run_async(self, work: Callable[[Connection], _T], *, rows: int = 1,
                        merge: Merge | None = None) -> _T:
        """:meth:`run` for a caller on an event loop: the unit is written by a thread of the
        group commit (or by a blocked caller leading then), and its result or exception
        comes back on the loop once its transaction has committed. No thread waits for it:
        a request needs no thread hand-over to be stored. A waiter that is cancelled does
        not undo the unit, which is written all the same."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue_unthreaded(_Unit(work, rows, merge, future))
        return await future

    def run_later(self, work: Callable[[Connection], _T],
                  done: Callable[[_T | None, BaseException | None], None]) -> None:
        """Queue ``work`` and return at once; once its transaction has committed (or
        failed), ``done(result, error)`` is called, in the thread that wrote it."""
        self._queue_unthreaded(_Unit(work, 1, None, callback=done))

    def _queue_unthreaded(self, unit: _Unit[Any]) -> None:
        """Queue a unit no thread waits for; the writer thread leads if nobody does."""
        with self._cond:
            self._queue.append(unit)
            lead = not self._leading
            self._leading = True
            if lead:
                self._wake_writer()

    def _pass_lead(self) -> None:
        """Leaving the lead (under the lock): to the oldest waiting unit's thread, or to the
        writer thread when nobody's thread waits for that unit; else nobody leads."""
        first = self._queue[0] if self._queue else None
        if first is None:
            self._leading = False
        elif first.wake is not None:  # a thread waits for it
            first.wake.set()
        else:
            self._wake_writer()

    def close(self) -> None:
        """Let the writer thread end: it does within :data:`_WRITER_IDLE` seconds once it has
        nothing to write (a unit queued later starts another). Called by the store's close."""
        with self._cond:
            self._writer = None

    def _wake_writer(self) -> None:
        """Make the writer thread lead (under the lock); started if it is not running."""
        if self._writer is None or not self._writer[0].is_alive():
            wake = threading.Event()
            thread = threading.Thread(target=self._write_awaited, args=(wake,), daemon=True,
                                      name="group-commit")
            self._writer = (thread, wake)
            thread.start()
        self._writer[1].set()

    def _write_awaited(self, wake: threading.Event) -> None:
        """The writer thread: leads whenever handed the lead (``wake``), while no thread waits
        for the oldest waiting unit; ends when idle once it is no longer the writer."""
        while True:
            if not wake.wait(_WRITER_IDLE):
                with self._cond:
                    if self._writer is None or self._writer[1] is not wake:
                        return
                continue
            wake.clear()
            while True:
                with self._cond:
                    if not self._queue or self._queue[0].threaded:
                        self._pass_lead()
                        break
                group: list[_Unit[object]] = []
                try:
                    self._commit(self._taker(group))
                finally:
                    self._finish(group)

    @staticmethod
    def _finish(group: list[_Unit[object]]) -> None:
        """Wake the group's waiting threads, call the callbacks of units nobody waits for,
        and settle its awaited units on their loops (one hand-over per loop, not per unit)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit[object]]] = {}
        for unit in group:
            if unit.callback is not None:
                try:
                    unit.callback(unit.result, unit.error)
                except Exception:  # the callback's own failure: the others go on
                    log.exception("a group commit callback failed")
            elif unit.future is not None:
                by_loop.setdefault(unit.future.get_loop(), []).append(unit)
            elif unit.wake is not None:
                unit.wake.set()
        for loop, units in by_loop.items():
            # A closed loop: nobody waits for these any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, units)

    def _taker(self, group: list[_Unit[object]]) -> Callable[[], list[_Unit[object]]]:
        """The next group, taken into ``group`` at the first call (later calls give the same
        one): the leader takes it once its transaction has begun, which on SQLite is once it
        has the database's writer slot, so that everything queued while it waited for the
        slot (another worker's group being written) goes in this group."""
        def group_now() -> list[_Unit[object]]:
            if not group:
                with self._cond:
                    group.extend(self._take())
            return group
        return group_now

    def _take(self) -> list[_Unit[object]]:
        """The next group, oldest first (under the lock)."""
        group = [self._queue.popleft()]
        rows = group[0].rows
        while (self._queue and len(group) < self._max_units
               and rows + self._queue[0].rows <= self._max_rows):
            unit = self._queue.popleft()
            group.append(unit)
            rows += unit.rows
        return group

    def _commit(self, group: Callable[[], list[_Unit[object]]]) -> None:
        """Run the next group (taken by ``group()``) in one transaction; every unit of it
        ends done (result or error)."""
        retry: list[_Unit[object]] = []
        try:
            try:
                self._write_group(group)
            except TransientStoreError:
                # The group lost a deadlock as a whole: every unit again, each on its own.
                retry = group()
            except BaseException as exc:
                for unit in group():
                    # Their writes went with the transaction: none of them is stored.
                    unit.result, unit.error = None, exc
                raise
            else:
                with self._cond:
                    self._commits += 1
                    self._units += sum(unit.error is None for unit in group())
                retry = [unit for unit in group()
                         if isinstance(unit.error, TransientStoreError)]
            for unit in retry:
                self._run_alone(unit)
        except BaseException as exc:
            for unit in group():
                if not unit.done and unit.error is None:
                    unit.error = exc
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: not the units' business alone
        finally:
            for unit in group():
                unit.done = True

    def _write_group(self, group: Callable[[], list[_Unit[object]]]) -> None:
        """One transaction for the group: merged where its units allow it; when a merge
        cannot be done together, rolled back and run again unit by unit."""
        try:
            with self._backend.write() as db:
                units = group()
                if any(unit.merge is not None for unit in units):
                    self._run_merged(db, units)
                else:
                    self._run_group(db, units)
            return
        except TransientStoreError:
            raise  # a deadlock: the caller runs each unit again alone
        except (_UnmergedError, StoreError):
            if not any(unit.merge is not None for unit in group()):
                raise  # the group's own failure (its COMMIT, the database)
            # Not together, or a merged write failed (one unit's fault, perhaps): unit by
            # unit, each in its savepoint, so that a failure stays its unit's own.
        with self._backend.write() as db:
            self._run_group(db, group())

    def _run_merged(self, db: Connection, group: list[_Unit[object]]) -> None:
        """The merged units first, a few statements for each kind of them; then the others,
        each in its savepoint."""
        kinds: dict[Callable[[Connection, Sequence[Any]], Sequence[Any] | None],
                    list[_Unit[object]]] = {}
        rest = []
        for unit in group:
            if unit.merge is None:
                rest.append(unit)
            else:
                kinds.setdefault(unit.merge.writer, []).append(unit)
        for writer, units in kinds.items():
            results = writer(db, [unit.merge.payload for unit in units  # type: ignore[union-attr]
                                  ])
            if results is None:
                raise _UnmergedError
            for unit, result in zip(units, results, strict=True):
                unit.result, unit.error = result, None
        for unit in rest:
            unit.result, unit.error = None, None
            self._run_in_savepoint(db, unit)

    def _run_group(self, db: Connection, group: list[_Unit[object]]) -> None:
        if len(group) == 1:
            # Alone, it needs no savepoint: its error rolls the transaction back, which is
            # all of it, and reaches it as the group's error.
            group[0].result, group[0].error = group[0].work(db), None
            return
        for unit in group:
            unit.result, unit.error = None, None
            self._run_in_savepoint(db, unit)

    def _run_in_savepoint(self, db: Connection, unit: _Unit[object]) -> None:
        db.execute(_SAVEPOINT)
        try:
            unit.result = unit.work(db)
        except Exception as exc:  # the unit's own failure: undo its writes only
            unit.error = exc
            # If this fails too (the connection is gone, or the database ended the
            # transaction, as SQLite does on a full disk) the whole group fails with it.
            db.execute(_ROLLBACK_TO)
        db.execute(_RELEASE)

    def _run_alone(self, unit: _Unit[object]) -> None:
        """Run a unit in transactions of its own until it commits or fails other than by a
        deadlock (at most ``_TRIES`` times)."""
        for attempt in range(_TRIES):
            unit.result, unit.error = None, None
            try:
                with self._backend.write() as db:
                    unit.result = unit.work(db)
            except TransientStoreError as exc:
                unit.error = exc
                if attempt + 1 < _TRIES:
                    continue
            except Exception as exc:  # handed to the unit's caller
                unit.error = exc
            else:
                with self._cond:
                    self._commits += 1
                    self._units += 1
            return
