"""Group commit: concurrent small write transactions of one process share one COMMIT, hence
one fsync. Private: :class:`anchor_service.store.Store` uses it for credential acceptance and
status allocation.

A caller hands in a unit of work (a function of the connection) and blocks. One caller at a
time leads: it takes what is queued (at most ``max_units`` units and ``max_rows`` rows, at
least one unit), opens one write transaction, runs each unit under its own SAVEPOINT (a unit
that raises is rolled back alone and gets its own exception; the others go on), COMMITs once,
and only then hands every caller its result. While a leader waits for its fsync the next
callers queue up, and the next leader takes them all: the busier the service, the more units
a commit carries. Nobody gets a result before the COMMIT that holds their writes returned,
and a COMMIT that fails fails every unit of its group, so no caller is told "stored" for
something that is not.

On PostgreSQL two processes' groups can deadlock (each group's units take row locks in their
own order): the unit the server chose as the victim is rolled back to its savepoint, and it
is run again alone, in a transaction of its own, once the group has committed; a whole group
that fails that way is run again unit by unit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from anchor_service._database import Backend, Connection, sql
from anchor_service.errors import TransientStoreError

__all__ = ["GroupCommit"]

_T = TypeVar("_T")
_SAVEPOINT: Final = sql("SAVEPOINT unit")
_ROLLBACK_TO: Final = sql("ROLLBACK TO SAVEPOINT unit")
_RELEASE: Final = sql("RELEASE SAVEPOINT unit")
#: Tries of a unit that keeps losing deadlocks to other processes' transactions.
_TRIES: Final = 3


class _Unit(Generic[_T]):
    __slots__ = ("done", "error", "result", "rows", "wake", "work")

    def __init__(self, work: Callable[[Connection], _T], rows: int) -> None:
        self.work, self.rows = work, rows
        self.done = False
        self.result: _T | None = None
        self.error: BaseException | None = None
        # Set once: when the unit is done, or when its thread is to lead the next group. One
        # event a unit, so that a commit wakes only the threads it concerns.
        self.wake = threading.Event()


class GroupCommit:
    """Runs units of work of many threads in shared write transactions of ``backend``."""

    def __init__(self, backend: Backend, *, max_units: int = 256, max_rows: int = 10_000,
                 ) -> None:
        self._backend = backend
        self._max_units, self._max_rows = max_units, max_rows
        self._queue: deque[_Unit[object]] = deque()
        self._cond = threading.Lock()
        self._leading = False
        self._commits = 0
        self._units = 0

    def stats(self) -> tuple[int, int]:
        """(commits, units): write transactions committed for units, and units committed."""
        with self._cond:
            return self._commits, self._units

    def queued(self) -> int:
        """Units waiting for a leader (not those of the group being committed)."""
        with self._cond:
            return len(self._queue)

    def run(self, work: Callable[[Connection], _T], *, rows: int = 1) -> _T:
        """Run ``work`` in a write transaction, perhaps shared with other threads' units, and
        return its result once that transaction has committed (durably); raise its own
        exception if it raised (its writes rolled back, the others' kept), or the error of
        the COMMIT if the transaction failed as a whole (nothing of it kept). ``rows``: how
        many rows it writes, to bound a group's size."""
        unit: _Unit[_T] = _Unit(work, rows)
        with self._cond:
            self._queue.append(unit)  # type: ignore[arg-type] # (results are handed back typed)
            lead = not self._leading
            self._leading = True
        if not lead:
            unit.wake.wait()  # done by another leader, or handed the lead
        while not unit.done:
            with self._cond:
                group = self._take()
            try:
                self._commit(group)
            finally:
                for other in group:
                    other.wake.set()
                if unit.done:
                    with self._cond:
                        # The lead passes to the oldest waiting unit's thread, if any.
                        if self._queue:
                            self._queue[0].wake.set()
                        else:
                            self._leading = False
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[return-value] # (set whenever error is None)

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

    def _commit(self, group: list[_Unit[object]]) -> None:
        """Run the group in one transaction; every unit ends done (result or error)."""
        retry: list[_Unit[object]] = []
        try:
            try:
                with self._backend.write() as db:
                    self._run_group(db, group)
            except TransientStoreError:
                # The group lost a deadlock as a whole: every unit again, each on its own.
                retry = group
            except BaseException as exc:
                for unit in group:
                    # Their writes went with the transaction: none of them is stored.
                    unit.result, unit.error = None, exc
                raise
            else:
                with self._cond:
                    self._commits += 1
                    self._units += sum(unit.error is None for unit in group)
                retry = [unit for unit in group if isinstance(unit.error, TransientStoreError)]
            for unit in retry:
                self._run_alone(unit)
        except BaseException as exc:
            for unit in group:
                if not unit.done and unit.error is None:
                    unit.error = exc
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: not the units' business alone
        finally:
            for unit in group:
                unit.done = True

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
