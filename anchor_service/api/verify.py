"""POST /v1/verify: stateless verification of a bundle against the chain, for anyone.

The trust list is this service's own deployment (its chain and contracts); the answer is the
verifier library's report, every check with its evidence. No token is needed: verifying
reveals nothing that the bundle does not already hold."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from anchor_service.api.deps import ComponentsDep
from anchor_service.api.errors import ApiError
from anchor_service.api.schemas import error_responses
from anchor_service.service import Components
from verifier.chain import JsonRpcChainReader
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import parse_datetime, verify_bundle_text

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["verify"])
# Any JSON is documented as acceptable, because any JSON gets an answer: a document that is
# not a well-formed bundle is reported as a failed receipt_well_formed check, not refused.
# The bundle's own schema is verifier/schemas/bundle-v1.schema.json.
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "description": "A bundle (format microcred-anchor-bundle, version 1): a credential and "
    "its receipt. JSON Schema: verifier/schemas/bundle-v1.schema.json."}}}}}


@router.post("/verify", responses=error_responses(413, 415, 422), openapi_extra=_BODY,
             summary="Verify a bundle (credential and receipt) against the chain")
async def verify_bundle(
    request: Request, components: ComponentsDep,
    as_of: Annotated[str | None, Query(
        alias="asOf", json_schema_extra={"format": "date-time"},
        description="Judge the credential as of this time (ISO 8601 with a time zone): its "
        "validity period then, and its revocation and suspension as the chain stood then. "
        "Default: now.")] = None,
) -> JSONResponse:
    """Answers 200 with the report for any bundle, valid or not (``valid`` says which); a
    malformed bundle is reported as a failed ``receipt_well_formed`` check."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the bundle as application/json")
    body = await request.body()
    if not body.strip():
        raise ApiError(422, "invalid_request", "send a bundle as the request body")
    report = await run_in_threadpool(_verify, components, body, _time(as_of))
    return JSONResponse(report)


def _time(text: str | None) -> datetime | None:
    """An ISO 8601 date-time with a time zone, written with its "T" (OpenAPI's date-time)."""
    if text is None:
        return None
    try:
        if "T" not in text:
            raise ValueError(f"{text!r} is not an ISO 8601 date-time")
        return parse_datetime(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"query.asOf: {exc}") from None


def _verify(components: Components, body: bytes, as_of: datetime | None) -> dict[str, object]:
    deployment = components.deployment
    trust = TrustConfig(deployments=(TrustedDeployment(
        name="this service", chain_id=deployment.chain_id, anchor=deployment.anchor,
        registry=deployment.registry),), min_confirmations=components.settings.confirmations)
    reader = JsonRpcChainReader(components.w3)
    return verify_bundle_text(body, trust=trust, reader=reader, as_of=as_of).to_dict()
