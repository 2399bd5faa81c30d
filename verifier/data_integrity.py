"""W3C Data Integrity proofs (``DataIntegrityProof``) with the JCS and RDFC cryptosuites.

Three cryptosuites:

- ``eddsa-jcs-2022`` (Data Integrity EdDSA Cryptosuites v1.0): Ed25519 keys, over the RFC 8785
  (JCS) canonical form that :func:`verifier.credential.canonicalize` computes.
- ``ecdsa-jcs-2019`` (Data Integrity ECDSA Cryptosuites v1.0): P-256 keys, and P-384 keys, over
  the JCS canonical form.
- ``eddsa-rdfc-2022`` (Data Integrity EdDSA Cryptosuites v1.0, the suite Open Badges 3.0
  names): Ed25519 keys, over the RDFC-1.0 canonical N-Quads of the JSON-LD document
  (:func:`verifier.jsonld.canonical_nquads`: contexts from the bundle only, never the network,
  JSON-LD safe mode, bounded work).

All make a proof the same way:

1. The *proof configuration* is the proof without ``proofValue``: ``type``
   (``DataIntegrityProof``), ``cryptosuite``, ``created``, ``verificationMethod``,
   ``proofPurpose``, and ``@context`` set to the document's ``@context``.
2. ``hashData = H(C(proof configuration)) || H(C(document without proof))``, where ``C`` is the
   suite's canonicalisation (JCS, or RDFC-1.0 N-Quads as UTF-8) and ``H`` is SHA-256, or
   SHA-384 for a P-384 key.
3. Ed25519 signs ``hashData`` (64 bytes) as the message; ECDSA signs it with SHA-256 (P-256) or
   SHA-384 (P-384) as the message digest and the signature is IEEE P1363 ``r || s`` (64 or 96
   bytes), never DER.
4. ``proofValue = "z" + base58btc(signature)``, and the proof is added to the document.

For ``eddsa-rdfc-2022`` the document must define the proof's terms: when its ``@context``
holds neither the VC 2.0 context nor Data Integrity v2, signing appends
``https://w3id.org/security/data-integrity/v2`` to it (as the reference implementation does),
so a VC 1.1 credential gets that context, covered by the signature.

Verification takes the proof apart the same way. If the proof has an ``@context``, it must be a
prefix, in order, of the document's ``@context``; the proof's ``@context`` then stands for the
document's in the hash, as the cryptosuites specify. Entries the document has after that prefix
are not covered by the signature and :attr:`VerifiedProof.uncovered_context` lists them.

Every failure raises a subclass of :class:`~verifier.errors.DataIntegrityError` naming the
reason; nothing here raises a bare ``ValueError`` or ``KeyError`` on hostile input. The work per
call is bounded by the document's size: multibase strings are refused over
:data:`~verifier.multikey.MAX_MULTIBASE_LENGTH` characters before decoding.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from verifier.credential import canonicalize
from verifier.errors import (
    CredentialError,
    DataIntegrityContextError,
    DataIntegrityDocumentError,
    DataIntegrityKeyError,
    DataIntegritySignatureError,
    MalformedDataIntegrityProofError,
    MultibaseError,
    MultikeyError,
    UnsupportedCryptosuiteError,
)
from verifier.jsonld import ContextBundle, canonical_nquads
from verifier.multikey import (
    KeyType,
    Multikey,
    PrivateKey,
    PublicKey,
    decode_multibase,
    encode_multibase,
    key_type_of_curve,
)

__all__ = [
    "DATA_INTEGRITY_CONTEXT",
    "ECDSA_JCS_2019",
    "EDDSA_JCS_2022",
    "EDDSA_RDFC_2022",
    "PROOF_TYPE",
    "RDFC_SUITES",
    "SUITES",
    "VC_2_0_CONTEXT",
    "HashData",
    "Suite",
    "VerifiedProof",
    "add_proof",
    "hash_data",
    "verify_proof",
]

PROOF_TYPE: Final = "DataIntegrityProof"
EDDSA_JCS_2022: Final = "eddsa-jcs-2022"
ECDSA_JCS_2019: Final = "ecdsa-jcs-2019"
EDDSA_RDFC_2022: Final = "eddsa-rdfc-2022"
Suite = Literal["eddsa-jcs-2022", "ecdsa-jcs-2019", "eddsa-rdfc-2022"]
SUITES: Final[tuple[str, ...]] = (EDDSA_JCS_2022, ECDSA_JCS_2019, EDDSA_RDFC_2022)
#: Suites that canonicalise with RDFC-1.0 (JSON-LD) instead of JCS.
RDFC_SUITES: Final = frozenset({EDDSA_RDFC_2022})
VC_2_0_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_CONTEXT: Final = "https://w3id.org/security/data-integrity/v2"

#: Key types each suite accepts.
_SUITE_KEYS: Final = {
    EDDSA_JCS_2022: (KeyType.ED25519,),
    ECDSA_JCS_2019: (KeyType.P256, KeyType.P384),
    EDDSA_RDFC_2022: (KeyType.ED25519,),
}
_SIGNATURE_SIZE: Final = {KeyType.ED25519: 64, KeyType.P256: 64, KeyType.P384: 96}
# XSD dateTimeStamp (a time zone is required), as Data Integrity requires for created/expires.
_DATE_TIME_STAMP: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.ASCII)


@dataclass(frozen=True, slots=True)
class HashData:
    """What a cryptosuite hashes and signs: the two canonical forms (JCS bytes, or RDFC-1.0
    N-Quads as UTF-8), their hashes, and ``proof_hash || document_hash``, the signed bytes."""

    canonical_proof_config: bytes
    canonical_document: bytes
    proof_hash: bytes
    document_hash: bytes

    @property
    def combined(self) -> bytes:
        return self.proof_hash + self.document_hash


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that verified: its members, and the key that verified it."""

    cryptosuite: str
    verification_method: str
    proof_purpose: str
    created: str | None
    expires: str | None
    key: Multikey
    #: ``@context`` entries of the document after the proof's own ``@context``: the signature
    #: does not cover them (empty when the proof has no ``@context`` or the same one).
    uncovered_context: tuple[Any, ...] = ()

    @property
    def expires_at(self) -> int | None:
        """``expires`` in Unix seconds (fractions of a second dropped), or None: a proof past
        it does not verify, which the caller judges against its own clock."""
        if self.expires is None:
            return None
        match = _DATE_TIME_STAMP.fullmatch(self.expires)
        if match is None:  # pragma: no cover - the proof's reader checked it
            raise MalformedDataIntegrityProofError(f"proof.expires: {self.expires!r}")
        return int(datetime.fromisoformat(
            match.group(1) + match.group(3).replace("Z", "+00:00")).timestamp())


