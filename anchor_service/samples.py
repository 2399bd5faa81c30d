"""Sample credentials: the one factory behind ``anchor-service demo``'s generated credentials,
the tests' and the benchmark scripts'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SAMPLE_ISSUER", "VC2_CONTEXT", "make_credential"]

VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
SAMPLE_ISSUER = "did:web:uni-a.example"


def make_credential(tag: str | int, *, id_prefix: str = "urn:test",
                    issuer: str | Mapping[str, Any] = SAMPLE_ISSUER,
                    subject: Mapping[str, Any] | None = None,
                    types: Sequence[str] = ("VerifiableCredential",),
                    **fields: Any) -> dict[str, Any]:
    """A W3C VC 2.0 credential with id ``{id_prefix}:{tag}``, issued by ``issuer`` (a DID, or
    the whole issuer object) about ``subject`` (a learner with a non-ASCII name and 2.5 ECTS
    unless given); ``fields`` are added at the top level (``validFrom``, ``learningScope``,
    ...) and may replace any member."""
    return {
        "@context": [VC2_CONTEXT],
        "id": f"{id_prefix}:{tag}",
        "type": list(types),
        "issuer": {"id": issuer} if isinstance(issuer, str) else dict(issuer),
        "credentialSubject": dict(subject) if subject is not None else {"name": "Zoë",
                                                                        "ects": 2.5},
        **fields,
    }
