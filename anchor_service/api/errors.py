"""The one place where errors become HTTP answers: every error kind has its status code and a
message that names the problem. Bad input is a 4xx, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from web3.exceptions import Web3Exception

from anchor_service.errors import (
    AnchoredOn1xError,
    AnchorServiceError,
    ChainError,
    CredentialRevokedError,
    NotAnchoredError,
    RevertError,
    StateUnavailableError,
    StatusChangeIncompleteError,
    UnknownBlockError,
    UnknownCredentialError,
)
from anchor_service.logs import Redactor
from anchor_service.store import StoreError
from verifier.errors import ContractTypeError, VerifierError

__all__ = ["ApiError", "BusyError", "install_error_handlers", "validation_detail"]

log = logging.getLogger("anchor_service.api")


class ApiError(AnchorServiceError):
    """An error with its HTTP status, raised by route handlers."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class BusyError(ApiError):
    """Every verification slot is taken: 503 with Retry-After, before the body is read."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(503, "busy", detail)
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail}, status_code=503,
                            headers={"Retry-After": str(self.retry_after)})


def _answer(request: Request, status: int, error: str, detail: str,
            headers: Mapping[str, str] | None = None) -> JSONResponse:
    redact: Redactor = getattr(request.app.state, "redact", Redactor())
    return JSONResponse({"error": error, "detail": redact(detail)}, status_code=status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = ({"Retry-After": str(exc.retry_after)} if isinstance(exc, BusyError)
                   else None)
        return _answer(request, exc.status, exc.error, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(request, 422, "invalid_request", validation_detail(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Every method of the path, not only those of the route Starlette tried first.
            headers["Allow"] = ", ".join(_methods_of(request))
        return _answer(request, exc.status_code, "http_error", str(exc.detail), headers)

    @app.exception_handler(StatusChangeIncompleteError)
    async def incomplete(request: Request, exc: StatusChangeIncompleteError) -> JSONResponse:
        # The transactions already mined are named, in the message and as a list: their
        # changes stand, and a client that retries needs to know them.
        redact: Redactor = getattr(request.app.state, "redact", Redactor())
        log.warning("status_change_incomplete: %s", exc)
        return JSONResponse({"error": "status_change_incomplete", "detail": redact(str(exc)),
                             "transactionHashes": ["0x" + h.hex() for h in exc.mined]},
                            status_code=exc.http_status)

    for kind in _STATUS_OF:
        app.add_exception_handler(kind, _known_error)


def validation_detail(errors: Sequence[Any]) -> str:
    """The first validation error as ``field.path: message``. The path names fields and
    list positions only: not "body", nor the union branch pydantic tried ("list[...]")."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ())
                     if isinstance(part, int) or (part != "body" and part.isidentifier()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _methods_of(request: Request) -> list[str]:
    """The methods of the routes whose path matches the request's, the path documented for
    it: of those with the fewest parameters (``/v1/credentials/revoke`` is its own path, not
    ``/v1/credentials/{credential_id}``)."""
    matching = [route for route in _routes_in(request.app.router.routes)
                if route.matches(request.scope)[0] is not Match.NONE]
    fewest = min((getattr(route, "path", "").count("{") for route in matching), default=0)
    return sorted({method for route in matching
                   if getattr(route, "path", "").count("{") == fewest
                   for method in getattr(route, "methods", None) or ()})


def _routes_in(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of ``routes``, each included router's (FastAPI wraps those in a route of its
    own, which has no methods) in its place."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is None:
            yield route
        else:
            yield from _routes_in(included.routes)


# Each error type of the lower layers, with its HTTP status and machine-readable kind. Lookup
# follows the exception's class hierarchy, so RevertError (a ChainError) is a 409, not a 503.
_STATUS_OF: dict[type[Exception], tuple[int, str]] = {
    UnknownCredentialError: (404, "not_found"),
    NotAnchoredError: (409, "not_anchored"),
    AnchoredOn1xError: (409, "anchored_on_1x"),
    CredentialRevokedError: (409, "revoked"),
    StateUnavailableError: (409, "state_unavailable"),
    UnknownBlockError: (404, "unknown_block"),
    RevertError: (409, "contract_refused"),
    # A contract answer that fits no model (an enum value these contracts do not have):
    # the chain, not the request, is at fault.
    ContractTypeError: (502, "chain_answer_unexpected"),
    VerifierError: (422, "invalid_document"),
    ChainError: (503, "chain_unavailable"),
    Web3Exception: (503, "chain_unavailable"),
    StoreError: (503, "store_unavailable"),
    OSError: (503, "unavailable"),  # a connection refused or reset under the chain client
}


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    status, error = next(_STATUS_OF[k] for k in type(exc).__mro__ if k in _STATUS_OF)
    if status >= 500:
        log.warning("%s: %s", error, exc)
    return _answer(request, status, error, str(exc))
