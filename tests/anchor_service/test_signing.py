"""Issuer signatures in the service: signing keys made with ``cryptography`` and kept encrypted,
credentials signed at acceptance (the signed credential, proof included, is what is anchored),
credentials that arrive signed checked against the registry, on a real SQLite file and a real
PostgreSQL server, over real HTTP, on a local chain."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from anchor_service._parallel_signing import PARALLEL_MIN
from anchor_service.api import create_app
from anchor_service.chain import accredit, add_signing_key, revoke_signing_key
from anchor_service.errors import KeyLoadError
from anchor_service.keystore import write_keystore
from anchor_service.service import Components, build_components
from anchor_service.settings import ServiceSettings
from anchor_service.signing import (
    IssuerMismatchError,
    IssuerSigner,
    SigningError,
    SigningKeys,
    UnknownSuiteError,
)
from anchor_service.store import Store
from anchor_service.submit import DirectBackend
from localchain import InProcessChain
from testkit.world import World, build_world, issuer_signing_key, serve_issuer
from tests.anchor_service.harness import anchor_now, served
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import ALL_SCOPES, Kind, signing_key_id
from verifier.credential import credential_digest
from verifier.data_integrity import add_proof, hash_data, verify_proof
from verifier.errors import DataIntegritySignatureError
from verifier.multikey import KeyType, Multikey, PrivateKey, encode_multibase
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, verify

DID = "did:web:uni-a.example"
CREATED = "2026-01-01T00:00:00Z"
PASSWORD = "pw"


def _credential(tag: str, *, issuer: Any = DID, **fields: Any) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": f"urn:signing:{tag}",
            "type": ["VerifiableCredential"], "issuer": issuer,
            "credentialSubject": {"name": "Zoë", "ects": 2.5}, **fields}


# ---------------------------------------------------------------------------- keys

def test_signing_keys_are_encrypted_owner_only_pkcs8_files(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys", "secret", scrypt_cost=2**4)
    for key_type, label in (("ed25519", KeyType.ED25519), ("p256", KeyType.P256)):
        public, path = keys.create(key_type)
        assert public.key_type is label
        assert path == tmp_path / "keys" / f"signing-{signing_key_id(public).hex()}.pem"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        text = path.read_text()
        assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
        private = keys.load(public)
        assert Multikey.from_public_key(private.public_key()) == public
        # The file holds no key material in the clear: not the raw secret, not its base64.
        raw = (private.private_bytes_raw() if isinstance(private, ed25519.Ed25519PrivateKey)
               else private.private_numbers().private_value.to_bytes(32, "big"))
        assert raw.hex() not in text
        assert raw not in path.read_bytes()


def test_a_signing_key_needs_its_password_and_its_own_file(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path, "right", scrypt_cost=2**4)
    public, path = keys.create("ed25519")
    with pytest.raises(KeyLoadError, match="wrong password") as caught:
        SigningKeys(tmp_path, "wrong").load(public)
    assert "right" not in str(caught.value)
    other, other_path = keys.create("ed25519")
    other_path.replace(path)  # another key under this key's name
    with pytest.raises(KeyLoadError, match=f"holds key {other.multibase}, not"):
        keys.load(public)
    missing = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(KeyLoadError, match="cannot read signing key"):
        keys.load(missing)
    with pytest.raises(UnknownSuiteError, match="ed25519 or p256"):
        keys.create("rsa")


def test_openssl_reads_the_signing_key_files(tmp_path: Path) -> None:
    """The files are standard PKCS #8 (PBES2, scrypt, AES-256-CBC): OpenSSL decrypts them with
    the password (its command line caps scrypt at N = 2**14)."""
    keys = SigningKeys(tmp_path, "pw", scrypt_cost=2**14)
    public, path = keys.create("p256")
    result = subprocess.run(["openssl", "pkey", "-in", str(path), "-passin", "pass:pw",
                             "-pubout", "-outform", "DER"], capture_output=True, check=True)
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    opened = load_der_public_key(result.stdout)
    assert isinstance(opened, ec.EllipticCurvePublicKey)
    assert Multikey.from_public_key(opened) == public


# ---------------------------------------------------------------------- the signer

def _ed25519() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_a_session_for_now_is_dated_to_the_second_and_shared_within_it() -> None:
    signer = IssuerSigner(DID, _ed25519())
    while True:  # not across a second's end: the shared session would be another one
        before = datetime.now(UTC)
        first, again = signer.session(), signer.session()
        rdfc = signer.session(suite="eddsa-rdfc-2022")
        after = datetime.now(UTC)
        if int(before.timestamp()) == int(after.timestamp()):
            break
    assert first.created == before.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert again is first
    assert rdfc is not first
    assert (rdfc.suite, rdfc.created) == ("eddsa-rdfc-2022", first.created)
    time.sleep(1.05 - (time.time() % 1))  # into the next second
    later = signer.session()
    assert later.created != first.created
    assert later.created == datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_signer_refuses_a_foreign_issuer_a_proof_and_a_suite_that_does_not_fit() -> None:
    signer = IssuerSigner(DID, _ed25519())
    with pytest.raises(IssuerMismatchError, match=r"did:web:other\.example"):
        signer.sign(_credential("x", issuer="did:web:other.example"))
    with pytest.raises(IssuerMismatchError, match="no issuer"):
        signer.sign({"id": "urn:x"})
    with pytest.raises(SigningError, match="already has a proof"):
        signer.sign({**_credential("x"), "proof": {}})
    with pytest.raises(UnknownSuiteError, match="needs a P-256 key"):
        signer.sign(_credential("x"), suite="ecdsa-jcs-2019")
    with pytest.raises(UnknownSuiteError, match="use one of eddsa-jcs-2022, ecdsa-jcs-2019"):
        signer.sign(_credential("x"), suite="rsa-2000")
    # The issuer as an object counts too.
    signed = signer.sign(_credential("x", issuer={"id": DID, "name": "Uni A"}))
    assert verify_proof(signed, signer.key).verification_method == signer.verification_method


_KEYS = st.text(st.characters(codec="utf-8"), max_size=6)  # (utf-8 has no lone surrogates)
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
            # I-JSON numbers: JCS writes a float of 2**53 or more as an integer out of range.
            | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < 2**53)
            | st.text(max_size=8))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=8)
# Names around "proof" in both orders, and characters whose UTF-16 order differs from their
# code point order (U+E000..U+FFFF sort after surrogate pairs in UTF-16, before them by code
# point).
_NAMES = st.sampled_from(["pro", "proo", "proofs", "proog", "prone", "Proof", "", "a", "z",
                          "\ue000", "\U0001f600", "\uffff", "é", "@context", "type"]) | _KEYS


@settings(max_examples=150, deadline=None)
@given(extra=st.dictionaries(_NAMES.filter(lambda name: name != "proof"), _JSON, max_size=6),
       context=st.sampled_from([None, "https://www.w3.org/ns/credentials/v2",
                                ["https://www.w3.org/ns/credentials/v2", {"@vocab": "x:"}]]))
def test_the_fast_signing_path_is_add_proof_and_rfc8785_exactly(
        extra: dict[str, Any], context: Any) -> None:
    """The signed credential, its canonical form and its digests, made without canonicalising
    twice, are exactly what verifier.data_integrity.add_proof and the rfc8785 package make:
    byte for byte for Ed25519 (deterministic), and for P-256 the same canonical text and a
    signature that verifies."""
    credential = {**extra, "issuer": DID}
    if context is None:
        credential.pop("@context", None)
    else:
        credential["@context"] = context
    for private_key, suite in ((_ed25519(), "eddsa-jcs-2022"),
                               (ec.derive_private_key(7, ec.SECP256R1()), "ecdsa-jcs-2019")):
        signer = IssuerSigner(DID, private_key, suite)
        (made,) = signer.sign_many([credential], created=CREATED)
        assert made.canonical == rfc8785.dumps(made.document)
        assert made.digest == hashlib.sha256(rfc8785.dumps(made.document)).digest()
        assert made.submitted_digest == hashlib.sha256(
            b"microcred-signed\0" + hashlib.sha256(rfc8785.dumps(credential)).digest()).digest()
        reference = add_proof(credential, suite=suite,  # type: ignore[arg-type]
                              private_key=private_key,
                              verification_method=signer.verification_method, created=CREATED)
        if suite == "eddsa-jcs-2022":
            assert made.document == reference
        else:
            assert {**made.document["proof"], "proofValue": None} == \
                {**reference["proof"], "proofValue": None}
        assert verify_proof(made.document, signer.key).cryptosuite == suite


# ------------------------------------------------------------------ the service

@dataclass
class Signing:
    """A running service whose issuers sign: ``uni-a`` (Ed25519, eddsa-jcs-2022), ``uni-a-p256``
    (the same entity and DID, another anchoring key, a P-256 key and ecdsa-jcs-2019), and
    ``uni-a-lost`` (its signing key's file is missing)."""

    world: World
    components: Components
    url: str
    tokens: dict[str, str]
    issuer_ids: dict[str, int]

    def client(self, name: str = "uni-a") -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.tokens[name]}"})


