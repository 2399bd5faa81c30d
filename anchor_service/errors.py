"""The anchor service's exceptions. Every error this package raises derives from
:class:`AnchorServiceError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnchorServiceError",
    "BatchBlockedError",
    "BatchError",
    "ChainError",
    "InvalidSignatureError",
    "IssuerMismatchError",
    "KeyLoadError",
    "MissingExtraError",
    "NotAnchoredError",
    "RevertError",
    "SchemaMismatchError",
    "SigningError",
    "SigningKeyNotRegisteredError",
    "SigningUnavailableError",
    "StoreError",
    "SubmitError",
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


class StoreError(AnchorServiceError):
    """The database refused an operation or cannot be reached, or an operation does not fit
    the stored state."""


class SchemaMismatchError(StoreError):
    """The database's schema revision is not the one this release reads: older (the message
    says to run ``anchor-service db upgrade``) or newer (the service needs upgrading)."""


class BatchBlockedError(AnchorServiceError):
    """The batch cannot be anchored now, for a reason outside the service (the registry no
    longer trusts its issuer); it waits without backing off. Raised by
    :mod:`anchor_service.pipeline`."""


class ChainError(AnchorServiceError):
    """A transaction could not be sent, or the node answered something unexpected."""


class RevertError(ChainError):
    """A call or transaction reverted. ``name`` is the custom error (``NotAuthorized``...),
    ``args`` its decoded arguments."""

    def __init__(self, name: str, args: tuple[Any, ...], data: bytes) -> None:
        shown = ", ".join("0x" + a.hex() if isinstance(a, bytes) else repr(a) for a in args)
        super().__init__(f"reverted with {name}({shown})")
        self.name = name
        self.args_ = args
        self.data = data


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
