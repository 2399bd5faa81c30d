"""Request and response bodies of the VC-API routes (W3C CCG Verifiable Credentials API:
``IssueCredentialRequest``, ``VerifyCredentialRequest``, ``VerifyPresentationRequest`` and
their results), with this service's additions named as such: ``options.cryptosuite`` (the
Data Integrity suite to sign with), ``options.receipt`` / ``options.receipts`` (the anchor
receipts to verify against, for credentials this service did not anchor) and
``anchorReport`` (our verifier's full report, every check with its evidence)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from anchor_service.api.schemas import without_default

__all__ = [
    "CredentialResult",
    "IssueOptions",
    "IssueRequest",
    "IssueResponse",
    "PresentationResult",
    "VerifyCredentialOptions",
    "VerifyCredentialRequest",
    "VerifyPresentationOptions",
    "VerifyPresentationRequest",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Options(BaseModel):
    # VC-API verification options may carry implementation-specific members: those this
    # service does not know are ignored and named in the answer's warnings.
    model_config = ConfigDict(extra="allow", strict=True)


class IssueOptions(_In):
    """VC-API ``IssueCredentialOptions``, plus the suite to sign with."""

    cryptosuite: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="the Data Integrity cryptosuite: eddsa-jcs-2022 (the default), "
        "ecdsa-jcs-2019 (a P-256 key), eddsa-rdfc-2022; default: the issuer's own")
    credentialId: str | SkipJsonSchema[None] = Field(  # noqa: N815 - the VC-API's name
        None, json_schema_extra=without_default,
        description="accepted and ignored: the answer's Location names the service's id")
    mandatoryPointers: list[str] | SkipJsonSchema[None] = Field(  # noqa: N815
        None, json_schema_extra=without_default,
        description="selective disclosure is not supported: only an empty list is accepted")


class IssueRequest(_In):
    """VC-API ``IssueCredentialRequest``."""

    credential: dict[str, Any] = Field(
        description="the credential to sign (no proof); its issuer (a string or an object's "
        "id) must be the issuer's DID, and is set to it when absent")
    options: IssueOptions | SkipJsonSchema[None] = Field(None, json_schema_extra=without_default)


class IssueResponse(BaseModel):
    verifiableCredential: dict[str, Any] = Field(  # noqa: N815
        description="the credential with its DataIntegrityProof, accepted for anchoring")


_CHECKS_DESCRIPTION = (
    "the checks to run: \"proof\" (the issuer's Data Integrity proof verifies with the key "
    "its verificationMethod names, the credential's issuer's; nothing else, so no anchor is "
    "needed) and \"anchor\" (every check of this service's verifier: receipt, chain, "
    "registry, the issuer's signing key then, status; it includes the proof); default both; "
    "other names are ignored, with a warning")


class VerifyCredentialOptions(_Options):
    checks: list[str] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default, min_length=1, max_length=16,
        description=_CHECKS_DESCRIPTION)
    receipt: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="the credential's anchor receipt (format microcred-anchor-receipt, v1); "
        "default: the receipt this service holds for the credential, found by its digest")


class VerifyCredentialRequest(_In):
    """VC-API ``VerifyCredentialRequest``."""

    verifiableCredential: dict[str, Any]  # noqa: N815
    options: VerifyCredentialOptions | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default)


class VerifyPresentationOptions(_Options):
    checks: list[str] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default, min_length=1, max_length=16,
        description=_CHECKS_DESCRIPTION + " (for each credential)")
    challenge: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="must equal the presentation proof's challenge")
    domain: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="must equal the presentation proof's domain")
    receipts: list[dict[str, Any] | None] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="anchor receipts, in the order of the presentation's credentials (null: "
        "the receipt this service holds)")


class VerifyPresentationRequest(_In):
    """VC-API ``VerifyPresentationRequest``."""

    verifiablePresentation: dict[str, Any]  # noqa: N815
    options: VerifyPresentationOptions | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default)


class CredentialResult(BaseModel):
    """VC-API verification result of a credential."""

    verified: bool = Field(description="true only if every check passed")
    checks: list[str] = Field(description="names of the checks that passed")
    warnings: list[str]
    errors: list[str] = Field(description="each failed check, as `name: why`")
    anchorReport: dict[str, Any] | None = Field(  # noqa: N815
        description="this service's verifier report (every check with its evidence); null "
        "when no receipt was found to verify against")


class PresentationResult(BaseModel):
    """VC-API verification result of a presentation, and of each credential in it."""

    verified: bool = Field(description="the presentation's proof (if any), challenge and "
                           "domain, and every credential verified")
    checks: list[str] = Field(description="presentation checks that passed: proof, "
                              "challenge, domain, holder, credentials")
    warnings: list[str]
    errors: list[str]
    credentialResults: list[CredentialResult] = Field(  # noqa: N815
        description="one per credential, in the presentation's order")
