"""The anchor service's exceptions. Every error this package raises derives from
:class:`AnchorServiceError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnchorServiceError",
    "BatchBlockedError",
    "BatchError",
    "ChainError",
    "KeyLoadError",
    "MissingExtraError",
    "NotAnchoredError",
    "RevertError",
    "SchemaMismatchError",
    "StoreError",
    "SubmitError",
    "UnknownCredentialError",
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
