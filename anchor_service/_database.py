"""The two databases the store runs on: SQLite (embedded, the default) and PostgreSQL (several
service replicas on one database). Private: :class:`anchor_service.store.Store` is the API.

Both are used through the same SQL, written with ``?`` placeholders; the PostgreSQL side
rewrites them to ``%s``. What differs is here: the schema's types, how a write transaction
starts, how writers to one issuer's batches are serialised, and the issuer leases that let
exactly one process at a time send an issuer's transactions.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

from anchor_service._files import make_private, private_dir, tighten_if_exists
from anchor_service.errors import StoreError

__all__ = ["Backend", "Connection", "Cursor", "Lease", "open_backend"]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ...) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> object: ...


_TABLES: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS issuers (
    id {id},
    name TEXT NOT NULL UNIQUE,
    entity_id {int} NOT NULL,
    key_address TEXT NOT NULL,
    did TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash {blob} PRIMARY KEY,
    issuer_id {int} REFERENCES issuers(id),
    role TEXT NOT NULL CHECK (role IN ('issuer', 'admin')),
    created_at {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id {id},
    issuer_id {int} NOT NULL REFERENCES issuers(id),
    root {blob} NOT NULL,
    size {int} NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('built', 'sent', 'anchored')),
    created_at {real} NOT NULL,
    tx_hash {blob},
    sent_at {real},
    block_number {int},
    block_hash {blob},
    anchored_at {real},
    UNIQUE (issuer_id, root)
);
CREATE TABLE IF NOT EXISTS credentials (
    id {id},
    public_id TEXT NOT NULL UNIQUE,
    issuer_id {int} NOT NULL REFERENCES issuers(id),
    digest {blob} NOT NULL,
    salt {blob} NOT NULL,
    content {blob},
    accepted_at {real} NOT NULL,
    batch_id {int} REFERENCES batches(id),
    leaf_index {int},
    UNIQUE (issuer_id, digest)
);
CREATE INDEX IF NOT EXISTS credentials_pending ON credentials (issuer_id, id)
    WHERE batch_id IS NULL;
CREATE TABLE IF NOT EXISTS batch_levels (
    batch_id {int} NOT NULL REFERENCES batches(id),
    level {int} NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (batch_id, level)
)
"""
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
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND classid = ? AND objid = ? AND objsubid = 2",
            (_LEASE_LOCK, self._issuer_id)).fetchone()
        if not still:
            raise StoreError("the issuer's lease is no longer held")


# Advisory lock namespaces (PostgreSQL's two-key form): schema creation, cutting an issuer's
# batches, and the issuer's sending lease.
_SCHEMA_LOCK, _CUT_LOCK, _LEASE_LOCK = 7701, 7702, 7703


class Backend:
    """One database: connections, write transactions, locks and leases."""

    name: str
    for_update: str  # appended to a SELECT that reads rows about to be changed

    def statements(self) -> list[str]:
        raise NotImplementedError

    def connection(self) -> Connection:
        raise NotImplementedError

    @contextmanager
    def write(self) -> Iterator[Connection]:
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


