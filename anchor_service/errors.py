"""The anchor service's exceptions. Every error this package raises derives from
:class:`AnchorServiceError`."""

from __future__ import annotations

__all__ = [
    "AnchorServiceError",
    "BatchError",
    "NotAnchoredError",
    "StoreError",
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
