"""Independent proof over HTTP: the W3C reference JavaScript implementation
(@digitalbazaar/vc, DataIntegrityProof with the eddsa-jcs-2022, ecdsa-jcs-2019 and
eddsa-rdfc-2022 cryptosuites, run as ``node interop/vc.mjs``) and this project's verifier
agree on credentials a served stack (uvicorn, SQLite, anvil) issues, signs and anchors.

The reference implementation knows nothing of the chain: it resolves the issuer's did:web DID
through the service's ``/issuers/<name>/did.json`` (``https://service.example`` mapped to the
loopback URL) and verifies the Data Integrity proof. Our verifier (``POST
/credentials/verify``, which runs the verifier library) also proves, against the chain, that
the credential was anchored and the key was trusted then. Both directions: the service signs
and the reference verifies; the reference signs with the issuer's registered key and the
service accepts the credential as it is. Tampering fails on both sides. Open Badges 3.0 and
Europass ELM samples (``../shared/vectors``, read in place) go the whole way."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from testkit.vectors import vector_json
from tests.anchor_service.vc_stack import (
    HOST,
    VC_V2,
    VcStack,
    did_of,
    reference_sign,
    reference_verify,
)
from verifier.multikey import Multikey, encode_secret_multikey

#: (issuer, options.cryptosuite or None for the issuer's own, the suite expected)
SUITES = [("acme", None, "eddsa-jcs-2022"), ("acme-p256", None, "ecdsa-jcs-2019"),
          ("acme", "eddsa-rdfc-2022", "eddsa-rdfc-2022")]
SUITE_IDS = [expected for _, _, expected in SUITES]
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"


def vc2(name: str, **subject: Any) -> dict[str, Any]:
    # The examples context defines every other term (@vocab): eddsa-rdfc-2022 signs only
    # terms that map to IRIs, and both implementations refuse others (JSON-LD safe mode).
    return {
        "@context": [VC_V2, EXAMPLES_V2],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential"],
        "issuer": did_of(name),
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:learner", **subject},
    }


def issue(stack: VcStack, name: str, credential: dict[str, Any],
          suite: str | None) -> tuple[dict[str, Any], str]:
    answer = stack.issue(name, credential, None if suite is None else {"cryptosuite": suite})
    assert answer.status_code == 201, answer.text
    return (answer.json()["verifiableCredential"],
            answer.headers["location"].removeprefix("/v1/credentials/"))


def issue_and_anchor(stack: VcStack, name: str, credential: dict[str, Any],
                     suite: str | None) -> dict[str, Any]:
    signed, public_id = issue(stack, name, credential, suite)
    stack.anchor(name, [public_id])
    return signed


def receipt_of(stack: VcStack, name: str, signed: dict[str, Any]) -> dict[str, Any]:
    """The receipt of an anchored credential, found as a wallet would: by the id the service
    gave it (submitting the same credential again names it)."""
    with stack.client(stack.tokens[name]) as client:
        again = client.post("/v1/credentials", json={"credentials": [signed]})
        assert again.status_code == 202, again.text
        (item,) = again.json()["accepted"]
        assert item["created"] is False
        receipt: dict[str, Any] = client.get(f"/v1/credentials/{item['id']}/receipt").json()
    return receipt


# ---------------------------------------------------------- the service signs, both verify


@pytest.mark.parametrize(("name", "suite", "expected"), SUITES, ids=SUITE_IDS)
def test_reference_and_our_verifier_verify_what_the_service_issues(
        stack: VcStack, name: str, suite: str | None, expected: str) -> None:
    signed = issue_and_anchor(stack, name, vc2(name, course=f"interop {expected}"), suite)

    assert signed["proof"]["cryptosuite"] == expected
    assert reference_verify(stack, signed) == {"verified": True, "error": None}
    ours = stack.verify(signed)
    assert ours["verified"] is True, ours
    assert {"signature_valid", "signing_key_registered",
            "signing_key_trusted_at_anchoring", "anchored_on_chain"} <= set(ours["checks"])


def tamper_field(signed: dict[str, Any], _: VcStack) -> dict[str, Any]:
    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["course"] = "something else"
    return changed


def tamper_proof_value(signed: dict[str, Any], _: VcStack) -> dict[str, Any]:
    changed = copy.deepcopy(signed)
    value = changed["proof"]["proofValue"]
    # Another base58btc digit in the middle: still well-formed, another signature.
    middle = len(value) // 2
    changed["proof"]["proofValue"] = (value[:middle] + ("2" if value[middle] != "2" else "3")
                                      + value[middle + 1:])
    return changed


def tamper_key(signed: dict[str, Any], stack: VcStack, tmp_path: Path) -> dict[str, Any]:
    """Signed by the reference implementation with a key the issuer never registered, under
    the issuer's own DID."""
    secret = ed25519.Ed25519PrivateKey.generate()
    key = Multikey.from_public_key(secret.public_key())
    did = signed["issuer"]
    path = tmp_path / "stranger.json"
    path.write_text(_method(did, key, encode_secret_multikey(secret)), encoding="utf-8")
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    return reference_sign(stack, unsigned, path, "eddsa-jcs-2022")