@pytest.fixture(scope="module")
def signing_world() -> Iterator[World]:
    chain = InProcessChain.start()
    try:
        yield build_world(chain)
    finally:
        chain.close()


def _database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'service.sqlite3'}"
    return str(request.getfixturevalue("postgres").new_database())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def signing(signing_world: World, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Signing]:
    world = signing_world
    data = tmp_path_factory.mktemp("signing")
    (data / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
    for account in (world.issuer, world.issuer_key2):
        write_keystore(data / "keys", account, PASSWORD, scrypt_cost=2**4)
    database = _database(str(request.param), data, request)
    store = Store(database)
    uni_a = serve_issuer(store, world, "uni-a", keystore_dir=data / "keys", password=PASSWORD)
    p256 = store.add_issuer("uni-a-p256", entity_id=world.issuer_id,
                            key_address=world.issuer_key2.address, did=DID)
    keys = SigningKeys(data / "keys", PASSWORD, scrypt_cost=2**4)
    key, _ = keys.create("p256")
    add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id, key=key)
    store.set_signing_key(p256.id, key.multibase, "ecdsa-jcs-2019")
    lost = store.add_issuer("uni-a-lost", entity_id=world.issuer_id,
                            key_address=world.issuer.address, did=DID)
    lost_key = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    store.set_signing_key(lost.id, lost_key.multibase)
    issuers = {"uni-a": uni_a.id, "uni-a-p256": p256.id, "uni-a-lost": lost.id}
    tokens = {name: store.add_token(role="issuer", issuer_id=issuer_id)
              for name, issuer_id in issuers.items()}
    tokens["admin"] = store.add_token(role="admin")
    store.close()
    settings_ = ServiceSettings(
        rpc_url="unused-in-process", deployment=data / "deployment.json",
        database_url=database, keystore_dir=data / "keys", keystore_password=PASSWORD,
        batch_max_age=3600, poll_interval=0.05, log_json=False, verify_head_max_age=0.0)
    components = build_components(settings_, w3=world.chain.w3)
    try:
        with served(create_app(components=components)) as url:
            yield Signing(world, components, url, tokens, issuers)
    finally:
        components.close()


