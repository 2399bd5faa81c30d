"""The VC-API routes over real HTTP, on a served stack (uvicorn, SQLite, anvil): issue (sign
and accept for anchoring), verify a credential (against the receipt the service holds or one
given), verify a presentation (its did:key holder's proof, challenge and domain, signed by the
W3C reference implementation, and each credential in it); the request shapes refused with
400, the limits of the public verification routes."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.anchor_service.vc_stack import (
    ROOT,
    VC_V2,
    VcStack,
    did_of,
    node,
    run_vc,
)


def credential(name: str = "acme", **subject: Any) -> dict[str, Any]:
    return {
        "@context": [VC_V2],
        "type": ["VerifiableCredential"],
        "issuer": did_of(name),
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:learner", "name": "Data literacy",
                              **subject},
    }


def issued(stack: VcStack, name: str = "acme", **subject: Any) -> tuple[dict[str, Any], str]:
    """A credential issued through POST /credentials/issue: the signed credential, its id."""
    answer = stack.issue(name, credential(name, **subject))
    assert answer.status_code == 201, answer.text
    location = answer.headers["location"]
    assert location.startswith("/v1/credentials/")
    return answer.json()["verifiableCredential"], location.removeprefix("/v1/credentials/")


def anchored(stack: VcStack, name: str = "acme", **subject: Any) -> dict[str, Any]:
    signed, public_id = issued(stack, name, **subject)
    stack.anchor(name, [public_id])
    return signed


# -------------------------------------------------------------------------------- issue


def test_issue_signs_with_the_issuers_key_and_accepts_for_anchoring(stack: VcStack) -> None:
    unsigned = credential(course="statistics")
    answer = stack.issue("acme", unsigned)

    assert answer.status_code == 201, answer.text
    signed = answer.json()["verifiableCredential"]
    assert {k: v for k, v in signed.items() if k not in {"proof", "credentialStatus"}} == unsigned
    assert [entry["statusPurpose"] for entry in signed["credentialStatus"]] == [
        "revocation", "suspension"]
    proof = signed["proof"]
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    assert proof["verificationMethod"] == f"{did_of('acme')}#{stack.keys['acme'].multibase}"
    public_id = answer.headers["location"].removeprefix("/v1/credentials/")
    with stack.client(stack.tokens["acme"]) as client:
        status = client.get(f"/v1/credentials/{public_id}")
    assert status.status_code == 200
    assert status.json()["state"] == "pending"


def test_issue_refuses_a_credential_with_its_own_status_entries(stack: VcStack) -> None:
    answer = stack.issue("acme", {**credential(), "credentialStatus": {
        "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "1", "statusListCredential": "https://elsewhere.example/1"}})

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "credential_status_set"
    assert answer.json()["detail"].startswith("credential.credentialStatus: the service sets")


def test_issue_with_the_p256_issuer_signs_ecdsa(stack: VcStack) -> None:
    signed, _ = issued(stack, "acme-p256")

    assert signed["proof"]["cryptosuite"] == "ecdsa-jcs-2019"
    assert signed["proof"]["verificationMethod"].endswith(stack.keys["acme-p256"].multibase)


def test_issue_sets_the_issuer_when_the_credential_has_none(stack: VcStack) -> None:
    unsigned = credential()
    del unsigned["issuer"]

    answer = stack.issue("acme", unsigned)

    assert answer.status_code == 201, answer.text
    assert answer.json()["verifiableCredential"]["issuer"] == did_of("acme")


def test_issue_refuses_another_issuers_did(stack: VcStack) -> None:
    answer = stack.issue("acme", credential("acme-p256"))

    assert answer.status_code == 400
    assert answer.json()["error"] == "issuer_mismatch"
    assert answer.json()["detail"].startswith("credential: ")
    assert did_of("acme-p256") in answer.json()["detail"]


def test_issuing_the_same_credential_again_keeps_its_id_and_first_proof(
        stack: VcStack) -> None:
    unsigned = credential(course="idempotent")
    first, second = stack.issue("acme", unsigned), stack.issue("acme", unsigned)

    assert first.status_code == second.status_code == 201
    assert first.headers["location"] == second.headers["location"]
    assert first.json() == second.json()


def test_issue_refuses_a_credential_that_has_a_proof(stack: VcStack) -> None:
    signed, _ = issued(stack)

    answer = stack.issue("acme", signed)

    assert answer.status_code == 400
    assert "already has a proof" in answer.json()["detail"]


def test_issue_refuses_an_unknown_cryptosuite_naming_the_known_ones(stack: VcStack) -> None:
    answer = stack.issue("acme", credential(), {"cryptosuite": "rsa-2048"})

    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("options.cryptosuite: 'rsa-2048'")
    assert "eddsa-jcs-2022" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "where"), [
    (b'{"credential": ', "request body"),
    (b"{}", "credential"),
    (b'{"credential": [1]}', "credential"),
    (b'{"credential": {}, "extra": 1}', "extra"),
    (b'{"credential": {}, "options": {"mandatoryPointers": ["/issuer"]}}', "mandatoryPointers"),
])
def test_issue_refuses_requests_of_another_shape_with_400(stack: VcStack, body: bytes,
                                                          where: str) -> None:
    with stack.client(stack.tokens["acme"]) as client:
        answer = client.post("/credentials/issue", content=body,
                             headers={"content-type": "application/json"})

    assert answer.status_code == 400, answer.text
    assert where in answer.json()["detail"]


def test_issue_by_an_issuer_without_a_signing_key_is_409(stack: VcStack) -> None:
    issuer = stack.store.issuer_named("acme")
    assert issuer is not None
    stack.store.set_signing_key(issuer.id, None)
    try:
        answer = stack.issue("acme", credential(course="unsigned"))
    finally:
        stack.store.set_signing_key(issuer.id, stack.keys["acme"].multibase)

    assert answer.status_code == 409
    assert answer.json()["error"] == "no_signing_key"
    assert stack.issue("acme", credential(course="signed again")).status_code == 201


def test_issue_needs_an_issuer_token(stack: VcStack) -> None:
    with stack.client() as client:
        answer = client.post("/credentials/issue", json={"credential": credential()})

    assert answer.status_code == 401


# ------------------------------------------------------------------------------- verify


def test_verify_an_anchored_credential(stack: VcStack) -> None:
    signed = anchored(stack, grade="A")

    result = stack.verify(signed)

    assert result["verified"] is True, result
    assert result["errors"] == []
    for check in ("digest_matches", "merkle_inclusion", "anchored_on_chain",
                  "issuer_trusted_at_anchoring", "signature_valid", "signing_key_registered",
                  "signing_key_trusted_at_anchoring"):
        assert check in result["checks"]
    assert result["anchorReport"]["valid"] is True
    assert result["anchorReport"]["issuerDid"] == did_of("acme")


def test_verify_a_credential_not_anchored_yet_is_not_verified(stack: VcStack) -> None:
    signed, _ = issued(stack, grade="B")

    result = stack.verify(signed)

    assert result["verified"] is False
    assert result["anchorReport"] is None
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("not anchored yet")


def test_verify_checks_the_proof_alone_when_options_ask_for_it(stack: VcStack) -> None:
    """options.checks ["proof"], as the W3C test suites send it: the issuer's proof, no
    anchor needed; a changed field fails it with 400 and the result."""
    signed, _ = issued(stack, grade="proof only")

    result = stack.verify(signed, {"checks": ["proof"]})
    assert result == {"verified": True, "checks": ["proof"], "warnings": [], "errors": [],
                      "anchorReport": None}

    tampered = {**signed, "credentialSubject": {**signed["credentialSubject"], "grade": "A+"}}
    refused = stack.verify(tampered, {"checks": ["proof"]})  # asserts the 400 status
    assert refused["verified"] is False
    assert refused["errors"][0].startswith("proof: the proof does not verify")

    unknown = stack.verify(signed, {"checks": ["proof", "credentialStatus"]})
    assert unknown["verified"] is True
    assert unknown["warnings"] == ["options.checks: 'credentialStatus' is not a check of this "
                                   "service (proof, anchor); not run"]
    # The full verification needs the anchor, which this credential does not have yet.
    assert stack.verify(signed, {"checks": ["proof", "anchor"]})["verified"] is False
    with stack.client() as client:
        nothing = client.post("/credentials/verify", json={
            "verifiableCredential": signed, "options": {"checks": ["credentialStatus"]}})
    assert nothing.status_code == 400
    assert nothing.json()["error"] == "invalid_request"


def test_verify_a_credential_this_service_never_saw(stack: VcStack) -> None:
    signed = anchored(stack, grade="C")
    changed = {**signed, "credentialSubject": {**signed["credentialSubject"], "grade": "A+"}}

    result = stack.verify(changed)

    assert result["verified"] is False
    assert "no receipt" in result["errors"][0]


def test_verify_against_a_receipt_given_in_options(stack: VcStack) -> None:
    signed, public_id = issued(stack, grade="D")
    stack.anchor("acme", [public_id])
    with stack.client(stack.tokens["acme"]) as client:
        receipt = client.get(f"/v1/credentials/{public_id}/receipt").json()
    changed = {**signed, "credentialSubject": {**signed["credentialSubject"], "grade": "A"}}

    genuine = stack.verify(signed, {"receipt": receipt, "unknownOption": 1})
    tampered = stack.verify(changed, {"receipt": receipt})

    assert genuine["verified"] is True, genuine
    assert genuine["warnings"] == ["options.unknownOption: not an option of this service; "
                                   "ignored"]
    assert tampered["verified"] is False
    assert any(error.startswith("digest_matches") for error in tampered["errors"])
    failed = {c["name"] for c in tampered["anchorReport"]["checks"] if c["status"] == "failed"}
    assert "digest_matches" in failed


def test_verify_a_malformed_receipt_is_not_verified(stack: VcStack) -> None:
    signed, _ = issued(stack, grade="E")

    result = stack.verify(signed, {"receipt": {"format": "nonsense"}})

    assert result["verified"] is False
    assert result["errors"][0].startswith("receipt:")


@pytest.mark.parametrize(("body", "status", "where"), [
    (b"not json", 400, "request body"),
    (b"{}", 400, "verifiableCredential"),
    (b'{"verifiableCredential": "a string"}', 400, "verifiableCredential"),
    (b'{"verifiableCredential": {}, "options": []}', 400, "options"),
    (b'{"verifiableCredential": {"n": 1e16}}', 400, "verifiableCredential"),
    (b'{"verifiableCredential": {"n": 12345678901234567}}', 400, "request body"),
    (b'{"verifiableCredential": ' + b'[' * 200 + b']' * 200 + b'}', 400, "nest"),
])
def test_verify_refuses_requests_of_another_shape(stack: VcStack, body: bytes, status: int,
                                                  where: str) -> None:
    with stack.client() as client:
        answer = client.post("/credentials/verify", content=body,
                             headers={"content-type": "application/json"})

    assert answer.status_code == status, answer.text
    assert where in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/credentials/verify", "/presentations/verify"])
def test_public_verification_routes_keep_the_verification_body_limit(stack: VcStack,
                                                                     path: str) -> None:
    limit = stack.components.settings.verify_max_body_bytes
    big = {"verifiableCredential": {"padding": "x" * limit}}
    with stack.client() as client:
        answer = client.post(path, content=json.dumps(big),
                             headers={"content-type": "application/json"})
        wrong_type = client.post(path, content=b"{}", headers={"content-type": "text/plain"})

    assert answer.status_code == 413
    assert wrong_type.status_code == 415


# ------------------------------------------------------------------------- presentations


def holder(stack: VcStack, directory: Path) -> tuple[Path, str]:
    """A fresh did:key holder made by the reference implementation: its key file and DID."""
    done = run_vc(stack, "holder-key", None)
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)
    path = directory / "holder.json"
    path.write_text(done.stdout, encoding="utf-8")
    return path, str(key["controller"])


def presentation(stack: VcStack, key: Path, did: str, credentials: list[dict[str, Any]],
                 **binding: str) -> dict[str, Any]:
    """A VerifiablePresentation of ``credentials`` signed by the reference implementation."""
    unsigned = {"@context": [VC_V2], "type": ["VerifiablePresentation"], "holder": did,
                "verifiableCredential": credentials}
    args = [arg for name, value in binding.items() for arg in (f"--{name}", value)]
    done = run_vc(stack, "present", unsigned, "--key", str(key), *args)
    assert done.returncode == 0, done.stderr
    signed: dict[str, Any] = json.loads(done.stdout)
    return signed


def test_presentation_signed_by_the_reference_implementation_verifies(
        stack: VcStack, tmp_path: Path) -> None:
    credentials = [anchored(stack, grade="P1"), anchored(stack, "acme-p256", grade="P2")]
    key, did = holder(stack, tmp_path)
    vp = presentation(stack, key, did, credentials, challenge="c-123", domain="verifier.example")

    result = stack.verify_presentation(vp, {"challenge": "c-123",
                                             "domain": "verifier.example"})

    assert result["verified"] is True, result
    assert result["checks"] == ["proof", "challenge", "domain", "holder", "credentials"]
    assert [r["verified"] for r in result["credentialResults"]] == [True, True]
    assert all("signature_valid" in r["checks"] for r in result["credentialResults"])
    # Its proof written as a set of one proof is that proof.
    listed = stack.verify_presentation({**vp, "proof": [vp["proof"]]},
                                       {"challenge": "c-123", "domain": "verifier.example"})
    assert listed["verified"] is True, listed


@pytest.mark.parametrize(("options", "error"), [
    ({"challenge": "another", "domain": "verifier.example"}, "challenge"),
    ({"challenge": "c-123", "domain": "evil.example"}, "domain"),
])
def test_presentation_with_another_challenge_or_domain_is_not_verified(
        stack: VcStack, tmp_path: Path, options: dict[str, Any], error: str) -> None:
    key, did = holder(stack, tmp_path)
    vp = presentation(stack, key, did, [anchored(stack, grade="P3")], challenge="c-123",
                      domain="verifier.example")

    result = stack.verify_presentation(vp, options)

    assert result["verified"] is False
    assert [e.split(":")[0] for e in result["errors"]] == [error]
    assert result["credentialResults"][0]["verified"] is True


def test_tampered_presentation_fails_its_proof(stack: VcStack, tmp_path: Path) -> None:
    key, did = holder(stack, tmp_path)
    vp = presentation(stack, key, did, [anchored(stack, grade="P4")], challenge="c-9")
    vp["holder"] = "did:example:someone-else"

    result = stack.verify_presentation(vp, {"challenge": "c-9"})

    assert result["verified"] is False
    assert result["errors"][0].startswith("proof:")
    assert "proof" not in result["checks"]


def test_presentation_with_a_credential_not_anchored_is_not_verified(
        stack: VcStack, tmp_path: Path) -> None:
    key, did = holder(stack, tmp_path)
    done = anchored(stack, grade="P6")
    pending, _ = issued(stack, grade="P5")  # after the batch was cut: it waits for the next
    # The reference implementation signs presentations with a challenge only.
    vp = presentation(stack, key, did, [done, pending], challenge="c-5")

    result = stack.verify_presentation(vp, {"challenge": "c-5"})

    assert result["verified"] is False
    assert result["checks"] == ["proof", "challenge", "holder"]
    assert result["errors"] == ["credentials: not verified: verifiableCredential[1] (see "
                                "credentialResults)"]
    assert result["credentialResults"][1]["errors"][0].startswith("not anchored yet")


def test_presentation_without_proof_is_verified_by_its_credentials_with_a_warning(
        stack: VcStack) -> None:
    vp = {"@context": [VC_V2], "type": ["VerifiablePresentation"],
          "verifiableCredential": [anchored(stack, grade="P7")]}

    result = stack.verify_presentation(vp)
    asked = stack.verify_presentation(vp, {"challenge": "c-1"})

    assert result["verified"] is True
    assert result["warnings"] == ["proof: the presentation has no proof: its holder is not "
                                  "authenticated"]
    assert asked["verified"] is False
    assert asked["errors"][0].startswith("proof: the presentation has no proof")


def test_presentation_signed_for_assertion_is_refused(stack: VcStack, tmp_path: Path) -> None:
    # A credential's proof (proofPurpose assertionMethod) is not a holder's authentication.
    key, did = holder(stack, tmp_path)
    unsigned = {"@context": [VC_V2], "type": ["VerifiablePresentation"], "holder": did,
                "verifiableCredential": [anchored(stack, grade="P8")]}
    done = subprocess.run([node(), str(ROOT / "interop" / "di.mjs"), "sign", "--suite",
                           "eddsa-jcs-2022", "--key", str(key)], input=json.dumps(unsigned),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    vp = json.loads(done.stdout)

    result = stack.verify_presentation(vp)

    assert result["verified"] is False
    assert "authentication" in result["errors"][0]


@pytest.mark.parametrize(("vp", "where"), [
    ({"type": ["VerifiableCredential"]}, "VerifiablePresentation"),
    ({"type": "VerifiablePresentation", "verifiableCredential": ["x"]}, "verifiableCredential"),
])
def test_presentation_of_another_shape_is_400(stack: VcStack, vp: dict[str, Any],
                                              where: str) -> None:
    with stack.client() as client:
        answer = client.post("/presentations/verify", json={"verifiablePresentation": vp})

    assert answer.status_code == 400
    assert where in answer.json()["detail"]


def test_presentation_with_too_many_credentials_is_413(stack: VcStack) -> None:
    vp = {"type": ["VerifiablePresentation"], "verifiableCredential": [{}] * 33}
    with stack.client() as client:
        answer = client.post("/presentations/verify", json={"verifiablePresentation": vp})

    assert answer.status_code == 413
    assert "at most 32" in answer.json()["detail"]


def _hold_a_verification_slot(url: str) -> socket.socket:
    """A POST /v1/verify whose body never comes: it holds a verification slot."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(f"POST /v1/verify HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                       "application/json\r\nContent-Length: 1000\r\n\r\n".encode())
    return connection


