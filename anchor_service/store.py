"""Durable storage for the anchor service: a SQLite file (the default) or PostgreSQL.

Every method that changes data commits before it returns (SQLite: ``journal_mode=WAL`` and
``synchronous=FULL``; PostgreSQL: its WAL with ``synchronous_commit`` on): once ``accept`` has
returned, the credentials survive a crash or a SIGKILL, so the HTTP layer may answer 2xx.
Concurrent acceptances share their COMMIT (group commit: one fsync for many requests), and
each returns only once the COMMIT holding its rows has.
Batches are recorded, tree included, before any transaction is sent for them.

Several service processes may share one database (replicas on PostgreSQL; on SQLite, processes
on one machine): cutting an issuer's batches is serialised by the database, and
:meth:`Store.issuer_lease` lets one process at a time send an issuer's transactions.

The schema is versioned by the Alembic migrations of :mod:`anchor_service.migrations`. Opening a
store creates an empty database at the newest revision and refuses a database at any other
(:class:`~anchor_service.errors.SchemaMismatchError`: ``anchor-service db upgrade`` moves an
older one forward).

Queries are hand-written SQL, not SQLAlchemy Core expressions or its ORM, run on the drivers
themselves (sqlite3, psycopg): the store's behaviour lives in how each database is driven, and
that stays explicit in :mod:`anchor_service._database` (SQLite's WAL, fsync and ``BEGIN
IMMEDIATE`` with a per-thread connection and ``flock`` leases; PostgreSQL's bounded pool,
advisory locks and session leases), where an engine would put its own connection and
transaction handling in between, and the ingest path (one insert of many rows per request)
would pay for building and compiling expressions at every call. Each statement is written once,
with named binds (``:name``), and compiled into each driver's spelling when the module is
loaded, by SQLAlchemy's compiler (:func:`anchor_service._database.sql`); those with a variable
number of values (``IN`` lists) are compiled once per shape, on first use, and the one that
differs by database (``FOR UPDATE``) is spelled per database. Nothing rewrites SQL text at
execution. The statements use only SQL that both databases read alike (``INSERT ... ON
CONFLICT DO NOTHING``, ``RETURNING``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

from anchor_service import migrations
from anchor_service._database import SQL, Connection, Lease, open_backend, sql
from anchor_service._group_commit import GroupCommit, Merge
from anchor_service.errors import SchemaMismatchError, StoreError
from verifier.contract_types import STATUS_LIST_SIZE
from verifier.credential import leaf_input
from verifier.errors import CredentialError
from verifier.merkle import MerkleTree

__all__ = [
    "LEASE_WAIT",
    "Accepted",
    "BatchRecord",
    "BatchState",
    "CredentialRecord",
    "Issuer",
    "Lease",
    "NewCredential",
    "SchemaMismatchError",
    "StatusPosition",
    "Store",
    "StoreError",
    "TokenIdentity",
]

_IN_CHUNK: Final = 500  # bound on bound parameters per statement
#: Seconds a sender other than the pipeline (a status change, a recognition, the recognition
#: commands) waits for an issuer's sending lease held by a pipeline round.
LEASE_WAIT: Final = 10.0
#: Status positions a process reserves at a time for small requests (see
#: :meth:`Store.allocate_status`): a position write saved per single-credential submission,
#: against at most this many positions left unused when the process ends.
STATUS_RESERVATION: Final = 64
# On PostgreSQL, an acceptance of this many rows or more (a bulk submission) is written in a
# transaction of its own rather than in a group commit, so that the small acceptances around
# it commit without waiting for its inserts (GroupCommit's alone_rows).
_ALONE_ROWS: Final = 64


class BatchState(StrEnum):
    """Where a batch is in the pipeline."""

    BUILT = "built"  # tree recorded, no transaction known
    SENT = "sent"  # transaction sent, waiting for confirmations
    ANCHORED = "anchored"  # confirmed: receipts can be served


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuer the service anchors for: its on-chain entity and anchoring key, and its
    current signing key (``publicKeyMultibase``; None: its credentials are accepted unsigned)
    with its suite (None: the service's default)."""

    id: int
    name: str
    entity_id: int
    key_address: str
    did: str
    signing_key: str | None = None
    signing_suite: str | None = None


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who an API token belongs to."""

    role: str  # "issuer" or "admin"
    issuer_id: int | None


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential to accept: digest (of ``content``, what is anchored), the salt drawn for
    it, optionally its canonical JSON (absent when the issuer sends only the digest), the
    SHA-256 of the canonical credential as submitted (before the service signed it), by which
    a resubmission finds its first id although its new proof makes another digest, and its
    status list position (from :meth:`Store.allocate_status`, needed before signing a
    credential whose ``credentialStatus`` names it; None: :meth:`Store.accept` allocates
    one)."""

    digest: bytes
    salt: bytes
    content: bytes | None = None
    submitted_digest: bytes | None = None
    status: StatusPosition | None = None


