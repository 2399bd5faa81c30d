"""A status position the database hands out twice (it lost committed work: restored from a
backup, say) fails the request that meets it whole, with StoreError, instead of storing half
of it or failing with an unexpected error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from anchor_service.store import NewCredential, Store, StoreError


def test_a_position_given_twice_fails_the_request_whole(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    first, second = Store(path), Store(path)
    try:
        issuer = first.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20,
                                  did="did:web:a")
        (taken,) = first.allocate_status(issuer.id, 1)
        first.accept(issuer.id, [NewCredential(b"\x01" * 32, b"\x02" * 16, status=taken)])
        with sqlite3.connect(path) as db:  # the counter goes back, as after a lost commit
            db.execute("UPDATE issuers SET next_status_index = 0")
        again = second.allocate_status(issuer.id, 2)
        assert again[0] == taken
        items = [NewCredential(bytes([n]) * 32, b"\x02" * 16, status=position)
                 for n, position in zip((3, 4), again, strict=True)]
        with pytest.raises(StoreError, match="taken by another credential"):
            second.accept(issuer.id, items)
        # Nothing of the failed request was stored, the first credential is intact.
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM credentials").fetchone() == (1,)
    finally:
        first.close()
        second.close()