class SqliteBackend(Backend):
    """A SQLite file in WAL mode, fsynced at every commit. One writer at a time (``BEGIN
    IMMEDIATE``), so cutting needs no lock of its own; leases are ``flock`` locks on files next
    to the database, which also keeps two processes from sending for one issuer."""

    name = "sqlite"
    for_update = ""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._writer = threading.Lock()
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

    def statements(self) -> list[str]:
        schema = _TABLES.format(id="INTEGER PRIMARY KEY", int="INTEGER", blob="BLOB",
                                real="REAL")
        return [s.strip() for s in schema.split(";") if s.strip()]

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
            db = _Wrapped(raw, sqlite3.Error, placeholder="?")
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

    @contextmanager
    def write(self) -> Iterator[_Wrapped]:
        db = self.connection()
        # Writers of this process queue on a lock rather than on SQLite's busy handler, which
        # sleeps and retries (up to 100 ms a time): under many concurrent requests that
        # turned waiting into most of the latency. Other processes still meet the busy handler.
        with self._writer:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                _roll_back(db, lambda: bool(db.raw.in_transaction))
                raise

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

    name = "postgresql"
    for_update = " FOR UPDATE"

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
            configure=_server_keepalives, check=psycopg_pool.ConnectionPool.check_connection,
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

    def statements(self) -> list[str]:
        schema = _TABLES.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                int="BIGINT", blob="BYTEA", real="DOUBLE PRECISION")
        # Replicas starting together must not race to create the same tables.
        return [f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})",
                *(s.strip() for s in schema.split(";") if s.strip())]

    def connection(self) -> _PooledReads:
        return _PooledReads(self)

    @contextmanager
    def borrowed(self) -> Iterator[_Wrapped]:
        """A connection of the pool, for the ``with`` block."""
        try:
            manager = self._pool.connection()
            raw = manager.__enter__()
        except self._errors as exc:
            raise StoreError(f"cannot reach {self}: {_first_line(exc)}") from None
        try:
            yield _Wrapped(raw, self._psycopg.Error, placeholder="%s")
        except BaseException as exc:
            manager.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            manager.__exit__(None, None, None)

    @contextmanager
    def write(self) -> Iterator[_Wrapped]:
        with self.borrowed() as db:
            db.execute("BEGIN")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                idle = self._psycopg.pq.TransactionStatus.IDLE
                _roll_back(db, lambda: not db.raw.broken
                           and db.raw.info.transaction_status != idle)
                raise

    def serialise_issuer(self, db: Connection, issuer_id: int) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?, ?)", (_CUT_LOCK, issuer_id))

    @contextmanager
    def lease(self, issuer_id: int) -> Iterator[Lease]:
        with self.borrowed() as db:
            held = bool(db.execute("SELECT pg_try_advisory_lock(?, ?)",
                                   (_LEASE_LOCK, issuer_id)).fetchone()[0])
            try:
                yield _PgLease(held, db, issuer_id)
            finally:
                if held and not db.raw.broken and not db.raw.closed:
                    try:
                        db.execute("SELECT pg_advisory_unlock(?, ?)", (_LEASE_LOCK, issuer_id))
                    except StoreError:
                        db.raw.close()  # the pool drops it, and the server frees the lock

    def close(self) -> None:
        self._pool.close()


class _PooledReads:
    """The :class:`Connection` for reads outside a transaction: each statement borrows a
    connection from the pool and gives it back with the rows already fetched."""

    def __init__(self, backend: PostgresBackend) -> None:
        self._backend = backend

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        with self._backend.borrowed() as db:
            cursor: Any = db.execute(sql, params)
            return _Rows(cursor.fetchall() if cursor.description is not None else [])

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> object:
        with self._backend.borrowed() as db:
            return db.executemany(sql, rows)


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def _server_keepalives(connection: Any) -> None:
    connection.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                       "SET tcp_keepalives_count = 3")


class _Wrapped:
    """A driver's connection with ``?`` placeholders, raising StoreError for driver errors
    (so a failing disk or a dropped server is a clear 503, never a bare exception)."""

    def __init__(self, raw: Any, error: type[Exception], *, placeholder: str) -> None:
        self.raw = raw
        self._error = error
        self._rewrite = placeholder != "?"

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        try:
            cursor: Cursor = self.raw.execute(
                sql.replace("?", "%s") if self._rewrite else sql, tuple(params))
        except self._error as exc:
            raise StoreError(f"database error: {_first_line(exc)}") from None
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> object:
        try:
            if not self._rewrite:
                return self.raw.executemany(sql, rows)
            with self.raw.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), list(rows))
        except self._error as exc:
            raise StoreError(f"database error: {_first_line(exc)}") from None
        return None

    def close(self) -> None:
        self.raw.close()


def _roll_back(db: _Wrapped, still_open: Callable[[], bool]) -> None:
    """Roll back after a failed write, if the transaction is still open (a failed COMMIT or a
    full disk may already have ended it); never let the rollback hide the first error."""
    try:
        if still_open():
            db.raw.execute("ROLLBACK")
    except Exception:  # noqa: S110 - the error that got us here is the one to report
        pass


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def open_backend(location: Path | str, *, busy_timeout: float = 30.0,
                 pool_size: int = 10) -> Backend:
    """``postgresql://...`` (or ``postgres://``) for PostgreSQL, with at most ``pool_size``
    connections; ``sqlite:///PATH`` or a plain path for SQLite."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(text, pool_size)
    return SqliteBackend(Path(text.removeprefix("sqlite:///")), busy_timeout)