def _key_fits(suite: str, key_type: KeyType) -> None:
    if key_type not in _SUITE_KEYS[suite]:
        allowed = " or ".join(k.label for k in _SUITE_KEYS[suite])
        raise DataIntegrityKeyError(f"{suite} needs an {allowed} key, got {key_type.label}")


def _hash_for(key_type: KeyType) -> tuple[str, hashes.HashAlgorithm]:
    if key_type is KeyType.P384:
        return "sha384", hashes.SHA384()
    return "sha256", hashes.SHA256()


def _canonical(value: Mapping[str, Any], what: str) -> bytes:
    try:
        return canonicalize(value)
    except CredentialError as exc:
        raise DataIntegrityDocumentError(f"{what}: {exc}") from None


def hash_data(unsecured_document: Mapping[str, Any], proof_config: Mapping[str, Any], *,
              key_type: KeyType, suite: str = EDDSA_JCS_2022,
              contexts: ContextBundle | None = None) -> HashData:
    """Canonicalise both objects with the suite's canonicalisation (JCS; RDFC-1.0 for
    ``eddsa-rdfc-2022``, contexts from ``contexts`` or the bundled ones) and hash them
    (SHA-384 for a P-384 key, SHA-256 otherwise). ``proof_config`` is used as given: callers
    put the ``@context`` in it."""
    algorithm, _ = _hash_for(key_type)
    if suite in RDFC_SUITES:
        canonical_config = canonical_nquads(proof_config, contexts=contexts).encode()
        canonical_document = canonical_nquads(unsecured_document, contexts=contexts).encode()
    else:
        canonical_config = _canonical(proof_config, "proof configuration")
        canonical_document = _canonical(unsecured_document, "document")
    return HashData(canonical_config, canonical_document,
                    hashlib.new(algorithm, canonical_config).digest(),
                    hashlib.new(algorithm, canonical_document).digest())