def tamper_did(signed: dict[str, Any], stack: VcStack, tmp_path: Path) -> dict[str, Any]:
    """Claims another issuer's DID, signed by the reference implementation with acme's
    registered key (whose verification method is under acme's DID)."""
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    unsigned["issuer"] = did_of("acme-p256")
    return reference_sign(stack, unsigned, stack.key_file("acme", tmp_path), "eddsa-jcs-2022")


def _method(did: str, key: Multikey, secret: str) -> str:
    return json.dumps({"id": f"{did}#{key.multibase}", "controller": did, "type": "Multikey",
                       "publicKeyMultibase": key.multibase, "secretKeyMultibase": secret})


@pytest.mark.parametrize("tamper", ["field", "proofValue"])
def test_tampered_credential_fails_on_both_sides(stack: VcStack, tamper: str) -> None:
    signed = issue_and_anchor(stack, "acme", vc2("acme", course=f"tamper {tamper}"), None)
    receipt = receipt_of(stack, "acme", signed)
    changed = (tamper_field if tamper == "field" else tamper_proof_value)(signed, stack)

    assert reference_verify(stack, changed)["verified"] is False
    # Ours, against the genuine credential's receipt: the digest no longer matches, and the
    # signature does not verify.
    ours = stack.verify(changed, {"receipt": receipt})
    assert ours["verified"] is False
    failed = {c["name"] for c in ours["anchorReport"]["checks"] if c["status"] == "failed"}
    assert "digest_matches" in failed
    # Without a receipt, the service finds none for a credential it never anchored.
    assert stack.verify(changed)["verified"] is False


@pytest.mark.parametrize("tamper", ["wrong key", "foreign DID"])
def test_wrong_key_or_foreign_did_fails_on_both_sides(stack: VcStack, tamper: str,
                                                       tmp_path: Path) -> None:
    signed = issue_and_anchor(stack, "acme", vc2("acme", course=f"tamper {tamper}"), None)
    forged = (tamper_key if tamper == "wrong key" else tamper_did)(signed, stack, tmp_path)

    reference = reference_verify(stack, forged)
    assert reference["verified"] is False
    # The reference resolves the DID through the service: the stranger's key is not in the
    # issuer's document; acme's key does not speak for another DID.
    assert ("is not in the DID document" if tamper == "wrong key"
            else "issuer must match the verification method controller") in reference["error"]
    # The service refuses to anchor it for either issuer: the proof's key is not one the
    # registry lists for the credential's issuer (or the issuer is not the caller).
    for name in ("acme", "acme-p256"):
        with stack.client(stack.tokens[name]) as client:
            answer = client.post("/v1/credentials", json={"credentials": [forged]})
        assert answer.status_code in (409, 422), answer.text
    assert stack.verify(forged)["verified"] is False


# --------------------------------------------------- the reference signs, the service anchors


@pytest.mark.parametrize(("name", "suite"), [("acme", "eddsa-jcs-2022"),
                                             ("acme-p256", "ecdsa-jcs-2019"),
                                             ("acme", "eddsa-rdfc-2022")])
