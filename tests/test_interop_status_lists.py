"""A standard verifier that knows nothing of the chain reads our credentials' status from the
published lists alone: the W3C reference implementation (@digitalbazaar/vc-bitstring-status-list
``checkStatus`` with @digitalbazaar/vc, run as ``node interop/vc.mjs status|verify``) fetches
the ``BitstringStatusListCredential`` a credential's ``BitstringStatusListEntry`` names from the
served stack (uvicorn, SQLite, anvil; ``https://service.example`` mapped to the loopback URL),
checks its proof with the key the issuer's did:web document lists and that its issuer is the
credential's, and reads the bit. The credentials are issued by the service (which inserts the
two entries before signing), and each change is made through the service's status routes (on
chain, by the issuer's key) and seen through the list once the service has seen it: not
revoked, then revoked; suspended, then reinstated."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.anchor_service.vc_stack import (
    VC_V2,
    VcStack,
    did_of,
    reference_status,
    reference_verify,
)
from verifier.bitstring import status_entries, status_list_url
from verifier.contract_types import StatusPurpose

EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"


def issued(stack: VcStack, name: str) -> tuple[dict[str, Any], str]:
    """A credential the service issues for ``name`` (VC-API), with the status entries it
    inserted before signing; the credential and its id here."""
    answer = stack.issue(name, {
        "@context": [VC_V2, EXAMPLES_V2],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential"],
        "issuer": did_of(name),
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:learner", "course": "status lists"},
    })
    assert answer.status_code == 201, answer.text
    credential: dict[str, Any] = answer.json()["verifiableCredential"]
    entries = credential["credentialStatus"]
    assert [e["statusPurpose"] for e in entries] == ["revocation", "suspension"]
    assert entries[0]["statusListCredential"] == status_list_url(did_of(name), name, 0,
                                                                 "revocation")
    return credential, answer.headers["location"].removeprefix("/v1/credentials/")


def change(stack: VcStack, name: str, action: str, credential_id: str) -> None:
    """``action`` (revoke, suspend, reinstate) of the credential through the service (on
    chain, by the issuer's key), then wait until the service serves the list it changes anew
    (its watcher saw the event)."""
    purpose = "revocation" if action == "revoke" else "suspension"
    url = f"/issuers/{name}/status-lists/0/{purpose}"
    with stack.client() as public, stack.client(stack.tokens[name]) as client:
        before = public.get(url).headers["etag"]
        answer = client.post(f"/v1/credentials/{credential_id}/{action}", json={"reason": 1})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 30
        while public.get(url).headers["etag"] == before:
            assert time.monotonic() < deadline, f"{url} was never rendered again"
            time.sleep(0.05)


@pytest.mark.parametrize("name", ["acme", "acme-p256"])
def test_reference_reads_not_revoked_then_revoked(stack: VcStack, name: str) -> None:
    credential, credential_id = issued(stack, name)

    assert reference_status(stack, credential) == {
        "verified": True, "error": None, "revocation": False, "suspension": False}
    assert reference_verify(stack, credential) == {"verified": True, "error": None}

    change(stack, name, "revoke", credential_id)

    assert reference_status(stack, credential) == {
        "verified": True, "error": None, "revocation": True, "suspension": False}
    refused = reference_verify(stack, credential)
    assert refused["verified"] is False
    assert "revocation status is set" in refused["error"]


def test_reference_reads_suspended_then_reinstated(stack: VcStack) -> None:
    credential, credential_id = issued(stack, "acme")
    neighbour, _ = issued(stack, "acme")

    change(stack, "acme", "suspend", credential_id)

    assert reference_status(stack, credential) == {
        "verified": True, "error": None, "revocation": False, "suspension": True}
    assert "suspension status is set" in reference_verify(stack, credential)["error"]
    assert reference_status(stack, neighbour)["suspension"] is False

    change(stack, "acme", "reinstate", credential_id)

    assert reference_status(stack, credential) == {
        "verified": True, "error": None, "revocation": False, "suspension": False}
    assert reference_verify(stack, credential) == {"verified": True, "error": None}


def test_reference_refuses_a_list_of_another_issuer(stack: VcStack) -> None:
    """A credential of acme whose entries point at acme-p256's lists (signed with acme's
    key): the list's issuer is not the credential's, and the reference refuses to read status
    from it."""
    credential, _ = issued(stack, "acme")
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    index = int(credential["credentialStatus"][0]["statusListIndex"])
    other = {p: status_list_url(did_of("acme-p256"), "acme-p256", 0, p) for p in StatusPurpose}
    unsigned["credentialStatus"] = status_entries(other, index)
    issuer = stack.store.issuer_named("acme")
    assert issuer is not None
    signer = stack.components.issuer_signer(issuer.id)
    assert signer is not None

    result = reference_status(stack, signer.sign(unsigned))

    assert result["verified"] is False
    assert "Issuers of the status list credential and verifiable credential do not match" \
        in result["error"]
