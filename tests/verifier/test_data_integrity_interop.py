"""Independent proof: the Digital Bazaar reference implementation of Data Integrity
(jsonld-signatures, @digitalbazaar/data-integrity, the eddsa-jcs-2022, ecdsa-jcs-2019 and
eddsa-rdfc-2022 cryptosuites), run as a Node process through interop/di.mjs, and this package
agree both ways. For eddsa-rdfc-2022 both sides load the same bundled JSON-LD contexts
(verifier/contexts, listed in its manifest), offline.

- Our signatures verify with the reference library, for every suite.
- The reference library's signatures (with our keys and with keys it generates) verify with ours.
- Tampered documents (a changed field, a changed proofValue, a wrong key, a foreign
  verification method) fail on both sides.
- The specifications' signed vectors verify with the reference library too.
- eddsa-rdfc-2022 on Open Badges 3.0 (1EdTech's sample, and ours) and Europass ELM (VC 1.1)
  credentials, both ways; both sides canonicalise literals (escapes, numbers) alike and refuse
  the same blank-node work (the poison-graph bound).

interop/node_modules is installed by ``bash scripts/setup.sh --tests``; without it (or without
Node) these tests fail and say so.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from anchor_service.samples import make_credential
from testkit.vectors import vector_json
from verifier.data_integrity import (
    DATA_INTEGRITY_CONTEXT,
    ECDSA_JCS_2019,
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    Suite,
    add_proof,
    verify_proof,
)
from verifier.errors import DataIntegrityError, DataIntegritySignatureError, JsonLdLimitError
from verifier.jsonld import bundled_contexts
from verifier.multikey import Multikey, PrivateKey, encode_secret_multikey

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "interop" / "di.mjs"
CONTROLLER = "did:web:uni-a.example"
CREATED = "2026-05-01T08:00:00Z"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is not on PATH: the interop tests run the reference implementation "
                    "with Node 20")
    if not (ROOT / "interop" / "node_modules" / "@digitalbazaar" / "data-integrity").is_dir():
        pytest.fail("interop/node_modules is missing: run `bash scripts/setup.sh --tests` "
                    "(it runs `npm ci --prefix interop`)")
    return found


def _run(node: str, args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, str(SCRIPT), *args], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)


def _method_file(tmp_path: Path, method: dict[str, str], name: str = "key") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(method), encoding="utf-8")
    return path


def _method(private_key: PrivateKey, *, secret: bool = True) -> dict[str, str]:
    key = Multikey.from_public_key(private_key.public_key())
    method = {"id": f"{CONTROLLER}#{key.multibase}", "controller": CONTROLLER,
              "publicKeyMultibase": key.multibase}
    if secret:
        method["secretKeyMultibase"] = encode_secret_multikey(private_key)
    return method


def js_verify(node: str, document: dict[str, Any], method_file: Path,
              contexts: Path | None = None) -> dict[str, Any]:
    extra = ["--contexts", str(contexts)] if contexts is not None else []
    done = _run(node, ["verify", "--key", str(method_file), *extra], json.dumps(document))
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) is result["verified"]
    return result


def js_sign(node: str, document: dict[str, Any], suite: str, method_file: Path,
            ) -> dict[str, Any]:
    done = _run(node, ["sign", "--suite", suite, "--key", str(method_file), "--created", CREATED],
                json.dumps(document))
    assert done.returncode == 0, done.stderr
    signed: dict[str, Any] = json.loads(done.stdout)
    return signed


SIGNERS: list[tuple[Suite, Callable[[], PrivateKey]]] = [
    (EDDSA_JCS_2022, ed25519.Ed25519PrivateKey.generate),
    (ECDSA_JCS_2019, lambda: ec.generate_private_key(ec.SECP256R1())),
    (ECDSA_JCS_2019, lambda: ec.generate_private_key(ec.SECP384R1())),
    (EDDSA_RDFC_2022, ed25519.Ed25519PrivateKey.generate),
]
SIGNER_IDS = ["eddsa-jcs-2022", "ecdsa-jcs-2019-p256", "ecdsa-jcs-2019-p384", "eddsa-rdfc-2022"]
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"


def _for_suite(credential: dict[str, Any], suite: str) -> dict[str, Any]:
    """JSON-LD safe mode (eddsa-rdfc-2022) needs every term defined: the sample credentials'
    own terms (ects, grades, ...) get the VC 2.0 context for undefined terms."""
    if suite != EDDSA_RDFC_2022 or UNDEFINED_TERMS in credential["@context"] or \
            "https://www.w3.org/ns/credentials/examples/v2" in credential["@context"]:
        return credential
    return credential | {"@context": [*credential["@context"], UNDEFINED_TERMS]}


def _credentials(suite: str = EDDSA_JCS_2022) -> list[dict[str, Any]]:
    # 1e-7 is left out for RDFC: the reference implementation reads it as the integer 0 (see
    # test_a_tiny_number_in_exponent_form_is_where_the_reference_differs).
    tiny = 1e-7 if suite != EDDSA_RDFC_2022 else 5.0
    return [_for_suite(credential, suite) for credential in (
        make_credential(1),
        make_credential("ünï", subject={"name": "Ωmega \u2028 \"q\"", "ects": 7.5,
                                        "grades": [1, 2.25, -0.0, tiny, 123456789012345],
                                        "nested": {"b": [], "a": {"z": None, "é": True}}}),
        vector_json("di-eddsa/unsigned.json"),
    )]


@pytest.mark.parametrize(("suite", "make_key"), SIGNERS, ids=SIGNER_IDS)
def test_reference_verifies_our_signatures(node: str, tmp_path: Path, suite: Suite,
                                           make_key: Callable[[], PrivateKey]) -> None:
    private_key = make_key()
    method = _method(private_key, secret=False)
    method_file = _method_file(tmp_path, method)
    for credential in _credentials(suite):
        signed = add_proof(credential, suite=suite, private_key=private_key,
                           verification_method=method["id"], created=CREATED)
        assert js_verify(node, signed, method_file) == {"verified": True, "error": None}


@pytest.mark.parametrize(("suite", "make_key"), SIGNERS, ids=SIGNER_IDS)
def test_we_verify_reference_signatures(node: str, tmp_path: Path, suite: Suite,
                                        make_key: Callable[[], PrivateKey]) -> None:
    private_key = make_key()
    method = _method(private_key)
    method_file = _method_file(tmp_path, method)
    for credential in _credentials(suite):
        signed = js_sign(node, credential, suite, method_file)
        assert {k: v for k, v in signed.items() if k != "proof"} == credential
        result = verify_proof(signed, method["publicKeyMultibase"])
        assert result.cryptosuite == suite
        assert result.verification_method == method["id"]
        assert result.created == CREATED
        # The reference library writes the proof our add_proof writes, apart from the
        # (randomised, for ECDSA) signature.
        ours = add_proof(credential, suite=suite, private_key=private_key,
                         verification_method=method["id"], created=CREATED)
        assert {k: v for k, v in ours["proof"].items() if k != "proofValue"} == \
            {k: v for k, v in signed["proof"].items() if k != "proofValue"}
        if suite in (EDDSA_JCS_2022, EDDSA_RDFC_2022):
            assert ours == signed  # Ed25519 is deterministic: the same bytes


@pytest.mark.parametrize("key_type", ["Ed25519", "P-256", "P-384"])
def test_we_verify_signatures_by_keys_the_reference_generates(node: str, tmp_path: Path,
                                                              key_type: str) -> None:
    done = _run(node, ["keygen", "--type", key_type, "--id", f"{CONTROLLER}#key-1",
                       "--controller", CONTROLLER])
    assert done.returncode == 0, done.stderr
    method = json.loads(done.stdout)
    key = Multikey.from_multibase(method["publicKeyMultibase"])
    assert key.key_type.label == key_type
    suite = EDDSA_JCS_2022 if key_type == "Ed25519" else ECDSA_JCS_2019
    signed = js_sign(node, make_credential(3), suite, _method_file(tmp_path, method))
    assert verify_proof(signed, key).key == key


def _change_field(document: dict[str, Any]) -> None:
    document["credentialSubject"]["name"] = "Mallory"


def _change_proof_value(document: dict[str, Any]) -> None:
    value = document["proof"]["proofValue"]
    middle = len(value) // 2
    document["proof"]["proofValue"] = \
        value[:middle] + ("2" if value[middle] != "2" else "3") + value[middle + 1:]


def _foreign_verification_method(document: dict[str, Any]) -> None:
    document["proof"]["verificationMethod"] = "did:web:other.example#key-1"


TAMPERING = [_change_field, _change_proof_value, _foreign_verification_method]


@pytest.mark.parametrize(("suite", "make_key"), SIGNERS, ids=SIGNER_IDS)
@pytest.mark.parametrize("signer", ["ours", "reference"])
def test_tampering_fails_on_both_sides(node: str, tmp_path: Path, suite: Suite,
                                       make_key: Callable[[], PrivateKey], signer: str) -> None:
    private_key = make_key()
    method = _method(private_key)
    method_file = _method_file(tmp_path, method)
    credential = _for_suite(make_credential(2, subject={"name": "Alice", "ects": 5}), suite)
    if signer == "ours":
        signed = add_proof(credential, suite=suite, private_key=private_key,
                           verification_method=method["id"], created=CREATED)
    else:
        signed = js_sign(node, credential, suite, method_file)
    # Untampered, both accept: the failures below are the tampering's doing.
    assert js_verify(node, signed, method_file)["verified"]
    verify_proof(signed, method["publicKeyMultibase"])
    for tamper in TAMPERING:
        tampered = copy.deepcopy(signed)
        tamper(tampered)
        answer = js_verify(node, tampered, method_file)
        assert not answer["verified"], tamper.__name__
        if tamper is _foreign_verification_method:
            # The reference side resolves nothing over the network: the foreign method is
            # simply not there.
            assert "is not bundled" in answer["error"]
        with pytest.raises(DataIntegrityError):
            verify_proof(tampered, method["publicKeyMultibase"])
    # A wrong key: another key pair of the same type under the same verification method id.
    other = _method(make_key(), secret=False) | {"id": method["id"]}
    other_file = _method_file(tmp_path, other, "other")
    assert not js_verify(node, signed, other_file)["verified"]
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(signed, other["publicKeyMultibase"])


@pytest.mark.parametrize(("signed_file", "key_file"), [
    ("di-eddsa/eddsa-jcs-2022/signedJCS.json", "di-eddsa/keyPair.json"),
    ("di-ecdsa/ecdsa-jcs-2019-p256/signedJCSECDSAP256.json", "di-ecdsa/p256KeyPair.json"),
    ("di-ecdsa/ecdsa-jcs-2019-p384/signedJCSECDSAP384.json", "di-ecdsa/p384KeyPair.json"),
])
def test_reference_verifies_the_spec_vectors(node: str, tmp_path: Path, signed_file: str,
                                             key_file: str) -> None:
    signed = vector_json(signed_file)
    public = vector_json(key_file)["publicKeyMultibase"]
    vm = signed["proof"]["verificationMethod"]
    method = {"id": vm, "controller": vm.split("#")[0], "publicKeyMultibase": public}
    method_file = _method_file(tmp_path, method)
    assert js_verify(node, signed, method_file)["verified"]
    verify_proof(signed, public)
    signed["credentialSubject"]["alumniOf"] = "Another School"
    assert not js_verify(node, signed, method_file)["verified"]


# --- eddsa-rdfc-2022: canonical forms, samples, bounds ------------------------------------------


def js_canonize(node: str, document: dict[str, Any], contexts: Path | None = None,
                ) -> subprocess.CompletedProcess[str]:
    extra = ["--contexts", str(contexts)] if contexts is not None else []
    return _run(node, ["canonize", *extra], json.dumps(document))


def _vc2(subject: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/credentials/v2", UNDEFINED_TERMS],
            "type": ["VerifiableCredential"], "issuer": CONTROLLER,
            "credentialSubject": subject, **fields}


CANONICAL_CASES = {
    "escapes": _vc2({"note": "a\u0001b\bc\td\ne\ff\rg\"h\\i\u007fj\u2028 é 𝄞"}),
    "numbers": _vc2({"n": [0, -0.0, 5.0, 2.25, -1.5, 1e21, 1.5e300, 123456789012345,
                           -(2**53 - 1), True, False]}),
    "language and direction": _vc2({"name": {"@value": "Zoë", "@language": "fr"},
                                    "title": {"@value": "x", "@language": "ar",
                                              "@direction": "rtl"}}),
    "blank nodes": _vc2({"knows": [{"name": "B", "age": 3}, {"name": "A"}, {"name": "A"}]}),
    "ids and types": _vc2({"id": "did:example:learner", "type": ["Person", "Learner"]},
                          id="urn:uuid:0b5e8d84-7a0b-4b27-9c1e-2a7d7e0f9b31"),
    "json literal": {"@context": ["https://www.w3.org/ns/credentials/v2",
                                  {"data": {"@id": "https://x.example/data", "@type": "@json"}}],
                     "type": ["VerifiableCredential"],
                     "credentialSubject": {"data": {"b": [1, 2.5, "é"], "a": None}}},
    "open badge": {k: v for k, v in vector_json("ob3/simple.json").items() if k != "proof"},
    "europass": vector_json("elm/Sample-MC-Annex1-unsigned.jsonld"),
    "spec vector": vector_json("di-eddsa/unsigned.json"),
}


@pytest.mark.parametrize("name", sorted(CANONICAL_CASES))
def test_both_sides_canonicalise_alike(node: str, name: str) -> None:
    from verifier.jsonld import canonical_nquads  # noqa: PLC0415

    document = CANONICAL_CASES[name]
    done = js_canonize(node, document)
    assert done.returncode == 0, done.stderr
    assert canonical_nquads(document) == done.stdout


def test_a_tiny_number_in_exponent_form_is_where_the_reference_differs(node: str) -> None:
    """JSON-LD 1.1 (toRdf) makes a number with a fractional part an xsd:double; jsonld.js
    tells doubles by a "." in String(v), so 1e-7 (written without one) becomes the integer 0.
    This package follows the specification. If the reference changes, this test says so."""
    from verifier.jsonld import canonical_nquads  # noqa: PLC0415

    document = _vc2({"n": 1e-7})
    ours = canonical_nquads(document)
    theirs = js_canonize(node, document)
    assert '"1.0E-7"^^<http://www.w3.org/2001/XMLSchema#double>' in ours
    assert '"0"^^<http://www.w3.org/2001/XMLSchema#integer>' in theirs.stdout


def _anonymous_chain(links: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"name": "deep"}
    for _ in range(links):
        inner = {"knows": inner}
    return _vc2(inner)


@pytest.mark.parametrize("links", [1, 2, 3, 6])
def test_both_sides_bound_blank_node_work_alike(node: str, links: int) -> None:
    """Alike-looking blank nodes (a chain of anonymous objects) need RDFC-1.0's n-degree
    step; rdf-canonize's default bound (maxWorkFactor 1) and ours accept and refuse the same
    documents."""
    from verifier.jsonld import canonical_nquads  # noqa: PLC0415

    document = _anonymous_chain(links)
    done = js_canonize(node, document)
    try:
        ours: str | None = canonical_nquads(document)
    except JsonLdLimitError:
        ours = None
    if done.returncode == 0:
        assert ours == done.stdout
    else:
        assert "Maximum deep iterations exceeded" in done.stderr
        assert ours is None
    assert (ours is None) is (links >= 3)


def test_unknown_contexts_fail_on_both_sides(node: str, tmp_path: Path) -> None:
    private_key = ed25519.Ed25519PrivateKey.generate()
    method_file = _method_file(tmp_path, _method(private_key, secret=False))
    url = "https://example.org/not-bundled/v1"
    signed = add_proof(_vc2({"name": "A"}), suite=EDDSA_RDFC_2022, private_key=private_key,
                       verification_method=_method(private_key)["id"], created=CREATED)
    signed["@context"] = [*signed["@context"], url]
    answer = js_verify(node, signed, method_file)
    assert not answer["verified"]
    assert url in answer["error"]
    with pytest.raises(DataIntegrityError, match="not one of the bundled contexts"):
        verify_proof(signed, _method(private_key)["publicKeyMultibase"])


@pytest.mark.parametrize("folder", ["", "/employ"])
def test_reference_verifies_the_rdfc_spec_vectors(node: str, tmp_path: Path,
                                                  folder: str) -> None:
    signed = vector_json(f"di-eddsa/eddsa-rdfc-2022{folder}/signedDataInt.json")
    public = vector_json("di-eddsa/keyPair.json")["publicKeyMultibase"]
    vm = signed["proof"]["verificationMethod"]
    method_file = _method_file(tmp_path, {"id": vm, "controller": vm.split("#")[0],
                                          "publicKeyMultibase": public})
    # The employment credential's citizenship context is a test vector, given to both sides.
    citizenship = {"https://w3id.org/citizenship/v4rc1":
                   vector_json("contexts/citizenship-v4rc1.jsonld")}
    contexts_file = tmp_path / "contexts.json"
    contexts_file.write_text(json.dumps(citizenship), encoding="utf-8")
    assert js_verify(node, signed, method_file, contexts_file)["verified"]
    verify_proof(signed, public, contexts=bundled_contexts().with_documents(citizenship))


def _single_proof(sample: dict[str, Any]) -> dict[str, Any]:
    # 1EdTech's samples hold their one proof in a list; our verifier reads one proof object.
    (proof,) = sample["proof"]
    return sample | {"proof": proof}


def test_1edtech_open_badge_verifies_on_both_sides(node: str, tmp_path: Path) -> None:
    badge = vector_json("ob3/simple.json")
    vm = badge["proof"][0]["verificationMethod"]
    method_file = _method_file(tmp_path, {"id": vm, "controller": vm.split("#")[0],
                                          "publicKeyMultibase": vm.split("#")[1]})
    assert js_verify(node, badge, method_file)["verified"]
    verify_proof(_single_proof(badge), vm.split("#")[1])
    tampered = vector_json("ob3/simple-err-proof-value.json")
    assert not js_verify(node, tampered, method_file)["verified"]
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(_single_proof(tampered), vm.split("#")[1])


SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "open badge": lambda: {k: v for k, v in vector_json("ob3/simple.json").items()
                           if k != "proof"},
    "europass (VC 1.1)": lambda: vector_json("elm/Sample-MC-Annex1-unsigned.jsonld"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_signed_by_us_verify_with_the_reference(node: str, tmp_path: Path,
                                                        name: str) -> None:
    private_key = ed25519.Ed25519PrivateKey.generate()
    method = _method(private_key, secret=False)
    method_file = _method_file(tmp_path, method)
    signed = add_proof(SAMPLES[name](), suite=EDDSA_RDFC_2022, private_key=private_key,
                       verification_method=method["id"], created=CREATED)
    assert js_verify(node, signed, method_file) == {"verified": True, "error": None}
    signed["credentialSubject"]["id"] = "did:example:someone-else"
    assert not js_verify(node, signed, method_file)["verified"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_signed_by_the_reference_verify_with_us(node: str, tmp_path: Path,
                                                        name: str) -> None:
    private_key = ed25519.Ed25519PrivateKey.generate()
    method = _method(private_key)
    sample = SAMPLES[name]()
    signed = js_sign(node, sample, EDDSA_RDFC_2022, _method_file(tmp_path, method))
    if name.startswith("europass"):
        # VC 1.1 defines no DataIntegrityProof: the reference adds the suite's context, as
        # add_proof does; the same document, the same signature (Ed25519 is deterministic).
        assert signed["@context"] == [*sample["@context"], DATA_INTEGRITY_CONTEXT]
    ours = add_proof(sample, suite=EDDSA_RDFC_2022, private_key=private_key,
                     verification_method=method["id"], created=CREATED)
    assert ours == signed
    result = verify_proof(signed, method["publicKeyMultibase"])
    assert result.cryptosuite == EDDSA_RDFC_2022
    signed["credentialSubject"]["id"] = "did:example:someone-else"
    with pytest.raises(DataIntegritySignatureError):
        verify_proof(signed, method["publicKeyMultibase"])
