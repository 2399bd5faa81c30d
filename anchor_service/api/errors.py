"""The one place where errors become HTTP answers: every error kind has its status code and a
message that names the problem. Bad input is a 4xx, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from anchor_service.chain import ChainError, RevertError
from anchor_service.errors import AnchorServiceError, NotAnchoredError, UnknownCredentialError
from anchor_service.store import StoreError
from verifier.errors import VerifierError

__all__ = ["ApiError", "install_error_handlers"]

log = logging.getLogger("anchor_service.api")


class ApiError(AnchorServiceError):
    """An error with its HTTP status, raised by route handlers."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def _answer(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _answer(exc.status, exc.error, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return _answer(422, "invalid_request", f"{where}: {message}" if where else message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(exc.status_code, "http_error", str(exc.detail))

    for kind in _STATUS_OF:
        app.add_exception_handler(kind, _known_error)


# Each error type of the lower layers, with its HTTP status and machine-readable kind. Lookup
# follows the exception's class hierarchy, so RevertError (a ChainError) is a 409, not a 503.
_STATUS_OF: dict[type[Exception], tuple[int, str]] = {
    UnknownCredentialError: (404, "not_found"),
    NotAnchoredError: (409, "not_anchored"),
    RevertError: (409, "contract_refused"),
    VerifierError: (422, "invalid_document"),
    ChainError: (503, "chain_unavailable"),
    StoreError: (503, "store_unavailable"),
}


async def _known_error(_: Request, exc: Exception) -> JSONResponse:
    status, error = next(_STATUS_OF[k] for k in type(exc).__mro__ if k in _STATUS_OF)
    if status >= 500:
        log.warning("%s: %s", error, exc)
    return _answer(status, error, str(exc))