def _submit(client: httpx.Client, credentials: list[dict[str, Any]],
            **extra: Any) -> httpx.Response:
    return client.post("/v1/credentials", json={"credentials": credentials, **extra})


def _trust(world: World) -> TrustConfig:
    return TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),))


def _bundle(client: httpx.Client, public_id: str) -> Bundle:
    return Bundle.from_json(client.get(f"/v1/credentials/{public_id}/bundle").text)


def test_the_service_signs_then_anchors_the_signed_credential(signing: Signing) -> None:
    credentials = [_credential("e2e-1"), _credential("e2e-2", issuer={"id": DID, "name": "A"})]
    with signing.client() as client:
        answer = _submit(client, credentials)
        assert answer.status_code == 202, answer.text
        accepted = answer.json()["accepted"]
        ids = [item["id"] for item in accepted]
        anchor_now(client, ids)
        reader = JsonRpcChainReader(signing.world.chain.w3)
        for sent, item in zip(credentials, accepted, strict=True):
            bundle = _bundle(client, item["id"])
            signed = dict(bundle.credential)
            proof = signed.pop("proof")
            # The credential as sent, plus its status entries and the proof.
            status = signed.pop("credentialStatus")
            assert [entry["statusListIndex"] for entry in status] == [
                str(bundle.receipt.status_list_index)] * 2
            assert signed == sent
            assert proof["cryptosuite"] == "eddsa-jcs-2022"
            assert proof["verificationMethod"] == (
                f"{DID}#{Multikey.from_public_key(issuer_signing_key().public_key()).multibase}")
            assert verify_proof(bundle.credential, proof["verificationMethod"].partition("#")[2])
            # What is anchored is the signed credential, proof included.
            assert bundle.receipt.credential_digest == credential_digest(bundle.credential)
            assert item["digest"] == "0x" + credential_digest(bundle.credential).hex()
            report = verify(bundle.credential, bundle.receipt, trust=_trust(signing.world),
                            reader=reader)
            assert report.valid, [(c.name, c.detail) for c in report.checks]
            passed = {c.name for c in report.checks if c.status is CheckStatus.PASSED}
            assert {"signature_valid", "signing_key_registered",
                    "signing_key_trusted_at_anchoring"} <= passed


