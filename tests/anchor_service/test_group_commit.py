"""Group commit on a real SQLite file and a real PostgreSQL server: concurrent acceptances
share COMMITs, nobody is answered before the COMMIT holding their rows, a failing unit fails
alone, and a failing COMMIT fails its whole group."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from anchor_service._database import Backend, Connection, open_backend, sql
from anchor_service._group_commit import GroupCommit, Merge
from anchor_service.errors import TransientStoreError
from anchor_service.store import STATUS_RESERVATION, Accepted, NewCredential, Store, StoreError
from tests.postgres import PostgresServer

_CREATE = sql("CREATE TABLE gc_parent (k INTEGER PRIMARY KEY)")
# Checked at COMMIT (deferred), on both databases: how a test makes a COMMIT fail.
_CREATE_CHILD = sql("CREATE TABLE gc_child (k INTEGER PRIMARY KEY, parent INTEGER "
                    "REFERENCES gc_parent (k) DEFERRABLE INITIALLY DEFERRED)")
_INSERT = sql("INSERT INTO gc_parent (k) VALUES (:k)")
_ORPHAN = sql("INSERT INTO gc_child (k, parent) VALUES (:k, :parent)")
_KEYS = sql("SELECT k FROM gc_parent ORDER BY k")
_CHILDREN = sql("SELECT k FROM gc_child ORDER BY k")


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "service.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def backend(location: str) -> Iterator[Backend]:
    db = open_backend(location)
    with db.write() as connection:
        connection.execute(_CREATE)
        connection.execute(_CREATE_CHILD)
    yield db
    db.close()


class _Queued:
    """A group commit whose leader is held inside its transaction until ``release``, so that
    units started meanwhile queue up behind it and form the next group."""

    def __init__(self, group: GroupCommit) -> None:
        self.group = group
        self._go = threading.Event()
        self._inside = threading.Event()
        self.results: dict[int, object] = {}
        self.errors: dict[int, BaseException] = {}
        self._threads: list[threading.Thread] = []

        def held(db: Connection) -> str:
            self._inside.set()
            self._go.wait(60)
            db.execute(_INSERT, {"k": 0})
            return "first"

        self._start(0, held)
        self._inside.wait(60)

    def _start(self, number: int, work: Callable[[Connection], object],
               merge: Merge | None = None) -> None:
        def call() -> None:
            try:
                self.results[number] = self.group.run(work, merge=merge)
            except BaseException as exc:  # what the test looks at
                self.errors[number] = exc

        thread = threading.Thread(target=call)
        thread.start()
        self._threads.append(thread)

    def queue(self, number: int, work: Callable[[Connection], object],
              merge: Merge | None = None) -> None:
        self._start(number, work, merge)

    def release(self, queued: int) -> None:
        """Once ``queued`` units wait behind the leader, let it commit; wait for everyone."""
        while self.group.queued() < queued:
            time.sleep(0.001)
        self._go.set()
        for thread in self._threads:
            thread.join(60)


def _insert(k: int) -> Callable[[Connection], int]:
    def work(db: Connection) -> int:
        db.execute(_INSERT, {"k": k})
        return k
    return work


def _keys(backend: Backend) -> list[int]:
    return [int(row[0]) for row in backend.connection().execute(_KEYS)]


def test_units_queued_behind_a_commit_share_the_next_one(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    for k in range(1, 21):
        queued.queue(k, _insert(k))
    queued.release(20)
    assert queued.errors == {}
    assert queued.results == {0: "first", **{k: k for k in range(1, 21)}}
    # The held leader's own commit, then one for the twenty that queued behind it.
    assert queued.group.stats() == (2, 21)
    assert _keys(backend) == list(range(21))


def test_a_failing_unit_fails_alone(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    for k in range(1, 11):
        queued.queue(k, _insert(k))
    queued.queue(11, _insert(5))  # the same key again: a constraint error, in this unit only

    def raises(db: Connection) -> None:
        db.execute(_INSERT, {"k": 100})
        raise ValueError("the unit's own error")

    queued.queue(12, raises)
    queued.release(12)
    assert set(queued.errors) == {11, 12}
    assert isinstance(queued.errors[11], StoreError)
    assert isinstance(queued.errors[12], ValueError)
    assert queued.results == {0: "first", **{k: k for k in range(1, 11)}}
    assert queued.group.stats() == (2, 11)
    assert _keys(backend) == list(range(11))  # neither 5 twice nor the failed unit's 100


def test_a_unit_alone_gets_its_own_error(backend: Backend) -> None:
    group = GroupCommit(backend)
    assert group.run(_insert(1)) == 1
    with pytest.raises(StoreError):
        group.run(_insert(1))

    def raises(db: Connection) -> None:
        db.execute(_INSERT, {"k": 100})
        raise ValueError("the unit's own error")

    with pytest.raises(ValueError, match="own error"):
        group.run(raises)
    assert group.stats() == (1, 1)
    assert _keys(backend) == [1]


def test_a_failing_commit_fails_its_whole_group(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    for k in range(1, 6):
        queued.queue(k, _insert(k))

    def orphan(db: Connection) -> str:
        # Refused only at COMMIT: the unit itself succeeds, the transaction does not.
        db.execute(_ORPHAN, {"k": 1, "parent": 999})
        return "orphan"

    queued.queue(6, orphan)
    queued.release(6)
    assert queued.results == {0: "first"}
    assert set(queued.errors) == set(range(1, 7))
    assert all(isinstance(error, StoreError) for error in queued.errors.values())
    assert queued.group.stats() == (1, 1)
    assert _keys(backend) == [0]  # nothing of the failed group is stored
    assert list(backend.connection().execute(_CHILDREN)) == []
    # The group commit goes on working after a failed group.
    assert queued.group.run(_insert(7)) == 7
    assert _keys(backend) == [0, 7]


def test_a_unit_that_loses_a_deadlock_is_run_again_alone(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    tries: list[int] = []

    def loses_once(db: Connection) -> str:
        tries.append(1)
        db.execute(_INSERT, {"k": 50})
        if len(tries) == 1:  # as PostgreSQL's deadlock_detected reaches a unit
            raise TransientStoreError("database error: deadlock detected")
        return "second try"

    queued.queue(1, _insert(1))
    queued.queue(2, loses_once)
    queued.release(2)
    assert queued.errors == {}
    assert queued.results == {0: "first", 1: 1, 2: "second try"}
    assert len(tries) == 2
    assert queued.group.stats() == (3, 3)  # held, the group of two, and the retry alone
    assert _keys(backend) == [0, 1, 50]


def test_group_commit_stays_bounded(backend: Backend) -> None:
    group = GroupCommit(backend, max_units=4, max_rows=10)
    queued = _Queued(group)
    for k in range(1, 11):
        queued.queue(k, _insert(k))
    queued.release(10)
    assert queued.errors == {}
    # Ten units behind the held one, at most four a group: three groups.
    assert group.stats() == (4, 11)


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    db = Store(location)
    db.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    yield db
    db.close()


def test_concurrent_single_acceptances_share_commits(store: Store) -> None:
    """Sixteen threads each accepting single credentials (after allocating its status
    position, as signing does): fewer commits than units, every id readable afterwards, every
    status position given once."""
    threads, each = 16, 25
    accepted: dict[str, bytes] = {}
    lock = threading.Lock()

    def submit(number: int) -> None:
        for n in range(each):
            (position,) = store.allocate_status(1, 1)
            digest = (number * 1000 + n).to_bytes(32, "big")
            (one,) = store.accept(1, [NewCredential(digest, os.urandom(16), status=position)])
            with lock:
                accepted[one.public_id] = digest

    workers = [threading.Thread(target=submit, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    commits, units = store.commit_stats()
    # An acceptance each, and a reservation of STATUS_RESERVATION positions now and then: the
    # blocks needed, and at most the next one reserved ahead (or one more, reserved by a
    # request while the one ahead was being written).
    allocated = store.next_status_index(1)
    reservations = allocated // STATUS_RESERVATION
    assert allocated % STATUS_RESERVATION == 0
    needed = -(-threads * each // STATUS_RESERVATION)
    assert needed <= reservations <= needed + 2
    assert units == threads * each + reservations
    assert commits < units
    records = store.credentials(list(accepted))
    assert len(records) == threads * each
    assert all(records[i].digest == digest for i, digest in accepted.items())
    positions = {record.status for record in records.values()}
    assert len(positions) == threads * each


def test_small_allocations_come_from_a_reserved_block(location: str) -> None:
    """Small allocations are served from a block reserved in one write; two stores (as two
    processes) get disjoint blocks; a request of a block or more is reserved for itself; every
    request's positions are consecutive."""
    first, second = Store(location), Store(location)
    try:
        first.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
        commits_before = first.commit_stats()[1]
        a = [p.list * 131072 + p.index for p in first.allocate_status(1, 1)]
        b = [p.list * 131072 + p.index for p in first.allocate_status(1, 3)]
        assert a == [0]
        assert b == [1, 2, 3]
        assert first.commit_stats()[1] == commits_before + 1  # one reservation for both
        c = [p.list * 131072 + p.index for p in second.allocate_status(1, 2)]
        assert c == [STATUS_RESERVATION, STATUS_RESERVATION + 1]
        big = [p.list * 131072 + p.index for p in first.allocate_status(1, STATUS_RESERVATION)]
        assert big == list(range(2 * STATUS_RESERVATION, 3 * STATUS_RESERVATION))
        # A request larger than what is left of the block gets a new block, consecutive.
        rest = [p.list * 131072 + p.index
                for p in first.allocate_status(1, STATUS_RESERVATION - 1)]
        assert rest == list(range(3 * STATUS_RESERVATION, 4 * STATUS_RESERVATION - 1))
        # (and the block after it is being reserved ahead, its current one nearly used up)
        assert first.next_status_index(1) in (4 * STATUS_RESERVATION, 5 * STATUS_RESERVATION)
    finally:
        first.close()
        second.close()


