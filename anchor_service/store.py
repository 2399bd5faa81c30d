"""Durable storage for the anchor service: a SQLite file (the default) or PostgreSQL.

Every method that changes data commits before it returns (SQLite: ``journal_mode=WAL`` and
``synchronous=FULL``; PostgreSQL: its WAL with ``synchronous_commit`` on): once ``accept`` has
returned, the credentials survive a crash or a SIGKILL, so the HTTP layer may answer 2xx.
Batches are recorded, tree included, before any transaction is sent for them.

Several service processes may share one database (replicas on PostgreSQL; on SQLite, processes
on one machine): cutting an issuer's batches is serialised by the database, and
:meth:`Store.issuer_lease` lets one process at a time send an issuer's transactions.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from anchor_service._database import Connection, Lease, open_backend
from anchor_service.errors import StoreError
from verifier.merkle import MerkleTree

__all__ = [
    "Accepted",
    "BatchRecord",
    "BatchState",
    "CredentialRecord",
    "Issuer",
    "Lease",
    "NewCredential",
    "Store",
    "StoreError",
    "TokenIdentity",
]

SCHEMA_VERSION: Final = 1
_IN_CHUNK: Final = 500  # bound on "?" placeholders per statement


class BatchState(StrEnum):
    """Where a batch is in the pipeline."""

    BUILT = "built"  # tree recorded, no transaction known
    SENT = "sent"  # transaction sent, waiting for confirmations
    ANCHORED = "anchored"  # confirmed: receipts can be served


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuer the service anchors for: its on-chain entity and anchoring key."""

    id: int
    name: str
    entity_id: int
    key_address: str
    did: str


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who an API token belongs to."""

    role: str  # "issuer" or "admin"
    issuer_id: int | None


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential to accept: digest, the salt drawn for it, and optionally its canonical
    JSON (absent when the issuer sends only the digest)."""

    digest: bytes
    salt: bytes
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The id given to a credential; ``created`` is False when it was there already."""

    public_id: str
    created: bool


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


class Store:
    """The service's database. Safe to use from several threads.

    ``location`` is ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (with at most ``pool_size``
    connections), or ``sqlite:///PATH`` or a plain path for a SQLite file."""

    def __init__(self, location: Path | str, *, busy_timeout: float = 30.0,
                 pool_size: int = 10) -> None:
        self._db = open_backend(location, busy_timeout=busy_timeout, pool_size=pool_size)
        self.backend = self._db.name
        with self._db.write() as db:
            for statement in self._db.statements():
                db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(f"{self} has schema version {row[0]}, this code reads "
                                 f"{SCHEMA_VERSION}")

    def __str__(self) -> str:
        return str(self._db)

    # ----------------------------------------------------------------- plumbing

    def _connection(self) -> Connection:
        return self._db.connection()

    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed (and made durable) on success, rolled back on error."""
        return self._db.write()

    def close(self) -> None:
        """Close every connection this store opened."""
        self._db.close()

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        self._connection().execute("SELECT 1").fetchone()

    def issuer_lease(self, issuer_id: int) -> AbstractContextManager[Lease]:
        """Try to become the one process that sends ``issuer_id``'s transactions, for the
        duration of the ``with`` block; yields the lease, whose ``held`` says whether this
        process got it, and whose ``confirm()`` raises if it was lost meanwhile (call it just
        before sending). The lease dies with the process (or its database connection), so
        another replica takes over."""
        return self._db.lease(issuer_id)

    # ------------------------------------------------------------ issuers, tokens

    def add_issuer(self, name: str, *, entity_id: int, key_address: str, did: str) -> Issuer:
        """Register an issuer (idempotent for identical data)."""
        with self._write() as db:
            row = db.execute("SELECT id, entity_id, key_address, did FROM issuers WHERE name = ?",
                             (name,)).fetchone()
            if row is not None:
                if tuple(row[1:]) != (entity_id, key_address, did):
                    raise StoreError(f"issuer {name!r} exists with other data")
                return Issuer(row[0], name, entity_id, key_address, did)
            (new_id,) = db.execute(
                "INSERT INTO issuers (name, entity_id, key_address, did) VALUES (?, ?, ?, ?) "
                "RETURNING id", (name, entity_id, key_address, did)).fetchone()
            return Issuer(int(new_id), name, entity_id, key_address, did)

    def issuers(self) -> list[Issuer]:
        rows = self._connection().execute(
            "SELECT id, name, entity_id, key_address, did FROM issuers ORDER BY id").fetchall()
        return [Issuer(*row) for row in rows]

    def issuer(self, issuer_id: int) -> Issuer:
        row = self._connection().execute(
            "SELECT id, name, entity_id, key_address, did FROM issuers WHERE id = ?",
            (issuer_id,)).fetchone()
        if row is None:
            raise StoreError(f"no issuer {issuer_id}")
        return Issuer(*row)

    def add_token(self, *, role: str, issuer_id: int | None = None) -> str:
        """Create an API token and return it; only its SHA-256 is stored."""
        if (role == "issuer") != (issuer_id is not None) or role not in {"issuer", "admin"}:
            raise StoreError("an issuer token needs an issuer; an admin token has none")
        token = "mca_" + secrets.token_urlsafe(32)
        with self._write() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)",
                       (_token_hash(token), issuer_id, role, time.time()))
        return token

    def token_identity(self, token: str) -> TokenIdentity | None:
        """Who ``token`` belongs to, or None. The lookup is by hash, so comparing it reveals
        nothing about stored tokens through timing."""
        row = self._connection().execute(
            "SELECT role, issuer_id FROM tokens WHERE token_hash = ?", (_token_hash(token),)
        ).fetchone()
        return None if row is None else TokenIdentity(row[0], row[1])

    # ---------------------------------------------------------------- credentials

    def accept(self, issuer_id: int, items: Sequence[NewCredential]) -> list[Accepted]:
        """Store credentials durably, in one transaction; the same digest from the same issuer
        keeps its first id (and salt)."""
        now = time.time()
        fresh = [(uuid.uuid4().hex, issuer_id, item.digest, item.salt, item.content, now)
                 for item in items]
        # In digest order, so that two replicas inserting overlapping requests lock the same
        # keys in the same order (PostgreSQL would otherwise abort one as a deadlock).
        fresh.sort(key=lambda row: row[2])
        with self._write() as db:
            db.executemany(
                "INSERT INTO credentials (public_id, issuer_id, digest, salt, content, "
                "accepted_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issuer_id, digest) DO NOTHING",
                fresh)
            ids = self._ids_by_digest(db, issuer_id, [item.digest for item in items])
        new_ids = {row[0] for row in fresh}
        return [Accepted(ids[item.digest], ids[item.digest] in new_ids) for item in items]

    def _ids_by_digest(self, db: Connection, issuer_id: int,
                       digests: Sequence[bytes]) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for digest, public_id in db.execute(
                f"SELECT digest, public_id FROM credentials WHERE issuer_id = ? "  # noqa: S608 - placeholders only
                f"AND digest IN ({marks})", (issuer_id, *chunk)):
                found[bytes(digest)] = public_id
        return found

    def credential(self, public_id: str) -> CredentialRecord | None:
        row = self._connection().execute(
            "SELECT public_id, issuer_id, digest, salt, content, accepted_at, batch_id, "
            "leaf_index FROM credentials WHERE public_id = ?", (public_id,)).fetchone()
        return None if row is None else CredentialRecord(*row)

    def pending(self, issuer_id: int) -> tuple[int, float | None]:
        """How many credentials of the issuer wait for a batch, and when the oldest arrived."""
        count, oldest = self._connection().execute(
            "SELECT COUNT(*), MIN(accepted_at) FROM credentials "
            "WHERE issuer_id = ? AND batch_id IS NULL", (issuer_id,)).fetchone()
        return int(count), oldest

    # -------------------------------------------------------------------- batches

    def cut_batch(self, issuer_id: int, max_size: int) -> BatchRecord | None:
        """Put up to ``max_size`` waiting credentials of the issuer, oldest first, into a new
        batch: build its tree and record batch, tree and leaf positions in one transaction.
        None when nothing waits."""
        with self._write() as db:
            self._db.serialise_issuer(db, issuer_id)
            rows = db.execute(
                "SELECT id, salt, digest FROM credentials WHERE issuer_id = ? "
                "AND batch_id IS NULL ORDER BY id LIMIT ?", (issuer_id, max_size)).fetchall()
            if not rows:
                return None
            tree = MerkleTree([bytes(salt) + bytes(digest) for _, salt, digest in rows])
            now = time.time()
            (batch_id,) = db.execute(
                "INSERT INTO batches (issuer_id, root, size, state, created_at) "
                "VALUES (?, ?, ?, 'built', ?) RETURNING id",
                (issuer_id, tree.root, tree.size, now)).fetchone()
            db.executemany("INSERT INTO batch_levels VALUES (?, ?, ?)",
                           [(batch_id, n, level) for n, level in enumerate(tree.levels)])
            db.executemany("UPDATE credentials SET batch_id = ?, leaf_index = ? WHERE id = ?",
                           [(batch_id, index, row[0]) for index, row in enumerate(rows)])
        return BatchRecord(batch_id, issuer_id, tree.root, tree.size, BatchState.BUILT, now,
                           None, None, None, None, None)

    def batch(self, batch_id: int) -> BatchRecord | None:
        row = self._connection().execute(f"{_BATCH_SELECT} WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else _batch(row)

    def batches(self, *, issuer_id: int | None = None, states: Sequence[BatchState] = (),
                limit: int = 100, before_id: int | None = None) -> list[BatchRecord]:
        """Batches, newest first, optionally of one issuer and in some states."""
        clauses: list[str] = []
        args: list[object] = []
        if issuer_id is not None:
            clauses.append("issuer_id = ?")
            args.append(issuer_id)
        if states:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(str(s) for s in states)
        if before_id is not None:
            clauses.append("id < ?")
            args.append(before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._connection().execute(
            f"{_BATCH_SELECT} {where} ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_batch(row) for row in rows]

    def mark_sent(self, batch_id: int, tx_hash: bytes) -> None:
        """Record the anchoring transaction of a built (or re-sent) batch."""
        self._transition(batch_id, {BatchState.BUILT, BatchState.SENT},
                         "state = 'sent', tx_hash = ?, sent_at = ?", (tx_hash, time.time()))

    def mark_anchored(self, batch_id: int, *, tx_hash: bytes, block_number: int,
                      block_hash: bytes, anchored_at: float) -> None:
        """Record the confirmed anchor: the batch's receipts can now be served."""
        self._transition(batch_id, {BatchState.BUILT, BatchState.SENT},
                         "state = 'anchored', tx_hash = ?, block_number = ?, block_hash = ?, "
                         "anchored_at = ?", (tx_hash, block_number, block_hash, anchored_at))

    def mark_reorganised(self, batch_id: int) -> None:
        """The batch's anchoring block left the chain (a reorganisation): back to sent, with
        its transaction (which a node may mine again) and no block, so that the pipeline
        adopts the anchor wherever the new chain has it, or replaces a transaction the chain
        lost. Its receipts are withheld until then."""
        self._transition(batch_id, {BatchState.ANCHORED},
                         "state = 'sent', sent_at = ?, block_number = NULL, block_hash = NULL, "
                         "anchored_at = NULL", (time.time(),))

    def recent_anchors(self, issuer_id: int, since_block: int) -> list[BatchRecord]:
        """The issuer's anchored batches whose block is ``since_block`` or later."""
        rows = self._connection().execute(
            f"{_BATCH_SELECT} WHERE issuer_id = ? AND state = 'anchored' "
            "AND block_number >= ? ORDER BY block_number", (issuer_id, since_block)).fetchall()
        return [_batch(row) for row in rows]

    def _transition(self, batch_id: int, allowed: set[BatchState], assignments: str,
                    values: tuple[object, ...]) -> None:
        with self._write() as db:
            row = db.execute(f"SELECT state FROM batches WHERE id = ?{self._db.for_update}",  # noqa: S608 - fixed SQL
                             (batch_id,)).fetchone()
            if row is None:
                raise StoreError(f"no batch {batch_id}")
            if BatchState(row[0]) not in allowed:
                raise StoreError(f"batch {batch_id} is {row[0]}")
            db.execute(f"UPDATE batches SET {assignments} WHERE id = ?",  # noqa: S608 - fixed SQL
                       (*values, batch_id))

    def load_tree(self, batch_id: int) -> MerkleTree:
        """The batch's tree, restored from its stored levels (no rehashing)."""
        rows = self._connection().execute(
            "SELECT data FROM batch_levels WHERE batch_id = ? ORDER BY level", (batch_id,)
        ).fetchall()
        if not rows:
            raise StoreError(f"no tree for batch {batch_id}")
        return MerkleTree.from_levels([bytes(row[0]) for row in rows])


_BATCH_SELECT: Final = (
    "SELECT id, issuer_id, root, size, state, created_at, tx_hash, sent_at, block_number, "
    "block_hash, anchored_at FROM batches"
)


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
