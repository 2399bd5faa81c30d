"""The workers' short cache of token identities: bounded, expiring, and a token deleted from
the database is refused once its entry expires."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from hashlib import sha256

import pytest

from anchor_service.api.deps import TokenCache
from anchor_service.store import TokenIdentity
from localchain import LocalChain
from testkit.world import build_world
from tests.anchor_service.harness import Service, running_service


@pytest.fixture(scope="module")
def service(chain: LocalChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(build_world(chain), tmp_path_factory.mktemp("tokens"),
                         max_body_bytes=64 * 1024) as running:
        yield running


def test_entries_expire_and_stay_bounded() -> None:
    identity = TokenIdentity(role="issuer", issuer_id=1)
    cache = TokenCache(ttl=60, limit=3)
    for n in range(5):
        cache.put(f"token-{n}", identity)
    assert cache.get("token-0") is None  # the least recently used went first
    assert cache.get("token-1") is None
    assert [cache.get(f"token-{n}") for n in (2, 3, 4)] == [identity] * 3
    expired = TokenCache(ttl=0.05)
    expired.put("token", identity)
    assert expired.get("token") == identity
    time.sleep(0.1)
    assert expired.get("token") is None


def test_a_deleted_token_is_refused_once_its_entry_expires(service: Service) -> None:
    token = service.store.add_token(role="issuer", issuer_id=service.issuer_id)
    with service.client(token) as client:
        assert client.get("/v1/batches").status_code == 200  # now in the cache
        with sqlite3.connect(str(service.store)) as db:
            deleted = db.execute("DELETE FROM tokens WHERE token_hash = ?",
                                 (sha256(token.encode()).digest(),)).rowcount
        assert deleted == 1
        deadline = time.monotonic() + TokenCache().ttl + 10
        while (answer := client.get("/v1/batches")).status_code == 200:
            assert time.monotonic() < deadline, "a deleted token was still accepted"
            time.sleep(0.2)
        assert answer.status_code == 401
