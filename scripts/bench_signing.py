"""Benchmark of Data Integrity signing and verification, one core. Prints figures; asserts
nothing.

    python scripts/bench_signing.py                 # 3 seconds per figure
    python scripts/bench_signing.py --seconds 0.5   # a smoke test

For each suite (eddsa-jcs-2022 with Ed25519, ecdsa-jcs-2019 with P-256 and with P-384) it
times add_proof and verify_proof over a realistic credential (anchor_service.samples,
a VC 2.0 credential with a subject, achievement and evidence), each call complete: JCS of the
document and the proof configuration, both hashes, the signature and its multibase encoding.
The figures are calls per second in this process, on one core. The Python cost outside the
signature itself (canonicalisation, hashing, base58) is shown as the "no signature" line:
hash_data alone on the same credential.

eddsa-rdfc-2022 (Ed25519 over RDFC-1.0 canonical N-Quads, pyld with the bundled contexts) is
timed on two credentials: a typical VC 2.0 credential (the same one, its own terms under the
VC 2.0 undefined-terms context) and an Open Badges 3.0 credential (the same members under the
OB 3.0.3 context, as an OpenBadgeCredential). Its RDF canonicalisation is shown separately:
"canonicalise" is hash_data alone (the RDFC-1.0 canonical forms of the document and of the
proof configuration, and their SHA-256), and its share of one signing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from anchor_service.samples import make_credential
from verifier.credential import canonicalize
from verifier.data_integrity import (
    ECDSA_JCS_2019,
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    Suite,
    add_proof,
    hash_data,
    verify_proof,
)
from verifier.multikey import KeyType, Multikey, PrivateKey

CREATED = "2026-05-01T08:00:00Z"
VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"
OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"


def credential(tag: int) -> dict[str, Any]:
    """A credential of the size the service issues: a learner, an achievement with ECTS
    credits, evidence and validity dates."""
    return make_credential(
        tag, types=("VerifiableCredential", "OpenBadgeCredential"),
        subject={"id": f"did:example:learner-{tag}", "type": ["AchievementSubject"],
                 "name": "Zoë Example",
                 "achievement": {"id": "https://uni-a.example/achievements/ml-101",
                                 "type": ["Achievement"], "name": "Machine Learning 101",
                                 "description": "Supervised learning, model evaluation.",
                                 "criteria": {"narrative": "Passed the final exam."},
                                 "creditsAvailable": 5}},
        name="Machine Learning 101", validFrom="2026-05-01T00:00:00Z",
        validUntil="2031-05-01T00:00:00Z",
        evidence=[{"type": ["Evidence"], "name": "Exam", "description": "Grade 1.7"}])


def rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``call``, run for about ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            call()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per figure")
    args = parser.parse_args()
    document = credential(7)
    signers: list[tuple[str, Suite, PrivateKey]] = [
        ("eddsa-jcs-2022 (Ed25519)", EDDSA_JCS_2022, ed25519.Ed25519PrivateKey.generate()),
        ("ecdsa-jcs-2019 (P-256)", ECDSA_JCS_2019, ec.generate_private_key(ec.SECP256R1())),
        ("ecdsa-jcs-2019 (P-384)", ECDSA_JCS_2019, ec.generate_private_key(ec.SECP384R1())),
    ]
    print(f"credential: {len(canonicalize(document))} bytes in JCS form; one core; "
          f"{args.seconds:g} s per figure")
    for label, suite, key in signers:
        public = Multikey.from_public_key(key.public_key())
        signed = add_proof(document, suite=suite, private_key=key,
                           verification_method="did:web:uni-a.example#key-1", created=CREATED)

        def sign(suite: Suite = suite, key: PrivateKey = key) -> object:
            return add_proof(document, suite=suite, private_key=key,
                             verification_method="did:web:uni-a.example#key-1",
                             created=CREATED)

        def verify(signed: dict[str, Any] = signed, public: Multikey = public) -> object:
            return verify_proof(signed, public)

        signing = rate(sign, args.seconds)
        verifying = rate(verify, args.seconds)
        print(f"{label:26s} sign {signing:9,.0f}/s   verify {verifying:9,.0f}/s")
    proof = {"type": "DataIntegrityProof", "cryptosuite": EDDSA_JCS_2022, "created": CREATED,
             "verificationMethod": "did:web:uni-a.example#key-1",
             "proofPurpose": "assertionMethod", "@context": document["@context"]}
    hashing = rate(lambda: hash_data(document, proof, key_type=KeyType.ED25519), args.seconds)
    print(f"{'no signature (JCS+SHA-256)':26s} {hashing:9,.0f}/s")
    bench_rdfc(document, args.seconds)


def bench_rdfc(document: dict[str, Any], seconds: float) -> None:
    """eddsa-rdfc-2022 sign, verify and canonicalise-only rates on a VC 2.0 and an OB 3.0
    credential."""
    key = ed25519.Ed25519PrivateKey.generate()
    public = Multikey.from_public_key(key.public_key())
    vm = f"did:web:uni-a.example#{public.multibase}"
    credentials = {
        "VC 2.0": document | {"@context": [VC2_CONTEXT, UNDEFINED_TERMS],
                              "type": ["VerifiableCredential"]},
        "OB 3.0": document | {"@context": [VC2_CONTEXT, OB3_CONTEXT],
                              "type": ["VerifiableCredential", "OpenBadgeCredential"]},
    }
    for label, credential_ in credentials.items():
        signed = add_proof(credential_, suite=EDDSA_RDFC_2022, private_key=key,
                           verification_method=vm, created=CREATED)
        config = {k: v for k, v in signed["proof"].items() if k != "proofValue"} | {
            "@context": credential_["@context"]}
        quads = hash_data(credential_, config, key_type=KeyType.ED25519,
                          suite=EDDSA_RDFC_2022).canonical_document.count(b"\n")

        def sign(credential_: dict[str, Any] = credential_) -> object:
            return add_proof(credential_, suite=EDDSA_RDFC_2022, private_key=key,
                             verification_method=vm, created=CREATED)

        def verify(signed: dict[str, Any] = signed) -> object:
            return verify_proof(signed, public)

        def canonicalise(credential_: dict[str, Any] = credential_,
                         config: dict[str, Any] = config) -> object:
            return hash_data(credential_, config, key_type=KeyType.ED25519,
                             suite=EDDSA_RDFC_2022)

        signing = rate(sign, seconds)
        verifying = rate(verify, seconds)
        canonicalising = rate(canonicalise, seconds)
        share = signing / canonicalising  # (1 / canonicalising) / (1 / signing)
        print(f"eddsa-rdfc-2022, {label} ({quads} quads): sign {signing:7,.0f}/s   "
              f"verify {verifying:7,.0f}/s   canonicalise only {canonicalising:7,.0f}/s "
              f"({share:.0%} of signing)")


if __name__ == "__main__":
    main()
