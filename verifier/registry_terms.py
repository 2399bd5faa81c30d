"""The names of the registry's numeric codes, in one place for every Python user: the
contracts' enums (``IIssuerRegistry.Kind``, ``Status``, ``TrustCode``) and scope bits."""

from __future__ import annotations

from typing import Final

__all__ = ["ALL_SCOPES", "KIND_NAMES", "SCOPES", "STATUS_NAMES", "TRUST_CODES", "scope_names"]

SCOPES: Final = {"formal-degree": 1, "formal-non-degree": 2, "non-formal": 4}
ALL_SCOPES: Final = 1 | 2 | 4
KIND_NAMES: Final = {1: "body", 2: "issuer"}
STATUS_NAMES: Final = {1: "active", 2: "suspended", 3: "revoked"}
TRUST_CODES: Final = ("trusted", "unknown key", "key not yet valid", "key expired",
                      "key revoked", "entity not active", "accreditor not active")


def scope_names(bits: int) -> list[str]:
    """The scope names set in ``bits``, in declaration order."""
    return [name for name, bit in SCOPES.items() if bits & bit]
