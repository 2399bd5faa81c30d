"""The anchor service's exceptions. Every error this package raises derives from
:class:`AnchorServiceError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnchorServiceError",
    "AnchoredOn1xError",
    "BatchBlockedError",
    "BatchError",
    "BlockReorganisedError",
    "ChainError",
    "ContractVersionError",
    "CredentialRevokedError",
    "InvalidSignatureError",
    "IssuerMismatchError",
    "KeyLoadError",
    "MissingExtraError",
    "NotAnchoredError",
    "RecognitionInputError",
    "RecognitionRefusedError",
    "RevertError",
    "SchemaMismatchError",
    "SigningError",
    "SigningKeyNotRegisteredError",
    "SigningUnavailableError",
    "StateUnavailableError",
    "StatusChangeIncompleteError",
    "StatusListRequestError",
    "StoreError",
    "SubmitError",
    "TransientStoreError",
    "UnknownBlockError",
    "UnknownCredentialError",
    "UnknownSuiteError",
]


class AnchorServiceError(Exception):
    """Root of every error raised by the ``anchor_service`` package."""


class BatchError(AnchorServiceError, ValueError):
    """A batch cannot be built from the given items, or an item is not in the batch."""


class UnknownCredentialError(AnchorServiceError, LookupError):
    """No credential has this id (for this issuer)."""


class NotAnchoredError(AnchorServiceError):
    """The credential is accepted but its batch is not anchored (and confirmed) yet."""


class AnchoredOn1xError(AnchorServiceError):
    """The credential was anchored on a CredentialAnchor 1.x deployment, before status lists:
    it has no status list position, so no receipt or bundle of the current format can be made
    for it (HTTP 409 ``anchored_on_1x``)."""


class CredentialRevokedError(AnchorServiceError):
    """Reinstating a revoked credential: reinstate lifts only a suspension, and revocation is
    final unless a root administrator lifts it (HTTP 409 ``revoked``)."""


class StoreError(AnchorServiceError):
    """The database refused an operation or cannot be reached, or an operation does not fit
    the stored state."""


class TransientStoreError(StoreError):
    """The database aborted the statement to break a deadlock (or a serialization conflict)
    with another transaction: running the transaction again may succeed."""


class SchemaMismatchError(StoreError):
    """The database's schema revision is not the one this release reads: older (the message
    says to run ``anchor-service db upgrade``) or newer (the service needs upgrading)."""


class BatchBlockedError(AnchorServiceError):
    """The batch cannot be anchored now, for a reason outside the service (the registry no
    longer trusts its issuer); it waits without backing off. Raised by
    :mod:`anchor_service.pipeline`."""


class ChainError(AnchorServiceError):
    """A transaction could not be sent, or the node answered something unexpected."""


class BlockReorganisedError(ChainError):
    """A block read at was reorganised away while it was read: the answer may be of another
    branch, so it is not used (HTTP 503 ``chain_unavailable``: retry)."""


class StatusChangeIncompleteError(ChainError):
    """A status change of several transactions failed part-way: those already mined stand
    (``mined``: their hashes, in order) and the message names them with their positions;
    ``cause`` is the failure of the next one. HTTP 409 ``status_change_incomplete`` when the
    contract refused it, else 503, with ``transactionHashes`` in the answer."""

    def __init__(self, detail: str, mined: list[bytes], cause: Exception) -> None:
        super().__init__(detail)
        self.mined = mined
        self.cause = cause
        self.http_status = 409 if isinstance(cause, RevertError) else 503


class ContractVersionError(ChainError):
    """The deployment's contracts are not the 2.x contracts this release reads and writes (a
    CredentialAnchor 1.x deployment, say, whose status is per batch): the service refuses to
    start, or to anchor, on them."""


class RevertError(ChainError):
    """A call or transaction reverted. ``name`` is the custom error (``NotAuthorized``...),
    ``args`` its decoded arguments."""

    def __init__(self, name: str, args: tuple[Any, ...], data: bytes) -> None:
        shown = ", ".join("0x" + a.hex() if isinstance(a, bytes) else repr(a) for a in args)
        super().__init__(f"reverted with {name}({shown})")
        self.name = name
        self.args_ = args
        self.data = data


class UnknownBlockError(AnchorServiceError):
    """A block asked for is not on the chain with the required confirmations (yet), or no
    block is at the time asked for (HTTP 404 ``unknown_block``)."""


class StateUnavailableError(UnknownBlockError):
    """The chain node has the block but no longer its state (a pruning node; an archive node
    has it) (HTTP 409 ``state_unavailable``)."""


class KeyLoadError(AnchorServiceError):
    """No usable key: missing, unreadable, wrong password or malformed."""


class SubmitError(AnchorServiceError):
    """An input of ``anchor-service submit`` could not be read, or the service refused or did
    not finish."""


class MissingExtraError(AnchorServiceError):
    """A command needs an optional dependency group (or, for ``stack``, the development package
    ``localchain``) that is not installed."""


class SigningError(AnchorServiceError):
    """A credential cannot be signed or its proof is not acceptable; the message says why.
    ``http_status`` and ``error_code`` are the HTTP answer the API gives for it."""

    http_status: int = 422
    error_code: str = "invalid_credential"


class UnknownSuiteError(SigningError, ValueError):
    """A suite that is not one of :func:`suites`, or one the key's type cannot make (HTTP 422
    ``invalid_suite``)."""

    error_code = "invalid_suite"


class IssuerMismatchError(SigningError):
    """The credential's ``issuer`` is not the DID of the issuer that submits it (HTTP 422
    ``issuer_mismatch``): a signature would vouch for a foreign issuer."""

    error_code = "issuer_mismatch"


class InvalidSignatureError(SigningError):
    """A pre-signed credential's proof is malformed or does not verify (HTTP 422
    ``invalid_signature``)."""

    error_code = "invalid_signature"


class SigningKeyNotRegisteredError(SigningError):
    """A pre-signed credential's key is not registered on chain for this issuer, or is not
    trusted now (HTTP 409 ``signing_key_not_registered``)."""

    http_status = 409
    error_code = "signing_key_not_registered"


class SigningUnavailableError(SigningError):
    """The database names a signing key for the issuer but the service could not load it
    (HTTP 503 ``no_signing_key``): its credentials are refused rather than anchored
    unsigned."""

    http_status = 503
    error_code = "no_signing_key"


class StatusListRequestError(AnchorServiceError):
    """A published status list cannot be served as asked. ``http_status`` says why: 400 a
    ``?block=`` or ``?asOf=`` that names no block it can be read at, 404 no such list, 503
    the issuer cannot sign or the chain cannot be read now; ``error_code`` is the kind.
    Raised by :mod:`anchor_service.status_lists`."""

    def __init__(self, http_status: int, error_code: str, detail: str) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.error_code = error_code
        self.detail = detail


class RecognitionInputError(AnchorServiceError):
    """An entity or recognition named that the registry does not have, or a reference that is
    neither an id nor a DID (CLI exit 2, HTTP 404/422). Raised by
    :mod:`anchor_service.recognitions`."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


class RecognitionRefusedError(AnchorServiceError):
    """The registry refused to record or withdraw a recognition; the message says why in
    words. ``name`` is the contract's error, ``http_status`` and ``code`` its HTTP form.
    Raised by :mod:`anchor_service.recognitions`."""

    def __init__(self, message: str, name: str, *, http_status: int = 409,
                 code: str = "refused") -> None:
        super().__init__(message)
        self.name = name
        self.http_status = http_status
        self.code = code
