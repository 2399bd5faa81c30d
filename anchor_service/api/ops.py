"""Operations: liveness, readiness (database and chain reachable) and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from web3.exceptions import Web3Exception

from anchor_service.api.deps import ComponentsDep
from anchor_service.store import StoreError

__all__ = ["router"]

router = APIRouter(tags=["operations"])
log = logging.getLogger("anchor_service.api")


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and chain reachable", responses={
    503: {"description": "Not ready: the database or the chain is unreachable"}})
def readyz(components: ComponentsDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        components.store.ping()
        checks["database"] = "ok"
    except StoreError as exc:
        # The reason goes to the log (redacted), not to whoever asks: it may name hosts.
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    try:
        checks["chain"] = f"ok, block {components.w3.eth.block_number}"
    except (Web3Exception, OSError) as exc:
        checks["chain"] = f"unreachable: {type(exc).__name__}"
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(components: ComponentsDep) -> Response:
    depth = sum(components.store.pending(issuer.id)[0] for issuer in components.store.issuers())
    components.metrics.queue_depth.set(depth)
    return Response(components.metrics.render(), media_type="text/plain; version=0.0.4")
