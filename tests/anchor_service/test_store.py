"""The store, on a real SQLite file and on a real PostgreSQL server: the same tests on both."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from anchor_service._database import sql
from anchor_service.store import (
    _PENDING,
    BatchState,
    NewCredential,
    StatusPosition,
    Store,
    StoreError,
)
from tests.postgres import PostgresServer
from verifier.credential import leaf_input
from verifier.merkle import MerkleTree, verify_inclusion


def _item(n: int) -> NewCredential:
    return NewCredential(digest=n.to_bytes(32, "big"), salt=os.urandom(16), content=None)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty database is: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "data" / "service.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    db = Store(location)
    db.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    db.add_issuer("uni-b", entity_id=3, key_address="0x" + "bb" * 20, did="did:web:b")
    yield db
    db.close()


def test_pending_counts_up_to_a_bound_and_dates_the_first_waiting(store: Store) -> None:
    assert store.pending(1) == (0, None)
    accepted = [a.public_id for n in range(3)
                for a in store.accept(1, [_item(10 * n + k) for k in range(10)])]
    times = [record.accepted_at for public_id in accepted
             if (record := store.credential(public_id)) is not None]
    assert store.pending(1) == (30, times[0])
    assert store.pending(1, up_to=12) == (12, times[0])
    assert store.pending(1, up_to=100) == (30, times[0])
    assert store.cut_batch(1, 10) is not None  # the first ten, in acceptance order
    assert store.pending(1) == (20, times[10])
    assert store.pending(2) == (0, None)


def test_the_pending_count_reads_at_most_its_bound(tmp_path: Path) -> None:
    """The pipeline asks twice a second: its question costs the same whether 50 or 3,000
    credentials wait (SQLite's virtual machine steps, counted)."""
    location = tmp_path / "service.sqlite3"
    store = Store(location)
    store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")

    def steps() -> int:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        with closing(sqlite3.connect(location)) as db:
            db.set_progress_handler(count, 1)
            db.execute(_PENDING.sqlite, (1, 40, 1)).fetchone()
        return counted[0]

    try:
        store.accept(1, [_item(n) for n in range(50)])
        few = steps()
        store.accept(1, [_item(n) for n in range(50, 3_000)])
        many = steps()
    finally:
        store.close()
    assert many <= few * 1.1, (few, many)


def test_accept_is_idempotent_per_issuer(store: Store) -> None:
    first = store.accept(1, [_item(1), _item(2)])
    assert [a.created for a in first] == [True, True]
    again = store.accept(1, [_item(2), _item(3), _item(2)])
    assert again[0].public_id == first[1].public_id
    assert again[0].created is False
    assert again[1].created is True
    assert again[2].public_id == again[0].public_id
    other = store.accept(2, [_item(1)])
    assert other[0].public_id != first[0].public_id  # another issuer, another credential
    record = store.credential(first[0].public_id)
    assert record is not None
    assert record.issuer_id == 1
    assert store.pending(1)[0] == 3
    assert store.credential("nope") is None


def test_credential_ids_are_uuidv7_in_the_order_of_acceptance(store: Store) -> None:
    """Ids are UUIDv7 (RFC 9562) in 32 hex digits: the acceptance time in milliseconds, then
    74 random bits. So the index of ids takes new ones at its end (a random id wrote a random
    page of it at every commit)."""
    before = time.time()
    ids: list[str] = []
    for n in range(5):
        ids += [a.public_id for a in store.accept(1, [_item(100 + 10 * n + k) for k in range(3)])]
        time.sleep(0.002)
    after = time.time()
    assert len(set(ids)) == len(ids)
    for public_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", public_id)
        parsed = uuid.UUID(hex=public_id)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert int(before * 1000) <= int(public_id[:12], 16) <= int(after * 1000)
    # Each request's ids share a millisecond at most: across requests they ascend.
    requests = [ids[n:n + 3] for n in range(0, len(ids), 3)]
    assert all(max(a) < min(b) for a, b in itertools.pairwise(requests))
    # 74 random bits: two ids of one millisecond differ in them.
    assert len({public_id[12:] for public_id in ids}) == len(ids)
    # Every one of them is random: over 200 ids of one request, each bit is 0 in some and 1
    # in others (a bit stuck at either value has a chance of 2**-199 of passing).
    many = [int(a.public_id, 16) for a in store.accept(1, [_item(1000 + k) for k in range(200)])]
    random_bits = [*range(62), *range(64, 76)]
    assert [bit for bit in random_bits if len({value >> bit & 1 for value in many}) != 2] == []


def test_accepted_credentials_survive_a_killed_process(location: str) -> None:
    """A child process accepts, prints the ids, then dies by SIGKILL without closing."""
    code = f"""
import os, signal
from anchor_service.store import NewCredential, Store
store = Store({location!r})
store.add_issuer("x", entity_id=1, key_address="0x" + "11" * 20, did="did:web:x")
accepted = store.accept(1, [NewCredential(i.to_bytes(32, "big"), bytes(16)) for i in range(500)])
print(",".join(a.public_id for a in accepted), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == -9
    ids = result.stdout.strip().split(",")
    assert len(ids) == 500
    reopened = Store(location)
    assert all(reopened.credential(public_id) is not None for public_id in ids)
    assert reopened.pending(1)[0] == 500
    reopened.close()


def test_cut_batch_records_tree_and_positions(store: Store) -> None:
    accepted = store.accept(1, [_item(n) for n in range(10)])
    store.accept(2, [_item(99)])
    batch = store.cut_batch(1, max_size=7)
    assert batch is not None
    assert (batch.size, batch.state, batch.issuer_id) == (7, BatchState.BUILT, 1)
    tree = store.load_tree(batch.id)
    assert tree.root == batch.root
    for index, acc in enumerate(accepted[:7]):  # oldest first
        record = store.credential(acc.public_id)
        assert record is not None
        assert (record.batch_id, record.leaf_index) == (batch.id, index)
        # Each got the issuer's next status position at acceptance, bound in its leaf.
        assert record.status == StatusPosition(0, index)
        verify_inclusion(leaf_input(record.salt, record.digest, 0, index), index, 7,
                         tree.inclusion_proof(index), batch.root)
    rest = store.cut_batch(1, max_size=7)
    assert rest is not None
    assert rest.size == 3
    assert store.cut_batch(1, max_size=7) is None
    assert store.pending(2)[0] == 1  # the other issuer's credential is untouched
    assert MerkleTree.from_levels(store.load_tree(rest.id).levels).root == rest.root


def test_batch_state_transitions(store: Store) -> None:
    store.accept(1, [_item(1)])
    batch = store.cut_batch(1, max_size=10)
    assert batch is not None
    store.mark_sent(batch.id, b"\x01" * 32)
    store.mark_sent(batch.id, b"\x02" * 32)  # a re-send replaces the hash
    sent = store.batch(batch.id)
    assert sent is not None
    assert (sent.state, sent.tx_hash) == (BatchState.SENT, b"\x02" * 32)
    store.mark_anchored(batch.id, tx_hash=b"\x02" * 32, block_number=12, block_hash=b"\x03" * 32,
                        anchored_at=1.5)
    with pytest.raises(StoreError, match="is anchored"):
        store.mark_sent(batch.id, b"\x04" * 32)
    assert [b.id for b in store.batches(states=[BatchState.ANCHORED])] == [batch.id]
    assert store.batches(issuer_id=2) == []
    with pytest.raises(StoreError, match="no batch"):
        store.mark_sent(999, b"")


def test_tokens_are_stored_hashed(store: Store) -> None:
    token = store.add_token(role="issuer", issuer_id=1)
    admin = store.add_token(role="admin")
    identity = store.token_identity(token)
    assert identity is not None
    assert (identity.role, identity.issuer_id) == ("issuer", 1)
    admin_identity = store.token_identity(admin)
    assert admin_identity is not None
    assert admin_identity.role == "admin"
    assert store.token_identity(token + "x") is None
    stored = store._connection().execute(sql("SELECT token_hash FROM tokens")).fetchall()
    assert sorted(bytes(row[0]) for row in stored) == sorted(
        hashlib.sha256(t.encode()).digest() for t in (token, admin))
    if store.backend == "sqlite":  # nor anywhere in the file
        assert token.encode() not in Path(str(store)).read_bytes()
    with pytest.raises(StoreError):
        store.add_token(role="issuer")


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    def work(offset: int) -> None:
        for chunk in range(20):
            store.accept(1, [_item(offset + chunk * 50 + i) for i in range(50)])

    threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.pending(1)[0] == 4 * 20 * 50


def test_issuer_registration_is_idempotent_but_not_overwritable(store: Store) -> None:
    again = store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    assert again.id == 1
    with pytest.raises(StoreError, match="other data"):
        store.add_issuer("uni-a", entity_id=9, key_address="0x" + "aa" * 20, did="did:web:a")
    assert [i.name for i in store.issuers()] == ["uni-a", "uni-b"]


def test_two_stores_cutting_at_once_never_share_a_credential(location: str) -> None:
    """Two replicas (two stores, each with its own connections) cut one issuer's batches at
    the same time: every credential lands in exactly one batch, at one position."""
    first, second = Store(location), Store(location)
    first.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    accepted = first.accept(1, [_item(n) for n in range(2_000)])
    cut: list[list[int]] = [[], []]

    def replica(store: Store, into: list[int]) -> None:
        while (batch := store.cut_batch(1, max_size=37)) is not None:
            into.append(batch.id)

    threads = [threading.Thread(target=replica, args=(s, c)) for s, c in
               zip((first, second), cut, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if first.backend == "postgresql":  # (SQLite's busy handler is unfair: one may starve)
        assert cut[0], "both replicas should have cut some batches"
        assert cut[1], "both replicas should have cut some batches"
    assert first.pending(1)[0] == 0
    positions = set()
    for a in accepted:
        record = second.credential(a.public_id)
        assert record is not None
        assert record.batch_id is not None
        positions.add((record.batch_id, record.leaf_index))
    assert len(positions) == 2_000
    sizes = {b.id: b.size for b in first.batches(limit=1000)}
    assert sorted(sizes) == sorted(cut[0] + cut[1])
    assert sum(sizes.values()) == 2_000
    first.close()
    second.close()


def test_an_issuer_lease_is_held_by_one_process_at_a_time(location: str) -> None:
    store = Store(location)
    store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    probe = f"""
from anchor_service.store import Store
with Store({location!r}).issuer_lease(1) as lease:
    print(lease.held)
"""

    def other_process_gets_it() -> bool:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=60, check=True)
        return result.stdout.strip() == "True"

    with store.issuer_lease(1) as lease:
        assert lease.held
        lease.confirm()
        assert not other_process_gets_it()
        with store.issuer_lease(2) as other_issuer:
            assert other_issuer.held  # leases are per issuer
    assert other_process_gets_it()  # released at the end of the block
    # A process that dies holding the lease loses it.
    holder = subprocess.Popen([sys.executable, "-c", probe.replace(
        "print(lease.held)", "print(lease.held, flush=True); import time; time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        with store.issuer_lease(1) as lease:
            assert not lease.held
            with pytest.raises(StoreError, match="does not hold"):
                lease.confirm()
    finally:
        holder.kill()
        holder.communicate()
    deadline = time.monotonic() + 30
    while True:  # PostgreSQL notices the dropped connection a moment later
        with store.issuer_lease(1) as lease:
            if lease.held:
                break
        assert time.monotonic() < deadline, "the dead process kept its lease"
        time.sleep(0.1)
    store.close()


def test_a_lease_lost_with_its_connection_is_not_confirmed(postgres: PostgresServer) -> None:
    """On PostgreSQL the lease is a session lock: if the server ends the session (a restart,
    a failover), the lease is gone, and confirm() says so before anything is sent."""
    import psycopg  # noqa: PLC0415 - PostgreSQL only

    location = postgres.new_database()
    store = Store(location)
    store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    with store.issuer_lease(1) as lease:
        assert lease.held
        lease.confirm()
        with psycopg.connect(location, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(StoreError):
            lease.confirm()
    store.close()


def test_sessions_the_server_ended_are_replaced_before_use(postgres: PostgresServer) -> None:
    """The pool hands out no connection whose session the server ended (a restart, a
    terminated backend), without a query of its own per borrow: every read afterwards
    succeeds."""
    import psycopg  # noqa: PLC0415 - PostgreSQL only

    location = postgres.new_database()
    store = Store(location, pool_size=4)
    try:
        store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
        for _ in range(8):
            assert store.issuer(1).name == "uni-a"
        with psycopg.connect(location, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        deadline = time.monotonic() + 30  # bounds the wait for the terminations to land
        while len(_postgres_sessions(location)) > 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for _ in range(8):
            assert store.issuer(1).name == "uni-a"
    finally:
        store.close()


def _postgres_sessions(location: str) -> list[int]:
    """The server's sessions of the database (the asking one included)."""
    import psycopg  # noqa: PLC0415 - PostgreSQL only

    with psycopg.connect(location, autocommit=True) as admin:
        return [row[0] for row in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
