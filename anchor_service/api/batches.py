"""/v1/batches: list an issuer's batches (with why one cannot be anchored), and force a batch
to anchor now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from anchor_service.api.deps import ComponentsDep, IssuerIdentity
from anchor_service.api.errors import ApiError
from anchor_service.api.schemas import BatchOut, error_responses
from anchor_service.service import Components
from anchor_service.store import BatchRecord, BatchState

__all__ = ["router"]

router = APIRouter(prefix="/v1/batches", tags=["batches"])
_ERRORS = error_responses(401, 403, 503)


def batch_out(batch: BatchRecord, blocked_reason: str | None = None) -> BatchOut:
    return BatchOut(
        id=batch.id, size=batch.size, state=batch.state.value, root="0x" + batch.root.hex(),
        created_at=batch.created_at,
        transaction_hash=None if batch.tx_hash is None else "0x" + batch.tx_hash.hex(),
        block_number=batch.block_number,
        block_hash=None if batch.block_hash is None else "0x" + batch.block_hash.hex(),
        blocked_reason=blocked_reason,
    )


def _with_reasons(components: Components, batches: list[BatchRecord]) -> list[BatchOut]:
    # Only unfinished batches ask (the registry, at most once a second per issuer): a list of
    # anchored batches costs no chain call.
    return [batch_out(b, None if b.state is BatchState.ANCHORED
                      else components.pipeline.blocked_reason(b)) for b in batches]


@router.get("", response_model=list[BatchOut], response_model_by_alias=True, responses=_ERRORS,
            summary="The issuer's batches, newest first")
def list_batches(
    components: ComponentsDep, identity: IssuerIdentity,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,  # a database integer
                                        description="only batches with smaller ids")] = None,
) -> list[BatchOut]:
    batches = components.store.batches(issuer_id=identity.issuer_id, limit=limit,
                                       before_id=before)
    return _with_reasons(components, batches)


@router.post("", response_model=list[BatchOut], response_model_by_alias=True, status_code=202,
             responses=_ERRORS, summary="Cut and anchor everything waiting, now")
async def anchor_now(components: ComponentsDep, identity: IssuerIdentity) -> list[BatchOut]:
    issuer_id = identity.issuer_id or 0
    if issuer_id not in components.signers:
        raise ApiError(503, "no_key", "the service holds no key for this issuer")

    def run() -> list[BatchOut]:
        cut = components.pipeline.cut_now(issuer_id)
        components.pipeline.advance()
        return _with_reasons(components, [b for b in (components.store.batch(c.id) for c in cut)
                                          if b is not None])

    return await run_in_threadpool(run)
