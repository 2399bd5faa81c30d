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

    @app.exception_handler(UnknownCredentialError)
    async def unknown(_: Request, exc: UnknownCredentialError) -> JSONResponse:
        return _answer(404, "not_found", str(exc))

    @app.exception_handler(NotAnchoredError)
    async def not_anchored(_: Request, exc: NotAnchoredError) -> JSONResponse:
        return _answer(409, "not_anchored", str(exc))

    @app.exception_handler(RevertError)
    async def reverted(_: Request, exc: RevertError) -> JSONResponse:
        return _answer(409, "contract_refused", str(exc))

    @app.exception_handler(VerifierError)
    async def bad_document(_: Request, exc: VerifierError) -> JSONResponse:
        return _answer(422, "invalid_document", str(exc))

    @app.exception_handler(ChainError)
    async def chain_down(_: Request, exc: ChainError) -> JSONResponse:
        log.warning("chain error: %s", exc)
        return _answer(503, "chain_unavailable", str(exc))

    @app.exception_handler(StoreError)
    async def store_down(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("store error: %s", exc)
        return _answer(503, "store_unavailable", str(exc))
