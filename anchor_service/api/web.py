"""The verification web page: static files from ``verifier/web``, served with a strict CSP.

The page calls ``POST /v1/verify``; it needs no token and keeps nothing. ``/`` leads to it.
The portfolio view (``/verify/portfolio``) calls ``POST /v1/portfolios/verify`` the same way."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

__all__ = ["PAGE_HEADERS", "packaged_file", "router"]

router = APIRouter(include_in_schema=False)

_ASSETS = {"verify.js": "text/javascript; charset=utf-8", "verify.css": "text/css; charset=utf-8",
           "page.js": "text/javascript; charset=utf-8",
           "portfolio.js": "text/javascript; charset=utf-8",
           "portfolio.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
# The pages load only their own scripts and style, talk only to this origin, and may not be
# framed (no clickjacking of a "valid" verdict).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def packaged_file(package: str, folder: str, name: str) -> bytes:
    """A file shipped in ``package``'s ``folder``, read once."""
    return (files(package) / folder / name).read_bytes()


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/verify/favicon.svg", status_code=308)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/verify", status_code=307)


@router.get("/verify")
def page() -> Response:
    return Response(packaged_file("verifier", "web", "index.html"),
                    media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/verify/portfolio")
def portfolio_page() -> Response:
    """The portfolio view: it calls ``POST /v1/portfolios/verify``, under the same CSP."""
    return Response(packaged_file("verifier", "web", "portfolio.html"),
                    media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/verify/{name}")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise HTTPException(404, f"no such file: {name}")
    return Response(packaged_file("verifier", "web", name), media_type=_ASSETS[name],
                    headers=PAGE_HEADERS)
