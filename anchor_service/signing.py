"""Issuer signatures: the service signs credentials at acceptance with the issuer's signing key,
as a W3C Data Integrity ``DataIntegrityProof``, and checks credentials that arrive signed.

What is signed and what is anchored, in order:

1. The credential as submitted (no ``proof``) is canonicalised (RFC 8785). The *submitted
   digest* is ``SHA-256("microcred-signed\0" || SHA-256(that form))``: the same unsigned
   credential sent twice keeps its id, although each signing makes another proof (its
   ``created`` differs). The prefix keeps it apart from the submitted digest of a credential
   stored unsigned (its plain SHA-256, which is also its anchored digest), so that a
   credential stored unsigned, before its issuer had a signing key, is never answered as if
   it had been signed now.
2. The proof is made over that credential with the issuer's key and suite
   (:func:`verifier.data_integrity.add_proof` semantics): ``verificationMethod`` is
   ``<issuer DID>#<publicKeyMultibase>``, ``proofPurpose`` ``assertionMethod``.
3. The **signed** credential, proof included, is canonicalised and its SHA-256 is the digest
   that is stored, batched and anchored; receipts and bundles carry the signed credential.

A credential that already carries a ``proof`` (signed by the issuer's own system) is checked
with :func:`check_presigned` (the proof verifies, with a key the registry lists for this
issuer and trusts now) and anchored as it is.

Signing keys (Ed25519 for ``eddsa-jcs-2022`` and ``eddsa-rdfc-2022``, P-256 for
``ecdsa-jcs-2019``) are made with ``cryptography`` and kept by :class:`SigningKeys` as
encrypted PKCS #8 PEM files (:mod:`anchor_service.keystore`), decrypted with the keystore
password. They are never stored in the database, logged or answered.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from anchor_service.errors import (
    InvalidSignatureError,
    IssuerMismatchError,
    SigningError,
    SigningKeyNotRegisteredError,
    SigningUnavailableError,
    UnknownSuiteError,
)
from anchor_service.keystore import read_signing_key, signing_key_path, write_signing_key
from verifier import data_integrity
from verifier.contract_types import signing_key_id
from verifier.credential import canonicalize, issuer_id
from verifier.did import verification_method_id
from verifier.errors import CredentialError, DataIntegrityError, MultibaseError, MultikeyError
from verifier.multikey import KeyType, Multikey, PrivateKey, encode_multibase

__all__ = [
    "DEFAULT_SUITE",
    "InvalidSignatureError",
    "IssuerMismatchError",
    "IssuerSigner",
    "RegisteredKey",
    "SignedCredential",
    "SigningError",
    "SigningKeyNotRegisteredError",
    "SigningKeys",
    "SigningSession",
    "SigningUnavailableError",
    "UnknownSuiteError",
    "check_presigned",
    "key_type_for_suite",
    "suites",
]

#: The suite used when neither the request nor the issuer names one.
DEFAULT_SUITE: Final = "eddsa-jcs-2022"
_ED25519_SUITES: Final = frozenset({"eddsa-jcs-2022", "eddsa-rdfc-2022"})
_P256_SUITES: Final = frozenset({"ecdsa-jcs-2019"})
# The suites whose signed document hash is SHA-256 over the JCS form of the unsigned document,
# which the service computes anyway (the submitted digest's input): signing reuses it.
_JCS_SUITES: Final = frozenset({"eddsa-jcs-2022", "ecdsa-jcs-2019"})


def suites() -> tuple[str, ...]:
    """The suites the service signs with: those :mod:`verifier.data_integrity` implements."""
    return tuple(data_integrity.SUITES)


def key_type_for_suite(suite: str) -> KeyType:
    """The key type ``suite`` signs with (Ed25519 or P-256); :class:`UnknownSuiteError` for a
    suite that is not one of :func:`suites`."""
    if suite not in suites():
        raise UnknownSuiteError(f"unknown suite {suite!r}: use one of {', '.join(suites())}")
    if suite in _ED25519_SUITES:
        return KeyType.ED25519
    if suite in _P256_SUITES:
        return KeyType.P256
    raise UnknownSuiteError(f"suite {suite!r} is not one the service signs with")


def _check_issuer(credential: Mapping[str, Any], did: str) -> None:
    found = issuer_id(credential)
    if found != did:
        shown = "no issuer" if found is None else f"issuer {found[:200]!r}"
        raise IssuerMismatchError(f"the credential names {shown}, but it is submitted by "
                                  f"issuer {did!r}: its issuer must be {did!r}")


class SigningKeys:
    """Issuer signing keys in ``directory`` (the service's ``keystore_dir``): one encrypted
    PKCS #8 PEM file per key, ``signing-<keyId hex>.pem``, owner-only, encrypted with
    ``password`` (the keystore password)."""

    def __init__(self, directory: Path, password: str, *, scrypt_cost: int | None = None) -> None:
        """``scrypt_cost`` is scrypt's N for new files (a default of about a tenth of a second
        to decrypt); tests that make many keys pass less."""
        self.directory = directory
        self._password = password
        self._scrypt_cost = scrypt_cost

    def path(self, key: Multikey) -> Path:
        """Where the file of ``key`` is (or would be)."""
        return signing_key_path(self.directory, signing_key_id(key))

    def create(self, key_type: KeyType | str = KeyType.ED25519) -> tuple[Multikey, Path]:
        """Make a new key (``KeyType.ED25519`` or ``KeyType.P256``, or ``"ed25519"`` /
        ``"p256"``), write it encrypted, and return its public key and file."""
        kind = _key_type(key_type)
        private_key: PrivateKey = (ed25519.Ed25519PrivateKey.generate()
                                   if kind is KeyType.ED25519
                                   else ec.generate_private_key(ec.SECP256R1()))
        public = Multikey.from_public_key(private_key.public_key())
        path = write_signing_key(self.path(public), private_key, self._password,
                                 scrypt_cost=self._scrypt_cost)
        return public, path

    def load(self, key: Multikey) -> PrivateKey:
        """Decrypt the private key of ``key``; :class:`~anchor_service.errors.KeyLoadError`
        when its file is missing, unreadable, not decrypted by the password, or holds another
        key."""
        return read_signing_key(self.path(key), self._password, expected=key)


def _key_type(key_type: KeyType | str) -> KeyType:
    if isinstance(key_type, KeyType):
        found = key_type
    else:
        names = {"ed25519": KeyType.ED25519, "p256": KeyType.P256, "p-256": KeyType.P256}
        if key_type.lower() not in names:
            raise UnknownSuiteError(f"unknown key type {key_type!r}: use ed25519 or p256")
        found = names[key_type.lower()]
    if found not in (KeyType.ED25519, KeyType.P256):
        raise UnknownSuiteError(f"{found.label} signing keys are not made here: use Ed25519 "
                                "or P-256")
    return found


_SIGNED_SUBMISSION: Final = b"microcred-signed\0"


def _signed_submission_digest(submitted_hash: bytes) -> bytes:
    """The submitted digest of a credential the service signs, from the SHA-256 of its
    canonical form as submitted (see the module's steps)."""
    return hashlib.sha256(_SIGNED_SUBMISSION + submitted_hash).digest()


@dataclass(frozen=True, slots=True)
class SignedCredential:
    """A credential ready to store: the document (signed, or as submitted when it was
    pre-signed or is left unsigned), its canonical form (what is stored and anchored), the
    SHA-256 of that form, and the submitted digest (SHA-256 of the canonical credential as
    submitted) that makes a resubmission keep its id."""

    document: dict[str, Any]
    canonical: bytes
    digest: bytes
    submitted_digest: bytes


class IssuerSigner:
    """Signs credentials for one issuer: its DID, its private key and its default suite."""

    def __init__(self, did: str, private_key: PrivateKey, suite: str = DEFAULT_SUITE) -> None:
        self.did = did
        self.private_key = private_key
        self.key = Multikey.from_public_key(private_key.public_key())
        self.key_id = signing_key_id(self.key)
        self.suite = suite
        self.check_suite(suite)
        # The last session made for "now": requests within the same second share it, and
        # with it their proof configurations (made once per @context, not once per request).
        self._current: tuple[int, SigningSession] | None = None  # and its Unix second
        # verificationMethod, made once (it encodes the key in base58).
        self._verification_method = verification_method_id(self.did, self.key)

    @property
    def verification_method(self) -> str:
        """The proof's ``verificationMethod``: ``<DID>#<publicKeyMultibase>``."""
        return self._verification_method

    def check_suite(self, suite: str) -> None:
        """:class:`UnknownSuiteError` unless ``suite`` is known and fits this key."""
        needed = key_type_for_suite(suite)
        if needed is not self.key.key_type:
            fitting = [name for name in suites() if name in _SUITES_OF[self.key.key_type]]
            raise UnknownSuiteError(
                f"suite {suite} needs a {needed.label} key; this issuer's signing key is "
                f"{self.key.key_type.label} (its suites: {', '.join(fitting)})")

    def session(self, *, suite: str | None = None,
                created: str | datetime | None = None) -> SigningSession:
        """What signing many credentials shares: the suite (default: the issuer's), the
        proofs' ``created`` (default: now, to the second) and the hashes of the proof
        configurations already made."""
        chosen = self.suite if suite is None else suite
        self.check_suite(chosen)
        if created is not None:
            return SigningSession(self, chosen, created)
        second = int(time.time())  # the clock datetime.now reads, without formatting it
        current = self._current  # one read: the session and its second go together
        if current is None or current[0] != second or current[1].suite != chosen:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            current = self._current = (second, SigningSession(self, chosen, now))
        return current[1]

    def sign(self, credential: Mapping[str, Any], *, suite: str | None = None,
             created: str | datetime | None = None,
             status: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """A copy of ``credential`` with a ``DataIntegrityProof`` made with this issuer's key
        and ``suite`` (default: the issuer's), and with ``status`` as its
        ``credentialStatus`` when given. Refuses (:class:`IssuerMismatchError`) a credential
        whose ``issuer`` is not :attr:`did`, and (:class:`SigningError`) one that already has
        a ``proof``, or a ``credentialStatus`` when ``status`` is given."""
        return self.session(suite=suite, created=created).sign(credential, status).document

    def sign_many(self, credentials: Sequence[Mapping[str, Any]], *, suite: str | None = None,
                  created: str | datetime | None = None) -> list[SignedCredential]:
        """Sign every credential (one ``created`` for all) and return each with its canonical
        signed form and digests; raises as :meth:`sign` does, and
        :class:`~verifier.errors.CredentialError` for a credential that is not I-JSON."""
        session = self.session(suite=suite, created=created)
        return [session.sign(credential) for credential in credentials]


_SUITES_OF: Final = {KeyType.ED25519: _ED25519_SUITES, KeyType.P256: _P256_SUITES}


class SigningSession:
    """Signs credentials with one issuer's key, one suite and one ``created`` time (made by
    :meth:`IssuerSigner.session`).

    For the JCS suites each credential is canonicalised once. Its top-level members are split
    around ``"proof"`` (RFC 8785 orders an object's members by their names' UTF-16 code units
    and writes each member on its own, so the canonical object is ``{`` + the members before
    ``"proof"`` + ``,"proof":`` + the canonical proof + the members after it + ``}``); the
    two halves give both the canonical credential as submitted (hashed for the signature and
    as the submitted digest) and the canonical signed credential, without canonicalising
    either again. The proof configuration's hash depends only on the credential's
    ``@context``: it is made once per distinct context. The tests compare the result with
    :func:`verifier.data_integrity.add_proof` and the ``rfc8785`` package."""

    def __init__(self, signer: IssuerSigner, suite: str, created: str | datetime) -> None:
        self.signer = signer
        self.suite = suite
        self.created = _created_text(created)
        self._configs: dict[object, _Config] = {}

    def sign(self, credential: Mapping[str, Any],
             status: Sequence[Mapping[str, Any]] | None = None, *,
             status_member: bytes | None = None) -> SignedCredential:
        """Sign one credential, with ``status`` (its ``BitstringStatusListEntry`` objects)
        added as its ``credentialStatus`` before signing when given (see
        :meth:`IssuerSigner.sign` for what is refused); ``status_member`` is their canonical
        member text (``"credentialStatus":[...]``) when the caller has it already
        (:class:`anchor_service.status.StatusEntries`). The submitted digest is that of the
        credential as submitted, without the added status: the same credential sent again
        keeps its id (and its first position)."""
        if not isinstance(credential, Mapping):
            raise SigningError(f"expected a JSON object, got {type(credential).__name__}")
        if "proof" in credential:
            raise SigningError("the credential already has a proof: it is checked as "
                               "pre-signed, not signed again")
        if status is not None and _STATUS in credential:
            raise SigningError(f"{_STATUS}: the service sets the status entries of the "
                               "credentials it signs (its W3C Bitstring Status List position, "
                               "allocated at acceptance); send the credential without "
                               f"{_STATUS}")
        if self.suite not in _JCS_SUITES:
            _check_issuer(credential, self.signer.did)
            return self._sign_generic(credential, status)
        # Canonical first: a credential that is not I-JSON is refused as such, whoever it
        # names as its issuer.
        first, middle, after = _canonical_parts(credential)
        _check_issuer(credential, self.signer.did)
        own_status = (canonicalize({_STATUS: credential[_STATUS]})[1:-1]
                      if _STATUS in credential else b"")
        added = (b"" if status is None else status_member if status_member is not None
                 else canonicalize({_STATUS: list(status)})[1:-1])
        submitted = b"{" + _members(first, own_status, middle, after) + b"}"
        before = _members(first, own_status or added, middle)
        config = self._config(credential)
        submitted_hash = hashlib.sha256(submitted).digest()
        signed_hash = (submitted_hash if status is None
                       else hashlib.sha256(b"{" + _members(before, after) + b"}").digest())
        value = encode_multibase(_sign(self.signer.private_key, config.hash + signed_hash))
        # The canonical proof: "proofValue" sorts between "proofPurpose" and "type", and a
        # base58 string needs no escaping.
        proof_text = b"".join((b"{", config.before, b',"proofValue":"', value.encode("ascii"),
                               b'",', config.after, b"}"))
        canonical = b"{" + _members(before, b'"proof":' + proof_text, after) + b"}"
        document = dict(credential) if status is None else {**credential, _STATUS: list(status)}
        document["proof"] = {**config.members, "proofValue": value}
        return SignedCredential(document, canonical, hashlib.sha256(canonical).digest(),
                                _signed_submission_digest(submitted_hash))

    def _config(self, credential: Mapping[str, Any]) -> _Config:
        """The proof configuration for this credential (with its ``@context``), made once per
        distinct ``@context``."""
        context = credential.get("@context", _NO_CONTEXT)
        # Context URLs (the usual case) are their own key; anything else is keyed by its
        # canonical form, so that true and 1 (equal in Python) stay apart.
        cache_key: object = (tuple(context) if isinstance(context, list)
                             and all(type(item) is str for item in context)
                             else context if type(context) is str or context is _NO_CONTEXT
                             else canonicalize({"c": context}))
        found = self._configs.get(cache_key)
        if found is None:
            members = self._proof_config()
            if context is not _NO_CONTEXT:
                members["@context"] = context
            canonical = canonicalize(members)
            before = canonicalize({k: v for k, v in members.items() if k < "proofValue"})
            after = canonicalize({k: v for k, v in members.items() if k > "proofValue"})
            found = _Config(members, hashlib.sha256(canonical).digest(), before[1:-1],
                            after[1:-1])
            if len(self._configs) < _MAX_CONTEXTS:
                self._configs[cache_key] = found
        return found

    def _proof_config(self) -> dict[str, Any]:
        return {"type": data_integrity.PROOF_TYPE, "cryptosuite": self.suite,
                "created": self.created,
                "verificationMethod": self.signer.verification_method,
                "proofPurpose": "assertionMethod"}

    def _sign_generic(self, credential: Mapping[str, Any],
                      status: Sequence[Mapping[str, Any]] | None) -> SignedCredential:
        """Suites other than the JCS ones (RDF canonicalisation): as the verifier's module
        makes them."""
        submitted = canonicalize(credential)
        to_sign = credential if status is None else {**credential, _STATUS: list(status)}
        try:
            signed = data_integrity.add_proof(
                to_sign, suite=self.suite,  # type: ignore[arg-type]
                private_key=self.signer.private_key,
                verification_method=self.signer.verification_method, created=self.created)
        except DataIntegrityError as exc:
            raise SigningError(str(exc)) from None
        canonical = canonicalize(signed)
        return SignedCredential(signed, canonical, hashlib.sha256(canonical).digest(),
                                _signed_submission_digest(hashlib.sha256(submitted).digest()))


@dataclass(frozen=True, slots=True)
class _Config:
    """A proof configuration: its members, the SHA-256 of its canonical form, and its
    canonical members before and after where ``"proofValue"`` goes."""

    members: dict[str, Any]
    hash: bytes
    before: bytes
    after: bytes


_NO_CONTEXT: Final = object()
# Distinct @context values whose proof configuration hash a session keeps (a request has one
# or a few; the bound keeps a hostile request from growing the cache).
_MAX_CONTEXTS: Final = 64


def _created_text(created: str | datetime) -> str:
    """``created`` as an XSD dateTimeStamp: an aware datetime in UTC to the second, or a
    string that is one."""
    if isinstance(created, datetime):
        if created.tzinfo is None:
            raise SigningError("created: a datetime needs a time zone")
        return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in created:
        raise SigningError(f"created: {created[:40]!r} is not a date-time with a time zone")
    return created


def _sign(private_key: PrivateKey, data: bytes) -> bytes:
    """The JCS suites' signature of ``data`` (``proof hash || document hash``): Ed25519 over
    the bytes, or ECDSA P-256 with SHA-256 as IEEE P1363 ``r || s``."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


_STATUS: Final = "credentialStatus"


def _canonical_parts(credential: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """The canonical members (RFC 8785) of ``credential`` whose names sort before
    ``"credentialStatus"``, those between it and ``"proof"``, and those after ``"proof"``,
    each without braces (neither of those two members is in any part). Comparing a name with
    either by code points gives the same answer as by UTF-16 code units: they differ only
    between characters at or above U+D800, and both names are ASCII."""
    first = {name: value for name, value in credential.items() if name < _STATUS}
    middle = {name: value for name, value in credential.items() if _STATUS < name < "proof"}
    after = {name: value for name, value in credential.items() if name > "proof"}
    return canonicalize(first)[1:-1], canonicalize(middle)[1:-1], canonicalize(after)[1:-1]


def _members(*parts: bytes) -> bytes:
    """Canonical member lists joined into one (empty ones left out)."""
    return b",".join(part for part in parts if part)


class RegisteredKey(Protocol):
    """What :func:`check_presigned` reads of a registry signing-key record
    (:class:`verifier.contract_types.SigningKeyInfo`)."""

    @property
    def entity_id(self) -> int: ...

    @property
    def public_key(self) -> bytes: ...

    @property
    def revoked_at(self) -> int: ...


def check_presigned(credential: Mapping[str, Any], *, issuer_did: str,
                    registered: Callable[[bytes], RegisteredKey],
                    entity_id: int | None = None,
                    trusted_now: Callable[[bytes], str | None] | None = None,
                    ) -> data_integrity.VerifiedProof:
    """Check a credential that arrives signed: its ``issuer`` is ``issuer_did``
    (:class:`IssuerMismatchError`), its proof's ``verificationMethod`` is
    ``<issuer_did>#<publicKeyMultibase>`` and the proof verifies with that key
    (:class:`InvalidSignatureError`), and the registry lists the key (``registered(keyId)``)
    for the issuer's entity (``entity_id``, when given) and, when ``trusted_now`` is given,
    trusts it now (``trusted_now(keyId)`` returns None, or the reason it does not)
    (:class:`SigningKeyNotRegisteredError`)."""
    _check_issuer(credential, issuer_did)
    proof = credential.get("proof")
    if isinstance(proof, list) and len(proof) == 1:  # a set of one proof is that proof
        proof = proof[0]
    if not isinstance(proof, Mapping):
        raise InvalidSignatureError("proof: expected one DataIntegrityProof object")
    method = proof.get("verificationMethod")
    if not isinstance(method, str) or "#" not in method:
        raise InvalidSignatureError("proof.verificationMethod: expected "
                                    f"'{issuer_did}#<publicKeyMultibase>'")
    controller, _, fragment = method.partition("#")
    if controller != issuer_did:
        raise InvalidSignatureError(f"proof.verificationMethod {method[:200]!r} is not a key "
                                    f"of issuer {issuer_did!r}")
    try:
        key = Multikey.from_multibase(fragment)
    except (MultibaseError, MultikeyError) as exc:
        raise InvalidSignatureError(f"proof.verificationMethod: {exc}") from None
    try:
        verified = data_integrity.verify_proof(credential, key)
    except (DataIntegrityError, CredentialError) as exc:
        raise InvalidSignatureError(str(exc)) from None
    # A proof past its `expires` would fail every verification of what is anchored now.
    expires_at = verified.expires_at
    if expires_at is not None and expires_at <= datetime.now(UTC).timestamp():
        raise InvalidSignatureError(f"proof.expires: the proof expired at {verified.expires}")
    identifier = signing_key_id(key)
    record = registered(identifier)
    if record.entity_id == 0 or record.public_key != key.key_type.public_header + key.raw:
        raise SigningKeyNotRegisteredError(
            f"signing key {key.multibase} is not registered on chain")
    if entity_id is not None and record.entity_id != entity_id:
        raise SigningKeyNotRegisteredError(
            f"signing key {key.multibase} is registered for entity {record.entity_id}, not "
            f"for this issuer (entity {entity_id})")
    if trusted_now is not None:
        refusal = trusted_now(identifier)
        if refusal is not None:
            raise SigningKeyNotRegisteredError(
                f"signing key {key.multibase} is not trusted now: {refusal}")
    return verified
