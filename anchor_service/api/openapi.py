"""The OpenAPI document, made true to what the service answers: every 422 has the service's
own error body (not FastAPI's default shape, which the error handlers replace), and every
rate-limited route documents its 429."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from anchor_service.api.limits import RateLimit
from anchor_service.api.schemas import ErrorOut

__all__ = ["install_openapi"]

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _corrected(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _corrected(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault("ErrorOut", ErrorOut.model_json_schema())
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request", **_ERROR}
            if "requestBody" in operation:  # a body that is not JSON at all
                responses.setdefault("400", {"description": "Malformed body", **_ERROR})
            if path not in RateLimit.EXEMPT:
                responses.setdefault("429", {
                    "description": "Too many requests (see Retry-After)", **_ERROR,
                    "headers": {"Retry-After": {"schema": {"type": "integer"},
                                                "description": "seconds to wait"}}})
    return schema
