"""Request and response bodies of the HTTP API (separate models for each direction)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from anchor_service.signing import suites

__all__ = [
    "AcceptedItem",
    "AccreditationOut",
    "BatchOut",
    "BlockOut",
    "BulkStatusChangeIn",
    "BulkStatusChangeOut",
    "CredentialOut",
    "CredentialStatusOut",
    "ErrorOut",
    "IssuerOut",
    "JsonInt",
    "StatusChangeIn",
    "StatusChangeOut",
    "SubmitIn",
    "SubmitOut",
    "TrustOut",
    "error_responses",
    "integral",
    "without_default",
]

def integral(value: object) -> object:
    """JSON Schema counts 3.0 as an integer; so does this API (and nothing looser)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: An integer in a request body: strict (no strings, no booleans), but 3.0 counts.
JsonInt = Annotated[int, BeforeValidator(integral)]
HexDigest = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$",
                                 description="SHA-256 of the RFC 8785 canonical credential")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


def without_default(schema: dict[str, Any]) -> None:
    """For ``json_schema_extra``: an optional field's absence is not a value a client sends."""
    schema.pop("default", None)


def _suite_schema(schema: dict[str, Any]) -> None:
    """The suites the service signs with, as the schema's enum."""
    schema.pop("default", None)
    schema["enum"] = list(suites())


class SubmitIn(_In):
    """Either full credentials (JSON objects) or precomputed digests, not both."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": [{"required": ["credentials"]}, {"required": ["digests"]}]})

    # Absent, not null: the schema offers no null, so null is refused like any wrong type.
    credentials: Annotated[list[dict[str, Any]], Field(min_length=1)] | SkipJsonSchema[None] = (
        Field(None, json_schema_extra=without_default,
              description="credentials to anchor; each is canonicalised (RFC 8785) and hashed. "
              "Numbers must be exact in I-JSON: integers within +-(2**53 - 1), and no float "
              "that RFC 8785 writes as an integer beyond that (such as 1e16); send those as "
              "strings (422 otherwise)."))
    digests: Annotated[list[HexDigest], Field(min_length=1)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="digests of credentials the issuer keeps private")
    suite: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=_suite_schema,
        description="the Data Integrity suite that signs these credentials (default: the "
        "issuer's, else eddsa-jcs-2022); only for `credentials`, and only for an issuer with "
        "a signing key (422 otherwise, and for a suite that is not one of these or does not "
        "fit the issuer's key)")

    @model_validator(mode="after")
    def _exactly_one(self) -> SubmitIn:
        given = sorted(self.model_fields_set & {"credentials", "digests"})
        if len(given) != 1:
            raise ValueError("send exactly one of `credentials` or `digests`")
        if getattr(self, given[0]) is None:
            raise ValueError(f"`{given[0]}` must be a list, not null")
        return self


class AcceptedItem(_Out):
    id: str
    digest: str = Field(description="what is anchored: SHA-256 of the canonical credential as "
                        "stored (signed by the service, proof included, when the issuer has a "
                        "signing key); a resubmitted credential keeps its first digest")
    created: bool = Field(description="false when this issuer had sent it before (same id)")


class SubmitOut(_Out):
    accepted: list[AcceptedItem]
    count: int


class CredentialOut(_Out):
    id: str
    digest: str
    state: Literal["pending", "batched", "sent", "anchored"]
    batch_id: int | None = Field(None, alias="batchId")
    leaf_index: int | None = Field(None, alias="leafIndex")
    root: str | None = None
    transaction_hash: str | None = Field(None, alias="transactionHash")
    block_number: int | None = Field(None, alias="blockNumber")
    status_list: int | None = Field(
        None, alias="statusList", description="the credential's status list number (null: "
        "anchored on a CredentialAnchor 1.x deployment, before status lists)")
    status_list_index: int | None = Field(None, alias="statusListIndex",
                                          description="its index in that list")


class BatchOut(_Out):
    id: int
    size: int
    state: Literal["built", "sent", "anchored"]
    root: str
    created_at: float = Field(alias="createdAt")
    transaction_hash: str | None = Field(None, alias="transactionHash")
    block_number: int | None = Field(None, alias="blockNumber")
    block_hash: str | None = Field(None, alias="blockHash")
    blocked_reason: str | None = Field(
        None, alias="blockedReason",
        description="why this unfinished batch cannot be anchored now, such as \"issuer not "
        "trusted: body 1 suspended\" (the registry's view, checked at most once a second); "
        "null when nothing stands in its way. A blocked batch is anchored as soon as the "
        "cause is lifted (the body reactivated, for example).")


class StatusChangeIn(_In):
    reason: JsonInt = Field(0, ge=0, le=255, description="reason code, recorded in the event")


class StatusChangeOut(_Out):
    id: str
    action: Literal["revoke", "suspend", "reinstate"]
    transaction_hash: str = Field(alias="transactionHash")


class BulkStatusChangeIn(_In):
    ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]],
                   Field(min_length=1)] = Field(
        description="ids of the issuer's credentials (at most max_items_per_request); all are "
        "checked before anything is sent")
    reason: JsonInt = Field(0, ge=0, le=255, description="reason code, recorded in the events")


class BulkStatusChangeOut(_Out):
    action: Literal["revoke", "suspend", "reinstate"]
    count: int = Field(description="credentials changed (distinct ids)")
    transaction_hashes: list[str] = Field(
        alias="transactionHashes", description="one transaction per status list and per "
        "10,000 indices, in the order sent")


class BlockOut(_Out):
    """The block a status was read at: the evidence anyone can check against the chain."""

    number: int
    hash: str
    timestamp: int = Field(description="the block's time, unix seconds")


class CredentialStatusOut(_Out):
    id: str
    revoked: bool
    suspended: bool
    status_list: int = Field(alias="statusList")
    status_list_index: int = Field(alias="statusListIndex")
    revocation_list: str | None = Field(
        None, alias="revocationList",
        description="the published revocation list (statusListCredential); null for an issuer "
        "without a did:web DID")
    suspension_list: str | None = Field(
        None, alias="suspensionList",
        description="the published suspension list; null for an issuer without a did:web DID")
    block: BlockOut


class AccreditationOut(_Out):
    """One entity of an issuer's accreditation chain, as the registry records it now."""

    id: int
    kind: str = Field(description="body or issuer")
    status: str = Field(description="active, suspended or revoked")
    did: str
    revoked_from: int | None = Field(
        None, alias="revokedFrom",
        description="unix time from which a back-dated revocation counts, if any")