def test_service_anchors_and_verifies_what_the_reference_signs(
        stack: VcStack, name: str, suite: str, tmp_path: Path) -> None:
    signed = reference_sign(stack, vc2(name, course=f"presigned {suite}"),
                            stack.key_file(name, tmp_path), suite)
    assert signed["proof"]["cryptosuite"] == suite
    assert signed["proof"]["verificationMethod"] == f"{did_of(name)}#{stack.keys[name].multibase}"

    with stack.client(stack.tokens[name]) as client:
        answer = client.post("/v1/credentials", json={"credentials": [signed]})
    assert answer.status_code == 202, answer.text
    (item,) = answer.json()["accepted"]
    stack.anchor(name, [item["id"]])

    ours = stack.verify(signed)
    assert ours["verified"] is True, ours
    assert "signature_valid" in ours["checks"]
    assert reference_verify(stack, signed)["verified"] is True


# -------------------------------------------------------------- Open Badges 3.0 and ELM


def as_issued_by(sample: dict[str, Any], name: str) -> dict[str, Any]:
    """A sample credential as our issuer's: its proof removed, its issuer (a string or a
    Profile object) given our issuer's DID."""
    credential = {k: v for k, v in copy.deepcopy(sample).items() if k != "proof"}
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        credential["issuer"] = {**issuer, "id": did_of(name)}
    else:
        credential["issuer"] = did_of(name)
    return credential


# endorsement-valid.json names the OB 3.0 extensions context, which is not bundled: RDF
# canonicalisation cannot read it offline, so that sample is signed with JCS only.
OB3_RUNS = [("ob3/simple.json", "eddsa-rdfc-2022"), ("ob3/simple.json", "eddsa-jcs-2022"),
            ("ob3/endorsement-valid.json", "eddsa-jcs-2022")]


@pytest.mark.parametrize(("sample", "suite"), OB3_RUNS)
def test_open_badges_3_credential_issued_anchored_and_verified_by_both(
        stack: VcStack, sample: str, suite: str) -> None:
    credential = as_issued_by(vector_json(sample), "acme")
    # Its own id: the same sample signed with another suite is another credential.
    credential["id"] = f"urn:uuid:{uuid.uuid4()}"

    signed = issue_and_anchor(stack, "acme", credential, suite)

    assert "OpenBadgeCredential" in signed["type"] or "EndorsementCredential" in signed["type"]
    assert reference_verify(stack, signed) == {"verified": True, "error": None}
    ours = stack.verify(signed)
    assert ours["verified"] is True, ours


def test_europass_elm_credential_vc11_context(stack: VcStack) -> None:
    """ELM uses the VC 1.1 context. The service signs and anchors it and our verifier
    verifies it (with a warning naming the VC 1.1 context). The reference implementation
    (@digitalbazaar/vc 7, a VC 2.0 verifier that still reads VC 1.1) refuses it with
    '"issuanceDate" property is required.': under the 1.1 context it requires the 1.1 term
    ``issuanceDate``, and ELM states ``validFrom`` (the 2.0 term) instead. (The VC 2.0 data
    model requires the first ``@context`` to be the 2.0 one, so a verifier of VC 2.0 alone
    refuses ELM before looking at its proof.)"""
    credential = as_issued_by(vector_json("elm/Sample-MC-Annex1-unsigned.jsonld"), "acme")

    signed = issue_and_anchor(stack, "acme", credential, None)

    ours = stack.verify(signed)
    assert ours["verified"] is True, ours
    assert any("VC Data Model 1.1" in warning for warning in ours["warnings"])
    reference = reference_verify(stack, signed)
    assert reference["verified"] is False
    assert reference["error"] == '"issuanceDate" property is required.'


def test_did_document_resolved_by_the_reference_is_the_registrys(stack: VcStack) -> None:
    """The document the reference implementation resolves is the one the service serves
    from the registry: it lists the key that signs."""
    with stack.client() as client:
        document = client.get("/issuers/acme/did.json").json()

    assert document["id"] == f"did:web:{HOST}:issuers:acme"
    assert [m["publicKeyMultibase"] for m in document["verificationMethod"]] == [
        stack.keys["acme"].multibase]
