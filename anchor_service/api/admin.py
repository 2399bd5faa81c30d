"""/v1/admin: register issuers and issue API tokens (admin tokens only)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from web3 import Web3

from anchor_service.api.deps import AdminIdentity, ComponentsDep
from anchor_service.api.errors import ApiError
from anchor_service.api.schemas import (
    IssuerOut,
    JsonInt,
    error_responses,
    integral,
    without_default,
)
from verifier.contract_types import Entity, Kind, read

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = logging.getLogger("anchor_service.audit")
_ERRORS = error_responses(401, 403, 404, 409, 422, 502, 503)


class IssuerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    entity_id: JsonInt = Field(alias="entityId", ge=1)
    key_address: str = Field(alias="keyAddress", pattern=r"^0x[0-9a-fA-F]{40}$")


class TokenIn(BaseModel):
    """An issuer token names its issuer; an admin token names none."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True,
                              json_schema_extra={"oneOf": [
                                  {"properties": {"role": {"const": "issuer"}},
                                   "required": ["issuerId"]},
                                  {"properties": {"role": {"const": "admin"}},
                                   "not": {"required": ["issuerId"]}}]})

    role: Literal["issuer", "admin"]
    # The bound sits on the integer itself: on the union it would also be applied to null.
    issuer_id: Annotated[int, Field(ge=1), BeforeValidator(integral)] | SkipJsonSchema[None] = (
        Field(
        None, alias="issuerId", json_schema_extra=without_default))


class TokenOut(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
    role: str


@router.post("/issuers", response_model=IssuerOut, response_model_by_alias=True,
             status_code=201, responses=_ERRORS,
             summary="Serve an issuer: its registry entity and anchoring key")
def add_issuer(issuer: IssuerIn, components: ComponentsDep, _: AdminIdentity) -> IssuerOut:
    """The key must belong to the entity on chain, and the entity must be a trusted issuer
    (409 otherwise: the request does not fit the registry's state)."""
    registry, _anchor = components.deployment.contracts(components.w3)
    key = Web3.to_checksum_address(issuer.key_address)
    if registry.functions.entityOfKey(key).call() != issuer.entity_id:
        raise ApiError(409, "key_not_of_entity",
                       f"keyAddress: {key} is not a key of registry entity {issuer.entity_id}")
    entity = read(Entity, registry.functions.entity(issuer.entity_id))
    if entity.kind is not Kind.TRUSTED_ISSUER:
        raise ApiError(409, "not_an_issuer",
                       f"entityId: entity {issuer.entity_id} is not an issuer")
    stored = components.store.add_issuer(issuer.name, entity_id=issuer.entity_id,
                                         key_address=key, did=entity.did)
    components.load_signer(stored)  # anchors for it at once if its keystore is present
    log.info("issuer registered", extra={"issuer": stored.id, "entity": stored.entity_id,
                                         "key": key})
    return IssuerOut(id=stored.id, name=stored.name, entity_id=stored.entity_id, did=stored.did,
                     key_address=stored.key_address)


@router.post("/tokens", response_model=TokenOut, status_code=201, responses=_ERRORS,
             summary="Create an API token")
def add_token(request: TokenIn, components: ComponentsDep, _: AdminIdentity) -> TokenOut:
    if request.role == "issuer":
        if request.issuer_id is None:
            raise ApiError(422, "invalid_request", "issuerId: required for an issuer token")
        if request.issuer_id not in {issuer.id for issuer in components.store.issuers()}:
            raise ApiError(404, "not_found", f"issuerId: no issuer {request.issuer_id}")
    elif request.issuer_id is not None:
        raise ApiError(422, "invalid_request", "issuerId: an admin token has none")
    token = components.store.add_token(role=request.role, issuer_id=request.issuer_id)
    log.info("token created", extra={"role": request.role, "issuer": request.issuer_id})
    return TokenOut(token=token, role=request.role)
