"""Decentralized identifiers (W3C DID Core 1.0) for issuers and their signing keys.

Pure functions, no network:

- :func:`verification_method_id` / :func:`split_verification_method`: the verification method
  id of a signing key is ``<DID>#<publicKeyMultibase>``; the Multikey's ``z...`` text is the
  fragment, so a verifier gets the key from the id alone and a standard verifier finds the same
  id in the DID document.
- :func:`did_document`: the DID document listing keys as ``Multikey`` verification methods
  (W3C Controlled Identifiers / Multikey) under ``assertionMethod``.
- :func:`did_web_url`: where a ``did:web`` DID's document is served (did:web method
  specification: ``:`` separates path segments, ``%3A`` encodes a port's colon, and a DID with
  no path is served at ``/.well-known/did.json``).

Every function reads untrusted text (a proof's ``verificationMethod``, an issuer id), so each
refuses anything that is not a well-formed DID with
:class:`~verifier.errors.DataIntegrityKeyError` (a Data Integrity error: the key a proof names
cannot be read), after a length check that bounds the work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import unquote

from verifier.errors import DataIntegrityError, DataIntegrityKeyError
from verifier.multikey import Multikey

__all__ = [
    "DID_CONTEXT",
    "MAX_DID_LENGTH",
    "MULTIKEY_CONTEXT",
    "check_did",
    "did_document",
    "did_web_url",
    "split_verification_method",
    "verification_method_id",
]

DID_CONTEXT: Final = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT: Final = "https://w3id.org/security/multikey/v1"
#: The longest DID (or verification method id, fragment included) read. Issuer DIDs here are a
#: host and a short path; the bound only keeps hostile input from costing more than a glance.
MAX_DID_LENGTH: Final = 2048

# DID Core 1.0 section 3.1 ABNF: did = "did:" method-name ":" method-specific-id, where
# method-name = 1*(%x61-7A / DIGIT) and method-specific-id = *( *idchar ":" ) 1*idchar with
# idchar = ALPHA / DIGIT / "." / "-" / "_" / pct-encoded.
_IDCHAR: Final = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"
_DID: Final = re.compile(rf"did:[a-z0-9]+:(?:{_IDCHAR}*:)*{_IDCHAR}+")
# A did:web host: DNS labels (letters, digits, hyphens), optionally with a port.
_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT_SEPARATOR: Final = re.compile(r"%3[Aa]")


def check_did(did: object, *, what: str = "DID") -> str:
    """Return ``did`` if it is a string with the syntax of a DID (DID Core 1.0: ``did:``,
    a lower-case method name, ``:``, a method-specific id), else raise
    :class:`DataIntegrityKeyError` naming ``what``. No path, query or fragment is allowed."""
    if not isinstance(did, str):
        raise DataIntegrityKeyError(f"{what}: expected a string, got {type(did).__name__}")
    if len(did) > MAX_DID_LENGTH:
        raise DataIntegrityKeyError(f"{what}: {len(did)} characters, longer than the limit "
                                    f"of {MAX_DID_LENGTH}")
    if _DID.fullmatch(did) is None:
        raise DataIntegrityKeyError(f"{what}: {did[:100]!r} is not a DID (did:<method>:<id>)")
    return did


def verification_method_id(did: str, key: Multikey) -> str:
    """The verification method id of ``key`` under ``did``: ``<did>#<publicKeyMultibase>``.
    Raises :class:`DataIntegrityKeyError` if ``did`` is not a DID."""
    return f"{check_did(did)}#{key.multibase}"


def split_verification_method(vm: object) -> tuple[str, Multikey]:
    """The DID and the key of a verification method id ``<DID>#<publicKeyMultibase>``.

    The inverse of :func:`verification_method_id`: the part before ``#`` must be a DID and the
    fragment a Multikey (Ed25519, P-256 or P-384) written exactly as :attr:`Multikey.multibase`
    writes it. Anything else (not a string, no fragment, a fragment that is not a key, a DID
    URL with a path or query) raises :class:`DataIntegrityKeyError`.
    """
    if not isinstance(vm, str):
        raise DataIntegrityKeyError(
            f"verificationMethod: expected a string, got {type(vm).__name__}")
    if len(vm) > MAX_DID_LENGTH:
        raise DataIntegrityKeyError(f"verificationMethod: {len(vm)} characters, longer than "
                                    f"the limit of {MAX_DID_LENGTH}")
    did, hash_sign, fragment = vm.partition("#")
    if not hash_sign:
        raise DataIntegrityKeyError(
            f"verificationMethod {vm[:100]!r} has no '#<publicKeyMultibase>' fragment")
    check_did(did, what="verificationMethod")
    try:
        key = Multikey.from_multibase(fragment)
    except DataIntegrityError as exc:
        raise DataIntegrityKeyError(
            f"verificationMethod fragment is not a Multikey: {exc}") from None
    # One key, one id: a fragment that decodes to the key but is written otherwise is refused,
    # so comparing ids is comparing keys.
    if key.multibase != fragment:
        raise DataIntegrityKeyError("verificationMethod fragment is not the key's canonical "
                                    "publicKeyMultibase")
    return did, key


def did_document(did: str, keys: Sequence[Multikey]) -> dict[str, Any]:
    """The DID document of ``did`` listing ``keys`` (W3C DID Core 1.0 with Multikey
    verification methods).

    Each key becomes ``{"id": "<did>#<mb>", "type": "Multikey", "controller": did,
    "publicKeyMultibase": mb}`` in ``verificationMethod``, in the order given (a key given twice
    is listed once), and its id is listed in ``assertionMethod``: the keys sign credentials.
    They are not listed under ``authentication``: they do not log anyone in. Raises
    :class:`DataIntegrityKeyError` if ``did`` is not a DID.
    """
    check_did(did)
    methods: list[dict[str, str]] = []
    seen: set[str] = set()
    for key in keys:
        multibase = key.multibase
        if multibase in seen:
            continue
        seen.add(multibase)
        methods.append({
            "id": f"{did}#{multibase}",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multibase,
        })
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [method["id"] for method in methods],
    }


def _web_host(segment: str, did: str) -> str:
    """The ``host[:port]`` of a did:web DID's first segment; ``%3A`` is the port's colon."""
    host, *port = _PORT_SEPARATOR.split(segment)
    if len(port) > 1:
        raise DataIntegrityKeyError(f"{did[:100]!r}: more than one port separator")
    labels = host.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels) or len(host) > 253:
        raise DataIntegrityKeyError(f"{did[:100]!r}: {host[:100]!r} is not a domain name")
    # The did:web specification forbids IP addresses: the host names a TLS certificate.
    if all(label.isdigit() for label in labels):
        raise DataIntegrityKeyError(f"{did[:100]!r}: did:web names a domain, not an IP address")
    if not port:
        return host
    if not port[0].isdigit() or not port[0].isascii() or not 0 < int(port[0]) < 65536:
        raise DataIntegrityKeyError(f"{did[:100]!r}: port {port[0][:10]!r} is not a port "
                                    "number")
    return f"{host}:{int(port[0])}"


def did_web_url(did: str) -> str:
    """The HTTPS URL of a ``did:web`` DID's document (did:web method specification, section
    "Read (Resolve)").

    ``did:web:example.com`` → ``https://example.com/.well-known/did.json``;
    ``did:web:example.com%3A8443:issuers:acme`` →
    ``https://example.com:8443/issuers/acme/did.json``. The first segment is the host (a domain
    name, not an IP address; ``%3A`` introduces a port); each further ``:``-separated segment is
    a path segment, kept percent-encoded as it is in the DID. Raises
    :class:`DataIntegrityKeyError` for anything else (another DID method, an empty segment, a
    ``.`` or ``..`` segment, a malformed host or port).
    """
    check_did(did)
    if not did.startswith("did:web:"):
        raise DataIntegrityKeyError(f"{did[:100]!r} is not a did:web DID")
    segments = did[len("did:web:"):].split(":")
    if any(not segment for segment in segments):
        raise DataIntegrityKeyError(f"{did[:100]!r}: empty path segment")
    # A dot segment, even percent-encoded, would climb the URL path (RFC 3986 section 5.2.4).
    if any(unquote(segment) in (".", "..") for segment in segments[1:]):
        raise DataIntegrityKeyError(f"{did[:100]!r}: '.' and '..' are not path segments")
    host = _web_host(segments[0], did)
    path = "/".join(segments[1:]) if len(segments) > 1 else ".well-known"
    return f"https://{host}/{path}/did.json"
