"""The SQLite store, on a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from anchor_service.store import BatchState, NewCredential, Store, StoreError
from verifier.merkle import MerkleTree, verify_inclusion


def _item(n: int) -> NewCredential:
    return NewCredential(digest=n.to_bytes(32, "big"), salt=os.urandom(16), content=None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "data" / "service.sqlite3")
    db.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    db.add_issuer("uni-b", entity_id=3, key_address="0x" + "bb" * 20, did="did:web:b")
    return db


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


def test_accepted_credentials_survive_a_killed_process(tmp_path: Path) -> None:
    """A child process accepts, prints the ids, then dies by SIGKILL without closing."""
    path = tmp_path / "kill.sqlite3"
    code = f"""
import os, signal
from anchor_service.store import NewCredential, Store
store = Store({str(path)!r})
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
    reopened = Store(path)
    assert all(reopened.credential(public_id) is not None for public_id in ids)
    assert reopened.pending(1)[0] == 500


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
        verify_inclusion(record.salt + record.digest, index, 7, tree.inclusion_proof(index),
                         batch.root)
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
    assert token.encode() not in store.path.read_bytes()
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
