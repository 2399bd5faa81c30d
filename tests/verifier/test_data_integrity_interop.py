"""Independent proof: the Digital Bazaar reference implementation of Data Integrity
(jsonld-signatures, @digitalbazaar/data-integrity, the eddsa-jcs-2022 and ecdsa-jcs-2019
cryptosuites), run as a Node process through interop/di.mjs, and this package agree both ways.

- Our signatures verify with the reference library, for both suites.
- The reference library's signatures (with our keys and with keys it generates) verify with ours.
- Tampered documents (a changed field, a changed proofValue, a wrong key, a foreign
  verification method) fail on both sides.
- The specifications' signed vectors verify with the reference library too.

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
from verifier.data_integrity import ECDSA_JCS_2019, EDDSA_JCS_2022, Suite, add_proof, verify_proof
from verifier.errors import DataIntegrityError, DataIntegritySignatureError
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


def js_verify(node: str, document: dict[str, Any], method_file: Path) -> dict[str, Any]:
    done = _run(node, ["verify", "--key", str(method_file)], json.dumps(document))
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
]
SIGNER_IDS = ["eddsa-jcs-2022", "ecdsa-jcs-2019-p256", "ecdsa-jcs-2019-p384"]


def _credentials() -> list[dict[str, Any]]:
    return [
        make_credential(1),
        make_credential("ünï", subject={"name": "Ωmega \u2028 \"q\"", "ects": 7.5,
                                        "grades": [1, 2.25, -0.0, 1e-7, 123456789012345],
                                        "nested": {"b": [], "a": {"z": None, "é": True}}}),
        vector_json("di-eddsa/unsigned.json"),
    ]


@pytest.mark.parametrize(("suite", "make_key"), SIGNERS, ids=SIGNER_IDS)
def test_reference_verifies_our_signatures(node: str, tmp_path: Path, suite: Suite,
                                           make_key: Callable[[], PrivateKey]) -> None:
    private_key = make_key()
    method = _method(private_key, secret=False)
    method_file = _method_file(tmp_path, method)
    for credential in _credentials():
        signed = add_proof(credential, suite=suite, private_key=private_key,
                           verification_method=method["id"], created=CREATED)
        assert js_verify(node, signed, method_file) == {"verified": True, "error": None}


@pytest.mark.parametrize(("suite", "make_key"), SIGNERS, ids=SIGNER_IDS)
def test_we_verify_reference_signatures(node: str, tmp_path: Path, suite: Suite,
                                        make_key: Callable[[], PrivateKey]) -> None:
    private_key = make_key()
    method = _method(private_key)
    method_file = _method_file(tmp_path, method)
    for credential in _credentials():
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
        if suite == EDDSA_JCS_2022:
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
    credential = make_credential(2, subject={"name": "Alice", "ects": 5})
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