class _InsertTogether:
    """A merged writer of keys into gc_parent: one multi-row INSERT for a whole group (a
    duplicate key fails it), each key its unit's result; ``together`` False: it writes, then
    says they cannot be written together."""

    def __init__(self, together: bool = True) -> None:
        self.together = together
        self.calls: list[int] = []

    def __call__(self, db: Connection, keys: Sequence[object]) -> list[object] | None:
        self.calls.append(len(keys))
        marks = ", ".join(f"(:k{n})" for n in range(len(keys)))
        db.execute(sql(f"INSERT INTO gc_parent (k) VALUES {marks}"),  # noqa: S608 - binds
                   {f"k{n}": key for n, key in enumerate(keys)})
        return list(keys) if self.together else None

    def unit(self, k: int) -> tuple[Callable[[Connection], object], Merge]:
        """The unit of key ``k``: alone it answers ("alone", k), merged k."""
        def alone(db: Connection) -> object:
            db.execute(_INSERT, {"k": k})
            return ("alone", k)
        return alone, Merge(self, k)


def test_merged_units_are_written_together_by_one_statement(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    writer = _InsertTogether()
    for k in range(1, 11):
        queued.queue(k, *writer.unit(k))
    queued.queue(50, _insert(50))  # no merge: its own savepoint, in the same transaction
    queued.release(11)
    assert queued.errors == {}
    assert queued.results == {0: "first", **{k: k for k in range(1, 11)}, 50: 50}
    assert writer.calls == [10]
    assert queued.group.stats() == (2, 12)
    assert _keys(backend) == [*range(11), 50]


def test_a_merge_that_cannot_be_done_together_is_run_unit_by_unit(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    writer = _InsertTogether(together=False)
    for k in range(1, 6):
        queued.queue(k, *writer.unit(k))
    queued.release(5)
    assert queued.errors == {}
    # The merged rows were rolled back; each unit's own work wrote its key, once.
    assert queued.results == {0: "first", **{k: ("alone", k) for k in range(1, 6)}}
    assert writer.calls == [5]
    assert _keys(backend) == list(range(6))


def test_a_failing_merged_write_fails_only_the_unit_at_fault(backend: Backend) -> None:
    queued = _Queued(GroupCommit(backend))
    writer = _InsertTogether()
    for k in (1, 2, 3):
        queued.queue(k, *writer.unit(k))
    queued.queue(4, *writer.unit(2))  # key 2 twice: the merged INSERT fails as a whole
    queued.release(4)
    assert set(queued.errors) == {4}
    assert isinstance(queued.errors[4], StoreError)
    assert queued.results == {0: "first", 1: ("alone", 1), 2: ("alone", 2), 3: ("alone", 3)}
    assert _keys(backend) == [0, 1, 2, 3]


def test_awaited_units_are_answered_on_their_loop_once_committed(backend: Backend) -> None:
    """Units awaited on an event loop queue behind a thread's commit like any other: the
    writer thread commits them, the results, a unit's own error and a failing merge's fallback
    reach the loop, and a unit whose waiter is cancelled is written all the same."""
    group = GroupCommit(backend)
    queued = _Queued(group)
    writer = _InsertTogether()

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(group.run_async(*writer.unit(k)[:1],
                                                       merge=writer.unit(k)[1]))
                 for k in range(1, 6)]
        twice = asyncio.ensure_future(group.run_async(_insert(3), merge=Merge(writer, 3)))
        cancelled = asyncio.ensure_future(group.run_async(_insert(60)))
        while group.queued() < 7:
            await asyncio.sleep(0.001)
        assert not any(task.done() for task in [*tasks, twice])  # nothing before the COMMIT
        cancelled.cancel()
        queued.release(7)
        results = await asyncio.gather(*tasks)
        with pytest.raises(StoreError):
            await twice
        return results

    assert asyncio.run(main()) == [("alone", k) for k in range(1, 6)]
    assert queued.errors == {}
    assert _keys(backend) == [*range(6), 60]
    # The lead went back and forth between a thread and the writer: both go on working.
    assert group.run(_insert(70)) == 70
    assert asyncio.run(group.run_async(_insert(71))) == 71
    assert _keys(backend)[-2:] == [70, 71]


def test_an_awaited_unit_alone_gets_its_own_error(backend: Backend) -> None:
    group = GroupCommit(backend)

    async def main() -> None:
        assert await group.run_async(_insert(1)) == 1
        with pytest.raises(StoreError):
            await group.run_async(_insert(1))

    asyncio.run(main())
    assert _keys(backend) == [1]


def test_a_closed_group_commits_writer_thread_ends(backend: Backend) -> None:
    """The writer thread started for awaited units ends once its group commit is closed (a
    store's close closes it): a long test run or an app built many times does not gather
    idle threads. A unit awaited later starts another."""
    group = GroupCommit(backend)
    before = set(threading.enumerate())
    assert asyncio.run(group.run_async(_insert(1))) == 1
    (writer,) = [thread for thread in set(threading.enumerate()) - before
                 if thread.name == "group-commit"]
    group.close()
    writer.join(10)
    assert not writer.is_alive()
    assert asyncio.run(group.run_async(_insert(2))) == 2
    group.close()
    assert _keys(backend) == [1, 2]


def test_an_acceptance_sent_again_among_merged_ones_keeps_its_first_id(location: str) -> None:
    """Single acceptances that queue together are inserted by one statement; one of them a
    credential stored before: the group falls back to unit by unit, and it keeps its id."""
    tables = open_backend(location)
    store = Store(location)
    try:
        with tables.write() as connection:
            connection.execute(_CREATE)
        store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")

        def item(n: int) -> NewCredential:
            (position,) = store.allocate_status(1, 1)
            digest = n.to_bytes(32, "big")
            return NewCredential(digest, os.urandom(16), b"{}", digest, position)

        (first,) = store.accept(1, [item(1)])
        queued = _Queued(store._group)
        answers: dict[int, list[Accepted]] = {}

        def accept(n: int) -> None:
            answers[n] = store.accept(1, [item(n)])

        threads = [threading.Thread(target=accept, args=(n,)) for n in (1, 2, 3)]
        for thread in threads:
            thread.start()
        queued.release(3)
        for thread in threads:
            thread.join(60)
        again, (two,), (three,) = answers[1], answers[2], answers[3]
        assert again == [replace(first, created=False)]
        assert two.created
        assert three.created
        assert set(store.credentials([first.public_id, two.public_id, three.public_id])) == {
            first.public_id, two.public_id, three.public_id}
    finally:
        store.close()
        tables.close()


def test_the_next_block_is_reserved_before_the_current_one_runs_out(location: str) -> None:
    """Once half of its block is handed out, a store reserves the next one in the background:
    the request that finds its block used up takes the next one without a write of its own."""
    store = Store(location)
    try:
        store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
        half = STATUS_RESERVATION // 2
        taken = [store.allocate_status(1, 1)[0] for _ in range(half + 1)]
        deadline = time.monotonic() + 30  # bounds the wait for the background write
        while store.next_status_index(1) < 2 * STATUS_RESERVATION:
            assert time.monotonic() < deadline, "the next block was not reserved"
            time.sleep(0.01)
        units = store.commit_stats()[1]
        taken += [store.allocate_status(1, 1)[0]
                  for _ in range(STATUS_RESERVATION - half)]
        assert [p.list * 131072 + p.index for p in taken] == list(range(STATUS_RESERVATION + 1))
        assert store.commit_stats()[1] == units  # served from memory: no write
    finally:
        store.close()


def test_a_big_unit_on_postgresql_does_not_hold_back_small_ones(
        postgres: PostgresServer) -> None:
    """On PostgreSQL (several writers at once) a unit of ``alone_rows`` rows or more is
    written in a transaction of its own: while it is held open, small units of other threads
    commit and are answered; it commits after them, and every row of both is kept."""
    backend = open_backend(postgres.new_database())
    inside, go = threading.Event(), threading.Event()
    try:
        with backend.write() as connection:
            connection.execute(_CREATE)
        group = GroupCommit(backend, alone_rows=10)
        results: dict[object, object] = {}

        def big(db: Connection) -> str:
            inside.set()
            go.wait(60)
            for k in range(100, 110):
                db.execute(_INSERT, {"k": k})
            return "big"

        def call(name: object, work: Callable[[Connection], object], rows: int) -> None:
            results[name] = group.run(work, rows=rows)

        held = threading.Thread(target=call, args=("big", big, 10))
        held.start()
        assert inside.wait(60)
        small = [threading.Thread(target=call, args=(k, _insert(k), 1)) for k in range(1, 6)]
        for thread in small:
            thread.start()
        for thread in small:
            thread.join(30)
        assert results == {k: k for k in range(1, 6)}  # answered while the big one is open
        assert _keys(backend) == [1, 2, 3, 4, 5]
        go.set()
        held.join(60)
        assert results["big"] == "big"
        assert _keys(backend) == [1, 2, 3, 4, 5, *range(100, 110)]
    finally:
        go.set()
        backend.close()


def test_big_units_written_alone_take_turns_within_their_slots(
        postgres: PostgresServer) -> None:
    """With one slot for units written alone, a second big unit waits until the first has
    committed (each holds a connection of the pool for its whole transaction); both commit."""
    backend = open_backend(postgres.new_database())
    inside, go = threading.Event(), threading.Event()
    try:
        with backend.write() as connection:
            connection.execute(_CREATE)
        group = GroupCommit(backend, alone_rows=2, alone_at_once=1)
        entered: list[int] = []

        def big(k: int) -> Callable[[Connection], int]:
            def work(db: Connection) -> int:
                entered.append(k)
                if k == 1:
                    inside.set()
                    go.wait(60)
                db.execute(_INSERT, {"k": k})
                return k
            return work

        first = threading.Thread(target=group.run, args=(big(1),), kwargs={"rows": 2})
        first.start()
        assert inside.wait(60)
        second = threading.Thread(target=group.run, args=(big(2),), kwargs={"rows": 2})
        second.start()
        second.join(1.0)
        assert entered == [1]  # the second waits for the slot
        go.set()
        first.join(60)
        second.join(60)
        assert entered == [1, 2]
        assert _keys(backend) == [1, 2]
    finally:
        go.set()
        backend.close()
