"""Dependencies of the route handlers: the app's components and the caller's identity.

They are coroutines: FastAPI runs a plain function dependency in its thread pool, and a thread
hand-over per dependency was a large share of a cheap request's cost. The one that reads the
database (the token's identity) goes to a thread only when its answer is not cached."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from anchor_service.api.errors import ApiError
from anchor_service.api.limits import mark_authenticated
from anchor_service.service import Components
from anchor_service.store import TokenIdentity
from verifier.chain import Lru

__all__ = ["AdminIdentity", "ComponentsDep", "IssuerIdentity", "answered_by", "issuer_identity"]

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
        identity = await run_in_threadpool(components.store.token_identity, token)
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


def answered_by(handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> type[APIRoute]:
    """A route class whose requests ``handler`` answers, calling the route's endpoint with
    dependencies it finds itself (``request.app.state.components``,
    :func:`issuer_identity`, ...), instead of FastAPI's dependency solving: for the hottest
    route, where that solving was a sixth of the request's cost. The endpoint's signature
    still describes the route (OpenAPI); everything around the handler (middleware, error
    handlers, FastAPI's body limit) is as for any route."""

    class _AnsweredBy(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            return handler

    return _AnsweredBy


IssuerIdentity = Annotated[TokenIdentity, Depends(_issuer)]
AdminIdentity = Annotated[TokenIdentity, Depends(_admin)]
