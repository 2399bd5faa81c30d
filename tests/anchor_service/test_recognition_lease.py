"""/v1/admin/recognitions sends with a served issuer's anchoring key only while holding that
issuer's sending lease, the pipeline's (both take the key's nonces): while another sender holds
it the route answers 503 ``busy`` and sends nothing; once it is free the route records. A key
of the keystore folder is decrypted once per version of its file. Real HTTP (uvicorn), SQLite,
the in-process chain."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from anchor_service.api.recognitions import _keystore_account
from anchor_service.errors import KeyLoadError
from anchor_service.keystore import write_keystore
from tests.anchor_service.harness import Service, service_on_fresh_chain

BODY_DID = "did:web:body.example"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_fresh_chain(tmp_path_factory.mktemp("recognition-lease"),
                                max_body_bytes=1 << 20) as running:
        yield running


def _count(service: Service) -> int:
    return int(service.world.registry.functions.recognitionCount().call())


def _nonce(service: Service) -> int:
    w3 = service.world.chain.w3
    return int(w3.eth.get_transaction_count(service.world.issuer.address, "pending"))


def test_recognitions_wait_for_the_served_issuers_sending_lease(service: Service) -> None:
    world = service.world
    new = {"recogniser": world.issuer_id, "subject": BODY_DID, "kinds": ["non-formal"]}
    with service.client(service.admin) as http:
        count, nonce = _count(service), _nonce(service)
        # Another sender (a pipeline round of another replica, say) holds the lease throughout.
        with service.store.waited_issuer_lease(service.issuer_id) as held:
            assert held  # once the service's own pipeline round (if one runs) lets it go
            busy = http.post("/v1/admin/recognitions", json=new)
            assert (_count(service), _nonce(service)) == (count, nonce)  # nothing sent
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "busy"
        assert busy.headers["retry-after"] == "1"

        made = http.post("/v1/admin/recognitions", json=new)
        assert made.status_code == 201, made.text
        recognition_id = made.json()["id"]
        assert _count(service) == count + 1

        nonce = _nonce(service)
        with service.store.waited_issuer_lease(service.issuer_id) as held:
            assert held  # once the service's own pipeline round (if one runs) lets it go
            busy = http.post(f"/v1/admin/recognitions/{recognition_id}/withdraw")
            assert _nonce(service) == nonce
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "busy"
        assert http.get("/v1/admin/recognitions", params={
            "recogniser": str(world.issuer_id), "subject": BODY_DID,
        }).json()["recognitions"][0]["withdrawnAt"] is None

        done = http.post(f"/v1/admin/recognitions/{recognition_id}/withdraw")
        assert done.status_code == 200, done.text
        assert done.json()["withdrawnAt"] is not None


def test_a_keystore_is_decrypted_once_per_version_of_its_file(tmp_path: Path) -> None:
    first, second = Account.create(), Account.create()
    path = write_keystore(tmp_path, first, "pw", scrypt_cost=2**10)
    account = _keystore_account(path, "pw")
    assert account.address == first.address
    assert _keystore_account(path, "pw") is account  # kept, not decrypted again
    with pytest.raises(KeyLoadError):
        _keystore_account(path, "wrong")  # the password is part of what is kept

    # Another key written into the same file (a later modification time): read again.
    stat = path.stat()
    other = write_keystore(tmp_path / "other", second, "pw", scrypt_cost=2**10)
    path.write_bytes(other.read_bytes())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _keystore_account(path, "pw").address == second.address
