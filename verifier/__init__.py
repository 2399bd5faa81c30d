"""Verifier for anchored micro-credentials.

The public API is small and explicit:

- :mod:`verifier.merkle`: RFC 9162 Merkle trees and proof verification (pure functions).
- :mod:`verifier.credential`: RFC 8785 canonical digests and salted leaf inputs.
- :mod:`verifier.receipt`: the receipt (format v2) and bundle documents.
- :mod:`verifier.did`: issuer DIDs, verification method ids and DID documents (pure).
- :mod:`verifier.bitstring`: W3C Bitstring Status List encoding, status entries and list URLs
  (pure).
- :mod:`verifier.status_list`: a status entry judged from its status list credential alone,
  as a standard verifier does (pure).
- :mod:`verifier.list_check`: a published status list compared with the chain.
- :mod:`verifier.verify`: every check of a credential against its receipt, the issuer's
  signature and the chain.
- :mod:`verifier.errors`: every error derives from :class:`VerifierError`.

This package never depends on ``anchor_service``; the service depends on it.
"""

from verifier.credential import canonicalize, credential_digest, leaf_input, parse_credential
from verifier.did import (
    did_document,
    did_web_url,
    split_verification_method,
    verification_method_id,
)
from verifier.errors import (
    CredentialError,
    MerkleError,
    ProofError,
    ReceiptError,
    UnreadableDocumentError,
    UnreadableJSONError,
    VerifierError,
)
from verifier.receipt import Anchor, Bundle, Receipt

__all__ = [
    "Anchor",
    "Bundle",
    "CredentialError",
    "MerkleError",
    "ProofError",
    "Receipt",
    "ReceiptError",
    "UnreadableDocumentError",
    "UnreadableJSONError",
    "VerifierError",
    "__version__",
    "canonicalize",
    "credential_digest",
    "did_document",
    "did_web_url",
    "leaf_input",
    "parse_credential",
    "split_verification_method",
    "verification_method_id",
]

__version__ = "0.2.0"