def test_the_same_credential_sent_twice_keeps_its_id_digest_and_signature(
        signing: Signing) -> None:
    credential = _credential("twice")
    with signing.client() as client:
        first = _submit(client, [credential]).json()["accepted"][0]
        # In the same request and in another one (another second: another proof `created`).
        again = _submit(client, [credential, credential]).json()["accepted"]
        assert [(a["id"], a["digest"], a["created"]) for a in again] == \
            [(first["id"], first["digest"], False)] * 2
        assert first["created"] is True
        stored = signing.components.store.credential(first["id"])
        assert stored is not None
        assert stored.digest.hex() == first["digest"][2:]


def test_the_suite_is_chosen_per_issuer_and_per_request(signing: Signing) -> None:
    with signing.client("uni-a-p256") as client:
        answer = _submit(client, [_credential("p256-default")])
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        stored = signing.components.store.credential(public_id)
        assert stored is not None
        assert stored.content is not None
        document = json.loads(stored.content)
        assert document["proof"]["cryptosuite"] == "ecdsa-jcs-2019"
        key = document["proof"]["verificationMethod"].partition("#")[2]
        assert verify_proof(document, key).key.key_type is KeyType.P256
        # A suite its P-256 key cannot make: 422 naming the key's suites.
        refused = _submit(client, [_credential("p256-eddsa")], suite="eddsa-jcs-2022")
        assert refused.status_code == 422
        assert refused.json()["error"] == "invalid_suite"
        assert "its suites: ecdsa-jcs-2019" in refused.json()["detail"]
    with signing.client() as client:
        explicit = _submit(client, [_credential("eddsa-explicit")], suite="eddsa-jcs-2022")
        assert explicit.status_code == 202, explicit.text
        unknown = _submit(client, [_credential("unknown-suite")], suite="rsa-2048")
        assert unknown.status_code == 422
        assert unknown.json()["error"] == "invalid_suite"
        assert "eddsa-jcs-2022, ecdsa-jcs-2019" in unknown.json()["detail"]
        with_digests = client.post("/v1/credentials", json={
            "digests": ["0x" + "ab" * 32], "suite": "eddsa-jcs-2022"})
        assert with_digests.status_code == 422
        assert "digests are anchored as they are" in with_digests.json()["detail"]


def test_a_credential_of_another_issuer_is_refused(signing: Signing) -> None:
    with signing.client() as client:
        before = signing.components.store.pending(signing.issuer_ids["uni-a"])[0]
        for issuer in ("did:web:other.example", {"id": "did:web:other.example"}):
            answer = _submit(client, [_credential("ok"), _credential("foreign", issuer=issuer)])
            assert answer.status_code == 422
            assert answer.json()["error"] == "issuer_mismatch"
            assert answer.json()["detail"].startswith("credentials[1]: ")
            assert "'did:web:other.example'" in answer.json()["detail"]
            assert f"must be '{DID}'" in answer.json()["detail"]
        # Nothing of a refused request is stored.
        assert signing.components.store.pending(signing.issuer_ids["uni-a"])[0] == before


def test_digests_are_anchored_as_they_are(signing: Signing) -> None:
    digest = "0x" + hashlib.sha256(b"private credential").hexdigest()
    with signing.client() as client:
        answer = client.post("/v1/credentials", json={"digests": [digest]})
        assert answer.status_code == 202
        assert answer.json()["accepted"][0]["digest"] == digest


def _presigned(private_key: PrivateKey, tag: str, *, did: str = DID,
               suite: str = "eddsa-jcs-2022") -> dict[str, Any]:
    key = Multikey.from_public_key(private_key.public_key())
    return add_proof(_credential(tag, issuer=did), suite=suite,  # type: ignore[arg-type]
                     private_key=private_key, verification_method=f"{did}#{key.multibase}",
                     created=CREATED)


def _presigned_expiring(expires: str, tag: str) -> dict[str, Any]:
    """Signed by the issuer's registered key, with a proof that expires at ``expires``."""
    private_key = issuer_signing_key()
    key = Multikey.from_public_key(private_key.public_key())
    credential = _credential(tag)
    config = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022", "created": CREATED,
              "expires": expires, "verificationMethod": f"{DID}#{key.multibase}",
              "proofPurpose": "assertionMethod", "@context": credential["@context"]}
    data = hash_data(credential, config, key_type=KeyType.ED25519)
    value = encode_multibase(private_key.sign(data.combined))
    return {**credential, "proof": {**config, "proofValue": value}}


def test_a_presigned_proof_that_has_expired_is_refused(signing: Signing) -> None:
    with signing.client() as client:
        expired = _submit(client, [_presigned_expiring("2024-01-01T00:00:00Z", "expired")])
        current = _submit(client, [_presigned_expiring("2999-01-01T00:00:00Z", "current")])
    assert expired.status_code == 422, expired.text
    assert expired.json()["error"] == "invalid_signature"
    assert "expired at 2024-01-01T00:00:00Z" in expired.json()["detail"]
    assert current.status_code == 202, current.text


