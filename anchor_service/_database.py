"""The two databases the store runs on: SQLite (embedded, the default) and PostgreSQL (several
service replicas on one database). Private: :class:`anchor_service.store.Store` is the API.

Statements are :class:`SQL` values: written once with named binds (``:name``) and compiled,
when they are defined, into each driver's own spelling (sqlite3's ``?``, psycopg's ``%s``) by
SQLAlchemy's compiler; a connection picks its driver's text. Parameters are passed by name and
handed to the driver in the statement's order (positional binding is the drivers' fastest
path, which the ingest's many-row inserts feel). What else differs is here: how a write
transaction starts, how writers to one issuer's batches are serialised, and the issuer leases
that let exactly one process at a time send an issuer's transactions. The schema itself is
made by the versioned migrations (:mod:`anchor_service.migrations`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from sqlalchemy import text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from anchor_service._files import make_private, private_dir, tighten_if_exists
from anchor_service._shared_mutex import SharedMutex, open_shared_mutex
from anchor_service.errors import StoreError, TransientStoreError

__all__ = ["SQL", "Backend", "Connection", "Cursor", "Lease", "Params",
           "first_line", "open_backend", "sql", "sqlite_path"]

Params = Mapping[str, object]
# PostgreSQL's "try the transaction again" errors: serialization_failure, deadlock_detected.
_TRANSIENT: Final = frozenset({"40001", "40P01"})


Dialect = Literal["sqlite", "postgresql"]
_NONE: Final[Params] = {}  # the parameters of a statement without any (never mutated)

# The drivers' own positional parameter styles: the compiled text goes to the driver as is.
_SQLITE: Final = sqlite_dialect.dialect(paramstyle="qmark")
_POSTGRESQL: Final = psycopg_dialect.dialect(  # type: ignore[no-untyped-call] # (untyped __init__)
    paramstyle="format")


class SQL:
    """One statement in each driver's spelling, and the names of its binds in order; make it
    with :func:`sql`."""

    __slots__ = ("names", "postgresql", "sqlite", "values")

    def __init__(self, sqlite: str, postgresql: str, names: tuple[str, ...] = ()) -> None:
        self.sqlite, self.postgresql, self.names = sqlite, postgresql, names
        # Named parameters to the driver's positional ones, in C (itemgetter).
        getter = itemgetter(*names) if names else None
        self.values: Callable[[Params], tuple[Any, ...]] = (
            (lambda _params: ()) if getter is None
            else (lambda params: (getter(params),)) if len(names) == 1
            else getter)


def sql(statement: str) -> SQL:
    """Compile a statement written with named binds (``:name``) for both drivers, once.

    SQLAlchemy's compiler knows each driver's parameter style and quoting (psycopg reads ``%``
    as a placeholder, so a literal one is doubled), which a textual rewrite of placeholders
    at every execution would have to get right by hand."""
    clause = text(statement)
    lite, pg = clause.compile(dialect=_SQLITE), clause.compile(dialect=_POSTGRESQL)
    names = tuple(lite.positiontup or ())
    if names != tuple(pg.positiontup or ()):  # pragma: no cover - one compiler, one order
        raise StoreError(f"the drivers bind {statement!r} in different orders")
    return SQL(str(lite), str(pg), names)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, statement: SQL, params: Params = ...) -> Cursor: ...
    def executemany(self, statement: SQL, rows: Iterable[Params]) -> object: ...


_BEGIN, _BEGIN_IMMEDIATE, _COMMIT = sql("BEGIN"), sql("BEGIN IMMEDIATE"), sql("COMMIT")
_LEASE_STILL_HELD: Final = sql(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :space AND objid = :key AND objsubid = 2")
_LOCK_FOR_TRANSACTION: Final = sql("SELECT pg_advisory_xact_lock(:space, :key)")
_TRY_LOCK: Final = sql("SELECT pg_try_advisory_lock(:space, :key)")
_UNLOCK: Final = sql("SELECT pg_advisory_unlock(:space, :key)")
_TABLE_NAMES: Final = SQL(
    sqlite="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    postgresql="SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")


class Lease:
    """The right to send one issuer's transactions, for as long as ``held`` and
    :meth:`confirm` says it still is."""

    def __init__(self, held: bool) -> None:
        self.held = held

    def confirm(self) -> None:
        """Raise StoreError unless the lease is still held (call it right before sending)."""
        if not self.held:
            raise StoreError("this process does not hold the issuer's lease")


class _PgLease(Lease):
    def __init__(self, held: bool, db: _Wrapped, issuer_id: int) -> None:
        super().__init__(held)
        self._db, self._issuer_id = db, issuer_id

    def confirm(self) -> None:
        super().confirm()
        # The lock lives in the lease's own server session: if that connection dropped, the
        # server has freed the lock and another replica may hold it now.
        if self._db.raw.broken or self._db.raw.closed:
            raise StoreError("the issuer's lease was lost with its database connection")
        (still,) = self._db.execute(
            _LEASE_STILL_HELD, {"space": _LEASE_LOCK, "key": self._issuer_id}).fetchone()
        if not still:
            raise StoreError("the issuer's lease is no longer held")


# Advisory lock namespaces (PostgreSQL's two-key form): schema migrations (taken by
# anchor_service.migrations), cutting an issuer's batches, and the issuer's sending lease.
SCHEMA_LOCK: Final = 7701
_CUT_LOCK, _LEASE_LOCK = 7702, 7703


class Backend:
    """One database: connections, write transactions, locks and leases."""

    name: Dialect

    def table_names(self) -> set[str]:
        """The tables in the database (in PostgreSQL: in the connection's schema)."""
        return {str(row[0]) for row in self.connection().execute(_TABLE_NAMES)}

    def connection(self) -> Connection:
        raise NotImplementedError

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed (durably) on leaving the block (rolled back on an
        error)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def serialise_issuer(self, db: Connection, issuer_id: int) -> None:
        """Within a write transaction: wait until no other one cuts this issuer's batches."""

    @contextmanager
    def lease(self, issuer_id: int) -> Iterator[Lease]:
        """Try to become the one process sending this issuer's transactions; yields the lease
        (``held`` says whether it did). Released on exit, and by the operating system or the
        database server when the process dies."""
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError


log = logging.getLogger("anchor_service.store")

_FLOCK_POLL: Final = 0.0001
_FLOCK_EAGER: Final = 1.0


def _flock_within(fd: int, timeout: float, name: str, since: float | None = None) -> None:
    """Take the exclusive ``flock`` of ``fd``, waiting at most ``timeout`` seconds (as
    SQLite's busy timeout would): a writer that holds it for longer (a process stopped in a
    debugger, say) makes the others fail with :class:`StoreError`, not hang. Polled: a
    blocking ``flock`` cannot be given a timeout. The writers that queue on the shared mutex
    first find it free at once; it is waited for when the mutex cannot be used, or another
    program holds it. A writer usually holds it for one short transaction (a group of
    requests, one fsync, about a millisecond): the retries come every :data:`_FLOCK_POLL`
    seconds for the first :data:`_FLOCK_EAGER` seconds, then less and less often, up to every
    5 ms, for a writer that holds it long (a large bulk request's rows, a stopped process).
    The time counts ``since`` that ``time.monotonic()``, if given (the caller began waiting
    then)."""
    started = time.monotonic() if since is None else since
    deadline = started + timeout
    pause = _FLOCK_POLL
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:
                raise _held_too_long(name, timeout) from None
            time.sleep(pause)
            if now - started > _FLOCK_EAGER:
                pause = min(pause * 2, 0.005)


def _held_too_long(name: str, timeout: float) -> StoreError:
    return StoreError(f"the database's writer lock ({name}) was held for more than "
                      f"{timeout:g} s")


class SqliteBackend(Backend):
    """A SQLite file in WAL mode, fsynced at every commit. One writer at a time
    (``BEGIN IMMEDIATE``; the writers of this process queue on a lock, and those of every
    process on the writer lock beside the database: see :meth:`_process_writer`), so cutting
    needs no lock of its own; leases are ``flock`` locks on files next to the database, which
    also keeps two processes from sending for one issuer."""

    name: Dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._writer = threading.Lock()
        # The writers of all processes (service workers) queue on the writer lock file next
        # to the database (its shared mutex, then its flock), opened by each process for
        # itself (a descriptor inherited through a fork would share its flock with the
        # parent): (pid, descriptor, mutex).
        self._writer_file: tuple[int, int, SharedMutex | None] | None = None
        self._writer_name = f"{path}.writer.lock"
        # One connection a thread: SQLite connections are not to be shared across threads.
        self._local = threading.local()
        self._connections: list[_Wrapped] = []
        self._connections_lock = threading.Lock()
        # The database holds credentials. SQLite gives its -wal and -shm files the database
        # file's mode, so creating that file 0600 before SQLite opens it keeps all three
        # owner-only from their first byte; older ones are tightened.
        try:
            if not path.parent.exists():
                private_dir(path.parent)
            make_private(path)
            for suffix in ("-wal", "-shm", "-journal"):
                tighten_if_exists(Path(f"{path}{suffix}"))
        except OSError as exc:
            raise StoreError(f"cannot open {path} owner-only: {exc.strerror or exc}") from None

    def __str__(self) -> str:
        return str(self.path)

    def connection(self) -> _Wrapped:
        db: _Wrapped | None = getattr(self._local, "db", None)
        if db is None:
            try:
                raw = sqlite3.connect(self.path, timeout=self._busy_timeout,
                                      isolation_level=None, check_same_thread=False)
                raw.execute("PRAGMA journal_mode = WAL")
                raw.execute("PRAGMA synchronous = FULL")
                raw.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from None
            db = _Wrapped(raw, sqlite3.Error, dialect="sqlite")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
        # Once no thread of this process is writing: a writer still inside would find its
        # mutex unmapped (a crash, not an error) and its descriptor closed or another file's.
        with self._writer:
            if self._writer_file is not None and self._writer_file[0] == os.getpid():
                _, fd, mutex = self._writer_file
                if mutex is not None:
                    mutex.close()
                os.close(fd)
            self._writer_file = None

    @contextmanager
    def write(self) -> Iterator[_Wrapped]:
        db = self.connection()
        # Writers of this process queue on a lock rather than on SQLite's busy handler, which
        # sleeps and retries (up to 100 ms a time): under many concurrent requests that
        # turned waiting into most of the latency. Other processes still meet the busy handler.
        with self._writer, self._process_writer():
            db.execute(_BEGIN_IMMEDIATE)
            try:
                yield db
                db.execute(_COMMIT)
            except BaseException:
                _roll_back(db, lambda: bool(db.raw.in_transaction))
                raise

    @contextmanager
    def _process_writer(self) -> Iterator[None]:
        """Exclusive among this database's writers of every process (the service's workers,
        the command line), in turn. The ``flock`` of ``<database>.writer.lock`` excludes; the
        shared mutex in the same file's first page (where the C library has one) is the
        queue before it: a waiter sleeps until the holder releases it, where a ``flock`` with
        a timeout can only be polled (SQLite's busy handler polls too, up to 100 ms a time).
        A process whose mutex fails (see :mod:`anchor_service._shared_mutex`) goes on with
        the ``flock`` alone."""
        name = self._writer_name
        started = time.monotonic()
        fd, mutex = self._writer_lock()
        taken = None
        if mutex is not None:
            try:
                if not mutex.acquire(self._busy_timeout):
                    raise _held_too_long(name, self._busy_timeout)
                taken = mutex
            except OSError as exc:
                self._without_mutex(fd, exc)
        try:
            _flock_within(fd, self._busy_timeout, name, since=started)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if taken is not None:
                try:
                    taken.release()
                except OSError as exc:  # the write is done: not its failure
                    self._without_mutex(fd, exc)

    def _without_mutex(self, fd: int, error: OSError) -> None:
        log.warning("the writer lock's shared mutex failed (%s): the flock alone orders the "
                    "writers of process %d", error, os.getpid())
        self._writer_file = (os.getpid(), fd, None)

    def _writer_lock(self) -> tuple[int, SharedMutex | None]:
        """This process's descriptor of the writer lock file, and the shared mutex in it."""
        name = self._writer_name
        pid = os.getpid()
        if self._writer_file is None or self._writer_file[0] != pid:
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StoreError(f"cannot open {name}: {exc.strerror or exc}") from None
            mutex = None
            try:
                _flock_within(fd, self._busy_timeout, name)  # the mutex is set up under it
                try:
                    mutex = open_shared_mutex(fd)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except (OSError, ValueError) as exc:
                log.warning("no shared mutex in %s (%s): the flock alone orders the writers "
                            "of process %d", name, exc, pid)
            except StoreError:
                os.close(fd)
                raise
            self._writer_file = (pid, fd, mutex)
        return self._writer_file[1], self._writer_file[2]

    @contextmanager
    def lease(self, issuer_id: int) -> Iterator[Lease]:
        fd = os.open(f"{self.path}.issuer-{issuer_id}.lease", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield Lease(held=False)
                return
            yield Lease(held=True)  # a flock cannot be lost while its file stays open
        finally:
            os.close(fd)  # releases the lock


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3 and a bounded connection pool (``pool_size`` connections a
    process, whatever the number of threads): a read borrows a connection for one statement,
    a write transaction for its length, a lease for as long as it is held. Cutting an
    issuer's batches is serialised by a transaction-level advisory lock; the sending lease is
    a session-level advisory lock on the lease's own connection, freed if it drops."""

    name: Dialect = "postgresql"

    def __init__(self, url: str, pool_size: int) -> None:
        try:
            import psycopg  # noqa: PLC0415 - only PostgreSQL deployments need it
            import psycopg_pool  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise StoreError("PostgreSQL needs the postgres extra: "
                             "pip install 'microcred-anchor[postgres]'") from exc
        self._psycopg = psycopg
        self.url = url
        # Keepalives, so that a dead peer is noticed in about half a minute (on the server
        # too, which then frees the session's leases) rather than in hours.
        options = {"autocommit": True, "connect_timeout": 10, "keepalives": 1,
                   "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
                   "tcp_user_timeout": 30_000}
        self._pool = psycopg_pool.ConnectionPool(
            url, kwargs=options, min_size=1, max_size=pool_size, open=False, timeout=30,
            configure=_server_keepalives, check=_still_open,
            name="microcred")
        try:
            self._pool.open(wait=True, timeout=30)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            raise StoreError(f"cannot connect to {self}") from None
        self._errors: tuple[type[Exception], ...] = (psycopg.Error, psycopg_pool.PoolTimeout)

    def __str__(self) -> str:
        # The URL may carry a password; name the database without it.
        info = self._psycopg.conninfo.conninfo_to_dict(self.url)
        host, port, name = (info.get(k, "") for k in ("host", "port", "dbname"))
        return f"postgresql://{host}:{port}/{name}"

    def connection(self) -> _PooledReads:
        return _PooledReads(self)

    @contextmanager
    def borrowed(self) -> Iterator[_Wrapped]:
        """A connection of the pool, for the ``with`` block."""
        try:
            manager = self._pool.connection()
            raw = manager.__enter__()
        except self._errors as exc:
            raise StoreError(f"cannot reach {self}: {first_line(exc)}") from None
        try:
            yield _Wrapped(raw, self._psycopg.Error, dialect="postgresql")
        except BaseException as exc:
            manager.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            manager.__exit__(None, None, None)

    @contextmanager
    def write(self) -> Iterator[_Wrapped]:
        with self.borrowed() as db:
            db.execute(_BEGIN)
            try:
                yield db
                db.execute(_COMMIT)
            except BaseException:
                idle = self._psycopg.pq.TransactionStatus.IDLE
                _roll_back(db, lambda: not db.raw.broken
                           and db.raw.info.transaction_status != idle)
                raise

    def serialise_issuer(self, db: Connection, issuer_id: int) -> None:
        db.execute(_LOCK_FOR_TRANSACTION, {"space": _CUT_LOCK, "key": issuer_id})

    @contextmanager
    def lease(self, issuer_id: int) -> Iterator[Lease]:
        with self.borrowed() as db:
            held = bool(db.execute(_TRY_LOCK, {"space": _LEASE_LOCK, "key": issuer_id}
                                   ).fetchone()[0])
            try:
                yield _PgLease(held, db, issuer_id)
            finally:
                if held and not db.raw.broken and not db.raw.closed:
                    try:
                        db.execute(_UNLOCK, {"space": _LEASE_LOCK, "key": issuer_id})
                    except StoreError:
                        db.raw.close()  # the pool drops it, and the server frees the lock

    def close(self) -> None:
        self._pool.close()


class _PooledReads:
    """The :class:`Connection` for reads outside a transaction: each statement borrows a
    connection from the pool and gives it back with the rows already fetched."""

    def __init__(self, backend: PostgresBackend) -> None:
        self._backend = backend

    def execute(self, statement: SQL, params: Params = _NONE) -> Cursor:
        with self._backend.borrowed() as db:
            cursor: Any = db.execute(statement, params)
            return _Rows(cursor.fetchall() if cursor.description is not None else [],
                         cursor.rowcount)

    def executemany(self, statement: SQL, rows: Iterable[Params]) -> object:
        with self._backend.borrowed() as db:
            return db.executemany(statement, rows)


class _Rows:
    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def _still_open(connection: Any) -> None:
    """The pool's check of a connection it hands out, without a round trip (a query each time
    doubled the cost of every read): an idle session has nothing to read, so one whose socket
    is readable has been ended by the server (a restart, a terminated backend: its last
    message and the end of the stream wait there), and one psycopg saw fail is broken. Either
    raises, and the pool opens another connection instead."""
    if connection.broken or connection.closed:
        raise StoreError("the database connection is closed")
    readable, _, _ = select.select([connection.pgconn.socket], [], [], 0)
    if readable:
        connection.close()  # (closed, the pool drops it rather than hand it out again)
        raise StoreError("the database server ended the session")


def _server_keepalives(connection: Any) -> None:
    connection.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                       "SET tcp_keepalives_count = 3")


class _Wrapped:
    """A driver's connection that runs :class:`SQL` statements in its driver's spelling,
    raising StoreError for driver errors (so a failing disk or a dropped server is a clear
    503, never a bare exception)."""

    def __init__(self, raw: Any, error: type[Exception], *, dialect: Dialect) -> None:
        self.raw = raw
        self._error = error
        self._dialect = dialect

    def execute(self, statement: SQL, params: Params = _NONE) -> Cursor:
        try:
            cursor: Cursor = self.raw.execute(getattr(statement, self._dialect),
                                              statement.values(params))
        except self._error as exc:
            raise _store_error(exc) from None
        return cursor

    def executemany(self, statement: SQL, rows: Iterable[Params]) -> object:
        values = statement.values
        try:
            if self._dialect == "sqlite":
                return self.raw.executemany(statement.sqlite, map(values, rows))
            with self.raw.cursor() as cursor:
                cursor.executemany(statement.postgresql, [values(row) for row in rows])
        except self._error as exc:
            raise _store_error(exc) from None
        return None

    def close(self) -> None:
        self.raw.close()


def _store_error(exc: Exception) -> StoreError:
    """The StoreError for a driver's error: TransientStoreError for a PostgreSQL deadlock or
    serialisation failure (``_TRANSIENT``), which the unit's retry may cure."""
    kind = TransientStoreError if getattr(exc, "sqlstate", None) in _TRANSIENT else StoreError
    return kind(f"database error: {first_line(exc)}")


def _roll_back(db: _Wrapped, still_open: Callable[[], bool]) -> None:
    """Roll back after a failed write, if the transaction is still open (a failed COMMIT or a
    full disk may already have ended it); never let the rollback hide the first error."""
    try:
        if still_open():
            db.raw.execute("ROLLBACK")
    except Exception:  # noqa: S110 - the error that got us here is the one to report
        pass


def first_line(exc: Exception) -> str:
    """The first line of an error's message (its type's name if it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def sqlite_path(location: Path | str) -> Path | None:
    """The SQLite file ``location`` names, or None for a PostgreSQL URL."""
    spelled = str(location)
    if spelled.startswith(("postgresql://", "postgres://")):
        return None
    return Path(spelled.removeprefix("sqlite:///"))


def open_backend(location: Path | str, *, busy_timeout: float = 30.0,
                 pool_size: int = 10) -> Backend:
    """``postgresql://...`` (or ``postgres://``) for PostgreSQL, with at most ``pool_size``
    connections; ``sqlite:///PATH`` or a plain path for SQLite."""
    path = sqlite_path(location)
    if path is None:
        return PostgresBackend(str(location), pool_size)
    return SqliteBackend(path, busy_timeout)
