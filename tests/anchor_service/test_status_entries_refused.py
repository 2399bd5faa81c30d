"""A credential the service keeps as sent (pre-signed, or of an issuer without a signing key)
cannot name the status position the service allocates when it accepts it: one that carries
a ``BitstringStatusListEntry`` is refused (422 ``credential_status_mismatch``) before any
position is drawn, instead of being anchored and failing every verification. Other
``credentialStatus`` types are kept as sent. Real HTTP (uvicorn), SQLite, the in-process
chain. (The VC-API issue route signs only credentials without a proof: its refusal of a
credential with its own ``credentialStatus`` is tested in test_vcapi.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from anchor_service.samples import make_credential
from testkit.world import issuer_signing_key
from tests.anchor_service.harness import Service, service_on_fresh_chain
from verifier.data_integrity import add_proof
from verifier.multikey import Multikey

DID = "did:web:uni-a.example"
ENTRY = {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
         "statusListIndex": "0",
         "statusListCredential": "https://uni-a.example/issuers/uni-a/status-lists/0/revocation"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_fresh_chain(tmp_path_factory.mktemp("entries"),
                                max_body_bytes=2**20) as running:
        yield running


def _presigned(name: str, **fields: Any) -> dict[str, Any]:
    key = issuer_signing_key(DID)
    method = f"{DID}#{Multikey.from_public_key(key.public_key()).multibase}"
    return add_proof(make_credential(name, issuer=DID, **fields), suite="eddsa-jcs-2022",
                     private_key=key, verification_method=method,
                     created="2026-11-01T00:00:00Z")


@pytest.mark.parametrize("status", [ENTRY, [{"type": "Other"}, ENTRY],
                                    {**ENTRY, "type": ["BitstringStatusListEntry"]}])
def test_a_presigned_credential_with_a_bitstring_entry_is_refused(service: Service,
                                                                  status: Any) -> None:
    before = service.store.next_status_index(service.issuer_id)
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            _presigned("fine"), _presigned("own-entry", credentialStatus=status)]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "credential_status_mismatch"
    assert answer.json()["detail"].startswith(
        "credentials[1].credentialStatus: a BitstringStatusListEntry names a status position")
    assert service.store.next_status_index(service.issuer_id) == before  # none drawn


def test_a_presigned_credential_with_another_status_type_is_kept(service: Service) -> None:
    other = {"id": "https://uni-a.example/status/1", "type": "SomeOtherStatus"}
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            _presigned("other-status", credentialStatus=other)]})
    assert answer.status_code == 202, answer.text


def test_an_unsigned_issuers_credential_with_a_bitstring_entry_is_refused(
        service: Service) -> None:
    # The second issuer has no signing key: its credentials are kept as sent.
    with service.client(service.other_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            make_credential("unsigned-entry", credentialStatus=ENTRY)]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "credential_status_mismatch"


def test_a_credential_the_service_signed_sent_again_keeps_its_id_and_position(
        service: Service) -> None:
    """Its entries name the position the service gave it: a wallet sending the signed
    credential back to find its id gets that id, nothing new is stored and no position is
    drawn for it twice."""
    with service.client(service.issuer_token) as client:
        first = client.post("/v1/credentials", json={"credentials": [
            make_credential("signed-by-the-service", issuer=DID)]})
        assert first.status_code == 202, first.text
        (item,) = first.json()["accepted"]
        record = service.store.credential(item["id"])
        assert record is not None
        assert record.content is not None
        signed = json.loads(record.content)
        assert signed["credentialStatus"][0]["type"] == "BitstringStatusListEntry"
        again = client.post("/v1/credentials", json={"credentials": [signed]})
    assert again.status_code == 202, again.text
    assert again.json()["accepted"] == [{**item, "created": False}]
    assert service.store.credential(item["id"]) == record