class TrustOut(_Out):
    """Whether the registry trusts the issuer's key now, as the anchor contract checks it."""

    trusted: bool
    code: str = Field(description="the registry's trust code: trusted, key revoked, "
                      "entity not active, accreditor not active...")
    reason: str | None = Field(None, description="why not, such as \"issuer not trusted: "
                               "body 1 suspended\"")
    failing_entity_id: int | None = Field(None, alias="failingEntityId",
                                          description="the entity that is not active")


class IssuerOut(_Out):
    id: int
    name: str
    entity_id: int = Field(alias="entityId")
    did: str
    key_address: str = Field(alias="keyAddress")
    status: str | None = Field(None, description="the issuer entity's own status")
    scope: list[str] | None = None
    trust: TrustOut | None = Field(None, description="the registry's answer now (in GET "
                                   "/v1/registry/issuers; null elsewhere)")
    accreditation: list[AccreditationOut] = Field(
        default_factory=list, description="the issuer's entity, then each accreditation body "
        "above it up to the root, with its status now (in GET /v1/registry/issuers)")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all with the :class:`ErrorOut` body."""
    return {code: {"model": ErrorOut} for code in codes}


class ErrorOut(_Out):
    error: str = Field(description="machine-readable kind")
    detail: str = Field(description="what is wrong, naming the field where there is one")
