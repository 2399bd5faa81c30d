"""SQLite: the writers of several service processes take turns on a file lock; one that holds
it too long (a process stopped in a debugger) makes the others fail with StoreError after the
busy timeout, never hang."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from anchor_service.store import NewCredential, Store, StoreError


def test_a_writer_lock_held_too_long_fails_the_write(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    store = Store(path, busy_timeout=0.5)
    try:
        issuer = store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20,
                                  did="did:web:a")
        # Another open file description of the lock file: as another process's would be.
        held = os.open(f"{path}.writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)
            with pytest.raises(StoreError, match=r"writer lock .* held for more than 0\.5 s"):
                store.accept(issuer.id, [NewCredential(b"\x01" * 32, b"\x02" * 16)])
        finally:
            os.close(held)
        # Released: the same write goes through, and nothing of the failed one was kept.
        (accepted,) = store.accept(issuer.id, [NewCredential(b"\x01" * 32, b"\x02" * 16)])
        assert accepted.created
    finally:
        store.close()
