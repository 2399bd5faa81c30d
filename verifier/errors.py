"""The verifier's exceptions. Every error this package raises derives from
:class:`VerifierError`."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CacheMiss",
    "ChainBehindError",
    "ChainReadError",
    "ContractTypeError",
    "CredentialError",
    "DataIntegrityContextError",
    "DataIntegrityDocumentError",
    "DataIntegrityError",
    "DataIntegrityKeyError",
    "DataIntegritySignatureError",
    "JsonLdLimitError",
    "JsonLdProcessingError",
    "MalformedDataIntegrityProofError",
    "MalformedProofError",
    "MerkleError",
    "MerkleInputError",
    "MultibaseError",
    "MultikeyError",
    "PastStateError",
    "PortfolioError",
    "ProofError",
    "ReceiptError",
    "ReorganisedError",
    "RootMismatchError",
    "ScopeShapeError",
    "StatusListError",
    "TrustConfigError",
    "UnknownContextError",
    "UnreadableDocumentError",
    "UnreadableJSONError",
    "UnsupportedCryptosuiteError",
    "VerifierError",
]


class VerifierError(Exception):
    """Root of every error raised by the ``verifier`` package."""


class MerkleError(VerifierError):
    """A Merkle tree could not be built, or a proof could not be made or verified."""


class MerkleInputError(MerkleError, ValueError):
    """Arguments for building a tree or making a proof are invalid (not bytes, index out of
    range)."""


class ProofError(MerkleError):
    """A proof did not verify. Raised by ``verify_inclusion`` and ``verify_consistency``."""


class MalformedProofError(ProofError):
    """A precondition of the verification algorithm failed: sizes, indices, hash lengths or path
    length do not fit together, so the proof is rejected before any hashing."""


class RootMismatchError(ProofError):
    """The proof is well formed but the root it leads to is not the expected root."""

    def __init__(self, message: str, *, expected: bytes, computed: bytes) -> None:
        super().__init__(f"{message}: expected {expected.hex()}, computed {computed.hex()}")
        self.expected = expected
        self.computed = computed


class CredentialError(VerifierError, ValueError):
    """A credential is not a JSON object that RFC 8785 (JCS) can canonicalise."""


class UnreadableJSONError(CredentialError):
    """The text is not JSON this verifier reads: not UTF-8, a syntax error, a duplicate key,
    ``NaN`` or ``Infinity``, an integer literal outside +-(2**53 - 1), or nesting deeper than
    the limit. (Valid JSON of the wrong shape raises the plain :class:`CredentialError`.)"""


class ReceiptError(VerifierError, ValueError):
    """A receipt or bundle is malformed. ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class ArtifactError(VerifierError):
    """A compiled contract artifact (``verifier/artifacts/<Name>.json``) is unknown or malformed."""


class ContractTypeError(VerifierError):
    """A contract result does not fit its model in ``verifier.contract_types``: the model and
    the contract's ABI disagree (fields, names, types), or a value is not what the ABI
    declares (an unknown enum value, a tuple of the wrong length)."""


class UnreadableDocumentError(ReceiptError):
    """A receipt's or bundle's text is not JSON this verifier reads (see
    :class:`UnreadableJSONError`); ``field`` names the document."""


class ChainReadError(VerifierError):
    """The chain could not be read (unreachable node, unexpected answer)."""

    #: How a report names this failure before the message.
    headline = "chain unreachable"


class ChainBehindError(ChainReadError):
    """The node's head is before the block a receipt names: it has not seen the anchor yet (a
    lagging node, or an anchor made this second)."""

    headline = "the node is behind the receipt"


class PastStateError(ChainReadError):
    """The node answered, but keeps no state for the past block asked about (not an archive
    node, or restarted from a saved state)."""

    headline = "cannot judge as of that time"


class ReorganisedError(ChainReadError):
    """The head a verification was reading was reorganised away while it read."""

    headline = "the chain was reorganised while it was read"


class PortfolioError(VerifierError, ValueError):
    """A portfolio cannot be judged as a whole: more credentials than the limit, a document
    that is not a presentation, or a recognising institution the registry does not know."""


