"""The issuer signature checks against real anchors (the service pipeline, on the in-process
chain and on anvil) and real registry signing keys: a signed credential passes every check,
and each way of breaking the signature or its key fails its own check."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from anchor_service.chain import accredit, add_signing_key
from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.verifier.wallet import (
    SIGNED_AT,
    anchored_bundles,
    register_signing_key,
    sign,
    signing_key_of,
    trust_of,
)
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import ALL_SCOPES, Kind, signing_key_id
from verifier.data_integrity import SUITES, hash_data
from verifier.did import verification_method_id
from verifier.multikey import KeyType, Multikey, encode_multibase
from verifier.receipt import Bundle
from verifier.trust import TrustConfig
from verifier.verify import CheckStatus, VerificationReport, verify, verify_bundle_text

ISSUER = "did:web:uni-a.example"
CREDENTIAL = make_credential(1, id_prefix="urn:signed", validFrom="2026-01-01T00:00:00Z",
                             subject={"name": "Zoë", "learningScope": "non-formal"})
DURING = datetime(2027, 6, 1, tzinfo=UTC)
SIGNATURE_CHECKS = ("signature_valid", "signing_key_registered",
                    "signing_key_trusted_at_anchoring")
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"
ISSUER_KEY = Multikey.from_public_key(signing_key_of(ISSUER).public_key())


@dataclass
class Anchoring:
    world: World
    store: Store
    trust: TrustConfig

    def bundles(self, *credentials: dict[str, Any], signed: bool = True) -> list[Bundle]:
        """The credentials anchored (pre-signed ones as they are; the others signed by the
        issuer's registered test key unless ``signed`` is false)."""
        return anchored_bundles(self.world, self.store, self.world.issuer, list(credentials),
                                signed=signed)

    def check(self, bundle: Bundle, *, trust: TrustConfig | None = None, offline: bool = False,
              issuer_key: Multikey | None = None) -> VerificationReport:
        return verify(bundle.credential, bundle.receipt, trust=trust or self.trust,
                      reader=None if offline else JsonRpcChainReader(self.world.chain.w3),
                      as_of=DURING, issuer_key=issuer_key)


@pytest.fixture
def anchoring(world: World, tmp_path: Path) -> Iterator[Anchoring]:
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did=ISSUER)
    yield Anchoring(world, store, trust_of(world))
    store.close()


def _failed(report: VerificationReport) -> list[str]:
    return [c.name for c in report.checks if c.status is CheckStatus.FAILED]


def _statuses(report: VerificationReport) -> dict[str, CheckStatus]:
    return {c.name: c.status for c in report.checks}


def _suites() -> list[tuple[str, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey]]:
    """Every suite the verifier implements, each with a key of its kind."""
    cases: list[tuple[str, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey]] = []
    for suite in SUITES:
        key = (ec.generate_private_key(ec.SECP256R1()) if suite.startswith("ecdsa")
               else ed25519.Ed25519PrivateKey.generate())
        cases.append((suite, key))
    return cases


