"""The API documentation page, ``/docs``: Swagger UI served from this service, with no CDN.

Swagger UI's files come from the ``fastapi-offline`` package (pinned in requirements.lock); the
page and its initializer script are ours (``docs_assets/``), so that the page runs under the
same strict Content-Security-Policy as the verification page: own scripts and styles only, no
inline script, requests only to this origin. It works offline."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from anchor_service.api.web import PAGE_HEADERS, packaged_file

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# name -> (package holding it, its folder in the package, media type)
_ASSETS = {
    "swagger-ui-bundle.js": ("fastapi_offline", "static", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("fastapi_offline", "static", "text/css; charset=utf-8"),
    "favicon.png": ("fastapi_offline", "static", "image/png"),
    "swagger-init.js": ("anchor_service.api", "docs_assets", "text/javascript; charset=utf-8"),
}
# Swagger UI's own stylesheet draws its icons as data: SVG images; nothing else is relaxed.
_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self'", "img-src 'self' data:"),
}


@router.get("/docs")
def page() -> Response:
    return Response(packaged_file("anchor_service.api", "docs_assets", "index.html"),
                    media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/docs/{name}")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise HTTPException(404, f"no such file: {name}")
    package, folder, media_type = _ASSETS[name]
    return Response(packaged_file(package, folder, name), media_type=media_type, headers=_HEADERS)