def test_a_presigned_proof_in_a_list_of_one_is_that_proof(signing: Signing) -> None:
    """As Open Badges 3.0 issuers write it; anchored exactly as it arrived."""
    signed = _presigned(issuer_signing_key(), "presigned-in-a-list")
    listed = {**signed, "proof": [signed["proof"]]}
    with signing.client() as client:
        answer = _submit(client, [listed])
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"][0]["digest"] == "0x" + credential_digest(listed).hex()


def test_a_presigned_credential_is_checked_then_anchored_as_it_is(signing: Signing) -> None:
    world = signing.world
    body = world.tx(world.body)
    good = _presigned(issuer_signing_key(), "presigned-good")
    with signing.client() as client:
        answer = _submit(client, [good])
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        assert answer.json()["accepted"][0]["digest"] == "0x" + credential_digest(good).hex()
        stored = signing.components.store.credential(public_id)
        assert stored is not None
        assert stored.content == rfc8785.dumps(good)
        again = _submit(client, [good]).json()["accepted"][0]
        assert (again["id"], again["created"]) == (public_id, False)

        # A P-256 key of the issuer, registered: ecdsa-jcs-2019 proofs are taken too.
        p256 = ec.generate_private_key(ec.SECP256R1())
        add_signing_key(body, world.registry, entity_id=world.issuer_id,
                        key=Multikey.from_public_key(p256.public_key()))
        ecdsa = _submit(client, [_presigned(p256, "presigned-p256", suite="ecdsa-jcs-2019")])
        assert ecdsa.status_code == 202, ecdsa.text

        # A changed field: the signature does not verify.
        tampered = {**_presigned(issuer_signing_key(), "presigned-tampered"), "id": "urn:x"}
        answer = _submit(client, [tampered])
        assert answer.status_code == 422
        assert answer.json()["error"] == "invalid_signature"
        assert answer.json()["detail"].startswith("credentials[0]: ")

        # A key registered for nobody.
        stranger = ed25519.Ed25519PrivateKey.generate()
        answer = _submit(client, [_presigned(stranger, "presigned-unregistered")])
        assert answer.status_code == 409
        assert answer.json()["error"] == "signing_key_not_registered"
        assert "is not registered on chain" in answer.json()["detail"]

        # Another issuer's registered key, claiming to be this issuer's.
        other_did = f"did:web:other-{uuid.uuid4().hex[:8]}.example"  # the chain is shared
        other_id = accredit(body, world.registry, parent=world.body_id,
                            kind=Kind.TRUSTED_ISSUER, did=other_did, scope=ALL_SCOPES)
        other_key = ed25519.Ed25519PrivateKey.generate()
        add_signing_key(body, world.registry, entity_id=other_id,
                        key=Multikey.from_public_key(other_key.public_key()))
        answer = _submit(client, [_presigned(other_key, "presigned-other")])
        assert answer.status_code == 409
        assert f"registered for entity {other_id}, not for this issuer" in \
            answer.json()["detail"]
        # ... or signed as that other issuer.
        answer = _submit(client, [_presigned(other_key, "presigned-foreign", did=other_did)])
        assert answer.status_code == 422
        assert answer.json()["error"] == "issuer_mismatch"

        # A revoked key of the issuer.
        revoked = ed25519.Ed25519PrivateKey.generate()
        revoked_key = Multikey.from_public_key(revoked.public_key())
        add_signing_key(body, world.registry, entity_id=world.issuer_id, key=revoked_key)
        assert _submit(client, [_presigned(revoked, "presigned-before")]).status_code == 202
        revoke_signing_key(body, world.registry, key_id=signing_key_id(revoked_key))
        world.chain.mine()  # the revocation takes effect from the next second
        answer = _submit(client, [_presigned(revoked, "presigned-revoked")])
        assert answer.status_code == 409
        assert "is not trusted now" in answer.json()["detail"]