@pytest.mark.parametrize(("suite", "private_key"), _suites(), ids=lambda v: str(v)[:16])
def test_a_signed_credential_passes_every_check(
        anchoring: Anchoring, suite: str,
        private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
    w = anchoring.world
    key_id = register_signing_key(w, private_key)
    # RDF canonicalisation signs only terms a @context defines: the VC 2.0 context for
    # undefined terms maps this credential's own (learningScope, ects).
    defined = {**CREDENTIAL, "@context": [*CREDENTIAL["@context"], UNDEFINED_TERMS]}
    credential = sign(defined, private_key=private_key, suite=suite)  # type: ignore[arg-type]
    [bundle] = anchoring.bundles(credential)
    report = anchoring.check(bundle)
    assert report.valid, report.to_dict()
    # Every check passed but the two that have nothing to judge: the credential carries no
    # status entries, and no published list is given.
    assert {c.name for c in report.checks if c.status is not CheckStatus.PASSED} \
        == {"status_entries_match", "status_list_matches_chain"}, report.to_dict()
    vm = verification_method_id(ISSUER, Multikey.from_public_key(private_key.public_key()))
    assert report.check("signature_valid").evidence == {
        "cryptosuite": suite, "verificationMethod": vm, "created": SIGNED_AT}
    assert report.signature == report.check("signature_valid").evidence
    registered = report.check("signing_key_registered").evidence
    assert registered == {"keyId": "0x" + key_id.hex(), "entityId": w.issuer_id,
                          "entityDid": ISSUER}
    trusted = report.check("signing_key_trusted_at_anchoring").evidence
    assert trusted["anchoredAt"] == report.anchored_at
    document = report.to_dict()
    assert document["signature"] == {"cryptosuite": suite, "verificationMethod": vm,
                                     "created": SIGNED_AT}
    assert document["unsignedAllowed"] is False
    # The anchored digest is of the signed credential, proof included.
    assert "proof" in bundle.credential
    text_report = verify_bundle_text(bundle.to_json(), trust=anchoring.trust,
                                     reader=JsonRpcChainReader(w.chain.w3), as_of=DURING)
    assert text_report.valid


def test_changed_field_re_anchored_fails_only_the_signature(anchoring: Anchoring) -> None:
    """A signed credential changed after signing, then anchored as changed (so its digest
    matches): only the signature can tell."""
    signed = sign(CREDENTIAL)
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["name"] = "Mallory"
    [bundle] = anchoring.bundles(tampered)
    report = anchoring.check(bundle)
    assert _failed(report) == ["signature_valid"], report.to_dict()
    check = report.check("signature_valid")
    assert "does not verify" in check.detail
    assert check.evidence["code"] == "signature_invalid"
    assert report.signature is None
    # The key checks are not made for a proof that does not verify.
    assert _statuses(report)["signing_key_registered"] is CheckStatus.NOT_CHECKED


@pytest.mark.parametrize(("name", "change", "code"), [
    ("changed proofValue", lambda p: p.update(
        proofValue=p["proofValue"][:-3] + ("111" if p["proofValue"][-3:] != "111" else "222")),
     "signature_invalid"),
    ("changed created", lambda p: p.update(created="2026-02-01T00:00:00Z"),
     "signature_invalid"),
    ("unknown cryptosuite", lambda p: p.update(cryptosuite="eddsa-2099"),
     "unsupported_cryptosuite"),
    ("verification method not a key", lambda p: p.update(
        verificationMethod=f"{ISSUER}#key-1"), "key_mismatch"),
    ("verification method without fragment", lambda p: p.update(verificationMethod=ISSUER),
     "key_mismatch"),
    ("verification method of a foreign DID", lambda p: p.update(
        verificationMethod=verification_method_id("did:web:evil.example", ISSUER_KEY)),
     "issuer_mismatch"),
    ("no verification method", lambda p: p.pop("verificationMethod"), "key_mismatch"),
])
def test_each_broken_proof_fails_signature_valid(anchoring: Anchoring, name: str, change: Any,
                                                 code: str) -> None:
    signed = sign(CREDENTIAL)
    change(signed["proof"])
    [bundle] = anchoring.bundles(signed)
    report = anchoring.check(bundle)
    assert _failed(report) == ["signature_valid"], (name, report.to_dict())
    assert report.check("signature_valid").evidence["code"] == code, name


def test_another_key_under_the_issuers_id_fails_the_signature(anchoring: Anchoring) -> None:
    """Signed by a stranger's key, but the proof names the issuer's registered key."""
    signed = sign(CREDENTIAL, private_key=ed25519.Ed25519PrivateKey.generate())
    signed["proof"]["verificationMethod"] = verification_method_id(ISSUER, ISSUER_KEY)
    [bundle] = anchoring.bundles(signed)
    assert _failed(anchoring.check(bundle)) == ["signature_valid"]


def test_proof_set_fails_signature_valid(anchoring: Anchoring) -> None:
    signed = sign(CREDENTIAL)
    signed["proof"] = [signed["proof"], signed["proof"]]
    [bundle] = anchoring.bundles(signed)
    report = anchoring.check(bundle)
    assert _failed(report) == ["signature_valid"]
    assert "a set of 2 proofs" in report.check("signature_valid").detail


def test_a_set_of_one_proof_is_that_proof(anchoring: Anchoring) -> None:
    """Open Badges 3.0 issuers write their one proof in a list: it verifies as the proof."""
    signed = sign(CREDENTIAL)
    signed["proof"] = [signed["proof"]]
    [bundle] = anchoring.bundles(signed)
    report = anchoring.check(bundle)
    assert report.valid, report.to_dict()


def test_unregistered_key_fails_signing_key_registered(anchoring: Anchoring) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    [bundle] = anchoring.bundles(sign(CREDENTIAL, private_key=stranger))
    report = anchoring.check(bundle)
    assert _failed(report) == ["signing_key_registered"], report.to_dict()
    key = Multikey.from_public_key(stranger.public_key())
    check = report.check("signing_key_registered")
    assert "not registered" in check.detail
    assert check.evidence["keyId"] == "0x" + signing_key_id(key).hex()
    assert _statuses(report)["signing_key_trusted_at_anchoring"] is CheckStatus.NOT_CHECKED


def test_key_registered_to_another_issuer_fails_signing_key_registered(
        anchoring: Anchoring) -> None:
    """University C's registered key signs a credential that university A issues and
    anchors, its verification method under A's DID."""
    w = anchoring.world
    other = accredit(w.tx(w.body), w.registry, parent=w.body_id, kind=Kind.TRUSTED_ISSUER,
                     did="did:web:uni-c.example", scope=ALL_SCOPES,
                     metadata_uri="https://example.org/uni-c", metadata_hash=b"\x11" * 32)
    their_key = ed25519.Ed25519PrivateKey.generate()
    add_signing_key(w.tx(w.body), w.registry, entity_id=other,
                    key=Multikey.from_public_key(their_key.public_key()))
    [bundle] = anchoring.bundles(sign(CREDENTIAL, private_key=their_key))
    report = anchoring.check(bundle)
    assert _failed(report) == ["signing_key_registered"], report.to_dict()
    check = report.check("signing_key_registered")
    assert "did:web:uni-c.example" in check.detail
    assert check.evidence["entityId"] == other
    assert check.evidence["entityDid"] == "did:web:uni-c.example"


def test_key_revoked_back_dated_before_the_anchor_fails(anchoring: Anchoring) -> None:
    w = anchoring.world
    [bundle] = anchoring.bundles(CREDENTIAL)
    anchored_at = anchoring.check(bundle).anchored_at
    assert anchored_at is not None
    w.chain.increase_time(60)
    key_id = signing_key_id(ISSUER_KEY)
    w.tx(w.body).transact(w.registry.functions.revokeSigningKey(key_id, anchored_at - 1))
    report = anchoring.check(bundle)
    assert _failed(report) == ["signing_key_trusted_at_anchoring"], report.to_dict()
    check = report.check("signing_key_trusted_at_anchoring")
    assert "key revoked" in check.detail
    assert check.evidence["reason"] == "key revoked"
    assert check.evidence["anchoredAt"] == anchored_at


def test_key_revoked_after_the_anchor_still_passes(anchoring: Anchoring) -> None:
    """A later compromise does not undo a signature the anchor proves was made before."""
    w = anchoring.world
    [bundle] = anchoring.bundles(CREDENTIAL)
    anchored_at = anchoring.check(bundle).anchored_at
    assert anchored_at is not None
    w.chain.increase_time(60)
    key_id = signing_key_id(ISSUER_KEY)
    w.tx(w.body).transact(w.registry.functions.revokeSigningKey(key_id, anchored_at + 30))
    assert JsonRpcChainReader(w.chain.w3).signing_key(w.registry.address, key_id).revoked_at \
        == anchored_at + 30
    report = anchoring.check(bundle)
    assert report.valid, report.to_dict()
    assert report.check("signing_key_trusted_at_anchoring").status is CheckStatus.PASSED


def test_unsigned_credential_fails_when_a_signature_is_required(anchoring: Anchoring) -> None:
    [bundle] = anchoring.bundles(CREDENTIAL, signed=False)
    assert anchoring.trust.require_signature is True  # the default
    report = anchoring.check(bundle)
    assert _failed(report) == ["signature_valid"], report.to_dict()
    assert "not signed" in report.check("signature_valid").detail
    assert report.unsigned_allowed is False
    offline = anchoring.check(bundle, offline=True)
    assert _failed(offline) == ["signature_valid"]


def test_unsigned_credential_allowed_says_so(anchoring: Anchoring) -> None:
    [bundle] = anchoring.bundles(CREDENTIAL, signed=False)
    allow = anchoring.trust.model_copy(update={"require_signature": False})
    report = anchoring.check(bundle, trust=allow)
    assert report.valid, report.to_dict()
    for name in SIGNATURE_CHECKS:
        assert report.check(name).status is CheckStatus.NOT_APPLICABLE, name
        assert "not signed" in report.check(name).detail
    assert report.unsigned_allowed is True
    assert report.signature is None
    assert report.to_dict()["unsignedAllowed"] is True
    offline = anchoring.check(bundle, trust=allow, offline=True)
    assert offline.verdict == "offline_checks_passed"
    assert offline.unsigned_allowed is True
    assert all(offline.check(name).status is CheckStatus.NOT_APPLICABLE
               for name in SIGNATURE_CHECKS)


def test_allow_unsigned_still_checks_a_proof_that_is_there(anchoring: Anchoring) -> None:
    tampered = sign(CREDENTIAL)
    tampered["credentialSubject"]["name"] = "Mallory"
    [bundle] = anchoring.bundles(tampered)
    allow = anchoring.trust.model_copy(update={"require_signature": False})
    report = anchoring.check(bundle, trust=allow)
    assert _failed(report) == ["signature_valid"]
    assert report.unsigned_allowed is False


def test_offline_checks_the_signature_with_the_key_in_the_proof(anchoring: Anchoring) -> None:
    [bundle] = anchoring.bundles(CREDENTIAL)
    report = anchoring.check(bundle, offline=True)
    assert report.verdict == "offline_checks_passed", report.to_dict()
    statuses = _statuses(report)
    assert statuses["signature_valid"] is CheckStatus.PASSED
    assert statuses["signing_key_registered"] is CheckStatus.NOT_CHECKED
    assert statuses["signing_key_trusted_at_anchoring"] is CheckStatus.NOT_CHECKED
    assert "offline" in report.check("signing_key_registered").detail


def test_user_given_key(anchoring: Anchoring) -> None:
    [bundle] = anchoring.bundles(CREDENTIAL)
    assert anchoring.check(bundle, offline=True, issuer_key=ISSUER_KEY).verdict \
        == "offline_checks_passed"
    other = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    report = anchoring.check(bundle, offline=True, issuer_key=other)
    assert _failed(report) == ["signature_valid"]
    detail = report.check("signature_valid").detail
    assert ISSUER_KEY.multibase in detail
    assert other.multibase in detail
    assert _failed(anchoring.check(bundle, issuer_key=other)) == ["signature_valid"]


def test_trust_file_reads_require_signature() -> None:
    base = {"deployments": [{"chainId": 1, "anchor": "0x" + "11" * 20,
                             "registry": "0x" + "22" * 20}]}
    assert TrustConfig.model_validate(base).require_signature is True
    assert TrustConfig.model_validate({**base, "requireSignature": False}) \
        .require_signature is False
    with pytest.raises(ValueError, match="requireSignature"):
        TrustConfig.model_validate({**base, "requireSignature": "no"})
    dumped = json.loads(TrustConfig.model_validate(base).model_dump_json(by_alias=True))
    assert dumped["requireSignature"] is True



def _signed_with_expiry(credential: dict[str, Any], expires: str) -> dict[str, Any]:
    """``credential`` signed by the issuer with a proof that has ``expires`` (made here:
    ``add_proof`` writes none)."""
    config = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
              "created": SIGNED_AT, "expires": expires,
              "verificationMethod": verification_method_id(ISSUER, ISSUER_KEY),
              "proofPurpose": "assertionMethod", "@context": credential["@context"]}
    data = hash_data(credential, config, key_type=KeyType.ED25519)
    signature = signing_key_of(ISSUER).sign(data.combined)
    return {**copy.deepcopy(credential),
            "proof": {**config, "proofValue": encode_multibase(signature)}}


def test_a_proof_past_its_expiry_fails_signature_valid(anchoring: Anchoring) -> None:
    """Data Integrity: a proof whose ``expires`` has passed does not verify (judged as of
    the verification time)."""
    expired, current = anchoring.bundles(
        _signed_with_expiry(CREDENTIAL, "2027-01-01T00:00:00Z"),
        _signed_with_expiry({**CREDENTIAL, "id": "urn:signed:later"}, "2028-01-01T00:00:00Z"))
    report = anchoring.check(expired)  # as of DURING, mid-2027
    assert _failed(report) == ["signature_valid"], report.to_dict()
    assert report.check("signature_valid").evidence["code"] == "proof_expired"
    assert anchoring.check(current).valid