class CacheMiss(VerifierError):  # noqa: N818 - a read to make elsewhere, not a failure
    """A reader that answers from its cache only (:meth:`verifier.chain.JsonRpcChainReader.
    cached_since`) was asked for something not cached: the work is to be done again with a
    reader that asks the node. Not a :class:`ChainReadError`, so that no check reports it as
    a failed read: it goes up to the caller that chose the cache-only reader."""


class TrustConfigError(VerifierError):
    """The trust configuration is missing or malformed."""


class DataIntegrityError(VerifierError, ValueError):
    """A W3C Data Integrity proof could not be made, or did not verify. Each subclass names one
    reason; ``code`` is a short stable name for it (reports and API answers carry it)."""

    code = "data_integrity"


class MultibaseError(DataIntegrityError):
    """A multibase string is not base58btc (``z`` prefix), holds a character outside the
    base58 alphabet, or is longer than the limit (refused before any decoding)."""

    code = "malformed_multibase"


class MultikeyError(DataIntegrityError):
    """A Multikey is not one this verifier reads: unknown multicodec header, a key of the wrong
    length, or bytes that are not a point on the named curve."""

    code = "malformed_multikey"


class DataIntegrityDocumentError(DataIntegrityError):
    """The secured document is not a JSON object that JCS can canonicalise, or its ``@context``
    is malformed; or a document given for signing already carries a ``proof``."""

    code = "malformed_document"


class MalformedDataIntegrityProofError(DataIntegrityError):
    """The ``proof`` is missing or malformed: not one object, a required member missing or of
    the wrong type, a bad ``created`` timestamp, an unexpected ``proofPurpose``, or a
    ``proofValue`` that is not base58btc or has the wrong length for the suite (an ECDSA
    signature must be IEEE P1363 ``r || s``, not DER)."""

    code = "malformed_proof"


class UnsupportedCryptosuiteError(DataIntegrityError):
    """The proof's ``type`` is not ``DataIntegrityProof``, or its ``cryptosuite`` is not one this
    verifier implements."""

    code = "unsupported_cryptosuite"


class DataIntegrityContextError(DataIntegrityError):
    """The proof's ``@context`` is not a prefix, in order, of the document's ``@context``: the
    proof was made over another context."""

    code = "context_mismatch"


class DataIntegrityKeyError(DataIntegrityError):
    """The key does not fit the cryptosuite (an Ed25519 key for ``ecdsa-jcs-2019``, a P-384 key
    where only P-256 signs, ...)."""

    code = "key_mismatch"


class DataIntegritySignatureError(DataIntegrityError):
    """The proof is well formed but its signature does not verify with the key: the document
    or the proof options were changed, or another key signed."""

    code = "signature_invalid"


class JsonLdProcessingError(DataIntegrityError):
    """A document could not be processed as JSON-LD for RDF canonicalisation
    (``eddsa-rdfc-2022``): invalid JSON-LD, or a term, ``@id`` or ``@type`` that does not map to
    an absolute IRI, which would drop data from what is signed (JSON-LD "safe mode")."""

    code = "jsonld_invalid"


class UnknownContextError(JsonLdProcessingError):
    """A JSON-LD ``@context`` (or other remote document) is not in the bundled contexts: the
    document loader never fetches anything over the network. ``url`` names it."""

    code = "unknown_context"

    def __init__(self, url: str) -> None:
        super().__init__(f"JSON-LD context {url[:200]!r} is not one of the bundled contexts "
                         "(verifier/contexts); nothing is fetched over the network")
        self.url = url


class JsonLdLimitError(JsonLdProcessingError):
    """A document is over a bound of JSON-LD processing (values, nesting, RDF quads) or its
    blank nodes would need more RDF canonicalisation work than the limit allows (the
    "poison graph" of RDFC-1.0)."""

    code = "jsonld_limit"


class StatusListError(VerifierError, ValueError):
    """A Bitstring Status List, its encoded list or a status entry is malformed, or a status
    list URL is not one this project publishes. ``code`` is the Bitstring Status List
    Recommendation's name for the failure (``MALFORMED_VALUE_ERROR``, ``RANGE_ERROR``...)."""

    def __init__(self, message: str, code: str = "MALFORMED_VALUE_ERROR") -> None:
        super().__init__(message)
        self.code = code


class ScopeShapeError(VerifierError, ValueError):
    """A ``learningScope`` or ``credentialSubject`` in a shape the scope rule does not read
    (see :func:`verifier.scope.declared_scopes`): it is refused, never ignored."""
