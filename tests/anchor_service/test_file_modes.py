"""Secret and personal-data files are owner-only from their first byte: the SQLite database
with its -wal and -shm files, keystores and the stack's API tokens are created 0600 in 0700
folders, under the usual umask 022, and older group- or world-readable ones are tightened.
(The running stack's files are checked in test_stack.py.)"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from anchor_service.errors import StoreError
from anchor_service.keystore import keystore_path, write_keystore
from anchor_service.stack import _demo_tokens
from anchor_service.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    # The umask most machines run with: on its own it leaves new files 0644, readable by all.
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    database = folder / "service.sqlite3"
    store = Store(database)
    try:
        store.add_issuer("uni", entity_id=1, key_address="0x" + "11" * 20, did="did:web:u.example")
        store.add_token(role="admin")
        # WAL mode keeps both files while a connection is open.
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert path.exists(), path
            assert mode(path) == 0o600, (path, oct(mode(path)))
        assert mode(folder) == 0o700
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    database = shared / "service.sqlite3"
    Store(database).close()
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.touch()
        path.chmod(0o644)
    store = Store(database)
    try:
        store.add_token(role="admin")
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode(path) == 0o600, (path, oct(mode(path)))
    finally:
        store.close()
    # A folder the store did not create is left as it is: it may be shared on purpose.
    assert mode(shared) == 0o755


def test_a_keystore_is_created_owner_only_in_an_owner_only_folder(tmp_path: Path) -> None:
    account = Account.create()
    keys = tmp_path / "keys"
    path = write_keystore(keys, account, "pw", scrypt_cost=2**10)
    assert path == keystore_path(keys, account.address)
    assert mode(path) == 0o600
    assert mode(keys) == 0o700
    assert Account.decrypt(json.loads(path.read_text()), "pw") == bytes(account.key)
    assert sorted(p.name for p in keys.iterdir()) == [path.name]  # no temporary left behind


def test_rewriting_a_world_readable_keystore_never_exposes_the_new_key(tmp_path: Path) -> None:
    account = Account.create()
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    keys.chmod(0o755)
    old = keystore_path(keys, account.address)
    old.write_text("{}")
    old.chmod(0o644)
    # Someone who could read the old file keeps it open: the new contents must not reach them.
    with old.open() as reader:
        path = write_keystore(keys, account, "pw", scrypt_cost=2**10)
        assert reader.read() == "{}"
    assert mode(path) == 0o600
    assert mode(keys) == 0o700
    assert Account.decrypt(json.loads(path.read_text()), "pw") == bytes(account.key)


def test_demo_tokens_are_created_owner_only_and_old_ones_tightened(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        issuer = store.add_issuer("uni", entity_id=1, key_address="0x" + "22" * 20,
                                  did="did:web:u.example")
        path = tmp_path / "demo-tokens.json"
        tokens = _demo_tokens(path, store, issuer.id)
        assert mode(path) == 0o600
        assert json.loads(path.read_text()) == tokens
        path.chmod(0o644)
        assert _demo_tokens(path, store, issuer.id) == tokens
        assert mode(path) == 0o600
    finally:
        store.close()


def test_a_database_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(StoreError, match="not-a-folder"):
        Store(blocker / "service.sqlite3")
