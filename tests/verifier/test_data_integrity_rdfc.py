"""The eddsa-rdfc-2022 cryptosuite (W3C Data Integrity EdDSA Cryptosuites v1.0), over RDFC-1.0
canonical N-Quads with the bundled JSON-LD contexts.

- The specification's test vectors for both inputs (``unsigned.json`` and
  ``employmentAuth.json``), read in place from ../shared/vectors: canonical N-Quads of the
  document and of the proof configuration, both hashes, the signed bytes, the signature and the
  signed document are reproduced byte for byte, and the signed documents verify.
- Tampering (a changed field, a changed proofValue, a wrong key, a changed proof option) fails;
  a context outside the bundle fails with the typed error naming it.
- Open Badges 3.0 and Europass ELM (VC 1.1) samples sign and verify; 1EdTech's own signed
  Open Badge verifies, and its tampered sample does not.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from testkit.vectors import vector_json, vector_text
from verifier.data_integrity import (
    DATA_INTEGRITY_CONTEXT,
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    SUITES,
    add_proof,
    hash_data,
    verify_proof,
)
from verifier.errors import (
    DataIntegrityError,
    DataIntegrityKeyError,
    DataIntegritySignatureError,
    JsonLdLimitError,
    JsonLdProcessingError,
    UnknownContextError,
)
from verifier.jsonld import ContextBundle, bundled_contexts, canonical_nquads
from verifier.multikey import KeyType, Multikey, decode_secret_multikey, encode_multibase

FOLDER = "di-eddsa/eddsa-rdfc-2022"
CITIZENSHIP = "https://w3id.org/citizenship/v4rc1"
VC2 = "https://www.w3.org/ns/credentials/v2"
VC1 = "https://www.w3.org/2018/credentials/v1"
CREATED = "2026-05-01T08:00:00Z"


class RdfcVector:
    """One eddsa-rdfc-2022 vector set: ``unsigned.json`` (top folder) or ``employmentAuth.json``
    (``employ/``, whose citizenship context is a test vector, not a bundled context: it is
    read from ../shared/vectors/contexts and given to this test's bundle)."""

    def __init__(self, name: str) -> None:
        folder = FOLDER if name == "unsigned" else f"{FOLDER}/employ"
        pair = vector_json("di-eddsa/keyPair.json")
        self.public = Multikey.from_multibase(pair["publicKeyMultibase"])
        self.secret = decode_secret_multikey(pair["privateKeyMultibase"])
        self.unsigned = vector_json("di-eddsa/unsigned.json" if name == "unsigned"
                                    else "di-eddsa/employmentAuth.json")
        self.proof_config = vector_json(f"{folder}/proofConfigDataInt.json")
        self.signed = vector_json(f"{folder}/signedDataInt.json")
        self.text = {part: vector_text(f"{folder}/{part}DataInt.txt") for part in (
            "canonDoc", "proofCanon", "docHash", "proofHash", "combinedHash", "sigHex",
            "sigBTC58")}
        self.contexts: ContextBundle = bundled_contexts()
        if name == "employ":
            self.contexts = self.contexts.with_documents(
                {CITIZENSHIP: vector_json("contexts/citizenship-v4rc1.jsonld")})


@pytest.fixture(params=["unsigned", "employ"])
def vector(request: pytest.FixtureRequest) -> RdfcVector:
    return RdfcVector(request.param)


def test_suite_is_listed() -> None:
    assert EDDSA_RDFC_2022 == "eddsa-rdfc-2022"
    assert EDDSA_RDFC_2022 in SUITES


def test_canonical_n_quads_are_reproduced_byte_for_byte(vector: RdfcVector) -> None:
    assert canonical_nquads(vector.unsigned, contexts=vector.contexts) == \
        vector.text["canonDoc"]
    assert canonical_nquads(vector.proof_config, contexts=vector.contexts) == \
        vector.text["proofCanon"]


def test_hashes_and_signed_bytes_are_reproduced(vector: RdfcVector) -> None:
    data = hash_data(vector.unsigned, vector.proof_config, key_type=KeyType.ED25519,
                     suite=EDDSA_RDFC_2022, contexts=vector.contexts)
    assert data.canonical_document == vector.text["canonDoc"].encode()
    assert data.canonical_proof_config == vector.text["proofCanon"].encode()
    assert data.document_hash.hex() == vector.text["docHash"].strip()
    assert data.proof_hash.hex() == vector.text["proofHash"].strip()
    assert data.combined.hex() == vector.text["combinedHash"].strip()
    assert hashlib.sha256(vector.text["canonDoc"].encode()).digest() == data.document_hash


def test_our_signature_is_the_spec_signature(vector: RdfcVector) -> None:
    config = vector.proof_config
    signed = add_proof(vector.unsigned, suite=EDDSA_RDFC_2022, private_key=vector.secret,
                       verification_method=config["verificationMethod"],
                       created=config["created"], contexts=vector.contexts)
    # Ed25519 is deterministic: the same signature, the same signed document.
    assert signed["proof"]["proofValue"] == vector.text["sigBTC58"].strip()
    assert encode_multibase(bytes.fromhex(vector.text["sigHex"].strip())) == \
        signed["proof"]["proofValue"]
    assert signed == vector.signed


def test_spec_signed_documents_verify(vector: RdfcVector) -> None:
    result = verify_proof(vector.signed, vector.public, contexts=vector.contexts)
    assert result.cryptosuite == EDDSA_RDFC_2022
    assert result.verification_method == vector.proof_config["verificationMethod"]
    assert result.uncovered_context == ()


def test_the_employment_vector_needs_its_context() -> None:
    vector = RdfcVector("employ")
    assert CITIZENSHIP in vector.signed["@context"]
    with pytest.raises(UnknownContextError) as caught:
        verify_proof(vector.signed, vector.public)  # the bundle alone lacks it
    assert caught.value.url == CITIZENSHIP


# --- tampering ---------------------------------------------------------------------------------


def _change_subject(document: dict[str, Any]) -> None:
    subject = document["credentialSubject"]
    key = next(k for k in subject if k not in ("id", "type"))
    subject[key] = "Mallory" if isinstance(subject[key], str) else {"name": "Mallory"}


def _change_proof_value(document: dict[str, Any]) -> None:
    value = document["proof"]["proofValue"]
    middle = len(value) // 2
    document["proof"]["proofValue"] = \
        value[:middle] + ("2" if value[middle] != "2" else "3") + value[middle + 1:]


def _change_created(document: dict[str, Any]) -> None:
    document["proof"]["created"] = "2030-01-01T00:00:00Z"


def _change_verification_method(document: dict[str, Any]) -> None:
    document["proof"]["verificationMethod"] = "did:web:other.example#key-1"


def _change_issuer(document: dict[str, Any]) -> None:
    document["issuer"] = "did:web:other.example"


@pytest.mark.parametrize("tamper", [_change_subject, _change_proof_value, _change_created,
                                    _change_verification_method, _change_issuer])
def test_tampering_fails(vector: RdfcVector, tamper: Any) -> None:
    tampered = copy.deepcopy(vector.signed)
    tamper(tampered)
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(tampered, vector.public, contexts=vector.contexts)


def test_a_changed_context_fails(vector: RdfcVector) -> None:
    # The same members under another @context: other RDF statements, or none at all.
    tampered = copy.deepcopy(vector.signed)
    tampered["@context"] = [*tampered["@context"],
                            {"@version": 1.1, "name": "https://evil.example/name"}]
    with pytest.raises(DataIntegrityError):
        verify_proof(tampered, vector.public, contexts=vector.contexts)


def test_wrong_key_fails(vector: RdfcVector) -> None:
    other = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(DataIntegritySignatureError, match="does not verify"):
        verify_proof(vector.signed, other, contexts=vector.contexts)


def test_a_p256_key_is_refused_for_the_suite() -> None:
    with pytest.raises(DataIntegrityKeyError, match="needs an Ed25519 key"):
        add_proof(_vc2(), suite=EDDSA_RDFC_2022,
                  private_key=ec.generate_private_key(ec.SECP256R1()),
                  verification_method="did:example:a#k", created=CREATED)


def test_a_context_outside_the_bundle_fails_with_the_typed_error(vector: RdfcVector) -> None:
    url = "https://example.org/not-bundled/v1"
    document = copy.deepcopy(vector.signed)
    document["@context"] = [*document["@context"], url]
    with pytest.raises(UnknownContextError) as caught:
        verify_proof(document, vector.public, contexts=vector.contexts)
    assert caught.value.url == url
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    with pytest.raises(UnknownContextError):
        add_proof(unsigned, suite=EDDSA_RDFC_2022, private_key=vector.secret,
                  verification_method="did:example:a#k", created=CREATED)


# --- our own credentials -----------------------------------------------------------------------


def _vc2(**subject: Any) -> dict[str, Any]:
    return {"@context": [VC2, "https://www.w3.org/ns/credentials/undefined-terms/v2"],
            "id": "urn:uuid:8f6e5a26-0b43-4b0c-9d0e-0d3b1f6f5c11",
            "type": ["VerifiableCredential"], "issuer": "did:web:uni-a.example",
            "validFrom": "2026-05-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:learner", "name": "Zoë", "ects": 2.5,
                                  **subject}}