def test_an_issuer_without_a_signing_key_has_its_credentials_accepted_unsigned(
        signing: Signing) -> None:
    store = signing.components.store
    issuer_id = signing.issuer_ids["uni-a"]
    issuer = store.issuer(issuer_id)
    store.set_signing_key(issuer_id, None)
    try:
        credential = _credential("unsigned", issuer="did:web:anyone.example")
        with signing.client() as client:
            answer = _submit(client, [credential])
            assert answer.status_code == 202, answer.text
            assert answer.json()["accepted"][0]["digest"] == \
                "0x" + credential_digest(credential).hex()
            refused = _submit(client, [_credential("unsigned-suite")], suite="eddsa-jcs-2022")
            assert refused.status_code == 422
            assert "has no signing key" in refused.json()["detail"]
            stored_unsigned = _submit(client, [_credential("stored-unsigned")])
            unsigned_id = stored_unsigned.json()["accepted"][0]["id"]
    finally:
        store.set_signing_key(issuer_id, issuer.signing_key, issuer.signing_suite)
    with signing.client() as client:  # and signed again once it has one
        answer = _submit(client, [_credential("signed-again")])
        public_id = answer.json()["accepted"][0]["id"]
        record = store.credential(public_id)
        assert record is not None
        assert b'"proof"' in (record.content or b"")
        # The credential stored unsigned, sent again now: signed and stored anew, never
        # answered with the unsigned copy.
        again = _submit(client, [_credential("stored-unsigned")]).json()["accepted"][0]
        assert again["id"] != unsigned_id
        assert again["created"] is True
        resigned = store.credential(again["id"])
        assert resigned is not None
        assert b'"proof"' in (resigned.content or b"")


def test_a_signing_key_the_registry_no_longer_trusts_signs_nothing(signing: Signing) -> None:
    """Revoked on chain (after a leak, say): the service refuses to sign with it (409), rather
    than sign credentials no verifier would accept."""
    world, store = signing.world, signing.components.store
    issuer = store.add_issuer(f"uni-a-revoked-{uuid.uuid4().hex[:8]}", entity_id=world.issuer_id,
                              key_address=world.issuer.address, did=DID)
    key, _ = signing.components.signing_keys().create("ed25519")
    add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id, key=key)
    store.set_signing_key(issuer.id, key.multibase)
    token = store.add_token(role="issuer", issuer_id=issuer.id)
    with httpx.Client(base_url=signing.url, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        assert _submit(client, [_credential("before-revocation")]).status_code == 202
        revoke_signing_key(world.tx(world.body), world.registry, key_id=signing_key_id(key))
        time.sleep(1.1)  # the registry's answer is kept a second per issuer
        refused = _submit(client, [_credential("after-revocation")])
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "signing_key_not_trusted"
    assert "not trusted now" in refused.json()["detail"]
    assert store.pending(issuer.id)[0] == 1  # only the credential signed before


def test_an_issuer_whose_signing_key_cannot_be_loaded_is_refused_not_anchored_unsigned(
        signing: Signing) -> None:
    with signing.client("uni-a-lost") as client:
        answer = _submit(client, [_credential("lost")])
        assert answer.status_code == 503
        assert answer.json()["error"] == "no_signing_key"
        assert "refused rather than anchored unsigned" in answer.json()["detail"]
    assert signing.components.store.pending(signing.issuer_ids["uni-a-lost"])[0] == 0


def test_submit_direct_signs_as_the_api_does(signing: Signing) -> None:
    backend = DirectBackend(signing.components, "uni-a")
    (public_id,) = backend.accept([_credential("direct")])
    record = signing.components.store.credential(public_id)
    assert record is not None
    assert record.content is not None
    document = json.loads(record.content)
    assert verify_proof(document, document["proof"]["verificationMethod"].partition("#")[2])
    with pytest.raises(SigningError.__mro__[1], match="issuer_mismatch"):  # SubmitError
        backend.accept([_credential("direct-foreign", issuer="did:web:other.example")])


def test_admin_api_makes_a_key_and_uses_it_once_registered(signing: Signing) -> None:
    world = signing.world
    with signing.client("admin") as admin:
        made = admin.post("/v1/admin/issuers/uni-a-p256/signing-key",
                          json={"type": "ed25519"})
        assert made.status_code == 201, made.text
        key = made.json()["publicKeyMultibase"]
        assert made.json()["active"] is False
        assert f"--public-key {key}" in made.json()["registerWith"]
        assert signing.components.signing_keys().path(Multikey.from_multibase(key)).is_file()
        # Not registered yet: refused, and the issuer keeps signing with its P-256 key.
        early = admin.put("/v1/admin/issuers/uni-a-p256/signing-key",
                          json={"publicKeyMultibase": key})
        assert early.status_code == 409
        assert early.json()["error"] == "signing_key_not_registered"
        add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id,
                        key=Multikey.from_multibase(key))
        wrong_suite = admin.put("/v1/admin/issuers/uni-a-p256/signing-key",
                                json={"publicKeyMultibase": key, "suite": "ecdsa-jcs-2019"})
        assert wrong_suite.status_code == 422
        activated = admin.put("/v1/admin/issuers/uni-a-p256/signing-key",
                              json={"publicKeyMultibase": key})
        assert activated.status_code == 200, activated.text
        assert activated.json()["active"] is True
        assert admin.get("/v1/admin/issuers/uni-a-p256/signing-key").json()[
            "publicKeyMultibase"] == key
        assert admin.post("/v1/admin/issuers/nobody/signing-key", json={}).status_code == 404
    with signing.client("uni-a-p256") as client:
        answer = _submit(client, [_credential("rotated")])
        record = signing.components.store.credential(answer.json()["accepted"][0]["id"])
        assert record is not None
        assert record.content is not None
        proof = json.loads(record.content)["proof"]
        assert (proof["cryptosuite"], proof["verificationMethod"]) == (
            "eddsa-jcs-2022", f"{DID}#{key}")


