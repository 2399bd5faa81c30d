"""Operations: liveness, readiness (database and chain reachable) and Prometheus metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from web3.exceptions import Web3Exception

from anchor_service import __version__
from anchor_service.api.deps import ComponentsDep
from anchor_service.service import Components
from anchor_service.store import StoreError

__all__ = ["router"]

router = APIRouter(tags=["operations"])
log = logging.getLogger("anchor_service.api")
_LISTED = 20  # batch ids listed per issuer and reason in /readyz (the count is exact)
READINESS_TTL = 1.0  # seconds a readiness answer is reused
METRICS_TTL = 1.0  # seconds the queue and blocked-batch gauges are reused

T = TypeVar("T")


class _Cached(Generic[T]):
    """One value, computed again once it is ``ttl`` seconds old, by one caller at a time;
    while it is being computed, the others get the previous value rather than wait (a slow
    chain node would otherwise hold a worker thread per request)."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = 0.0

    def get(self, compute: Callable[[], T]) -> T:
        value = self._value
        if value is not None and time.monotonic() - self._at < self._ttl:
            return value
        if value is None:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return value  # being computed: the previous answer meanwhile
        try:
            if self._value is None or time.monotonic() - self._at >= self._ttl:
                self._value = compute()
                self._at = time.monotonic()
            return self._value
        finally:
            self._lock.release()


def _app_cache(request: Request, name: str, ttl: float) -> _Cached[Any]:
    """The app's cache ``name`` (one per app, made at first use; a race here only computes
    one extra value)."""
    cache: _Cached[Any] | None = getattr(request.app.state, name, None)
    if cache is None:
        cache = _Cached(ttl)
        setattr(request.app.state, name, cache)
    return cache


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Database and chain reachable; batches that cannot be anchored",
            responses={503: {"description": "Not ready: the database or the chain is "
                                            "unreachable"}})
def readyz(request: Request, components: ComponentsDep) -> JSONResponse:
    """Ready when the database and the chain answer. ``blocked`` lists the batches that
    cannot be anchored now and why (an issuer the registry does not trust: its body
    suspended, its key revoked...). They do not make the replica not ready: that is the
    registry's decision about one issuer, not a fault of this replica; every replica would
    report it alike, and taking them all out of service would stop receipts, verification and
    the other issuers without anchoring those batches any sooner.

    The answer is reused for a second, so the database and the chain node are asked at
    most about once a second however often readiness is asked."""
    answer, status = _app_cache(request, "readiness", READINESS_TTL).get(
        lambda: _readiness(components))
    return JSONResponse(answer, status_code=status)


def _readiness(components: Components) -> tuple[dict[str, object], int]:
    checks: dict[str, str] = {}
    try:
        components.store.ping()
        checks["database"] = "ok"
    except StoreError as exc:
        # The reason goes to the log (redacted), not to whoever asks: it may name hosts.
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    problem = components.pipeline.chain_problem
    try:
        # Until the node has been seen to be the deployment's chain, its problem is the answer.
        checks["chain"] = problem or f"ok, block {components.w3.eth.block_number}"
    except (Web3Exception, OSError) as exc:
        checks["chain"] = f"unreachable: {type(exc).__name__}"
    ready = all(value.startswith("ok") for value in checks.values())
    answer: dict[str, object] = {"ready": ready, **checks}
    if ready:
        answer["blocked"] = _blocked(components)
    return answer, 200 if ready else 503


def _blocked(components: Components) -> list[dict[str, object]]:
    try:
        groups = components.pipeline.blocked()
    except (StoreError, Web3Exception, OSError) as exc:
        log.warning("readiness: blocked batches unknown: %s", type(exc).__name__)
        return []
    return [{"issuer": g.issuer, "issuerId": g.issuer_id, "reason": g.reason,
             "batches": len(g.batch_ids), "batchIds": list(g.batch_ids[:_LISTED])}
            for g in groups]


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request, components: ComponentsDep) -> Response:
    """The service's metrics. The queue depth and the blocked batches are counted again at
    most once a second (counting reads every issuer's pending credentials and batches, which
    a public route cannot do once per request); the other figures are current."""
    _app_cache(request, "metrics_gauges", METRICS_TTL).get(lambda: _count_gauges(components))
    return Response(components.metrics.render(), media_type="text/plain; version=0.0.4")


def _count_gauges(components: Components) -> bool:
    depth = sum(components.store.pending(issuer.id)[0] for issuer in components.store.issuers())
    components.metrics.queue_depth.set(depth)
    try:
        components.metrics.set_blocked((g.issuer, g.reason, len(g.batch_ids))
                                       for g in components.pipeline.blocked())
    except (Web3Exception, OSError) as exc:  # the chain is down: keep the last figures
        log.warning("metrics: blocked batches not counted: %s", type(exc).__name__)
    return True