def _sign(document: dict[str, Any], key: ed25519.Ed25519PrivateKey) -> dict[str, Any]:
    public = Multikey.from_public_key(key.public_key())
    return add_proof(document, suite=EDDSA_RDFC_2022, private_key=key,
                     verification_method=f"did:web:uni-a.example#{public.multibase}",
                     created=CREATED)


def test_round_trip_of_a_vc2_credential() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    credential = _vc2(grades=[1, 2.25, 5.0, -0.0, 1e-7, 1e21], note="tab\there")
    before = copy.deepcopy(credential)
    signed = _sign(credential, key)
    assert credential == before  # the input is not changed
    assert {k: v for k, v in signed.items() if k != "proof"} == credential  # context unchanged
    # The proof names no @context of its own: the document's covers it (as in the spec's
    # vectors and the reference implementation).
    assert "@context" not in signed["proof"]
    result = verify_proof(signed, Multikey.from_public_key(key.public_key()))
    assert result.cryptosuite == EDDSA_RDFC_2022


def test_rdfc_and_jcs_sign_different_bytes() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    vm = "did:web:uni-a.example#k"
    rdfc = add_proof(_vc2(), suite=EDDSA_RDFC_2022, private_key=key, verification_method=vm,
                     created=CREATED)
    jcs = add_proof(_vc2(), suite=EDDSA_JCS_2022, private_key=key, verification_method=vm,
                    created=CREATED)
    assert rdfc["proof"]["proofValue"] != jcs["proof"]["proofValue"]
    # A proof's cryptosuite cannot be swapped: the other canonical form does not verify.
    swapped = copy.deepcopy(rdfc)
    swapped["proof"]["cryptosuite"] = EDDSA_JCS_2022
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(swapped, Multikey.from_public_key(key.public_key()))