def test_the_service_warns_at_start_of_a_signing_key_the_registry_does_not_list(
        signing_world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = signing_world
    (tmp_path / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
    store = Store(tmp_path / "service.sqlite3")
    issuer = store.add_issuer("uni-a", entity_id=world.issuer_id,
                              key_address=world.issuer.address, did=DID)
    key, _ = SigningKeys(tmp_path / "keys", PASSWORD, scrypt_cost=2**4).create("ed25519")
    store.set_signing_key(issuer.id, key.multibase)
    store.close()
    caplog.set_level(logging.WARNING, logger="anchor_service.service")
    components = build_components(ServiceSettings(
        rpc_url="unused-in-process", deployment=tmp_path / "deployment.json",
        database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}", keystore_dir=tmp_path / "keys",
        keystore_password=PASSWORD, log_json=False), w3=world.chain.w3)
    try:
        assert issuer.id in components.signing  # loaded: it signs (and the log says why not)
        assert f"the signing key {key.multibase} of issuer uni-a is not registered" in caplog.text
    finally:
        components.close()


def _many(count: int, tag: str) -> list[dict[str, Any]]:
    return [_credential(f"{tag}-{n}") for n in range(count)]


def test_a_large_submission_is_signed_on_two_cores_as_on_one(
        signing: Signing) -> None:
    helper = signing.components.signing_helper
    assert helper.ready(wait=60)
    before = helper.shares_signed
    count = PARALLEL_MIN + 200
    credentials = _many(count, f"api-{before}")
    with signing.client() as client:
        answer = _submit(client, credentials)
        assert answer.status_code == 202, answer.text
        accepted = answer.json()["accepted"]
    assert helper.shares_signed == before + 1
    signer = signing.components.issuer_signer(signing.issuer_ids["uni-a"])
    assert signer is not None
    key = Multikey.from_public_key(signer.private_key.public_key())
    created = set()
    indexes = []
    for sent, item in zip(credentials, accepted, strict=True):
        stored = signing.components.store.credential(item["id"])
        assert stored is not None
        assert stored.content is not None
        document = json.loads(stored.content)
        assert verify_proof(document, key.multibase).cryptosuite == "eddsa-jcs-2022"
        created.add(document["proof"]["created"])
        assert {k: v for k, v in document.items()
                if k not in ("proof", "credentialStatus")} == sent
        indexes.append(int(document["credentialStatus"][0]["statusListIndex"]))
    assert len(created) == 1
    # One allocation for the request: consecutive positions, in the request's order.
    assert indexes == list(range(indexes[0], indexes[0] + count))


def test_a_refusal_in_the_helpers_half_stores_nothing(signing: Signing) -> None:
    helper = signing.components.signing_helper
    assert helper.ready(wait=60)
    before = helper.shares_signed
    count = PARALLEL_MIN + 200
    credentials = _many(count, f"refused-{before}")
    credentials[count - 5] = _credential("refused-other", issuer="did:web:other.example")
    with signing.client() as client:
        answer = _submit(client, credentials)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "issuer_mismatch"
    assert answer.json()["detail"].startswith(f"credentials[{count - 5}]: ")
    assert helper.shares_signed == before  # it answered a refusal, nothing signed to keep
    with signing.client() as client:
        again = _submit(client, credentials[:1]).json()["accepted"][0]
    assert again["created"] is True  # the first credential was not stored by the refused one


def test_a_signature_made_by_the_service_fails_when_tampered(signing: Signing) -> None:
    with signing.client() as client:
        public_id = _submit(client, [_credential("tamper")]).json()["accepted"][0]["id"]
    record = signing.components.store.credential(public_id)
    assert record is not None
    assert record.content is not None
    document = json.loads(record.content)
    key = document["proof"]["verificationMethod"].partition("#")[2]
    with pytest.raises(DataIntegritySignatureError):
        verify_proof({**document, "credentialSubject": {"name": "Mallory"}}, key)


# ------------------------------------------------------------------------- the CLI

@dataclass
class Cli:
    world: World
    data: Path
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "anchor_service", "signing-key", *args],
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**self.env, **env})

    def store(self) -> Store:
        return Store(self.data / "service.sqlite3")


