"""/v1/registry: the issuers this service anchors for, as the on-chain registry sees them."""

from __future__ import annotations

from fastapi import APIRouter

from anchor_service.api.deps import ComponentsDep, IssuerIdentity
from anchor_service.api.schemas import ErrorOut, IssuerOut
from verifier.registry_terms import STATUS_NAMES, scope_names

__all__ = ["router"]

router = APIRouter(prefix="/v1/registry", tags=["registry"])


@router.get("/issuers", response_model=list[IssuerOut], response_model_by_alias=True,
            responses={401: {"model": ErrorOut}, 503: {"model": ErrorOut}},
            summary="Issuers served here, with their on-chain status and scope")
def issuers(components: ComponentsDep, identity: IssuerIdentity) -> list[IssuerOut]:
    del identity  # any issuer may read the registry
    registry = components.deployment.contracts(components.w3)[0]
    out = []
    for issuer in components.store.issuers():
        entity = registry.functions.entity(issuer.entity_id).call()
        out.append(IssuerOut(
            id=issuer.id, name=issuer.name, entity_id=issuer.entity_id, did=issuer.did,
            key_address=issuer.key_address, status=STATUS_NAMES.get(entity[3], "unknown"),
            scope=scope_names(entity[4]),
        ))
    return out