def test_json_key_order_and_whitespace_do_not_matter_but_rdf_does() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signed = _sign(_vc2(), key)
    reordered = dict(reversed(list(signed.items())))
    verify_proof(reordered, Multikey.from_public_key(key.public_key()))
    # An undefined term is refused (safe mode) rather than silently left out of the signature.
    added = copy.deepcopy(signed)
    added["@context"] = [VC2]
    added["proof"]["@context"] = [VC2]
    with pytest.raises(JsonLdProcessingError, match="does not map to an absolute IRI"):
        verify_proof(added, Multikey.from_public_key(key.public_key()))


def test_undefined_terms_are_refused_when_signing() -> None:
    credential = _vc2() | {"@context": [VC2]}
    with pytest.raises(JsonLdProcessingError, match="safe mode"):
        _sign(credential, ed25519.Ed25519PrivateKey.generate())


def test_an_oversize_document_is_refused_with_the_typed_error() -> None:
    credential = _vc2(items=[f"v{n}" for n in range(5000)])
    with pytest.raises(JsonLdLimitError):
        _sign(credential, ed25519.Ed25519PrivateKey.generate())


def _ob3_unsigned() -> dict[str, Any]:
    sample = vector_json("ob3/simple.json")
    return {k: v for k, v in sample.items() if k != "proof"}


def test_an_open_badge_signs_and_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    badge = _ob3_unsigned()
    signed = _sign(badge, key)
    assert signed["@context"] == badge["@context"]
    verify_proof(signed, Multikey.from_public_key(key.public_key()))
    signed["credentialSubject"]["achievement"]["name"] = "Another badge"
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(signed, Multikey.from_public_key(key.public_key()))


def _single_proof(sample: dict[str, Any]) -> dict[str, Any]:
    # 1EdTech's samples hold their one proof in a list; the same statements as one object.
    (proof,) = sample["proof"]
    return sample | {"proof": proof}


def test_1edtech_signed_open_badge_verifies() -> None:
    badge = _single_proof(vector_json("ob3/simple.json"))
    key = badge["proof"]["verificationMethod"].split("#")[1]
    result = verify_proof(badge, key)
    assert result.cryptosuite == EDDSA_RDFC_2022
    assert result.created == "2010-01-01T19:23:24Z"


def test_1edtech_open_badge_with_a_bad_proof_value_fails() -> None:
    badge = _single_proof(vector_json("ob3/simple-err-proof-value.json"))
    key = badge["proof"]["verificationMethod"].split("#")[1]
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(badge, key)


def test_a_vc11_europass_credential_gets_the_data_integrity_context() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    elm = vector_json("elm/Sample-MC-Annex1-unsigned.jsonld")
    assert VC2 not in elm["@context"]
    signed = _sign(elm, key)
    # VC 1.1 does not define DataIntegrityProof: the suite's context is added and signed.
    assert signed["@context"] == [*elm["@context"], DATA_INTEGRITY_CONTEXT]
    assert "@context" not in signed["proof"]
    verify_proof(signed, Multikey.from_public_key(key.public_key()))
    signed["credentialSubject"]["id"] = "did:example:someone-else"
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(signed, Multikey.from_public_key(key.public_key()))