def _check_timestamp(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedDataIntegrityProofError(
            f"proof.{what}: expected a date-time string, got {type(value).__name__}")
    match = _DATE_TIME_STAMP.fullmatch(value)
    if match is None:
        raise MalformedDataIntegrityProofError(
            f"proof.{what}: {value[:40]!r} is not an XSD dateTimeStamp "
            "(YYYY-MM-DDThh:mm:ss with a time zone)")
    try:
        datetime.fromisoformat(match.group(1) + match.group(3).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedDataIntegrityProofError(
            f"proof.{what}: {value!r} is not a valid date and time") from None
    return value


def _created_text(created: str | datetime) -> str:
    if isinstance(created, datetime):
        if created.tzinfo is None:
            raise MalformedDataIntegrityProofError("created: a datetime needs a time zone")
        return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _check_timestamp(created, "created")


def _private_key_type(private_key: PrivateKey) -> KeyType:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return KeyType.ED25519
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        try:
            return key_type_of_curve(private_key.curve)
        except MultikeyError as exc:
            raise DataIntegrityKeyError(str(exc)) from None
    raise DataIntegrityKeyError(f"unsupported private key type {type(private_key).__name__}")


def _sign(private_key: PrivateKey, key_type: KeyType, data: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    _, algorithm = _hash_for(key_type)
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(algorithm)))
    size = _SIGNATURE_SIZE[key_type] // 2
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _with_suite_context(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """``document`` with Data Integrity v2 appended to its ``@context`` unless that or the VC
    2.0 context (which defines the proof's terms too) is there already."""
    context = _context_list(document.get("@context", []))
    if "@context" not in document:
        context = []
    if VC_2_0_CONTEXT in context or DATA_INTEGRITY_CONTEXT in context:
        return document
    return {**document, "@context": [*context, DATA_INTEGRITY_CONTEXT]}


def add_proof(document: Mapping[str, Any], *, suite: Suite, private_key: PrivateKey,
              verification_method: str, created: str | datetime,
              proof_purpose: str = "assertionMethod",
              contexts: ContextBundle | None = None) -> dict[str, Any]:
    """Sign ``document`` with ``suite`` and return a new document carrying the
    ``DataIntegrityProof``. The input is not changed. ``created`` is an XSD dateTimeStamp
    string, or an aware datetime (written in UTC to the second). ``contexts`` (for
    ``eddsa-rdfc-2022`` only) are the JSON-LD contexts to load, by default the bundled ones;
    for that suite the returned document may carry one more ``@context`` entry (see the module
    docstring)."""
    if suite not in SUITES:
        raise UnsupportedCryptosuiteError(f"cryptosuite {suite!r} is not one of {list(SUITES)}")
    if not isinstance(document, Mapping):
        raise DataIntegrityDocumentError(
            f"document: expected a JSON object, got {type(document).__name__}")
    if "proof" in document:
        raise DataIntegrityDocumentError("document: already has a proof (proof sets and "
                                         "chains are not supported)")
    if not isinstance(verification_method, str) or not verification_method:
        raise MalformedDataIntegrityProofError("verificationMethod: expected a non-empty string")
    if not isinstance(proof_purpose, str) or not proof_purpose:
        raise MalformedDataIntegrityProofError("proofPurpose: expected a non-empty string")
    key_type = _private_key_type(private_key)
    _key_fits(suite, key_type)
    if suite in RDFC_SUITES:
        document = _with_suite_context(document)
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": suite,
        "created": _created_text(created),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    config = dict(proof)
    if "@context" in document:
        config["@context"] = document["@context"]
        if suite not in RDFC_SUITES:
            # The JCS suites write it into the proof; the RDF suite leaves it out (the
            # specification's vectors and the reference implementation do), and a verifier
            # takes the document's, as the proof configuration did.
            proof["@context"] = document["@context"]
    data = hash_data(document, config, key_type=key_type, suite=suite, contexts=contexts)
    signature = _sign(private_key, key_type, data.combined)
    proof["proofValue"] = encode_multibase(signature)
    return {**document, "proof": proof}


def _as_key(key: Multikey | str | PublicKey) -> Multikey:
    if isinstance(key, Multikey):
        return key
    if isinstance(key, str):
        return Multikey.from_multibase(key)
    if isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        return Multikey.from_public_key(key)
    raise MultikeyError(f"expected a Multikey, a publicKeyMultibase string or a public key, "
                        f"got {type(key).__name__}")


def _context_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _same_json(left: list[Any], right: list[Any]) -> bool:
    if all(type(item) is str for item in left) and all(type(item) is str for item in right):
        return left == right  # the usual case: context URLs
    # Otherwise compared as canonical JSON, so that true and 1 (equal in Python) differ, as
    # they do in the signed bytes.
    return canonicalize({"c": left}) == canonicalize({"c": right})


def _required_string(proof: Mapping[str, Any], name: str) -> str:
    value = proof.get(name)
    if not isinstance(value, str) or not value:
        got = "missing" if value is None and name not in proof else type(value).__name__
        raise MalformedDataIntegrityProofError(
            f"proof.{name}: expected a non-empty string, got {got}")
    return value


@dataclass(frozen=True, slots=True)
class _ProofMembers:
    proof: Mapping[str, Any]
    suite: str
    verification_method: str
    purpose: str
    created: str | None
    expires: str | None


def _read_proof(document: Mapping[str, Any], expected_proof_purpose: str) -> _ProofMembers:
    """Check the shape of ``document["proof"]``: one object, the members the suites need."""
    if not isinstance(document, Mapping):
        raise DataIntegrityDocumentError(
            f"document: expected a JSON object, got {type(document).__name__}")
    if "proof" not in document:
        raise MalformedDataIntegrityProofError("document has no proof")
    proof = document["proof"]
    if isinstance(proof, list):
        # VC 2.0 lets `proof` be a set; Open Badges 3.0 issuers write a set of one. One proof
        # in a list is that proof; several (a proof set or chain) are not read.
        if len(proof) != 1:
            raise MalformedDataIntegrityProofError(
                f"proof: a proof set of {len(proof)} proofs is not supported; expected one "
                "proof (an object, or a list holding one)")
        proof = proof[0]
    if not isinstance(proof, Mapping):
        raise MalformedDataIntegrityProofError(
            f"proof: expected an object, got {type(proof).__name__}")
    proof_type = proof.get("type")
    if proof_type != PROOF_TYPE:
        raise UnsupportedCryptosuiteError(
            f"proof.type: {str(proof_type)[:60]!r} is not {PROOF_TYPE!r}")
    suite = proof.get("cryptosuite")
    if not isinstance(suite, str) or suite not in SUITES:
        raise UnsupportedCryptosuiteError(
            f"proof.cryptosuite: {str(suite)[:60]!r} is not one of {list(SUITES)}")
    verification_method = _required_string(proof, "verificationMethod")
    purpose = _required_string(proof, "proofPurpose")
    if purpose != expected_proof_purpose:
        raise MalformedDataIntegrityProofError(
            f"proof.proofPurpose: {purpose[:60]!r} is not the expected "
            f"{expected_proof_purpose!r}")
    created = _check_timestamp(proof["created"], "created") if "created" in proof else None
    expires = _check_timestamp(proof["expires"], "expires") if "expires" in proof else None
    return _ProofMembers(proof, suite, verification_method, purpose, created, expires)


def _signature_bytes(proof: Mapping[str, Any], suite: str, key_type: KeyType) -> bytes:
    try:
        signature = decode_multibase(proof.get("proofValue"), what="proof.proofValue")
    except MultibaseError as exc:
        raise MalformedDataIntegrityProofError(str(exc)) from None
    expected_size = _SIGNATURE_SIZE[key_type]
    if len(signature) != expected_size:
        form = "" if key_type is KeyType.ED25519 else " (IEEE P1363 r || s, not DER)"
        raise MalformedDataIntegrityProofError(
            f"proof.proofValue: a {suite} {key_type.label} signature is {expected_size} "
            f"bytes{form}, got {len(signature)}")
    return signature


def _signed_objects(document: Mapping[str, Any], proof: Mapping[str, Any],
                    ) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]]:
    """The unsecured document and the proof configuration as the signer hashed them, and the
    document's ``@context`` entries the proof's ``@context`` does not cover."""
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    options = {name: value for name, value in proof.items() if name != "proofValue"}
    uncovered: tuple[Any, ...] = ()
    if "@context" in options:
        if "@context" not in document:
            raise DataIntegrityContextError("proof.@context: the document has no @context")
        proof_context = _context_list(options["@context"])
        document_context = _context_list(document["@context"])
        prefix = document_context[:len(proof_context)]
        try:
            same = len(prefix) == len(proof_context) and _same_json(prefix, proof_context)
        except CredentialError as exc:
            raise DataIntegrityDocumentError(f"@context: {exc}") from None
        if not same:
            raise DataIntegrityContextError(
                "proof.@context is not a prefix of the document's @context: the proof was "
                "made over another context")
        uncovered = tuple(document_context[len(proof_context):])
        unsecured["@context"] = options["@context"]
    if "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    return unsecured, options, uncovered