@dataclass(frozen=True, slots=True, order=True)
class StatusPosition:
    """Where a credential's status is: entry ``index`` of the issuer's status list ``list``
    (``CredentialAnchor``'s (entity, list, index) addressing, and the W3C
    ``statusListIndex``)."""

    list: int
    index: int

    @classmethod
    def of(cls, position: int) -> StatusPosition:
        """The position of the issuer's ``position``-th allocated index."""
        return cls(position // STATUS_LIST_SIZE, position % STATUS_LIST_SIZE)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The id given to a credential; ``created`` is False when it was there already, and
    ``digest`` is the stored (anchored) one: a resubmitted credential keeps its first digest
    (and signature)."""

    public_id: str
    created: bool
    digest: bytes = b""


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    public_id: str
    issuer_id: int
    digest: bytes
    salt: bytes
    content: bytes | None
    accepted_at: float
    batch_id: int | None
    leaf_index: int | None
    #: None only for credentials sent or anchored before status lists (on CredentialAnchor
    #: 1.x, migration 0004).
    status_list: int | None = None
    status_index: int | None = None

    @property
    def status(self) -> StatusPosition | None:
        """The credential's status position, or None (anchored on a 1.x deployment)."""
        if self.status_list is None or self.status_index is None:
            return None
        return StatusPosition(self.status_list, self.status_index)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: int
    issuer_id: int
    root: bytes
    size: int
    state: BatchState
    created_at: float
    tx_hash: bytes | None
    sent_at: float | None
    block_number: int | None
    block_hash: bytes | None
    anchored_at: float | None


#: A stored acceptance's ids: (public id, digest) by submitted digest, and by digest.
_Found = tuple[dict[bytes, tuple[str, bytes]], dict[bytes, tuple[str, bytes]]]


@dataclass(frozen=True)
class _Acceptance:
    """What :meth:`Store.accept` hands the group commit, and how it reads the result."""

    store: Callable[[Connection], _Found]
    rows: int
    merge: Merge | None
    accepted: Callable[[_Found], list[Accepted]]


class Store:
    """The service's database. Safe to use from several threads.

    ``location`` is ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (with at most ``pool_size``
    connections), or ``sqlite:///PATH`` or a plain path for a SQLite file. An empty database
    is created at the newest schema revision; one at another revision is refused with
    :class:`SchemaMismatchError` (see :mod:`anchor_service.migrations`)."""

    def __init__(self, location: Path | str, *, busy_timeout: float = 30.0,
                 pool_size: int = 10) -> None:
        self._db = open_backend(location, busy_timeout=busy_timeout, pool_size=pool_size)
        self.backend = self._db.name
        # Acceptance and status allocation of concurrent requests share commits (fsyncs).
        self._group = GroupCommit(
            self._db, alone_rows=_ALONE_ROWS if self._db.name == "postgresql" else None,
            alone_at_once=max(1, pool_size // 2))
        # Status positions this process has reserved and not handed out yet, per issuer:
        # (next, end). See allocate_status.
        self._reserved: dict[int, tuple[int, int]] = {}
        # The next block of each issuer, reserved while the current one is in use, and the
        # issuers whose next block is being reserved.
        self._spare: dict[int, tuple[int, int]] = {}
        self._refilling: set[int] = set()
        self._reserved_lock = threading.Lock()
        self._reserving = threading.Lock()  # held by the thread reserving a block for a request
        # Issuers as last read, with when the read began, and when this store last changed
        # an issuer (a read begun before that is not given out): see recent_issuer.
        self._issuers: dict[int, tuple[float, Issuer]] = {}
        self._issuers_changed = 0.0
        try:
            migrations.prepare(self._db, location)
        except BaseException:
            self._db.close()
            raise

    def __str__(self) -> str:
        return str(self._db)

    # ----------------------------------------------------------------- plumbing

    def _connection(self) -> Connection:
        return self._db.connection()

    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed (and made durable) on success, rolled back on error."""
        return self._db.write()

    def close(self) -> None:
        """Close every connection this store opened, and let its group commit's writer
        thread end."""
        self._group.close()
        self._db.close()

    def commit_stats(self) -> tuple[int, int]:
        """(commits, units) of the group commit that acceptance and status allocation go
        through: with concurrent requests there are fewer commits (fsyncs) than units."""
        return self._group.stats()

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        self._connection().execute(_PING).fetchone()

    def issuer_lease(self, issuer_id: int) -> AbstractContextManager[Lease]:
        """Try to become the one process that sends ``issuer_id``'s transactions, for the
        duration of the ``with`` block; yields the lease, whose ``held`` says whether this
        process got it, and whose ``confirm()`` raises if it was lost meanwhile (call it just
        before sending). The lease dies with the process (or its database connection), so
        another replica takes over."""
        return self._db.lease(issuer_id)

    @contextmanager
    def waited_issuer_lease(self, issuer_id: int, wait: float = LEASE_WAIT) -> Iterator[bool]:
        """:meth:`issuer_lease`, waited for while another process holds it (a pipeline round,
        of this replica or another) at most ``wait`` seconds: yields True while this process
        holds it, or False (holding nothing) when it was not free in time."""
        deadline = time.monotonic() + wait
        while True:
            with self.issuer_lease(issuer_id) as lease:
                if lease.held:
                    yield True
                    return
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(0.05)

    # ------------------------------------------------------------ issuers, tokens

    def add_issuer(self, name: str, *, entity_id: int, key_address: str, did: str) -> Issuer:
        """Register an issuer (idempotent for identical data)."""
        with self._write() as db:
            row = db.execute(_ISSUER_BY_NAME, {"name": name}).fetchone()
            if row is not None:
                if tuple(row[1:4]) != (entity_id, key_address, did):
                    raise StoreError(f"issuer {name!r} exists with other data")
                return Issuer(row[0], name, entity_id, key_address, did, row[4], row[5])
            (new_id,) = db.execute(_ADD_ISSUER, {"name": name, "entity_id": entity_id,
                                                 "key_address": key_address, "did": did}
                                   ).fetchone()
            return Issuer(int(new_id), name, entity_id, key_address, did)

    def issuers(self) -> list[Issuer]:
        rows = self._connection().execute(_ISSUERS).fetchall()
        return [Issuer(*row) for row in rows]

    def issuer(self, issuer_id: int) -> Issuer:
        read_at = time.monotonic()
        row = self._connection().execute(_ISSUER, {"id": issuer_id}).fetchone()
        if row is None:
            raise StoreError(f"no issuer {issuer_id}")
        issuer = Issuer(*row)
        self._issuers[issuer_id] = (read_at, issuer)
        return issuer

    def recent_issuer(self, issuer_id: int, max_age: float) -> Issuer | None:
        """The issuer as this store last read it, if that began at most ``max_age`` seconds
        ago (None otherwise: read it with :meth:`issuer`). What this store changes is never
        stale here; what another process changes (the ``anchor-service`` commands) may be
        until ``max_age`` has passed."""
        entry = self._issuers.get(issuer_id)
        if entry is None or entry[0] <= self._issuers_changed \
                or time.monotonic() - entry[0] > max_age:
            return None
        return entry[1]

    def issuer_with_did(self, did: str) -> Issuer | None:
        """The first issuer (by id) whose DID is ``did``, or None: one indexed lookup."""
        row = self._connection().execute(_ISSUER_BY_DID, {"did": did}).fetchone()
        return None if row is None else Issuer(*row)

    def issuer_named(self, name: str) -> Issuer | None:
        """The issuer called ``name``, or None."""
        found = [issuer for issuer in self.issuers() if issuer.name == name]
        return found[0] if found else None

    def set_signing_key(self, issuer_id: int, signing_key: str | None,
                        suite: str | None = None) -> Issuer:
        """Record ``signing_key`` (``publicKeyMultibase``; None: sign no more) as the issuer's
        current signing key, with its suite (None: the service's default)."""
        with self._write() as db:
            updated = db.execute(_SET_SIGNING_KEY, {"id": issuer_id, "signing_key": signing_key,
                                                    "signing_suite": suite}).fetchone()
        self._issuers_changed = time.monotonic()
        if updated is None:
            raise StoreError(f"no issuer {issuer_id}")
        return self.issuer(issuer_id)

    def add_token(self, *, role: str, issuer_id: int | None = None) -> str:
        """Create an API token and return it; only its SHA-256 is stored."""
        if (role == "issuer") != (issuer_id is not None) or role not in {"issuer", "admin"}:
            raise StoreError("an issuer token needs an issuer; an admin token has none")
        token = "mca_" + secrets.token_urlsafe(32)
        with self._write() as db:
            db.execute(_ADD_TOKEN, {"token_hash": _token_hash(token), "issuer_id": issuer_id,
                                    "role": role, "created_at": time.time()})
        return token

    def token_identity(self, token: str) -> TokenIdentity | None:
        """Who ``token`` belongs to, or None. The lookup is by hash, so comparing it reveals
        nothing about stored tokens through timing."""
        row = self._connection().execute(
            _TOKEN, {"token_hash": _token_hash(token)}).fetchone()
        return None if row is None else TokenIdentity(row[0], row[1])

    # ---------------------------------------------------------------- credentials

    def allocate_status(self, issuer_id: int, count: int) -> list[StatusPosition]:
        """Allocate ``count`` consecutive status positions of the issuer, unique across
        processes and replicas. Fewer than :data:`STATUS_RESERVATION` come from a block of
        that many that this process reserves at a time, so that a single-credential
        submission usually writes nothing for its position; more are reserved for the call
        alone. A reservation is one short, durable transaction (one ``UPDATE ... RETURNING``
        of the issuer's counter, which the database serialises across processes),
        group-committed with other requests' writes. Positions of a request that then fails,
        of a resubmission (which keeps its first position), or left in a block when the
        process ends, stay unused: a gap in the list, at which nothing is anchored."""
        if count < 0:
            raise StoreError(f"cannot allocate {count} status positions")
        if count == 0:
            return []
        if count >= STATUS_RESERVATION:
            end = self._reserve(issuer_id, count)
            return [StatusPosition.of(position) for position in range(end - count, end)]
        while True:
            taken = self.reserved_status(issuer_id, count)
            if taken is not None:
                return taken
            # None in reserve (the first request, or faster than the refills): a block now.
            # One thread reserves it while the others wait for it; requests served from
            # memory (reserved_status) never wait for this.
            with self._reserving:
                taken = self.reserved_status(issuer_id, count)
                if taken is not None:
                    return taken
                end = self._reserve(issuer_id, STATUS_RESERVATION)
                with self._reserved_lock:
                    self._add_block(issuer_id, (end - STATUS_RESERVATION, end))

    def reserved_status(self, issuer_id: int, count: int) -> list[StatusPosition] | None:
        """:meth:`allocate_status` when it needs no database write: ``count`` positions from
        the blocks this process has reserved, or None (call :meth:`allocate_status`). The
        next block is reserved in the background once the current one is half used, so
        that under a steady flow of requests no request waits for a reservation."""
        if not 0 < count < STATUS_RESERVATION:
            return None
        with self._reserved_lock:
            start, end = self._reserved.get(issuer_id, (0, 0))
            if end - start < count:
                spare = self._spare.pop(issuer_id, None)
                if spare is None:
                    return None
                # The rest of the old block stays unused: the positions handed out here are
                # consecutive, as a request's are everywhere else.
                start, end = spare
            self._reserved[issuer_id] = (start + count, end)
            if (end - start - count < STATUS_RESERVATION // 2 and issuer_id not in self._spare
                    and issuer_id not in self._refilling):
                self._refilling.add(issuer_id)
                self._group.run_later(lambda db: _allocate(db, issuer_id, STATUS_RESERVATION),
                                      lambda end, error: self._refilled(issuer_id, end, error))
        return [StatusPosition.of(position) for position in range(start, start + count)]

    def _add_block(self, issuer_id: int, block: tuple[int, int]) -> None:
        """A block reserved for the issuer (under the lock): the spare one, or the current
        one when a spare is there already (the current one is then used up)."""
        spare = self._spare.get(issuer_id)
        if spare is not None:
            self._reserved[issuer_id] = spare
        self._spare[issuer_id] = block

    def _refilled(self, issuer_id: int, end: int | None, error: BaseException | None) -> None:
        """A background reservation ended: its block becomes the spare one; when it failed
        the next request that needs one reserves it itself."""
        with self._reserved_lock:
            self._refilling.discard(issuer_id)
            if end is not None and error is None:
                # (A request that reserved one itself meanwhile keeps its own: this one is
                # then a gap.)
                self._spare.setdefault(issuer_id, (end - STATUS_RESERVATION, end))

    def _reserve(self, issuer_id: int, count: int) -> int:
        """Take ``count`` positions from the issuer's counter; the end of the range taken."""
        # Group-committed with other requests' writes: its COMMIT has returned when it
        # returns, so no other caller of any process gets these positions. Durable: this
        # process keeps them in memory for later requests, so a reservation lost by a crash
        # of the database server (the service still running) would be handed out twice.
        end: int = self._group.run(lambda db: _allocate(db, issuer_id, count))
        return end

    def next_status_index(self, issuer_id: int) -> int:
        """How many status positions the issuer has allocated: its lists are ``0`` to
        ``(n - 1) // 131072`` (none when ``n`` is 0)."""
        row = self._connection().execute(_NEXT_STATUS_INDEX, {"id": issuer_id}).fetchone()
        if row is None:
            raise StoreError(f"no issuer {issuer_id}")
        return int(row[0])

    def accept(self, issuer_id: int, items: Sequence[NewCredential]) -> list[Accepted]:
        """Store credentials durably, in one transaction (which concurrent callers' units may
        share: :class:`~anchor_service._group_commit.GroupCommit`); it returns once that
        transaction has committed. The same credential from the same issuer keeps its first
        id, salt, digest and status position: found by its submitted digest when it has one (a
        credential the service signed again has a new digest), else by its digest. Items
        without a status position get one here, allocated in the same transaction."""
        # One unit of a group commit: answered only once the COMMIT holding its rows returned.
        unit = self._acceptance(issuer_id, items)
        return unit.accepted(self._group.run(unit.store, rows=unit.rows, merge=unit.merge))

    async def accept_async(self, issuer_id: int, items: Sequence[NewCredential],
                           ) -> list[Accepted]:
        """:meth:`accept` awaited on an event loop: no thread waits while it is written."""
        unit = self._acceptance(issuer_id, items)
        return unit.accepted(await self._group.run_async(unit.store, rows=unit.rows,
                                                         merge=unit.merge))

    def _acceptance(self, issuer_id: int, items: Sequence[NewCredential]) -> _Acceptance:
        """The group-commit unit that stores ``items``, and how its result becomes theirs."""
        now = time.time()
        # In submitted-digest order, so that two replicas inserting overlapping requests lock
        # the same keys in the same order (PostgreSQL would otherwise abort one as a deadlock).
        ordered = sorted(items, key=lambda item: item.submitted_digest or item.digest)
        fresh = [{"public_id": public_id, "issuer_id": issuer_id, "digest": item.digest,
                  "salt": item.salt, "content": item.content, "accepted_at": now,
                  "submitted_digest": item.submitted_digest,
                  "status_list": None if item.status is None else item.status.list,
                  "status_index": None if item.status is None else item.status.index}
                 for item, public_id in zip(ordered, _credential_ids(now, len(ordered)),
                                            strict=True)]
        unplaced = [row for row, item in zip(fresh, ordered, strict=True) if item.status is None]

        def store(db: Connection) -> _Found:
            if unplaced:
                # Positions for the items without one, in this same unit: a unit run again
                # after a deadlock allocates afresh (the first allocation was rolled back).
                end = _allocate(db, issuer_id, len(unplaced))
                for position, row in enumerate(unplaced, end - len(unplaced)):
                    place = StatusPosition.of(position)
                    row["status_list"], row["status_index"] = place.list, place.index
            db.executemany(_ACCEPT, fresh)
            by_submitted = self._ids_by(db, _ids_by_submitted, issuer_id, [
                item.submitted_digest for item in items if item.submitted_digest is not None])
            by_digest = self._ids_by(db, _ids_by_digests, issuer_id, [
                item.digest for item in items
                if item.submitted_digest is None or item.submitted_digest not in by_submitted])
            if any(item.submitted_digest not in by_submitted and item.digest not in by_digest
                   for item in items):
                # A row skipped by ON CONFLICT that is not this credential's earlier row: its
                # status position is another credential's. Positions are allocated once, so
                # this means a database that lost committed work; the request fails whole.
                raise StoreError("a status position of this request is taken by another "
                                 "credential; the request was not stored")
            return by_submitted, by_digest

        # Rows with their positions can be inserted together with other requests' rows.
        merge = None if unplaced else Merge(_accept_together, fresh)
        new_ids = {row["public_id"] for row in fresh}

        def accepted(found: _Found) -> list[Accepted]:
            by_submitted, by_digest = found
            answer = []
            for item in items:
                public_id, digest = (by_submitted[item.submitted_digest]
                                     if item.submitted_digest in by_submitted
                                     else by_digest[item.digest])
                answer.append(Accepted(public_id, public_id in new_ids, digest))
            return answer

        return _Acceptance(store, max(1, len(fresh)), merge, accepted)

    def _ids_by(self, db: Connection, query: Callable[[int], SQL], issuer_id: int,
                keys: Sequence[bytes]) -> dict[bytes, tuple[str, bytes]]:
        """(public id, digest) of the issuer's credentials, by digest or submitted digest."""
        found: dict[bytes, tuple[str, bytes]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start:start + _IN_CHUNK]
            params: dict[str, object] = {f"d{n}": key for n, key in enumerate(chunk)}
            params["issuer_id"] = issuer_id
            for key, public_id, digest in db.execute(query(len(chunk)), params):
                found[bytes(key)] = (public_id, bytes(digest))
        return found

    def credential(self, public_id: str) -> CredentialRecord | None:
        row = self._connection().execute(_CREDENTIAL, {"public_id": public_id}).fetchone()
        return None if row is None else CredentialRecord(*row)

    def credentials(self, public_ids: Sequence[str]) -> dict[str, CredentialRecord]:
        """The records of these public ids that exist, by id (unknown ids are left out)."""
        found: dict[str, CredentialRecord] = {}
        unique = list(dict.fromkeys(public_ids))
        connection = self._connection()
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start:start + _IN_CHUNK]
            params = {f"d{n}": public_id for n, public_id in enumerate(chunk)}
            for row in connection.execute(_credentials_by_ids(len(chunk)), params):
                found[row[0]] = CredentialRecord(*row)
        return found

    def credential_by_digest(self, issuer_id: int, digest: bytes) -> CredentialRecord | None:
        """The issuer's credential whose stored (anchored) digest is ``digest`` (one lookup
        on the unique (issuer, digest) index)."""
        row = self._connection().execute(
            _CREDENTIAL_BY_DIGEST, {"issuer_id": issuer_id, "digest": digest}).fetchone()
        return None if row is None else CredentialRecord(*row)

    def pending(self, issuer_id: int, *, up_to: int | None = None) -> tuple[int, float | None]:
        """How many credentials of the issuer wait for a batch (counted up to ``up_to`` when
        given), and when the first of them (in acceptance order, the order batches take them
        in) arrived. Read from the waiting credentials' index alone, and one row: the
        pipeline asks twice a second however many wait."""
        count, oldest = self._connection().execute(
            _PENDING, {"issuer_id": issuer_id,
                       "up_to": _ALL_PENDING if up_to is None else up_to}).fetchone()
        return int(count), oldest

    # -------------------------------------------------------------------- batches

    def cut_batch(self, issuer_id: int, max_size: int) -> BatchRecord | None:
        """Put up to ``max_size`` waiting credentials of the issuer, oldest first, into a new
        batch: build its tree and record batch, tree and leaf positions in one transaction.
        None when nothing waits."""
        with self._write() as db:
            self._db.serialise_issuer(db, issuer_id)
            rows = db.execute(_OLDEST_PENDING, {"issuer_id": issuer_id, "limit": max_size}
                              ).fetchall()
            if not rows:
                return None
            tree = MerkleTree([_leaf(row) for row in rows])
            now = time.time()
            (batch_id,) = db.execute(_ADD_BATCH, {"issuer_id": issuer_id, "root": tree.root,
                                                  "size": tree.size, "created_at": now}
                                     ).fetchone()
            db.executemany(_ADD_LEVEL, [{"batch_id": batch_id, "level": n, "data": level}
                                        for n, level in enumerate(tree.levels)])
            db.executemany(_PLACE, [{"batch_id": batch_id, "leaf_index": index, "id": row[0]}
                                    for index, row in enumerate(rows)])
        return BatchRecord(batch_id, issuer_id, tree.root, tree.size, BatchState.BUILT, now,
                           None, None, None, None, None)

    def batch(self, batch_id: int) -> BatchRecord | None:
        row = self._connection().execute(_BATCH, {"id": batch_id}).fetchone()
        return None if row is None else _batch(row)

    def batches(self, *, issuer_id: int | None = None, states: Sequence[BatchState] = (),
                limit: int = 100, before_id: int | None = None) -> list[BatchRecord]:
        """Batches, newest first, optionally of one issuer and in some states."""
        params: dict[str, object] = {"issuer_id": issuer_id, "before_id": before_id,
                                     "limit": limit}
        params.update({f"s{n}": str(state) for n, state in enumerate(states)})
        statement = _batches_query(issuer_id is not None, len(states), before_id is not None)
        rows = self._connection().execute(statement, params).fetchall()
        return [_batch(row) for row in rows]

    def mark_sent(self, batch_id: int, tx_hash: bytes) -> None:
        """Record the anchoring transaction of a built (or re-sent) batch."""
        self._transition(batch_id, {BatchState.BUILT, BatchState.SENT}, _MARK_SENT,
                         {"tx_hash": tx_hash, "sent_at": time.time()})

    def mark_anchored(self, batch_id: int, *, tx_hash: bytes, block_number: int,
                      block_hash: bytes, anchored_at: float) -> None:
        """Record the confirmed anchor: the batch's receipts can now be served."""
        self._transition(batch_id, {BatchState.BUILT, BatchState.SENT}, _MARK_ANCHORED,
                         {"tx_hash": tx_hash, "block_number": block_number,
                          "block_hash": block_hash, "anchored_at": anchored_at})

    def mark_reorganised(self, batch_id: int) -> None:
        """The batch's anchoring block left the chain (a reorganisation): back to sent, with
        its transaction (which a node may mine again) and no block, so that the pipeline
        adopts the anchor wherever the new chain has it, or replaces a transaction the chain
        lost. Its receipts are withheld until then."""
        self._transition(batch_id, {BatchState.ANCHORED}, _MARK_REORGANISED,
                         {"sent_at": time.time()})

    def has_unplaced(self, batch_id: int) -> bool:
        """Whether the batch holds a credential without a status position: one built before
        migration 0004, whose leaves are CredentialAnchor 1.x leaves."""
        row = self._connection().execute(_UNPLACED, {"batch_id": batch_id}).fetchone()
        return row is not None

    def recent_anchors(self, issuer_id: int, since_block: int) -> list[BatchRecord]:
        """The issuer's anchored batches whose block is ``since_block`` or later."""
        rows = self._connection().execute(
            _RECENT_ANCHORS, {"issuer_id": issuer_id, "since_block": since_block}).fetchall()
        return [_batch(row) for row in rows]

    def _transition(self, batch_id: int, allowed: set[BatchState], update: SQL,
                    values: dict[str, object]) -> None:
        with self._write() as db:
            row = db.execute(_BATCH_STATE_FOR_UPDATE, {"id": batch_id}).fetchone()
            if row is None:
                raise StoreError(f"no batch {batch_id}")
            if BatchState(row[0]) not in allowed:
                raise StoreError(f"batch {batch_id} is {row[0]}")
            db.execute(update, {**values, "id": batch_id})

    def load_tree(self, batch_id: int) -> MerkleTree:
        """The batch's tree, restored from its stored levels (no rehashing)."""
        rows = self._connection().execute(_LEVELS, {"batch_id": batch_id}).fetchall()
        if not rows:
            raise StoreError(f"no tree for batch {batch_id}")
        return MerkleTree.from_levels([bytes(row[0]) for row in rows])


# ------------------------------------------------------------------------- statements

_PING: Final = sql("SELECT 1")
_ISSUER_BY_NAME: Final = sql(
    "SELECT id, entity_id, key_address, did, signing_key, signing_suite FROM issuers "
    "WHERE name = :name")
_ADD_ISSUER: Final = sql(
    "INSERT INTO issuers (name, entity_id, key_address, did) "
    "VALUES (:name, :entity_id, :key_address, :did) RETURNING id")
_ISSUERS: Final = sql("SELECT id, name, entity_id, key_address, did, signing_key, signing_suite "
                      "FROM issuers ORDER BY id")
_ISSUER: Final = sql("SELECT id, name, entity_id, key_address, did, signing_key, signing_suite "
                     "FROM issuers WHERE id = :id")
_ISSUER_BY_DID: Final = sql("SELECT id, name, entity_id, key_address, did, signing_key, "
                            "signing_suite FROM issuers WHERE did = :did ORDER BY id LIMIT 1")
_SET_SIGNING_KEY: Final = sql(
    "UPDATE issuers SET signing_key = :signing_key, signing_suite = :signing_suite "
    "WHERE id = :id RETURNING id")
_ADD_TOKEN: Final = sql(
    "INSERT INTO tokens (token_hash, issuer_id, role, created_at) "
    "VALUES (:token_hash, :issuer_id, :role, :created_at)")
_TOKEN: Final = sql("SELECT role, issuer_id FROM tokens WHERE token_hash = :token_hash")
_ALLOCATE_STATUS: Final = sql(
    "UPDATE issuers SET next_status_index = next_status_index + :count WHERE id = :id "
    "RETURNING next_status_index")
_NEXT_STATUS_INDEX: Final = sql("SELECT next_status_index FROM issuers WHERE id = :id")
#: The columns of an accepted credential's row, as :func:`_accept_rows` binds them.
_ACCEPT_COLUMNS: Final = ("public_id", "issuer_id", "digest", "salt", "content", "accepted_at",
                          "submitted_digest", "status_list", "status_index")


@cache
def _accept_rows(suffixes: tuple[str, ...]) -> SQL:
    """The insert of accepted credentials' rows, one per suffix (bound by the column names
    with it: ``:public_id0``...), compiled once per tuple of suffixes."""
    columns = ", ".join(_ACCEPT_COLUMNS)
    values = ", ".join("(" + ", ".join(f":{name}{suffix}" for name in _ACCEPT_COLUMNS) + ")"
                       for suffix in suffixes)
    return sql(f"INSERT INTO credentials ({columns}) VALUES {values} "  # noqa: S608 - binds
               # No conflict target: a row with the same digest, or the same submitted
               # digest, is the same credential (both are unique per issuer); positions are
               # fresh, never a conflict.
               "ON CONFLICT DO NOTHING")


_ACCEPT: Final = _accept_rows(("",))
_CREDENTIAL_SELECT: Final = (
    "SELECT public_id, issuer_id, digest, salt, content, accepted_at, batch_id, leaf_index, "
    "status_list, status_index FROM credentials")
def _credential_ids(now: float, count: int) -> list[str]:
    """``count`` new credentials' public ids: UUIDv7s (RFC 9562) in 32 hex digits, their
    acceptance time (``now``) in milliseconds and then 74 random bits each (drawn from the OS
    in one call for all). Time-ordered, so that the unique index of ids takes each new one at
    its end: a random id (UUIDv4) dirtied a random page of that index per credential, written
    again at every commit, and single submissions came about 12 % slower a second."""
    stamp = (int(now * 1000) & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0b10 << 62
    pool = secrets.token_bytes(_ID_RANDOM_BYTES * count)
    ids = []
    for start in range(0, len(pool), _ID_RANDOM_BYTES):
        random = int.from_bytes(pool[start:start + _ID_RANDOM_BYTES]) >> 6  # 80 bits: 74
        ids.append(f"{stamp | (random >> 62) << 64 | (random & _LOW_62):032x}")
    return ids


_ID_RANDOM_BYTES: Final = 10
_LOW_62: Final = (1 << 62) - 1


_CREDENTIAL: Final = sql(f"{_CREDENTIAL_SELECT} WHERE public_id = :public_id")
_CREDENTIAL_BY_DIGEST: Final = sql(
    f"{_CREDENTIAL_SELECT} WHERE issuer_id = :issuer_id AND digest = :digest")
# The count reads the partial index of waiting credentials (no table row); the first one's
# time is one row. MIN(accepted_at) read every waiting credential's row, contents and all.
_PENDING: Final = sql(
    "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM credentials "
    "WHERE issuer_id = :issuer_id AND batch_id IS NULL LIMIT :up_to) AS waiting), "
    "(SELECT accepted_at FROM credentials WHERE issuer_id = :issuer_id AND batch_id IS NULL "
    "ORDER BY id LIMIT 1)")
_ALL_PENDING: Final = 2**62
_OLDEST_PENDING: Final = sql(
    "SELECT id, salt, digest, status_list, status_index FROM credentials "
    "WHERE issuer_id = :issuer_id "
    "AND batch_id IS NULL ORDER BY id LIMIT :limit")
_ADD_BATCH: Final = sql(
    "INSERT INTO batches (issuer_id, root, size, state, created_at) "
    "VALUES (:issuer_id, :root, :size, 'built', :created_at) RETURNING id")
_ADD_LEVEL: Final = sql(
    "INSERT INTO batch_levels (batch_id, level, data) VALUES (:batch_id, :level, :data)")
_PLACE: Final = sql(
    "UPDATE credentials SET batch_id = :batch_id, leaf_index = :leaf_index WHERE id = :id")
_BATCH_SELECT: Final = (
    "SELECT id, issuer_id, root, size, state, created_at, tx_hash, sent_at, block_number, "
    "block_hash, anchored_at FROM batches"
)
_BATCH: Final = sql(f"{_BATCH_SELECT} WHERE id = :id")
_RECENT_ANCHORS: Final = sql(
    f"{_BATCH_SELECT} WHERE issuer_id = :issuer_id AND state = 'anchored' "
    "AND block_number >= :since_block ORDER BY block_number")
_STATE: Final = sql("SELECT state FROM batches WHERE id = :id")
_UNPLACED: Final = sql("SELECT 1 FROM credentials WHERE batch_id = :batch_id "
                       "AND status_list IS NULL LIMIT 1")
# PostgreSQL locks the row for the transition; SQLite's write transaction already excludes
# every other writer (and has no FOR UPDATE).
_BATCH_STATE_FOR_UPDATE: Final = SQL(_STATE.sqlite, f"{_STATE.postgresql} FOR UPDATE",
                                     _STATE.names)
_MARK_SENT: Final = sql(
    "UPDATE batches SET state = 'sent', tx_hash = :tx_hash, sent_at = :sent_at WHERE id = :id")
_MARK_ANCHORED: Final = sql(
    "UPDATE batches SET state = 'anchored', tx_hash = :tx_hash, block_number = :block_number, "
    "block_hash = :block_hash, anchored_at = :anchored_at WHERE id = :id")
_MARK_REORGANISED: Final = sql(
    "UPDATE batches SET state = 'sent', sent_at = :sent_at, block_number = NULL, "
    "block_hash = NULL, anchored_at = NULL WHERE id = :id")
_LEVELS: Final = sql("SELECT data FROM batch_levels WHERE batch_id = :batch_id ORDER BY level")


@cache
def _credentials_by_ids(count: int) -> SQL:
    """The lookup of ``count`` public ids (binds ``:d0``...), compiled once per count."""
    marks = ", ".join(f":d{n}" for n in range(count))
    return sql(f"{_CREDENTIAL_SELECT} WHERE public_id IN ({marks})")


@cache
def _ids_by_digests(count: int) -> SQL:
    """The lookup of ``count`` digests (binds ``:d0``...), compiled once per count."""
    marks = ", ".join(f":d{n}" for n in range(count))
    return sql("SELECT digest, public_id, digest FROM credentials "  # noqa: S608 - binds only
               f"WHERE issuer_id = :issuer_id AND digest IN ({marks})")


@cache
def _ids_by_submitted(count: int) -> SQL:
    """The lookup of ``count`` submitted digests (binds ``:d0``...), compiled once per
    count."""
    marks = ", ".join(f":d{n}" for n in range(count))
    return sql("SELECT submitted_digest, public_id, digest FROM credentials "  # noqa: S608
               f"WHERE issuer_id = :issuer_id AND submitted_digest IN ({marks})")


@cache
def _batches_query(by_issuer: bool, states: int, before: bool) -> SQL:
    """The listing of batches for one combination of filters, compiled once per
    combination (bound as ``:issuer_id``, ``:s0``..., ``:before_id`` and ``:limit``)."""
    clauses = (["issuer_id = :issuer_id"] if by_issuer else []) + (
        [f"state IN ({', '.join(f':s{n}' for n in range(states))})"] if states else []) + (
        ["id < :before_id"] if before else [])
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return sql(f"{_BATCH_SELECT}{where} ORDER BY id DESC LIMIT :limit")


_ROWS_PER_INSERT: Final = 100  # 900 bound parameters: well under every driver's limit
_ROW_SUFFIXES: Final = tuple(str(n) for n in range(_ROWS_PER_INSERT))


def _accept_together(db: Connection, requests: Sequence[list[dict[str, Any]]],
                     ) -> list[_Found] | None:
    """Insert the rows of several acceptances (each with its status positions) in a few
    statements, and return what each one's unit in :meth:`Store.accept` would: its ids by
    submitted digest and by digest. None when a row was there already (a credential sent
    again, or twice at once), which only the unit-by-unit path tells apart."""
    rows = [row for request in requests for row in request]
    inserted = 0
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start:start + _ROWS_PER_INSERT]
        params = {f"{name}{n}": row[name] for n, row in enumerate(chunk)
                  for name in _ACCEPT_COLUMNS}
        inserted += db.execute(_accept_rows(_ROW_SUFFIXES[:len(chunk)]), params).rowcount
    if inserted != len(rows):
        return None
    return [({row["submitted_digest"]: (row["public_id"], row["digest"])
              for row in request if row["submitted_digest"] is not None},
             {row["digest"]: (row["public_id"], row["digest"])
              for row in request if row["submitted_digest"] is None})
            for request in requests]


def _allocate(db: Connection, issuer_id: int, count: int) -> int:
    """Allocate ``count`` status positions of the issuer; the end of the range (exclusive)."""
    row = db.execute(_ALLOCATE_STATUS, {"id": issuer_id, "count": count}).fetchone()
    if row is None:
        raise StoreError(f"no issuer {issuer_id}")
    return int(row[0])


def _leaf(row: Any) -> bytes:
    """The Merkle leaf input of a waiting credential's row (id, salt, digest, list, index)."""
    credential_id, salt, digest, status_list, status_index = row
    if status_list is None or status_index is None:
        raise StoreError(f"credential row {credential_id} waits for a batch without a status "
                         "position (run `anchor-service db upgrade`)")
    try:
        return leaf_input(bytes(salt), bytes(digest), int(status_list), int(status_index))
    except CredentialError as exc:
        raise StoreError(f"credential row {credential_id}: {exc}") from None


def _batch(row: Any) -> BatchRecord:
    (batch_id, issuer_id, root, size, state, created_at, tx_hash, sent_at, block_number,
     block_hash, anchored_at) = row
    return BatchRecord(
        int(batch_id), int(issuer_id), bytes(root), int(size), BatchState(state),
        float(created_at), _optional(bytes, tx_hash), _optional(float, sent_at),
        _optional(int, block_number), _optional(bytes, block_hash), _optional(float, anchored_at),
    )


_T = TypeVar("_T")


def _optional(kind: Callable[[Any], _T], value: Any) -> _T | None:
    return None if value is None else kind(value)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
