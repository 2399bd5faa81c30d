"""Dependencies of the route handlers: the app's components and the caller's identity.

They are coroutines: FastAPI runs a plain function dependency in its thread pool, and a thread
hand-over per dependency was a large share of a cheap request's cost. The one that reads the
database (the token's identity) goes to a thread only when its answer is not cached."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any, ClassVar, cast

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute, APIRouter
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from anchor_service.api.errors import ApiError
from anchor_service.api.limits import mark_authenticated
from anchor_service.service import Components
from anchor_service.store import TokenIdentity
from verifier.chain import Lru

__all__ = [
    "AdminIdentity", "ComponentsDep", "DirectRoutes", "IssuerIdentity", "answered_by",
    "direct_routes", "issuer_identity",
]

_bearer = HTTPBearer(auto_error=False, description="API token: issuer or admin")


async def _components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated[Components, Depends(_components)]


class TokenCache:
    """Identities of tokens found in the database, each kept ``ttl`` seconds (at most
    ``limit`` of them, the least recently used forgotten first). Only tokens that exist are
    kept: an unknown one is looked up each time (its requests are limited by address). A
    token removed from the database is refused by every worker within ``ttl`` seconds. Kept
    by the token's SHA-256, so that looking one up compares no secret text. Used only from
    the event loop's thread."""

    def __init__(self, ttl: float = 2.0, limit: int = 10_000) -> None:
        self.ttl = ttl
        # SHA-256 of the token -> (when read, its identity).
        self._entries: Lru[bytes, tuple[float, TokenIdentity]] = Lru(limit)

    def get(self, token: str) -> TokenIdentity | None:
        entry = self._entries.get(hashlib.sha256(token.encode()).digest())
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, token: str, identity: TokenIdentity) -> None:
        self._entries.put(hashlib.sha256(token.encode()).digest(), (time.monotonic(), identity))


def _token_cache(request: Request) -> TokenCache:
    cache = getattr(request.app.state, "token_cache", None)
    if not isinstance(cache, TokenCache):
        cache = request.app.state.token_cache = TokenCache()
    return cache


_Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _identity(request: Request, credentials: HTTPAuthorizationCredentials | None,
                    ) -> TokenIdentity:
    """Whose token the request carries (401 when none, or an unknown one). A plain coroutine,
    not a dependency of its own: the issuer and admin dependencies call it, which spares
    FastAPI a level of dependency solving on every authenticated request."""
    components: Components = request.app.state.components
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated", "send an API token: Authorization: Bearer <token>")
    token = credentials.credentials
    cache = _token_cache(request)
    identity = cache.get(token)
    if identity is None:
        identity = await components.in_thread(components.store.token_identity, token)
        if identity is not None:
            cache.put(token, identity)
    if identity is None:
        raise ApiError(401, "unauthenticated", "unknown API token")
    # Counted against the token's own rate-limit bucket, not the client's address.
    mark_authenticated(request.scope.setdefault("state", {}))
    return identity


async def _issuer(request: Request, credentials: _Bearer) -> TokenIdentity:
    identity = await _identity(request, credentials)
    if identity.role != "issuer" or identity.issuer_id is None:
        raise ApiError(403, "forbidden", "this route takes an issuer token")
    return identity


async def _admin(request: Request, credentials: _Bearer) -> TokenIdentity:
    identity = await _identity(request, credentials)
    if identity.role != "admin":
        raise ApiError(403, "forbidden", "this route takes an admin token")
    return identity


async def issuer_identity(request: Request) -> TokenIdentity:
    """What :data:`IssuerIdentity` gives, for a handler that finds its dependencies itself
    (:func:`answered_by`)."""
    return await _issuer(request, await _bearer(request))


Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_ExceptionAnswer = Callable[[Request, Exception], Coroutine[Any, Any, Response]]


class _AnsweredRoute(APIRoute):
    """A route whose requests its :attr:`handler` answers (:func:`answered_by`)."""

    handler: ClassVar[Handler]

    def get_route_handler(self) -> Handler:
        return type(self).handler


def answered_by(handler: Handler) -> type[APIRoute]:
    """A route class whose requests ``handler`` answers, calling the route's endpoint with
    dependencies it finds itself (``request.app.state.components``,
    :func:`issuer_identity`, ...), instead of FastAPI's dependency solving: for the hottest
    route, where that solving was a sixth of the request's cost. The endpoint's signature
    still describes the route (OpenAPI). Such a route at a path without parameters is
    answered by :class:`DirectRoutes` once the service's own middleware has let the request
    through."""
    return type("_AnsweredBy", (_AnsweredRoute,), {"handler": staticmethod(handler)})


def direct_routes(routers: Iterable[APIRouter]) -> dict[tuple[str, str], Handler]:
    """The handler of each route of ``routers`` that :func:`answered_by` made, by method and
    path, for those at a path without parameters (the others need the routers' matching)."""
    found: dict[tuple[str, str], Handler] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, _AnsweredRoute) and "{" not in route.path:
                found.update(dict.fromkeys(((method, route.path)
                                            for method in route.methods or ()),
                                           type(route).handler))
    return found


class DirectRoutes:
    """Pure ASGI middleware, the innermost of the service's own: a request for one of
    ``routes`` (by method and exact path) goes straight to its handler, past Starlette's
    exception middleware, the routers' matching and FastAPI's per-request exit stacks (about
    a tenth of a single submission's CPU). Its refusals are answered by the app's exception
    handlers, as for any route; an exception without one goes on up, to the 500 answer.
    Every other request goes on to ``app``."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (self._routes.get((scope["method"], scope["path"]))
                   if scope["type"] == "http" else None)
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except Exception as exc:
            answer = _exception_handler(scope["app"], exc)
            if answer is None:
                raise
            response = await answer(request, exc)
        await response(scope, receive, send)


def _exception_handler(app: Starlette, exc: Exception) -> _ExceptionAnswer | None:
    """The app's handler for ``exc``, looked up as Starlette's exception middleware looks
    it up (by the exception's classes, nearest first), or None. Handlers of 500 and of
    ``Exception`` are not the exception middleware's: the 500 answer, further out, uses
    them."""
    handlers = app.exception_handlers
    if isinstance(exc, HTTPException) and exc.status_code != 500 \
            and exc.status_code in handlers:
        return cast(_ExceptionAnswer, handlers[exc.status_code])
    for kind in type(exc).__mro__:
        if kind in handlers and kind is not Exception:
            return cast(_ExceptionAnswer, handlers[kind])
    return None


IssuerIdentity = Annotated[TokenIdentity, Depends(_issuer)]
AdminIdentity = Annotated[TokenIdentity, Depends(_admin)]
