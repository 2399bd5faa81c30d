"""/v1/batches: list an issuer's batches (with why one cannot be anchored), and cut a batch of
everything waiting now, its anchoring scheduled at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

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
             responses=_ERRORS, summary="Cut everything waiting into batches now; anchoring "
             "them is scheduled")
async def anchor_now(components: ComponentsDep, identity: IssuerIdentity) -> list[BatchOut]:
    """Cuts batches of everything the issuer has waiting, whatever its age, and answers at
    once: the batches cut by this request (state ``built``; an empty list when nothing was
    waiting). Sending them is scheduled, not awaited: the pipeline is woken and anchors them
    in its next round (the round of whichever replica or worker holds the issuer's sending
    lease); ``GET /v1/batches`` and the credentials' state show their progress, and
    ``blockedReason`` why one cannot be anchored now."""
    issuer_id = identity.issuer_id or 0
    if issuer_id not in components.signers:
        raise ApiError(503, "no_key", "the service holds no key for this issuer")

    def run() -> list[BatchOut]:
        # Never waits for a round in progress: under load, or with a slow node, a round
        # takes as long as its chain calls do.
        cut = components.pipeline.cut_now(issuer_id)
        components.pipeline.wake()
        return _with_reasons(components, cut)

    return await components.in_thread(run)