def _check_signature(multikey: Multikey, signature: bytes, data: bytes, suite: str) -> None:
    public_key = multikey.public_key()
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            half = len(signature) // 2
            der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                       int.from_bytes(signature[half:], "big"))
            public_key.verify(der, data, ec.ECDSA(_hash_for(multikey.key_type)[1]))
    except InvalidSignature:
        raise DataIntegritySignatureError(
            f"{suite} signature does not verify with {multikey.key_type.label} key "
            f"{multikey.multibase}") from None


def verify_proof(document: Mapping[str, Any], key: Multikey | str | PublicKey, *,
                 expected_proof_purpose: str = "assertionMethod",
                 contexts: ContextBundle | None = None) -> VerifiedProof:
    """Verify the ``DataIntegrityProof`` of ``document`` with ``key`` (a :class:`Multikey`,
    a ``publicKeyMultibase`` string or a ``cryptography`` public key). ``contexts`` (for
    ``eddsa-rdfc-2022`` only) are the JSON-LD contexts to load, by default the bundled ones: a
    context outside them fails with :class:`~verifier.errors.UnknownContextError`.

    Returns a :class:`VerifiedProof`; raises a :class:`~verifier.errors.DataIntegrityError`
    subclass saying why the proof does not verify. The checks run cheapest first: the proof's
    shape, the key against the suite, the ``proofValue``, then canonicalisation and the
    signature. Which key may sign for the document's issuer (the ``verificationMethod``) is
    the caller's judgement, not checked here.
    """
    members = _read_proof(document, expected_proof_purpose)
    multikey = _as_key(key)
    _key_fits(members.suite, multikey.key_type)
    signature = _signature_bytes(members.proof, members.suite, multikey.key_type)
    unsecured, options, uncovered = _signed_objects(document, members.proof)
    data = hash_data(unsecured, options, key_type=multikey.key_type, suite=members.suite,
                     contexts=contexts)
    _check_signature(multikey, signature, data.combined, members.suite)
    return VerifiedProof(cryptosuite=members.suite,
                         verification_method=members.verification_method,
                         proof_purpose=members.purpose, created=members.created,
                         expires=members.expires, key=multikey, uncovered_context=uncovered)