@pytest.fixture
def cli(anvil_world: World, tmp_path: Path) -> Cli:
    world = anvil_world
    (tmp_path / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
    store = Store(tmp_path / "service.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did=DID)
    store.add_issuer("plain", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:example:plain")
    store.close()
    env = {**os.environ,
           "MICROCRED_DATABASE_URL": f"sqlite:///{tmp_path / 'service.sqlite3'}",
           "MICROCRED_DEPLOYMENT": str(tmp_path / "deployment.json"),
           "MICROCRED_RPC_URL": str(world.chain.rpc_url),
           "MICROCRED_KEYSTORE_DIR": str(tmp_path / "keys"),
           "MICROCRED_KEYSTORE_PASSWORD": PASSWORD,
           # The accreditation body registers its issuers' signing keys.
           "MICROCRED_PRIVATE_KEY": world.body.key.hex()}
    return Cli(world, tmp_path, env)


def _key_files(cli: Cli) -> list[Path]:
    folder = cli.data / "keys"
    return sorted(folder.glob("signing-*.pem")) if folder.exists() else []


def test_cli_signing_key_create_makes_registers_and_records_the_key(cli: Cli) -> None:
    made = cli.run("create", "--issuer", "uni-a", "--type", "p256")
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    key = Multikey.from_multibase(shown["publicKeyMultibase"])
    assert key.key_type is KeyType.P256
    assert (shown["suite"], shown["verificationMethod"]) == (
        "ecdsa-jcs-2019", f"{DID}#{key.multibase}")
    assert "PRIVATE" not in made.stdout + made.stderr
    # The encrypted file, the registry's record for the issuer's entity, the database's.
    (path,) = _key_files(cli)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Multikey.from_public_key(SigningKeys(cli.data / "keys", PASSWORD).load(key)
                                    .public_key()) == key
    reader = JsonRpcChainReader(cli.world.chain.w3)
    assert reader.signing_key(cli.world.registry.address, signing_key_id(key)).entity_id == \
        cli.world.issuer_id
    with closing(cli.store()) as store:
        issuer = store.issuer_named("uni-a")
        assert issuer is not None
        assert (issuer.signing_key, issuer.signing_suite) == (key.multibase, "ecdsa-jcs-2019")

    show = cli.run("show", "--issuer", "uni-a")
    assert show.returncode == 0, show.stderr
    state = json.loads(show.stdout)
    assert (state["publicKeyMultibase"], state["filePresent"]) == (key.multibase, True)
    assert state["registry"]["registered"] is True
    assert state["registry"]["trustedNow"] is True
    assert state["registry"]["entityId"] == cli.world.issuer_id


def test_cli_signing_key_create_refuses_bad_input_and_leaves_nothing(cli: Cli) -> None:
    cases = [
        (("create", "--issuer", "plain"), 2, "is not a did:web"),
        (("create", "--issuer", "nobody"), 2, "no issuer named 'nobody'"),
        (("create", "--issuer", "uni-a", "--type", "p256", "--suite", "eddsa-jcs-2022"), 2,
         "signs with Ed25519 keys, not p256"),
        (("create", "--issuer", "uni-a", "--suite", "rsa-2048"), 2,
         "use one of eddsa-jcs-2022"),
    ]
    for args, code, message in cases:
        result = cli.run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    no_password = cli.run("create", "--issuer", "uni-a", MICROCRED_KEYSTORE_PASSWORD="")
    assert no_password.returncode == 2
    assert "set MICROCRED_KEYSTORE_PASSWORD" in no_password.stderr
    # A signer the registry does not let register keys: the revert, exit 1, no file left.
    stranger = cli.run("create", "--issuer", "uni-a",
                       MICROCRED_PRIVATE_KEY=cli.world.stranger.key.hex())
    assert stranger.returncode == 1, stranger.stderr
    assert "reverted with" in stranger.stderr
    assert _key_files(cli) == []
    with closing(cli.store()) as store:
        issuer = store.issuer_named("uni-a")
        assert issuer is not None
        assert issuer.signing_key is None
    show = cli.run("show", "--issuer", "uni-a")
    assert show.returncode == 0
    assert json.loads(show.stdout)["publicKeyMultibase"] is None
