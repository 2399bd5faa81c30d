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
from pydantic import AwareDatetime

from anchor_service.api.deps import ComponentsDep
from anchor_service.api.schemas import error_responses
from anchor_service.service import Components
from verifier.chain import JsonRpcChainReader
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import verify_bundle_text

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["verify"])
_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": Bundle.model_json_schema()}}}}


@router.post("/verify", responses=error_responses(413), openapi_extra=_BODY,
             summary="Verify a bundle (credential and receipt) against the chain")
async def verify_bundle(
    request: Request, components: ComponentsDep,
    as_of: Annotated[AwareDatetime | None, Query(
        alias="asOf", description="Judge the credential as of this time (ISO 8601 with a time "
        "zone): its validity period then, and its revocation and suspension as the chain "
        "stood then. Default: now.")] = None,
) -> JSONResponse:
    """Answers 200 with the report for any bundle, valid or not (``valid`` says which); a
    malformed bundle is reported as a failed ``receipt_well_formed`` check."""
    body = await request.body()
    report = await run_in_threadpool(_verify, components, body, as_of)
    return JSONResponse(report)


def _verify(components: Components, body: bytes, as_of: datetime | None) -> dict[str, object]:
    deployment = components.deployment
    trust = TrustConfig(deployments=(TrustedDeployment(
        name="this service", chain_id=deployment.chain_id, anchor=deployment.anchor,
        registry=deployment.registry),), min_confirmations=components.settings.confirmations)
    reader = JsonRpcChainReader(components.w3)
    return verify_bundle_text(body, trust=trust, reader=reader, as_of=as_of).to_dict()
