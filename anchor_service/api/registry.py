"""/v1/registry: the issuers this service anchors for, as the on-chain registry sees them."""

from __future__ import annotations

from fastapi import APIRouter

from anchor_service.api.deps import ComponentsDep, IssuerIdentity
from anchor_service.api.schemas import ErrorOut, IssuerOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/registry", tags=["registry"])
_STATUSES = {1: "active", 2: "suspended", 3: "revoked"}
_SCOPES = {1: "formal-degree", 2: "formal-non-degree", 4: "non-formal"}


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
            key_address=issuer.key_address, status=_STATUSES.get(entity[3], "unknown"),
            scope=[name for bit, name in _SCOPES.items() if entity[4] & bit],
        ))
    return out