def test_vc_api_verification_shares_the_slots_of_v1_verify(stack: VcStack) -> None:
    """One client's slow /v1/verify bodies use up its share of verifications: the VC-API
    routes are refused with 503 and Retry-After too, before their bodies are read."""
    share = stack.components.settings.verify_per_client
    body = {"verifiableCredential": credential()}
    holders = [_hold_a_verification_slot(stack.url) for _ in range(share)]
    try:
        with stack.client() as client:
            # Until every holder has reached its route, requests go through: send them until
            # one is refused. (A holder answered meanwhile holds nothing: open it anew.)
            deadline = time.monotonic() + 30
            while (refused := client.post("/credentials/verify", json=body)).status_code != 503:
                assert refused.status_code == 400, refused.text  # verified false: unanchored
                assert time.monotonic() < deadline, "never refused"
                for n, holder in enumerate(holders):
                    if select.select([holder], [], [], 0)[0]:
                        holder.close()
                        holders[n] = _hold_a_verification_slot(stack.url)
            presentation_refused = client.post("/presentations/verify", json={
                "verifiablePresentation": {"type": ["VerifiablePresentation"]}})
    finally:
        for holder in holders:
            holder.close()
    # The slots come back once the server sees the holders gone.
    with stack.client() as client:
        deadline = time.monotonic() + 30
        while client.post("/credentials/verify", json=body).status_code == 503:
            assert time.monotonic() < deadline, "the slots never came back"
            time.sleep(0.05)

    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "busy"
    assert f"{share} verifications from your address are in flight" in refused.json()["detail"]
    assert presentation_refused.status_code == 503
