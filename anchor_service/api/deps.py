"""Dependencies of the route handlers: the app's components and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from anchor_service.api.errors import ApiError
from anchor_service.api.limits import mark_authenticated
from anchor_service.service import Components
from anchor_service.store import TokenIdentity

__all__ = ["AdminIdentity", "ComponentsDep", "IssuerIdentity"]

_bearer = HTTPBearer(auto_error=False, description="API token: issuer or admin")


def _components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated[Components, Depends(_components)]


def _identity(
    request: Request,
    components: ComponentsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenIdentity:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated", "send an API token: Authorization: Bearer <token>")
    identity = components.store.token_identity(credentials.credentials)
    if identity is None:
        raise ApiError(401, "unauthenticated", "unknown API token")
    # Counted against the token's own rate-limit bucket, not the client's address.
    mark_authenticated(request.scope.setdefault("state", {}))
    return identity


def _issuer(identity: Annotated[TokenIdentity, Depends(_identity)]) -> TokenIdentity:
    if identity.role != "issuer" or identity.issuer_id is None:
        raise ApiError(403, "forbidden", "this route takes an issuer token")
    return identity


def _admin(identity: Annotated[TokenIdentity, Depends(_identity)]) -> TokenIdentity:
    if identity.role != "admin":
        raise ApiError(403, "forbidden", "this route takes an admin token")
    return identity


IssuerIdentity = Annotated[TokenIdentity, Depends(_issuer)]
AdminIdentity = Annotated[TokenIdentity, Depends(_admin)]
