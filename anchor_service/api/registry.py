"""/v1/registry: the issuers this service anchors for, as the on-chain registry sees them now:
each issuer's trust (and why not) and its accreditation chain with every body's status."""

from __future__ import annotations

from fastapi import APIRouter

from anchor_service.api.deps import ComponentsDep, IssuerIdentity
from anchor_service.api.schemas import AccreditationOut, IssuerOut, TrustOut, error_responses
from verifier.contract_types import scope_names

__all__ = ["router"]

router = APIRouter(prefix="/v1/registry", tags=["registry"])


@router.get("/issuers", response_model=list[IssuerOut], response_model_by_alias=True,
            responses=error_responses(401, 502, 503),
            summary="Issuers served here, with their trust now and accreditation chain")
def issuers(components: ComponentsDep, identity: IssuerIdentity) -> list[IssuerOut]:
    """Each issuer with the registry's answer now (what the anchor contract checks before an
    anchor) and its accreditation chain, the issuer's entity first: a suspended or revoked
    body above the issuer shows here, with the reason its submissions are refused."""
    del identity  # any issuer may read the registry
    out = []
    for issuer in components.store.issuers():
        trust = components.pipeline.trust.check(issuer, with_chain=True)
        own = trust.chain[0] if trust.chain else None
        out.append(IssuerOut(
            id=issuer.id, name=issuer.name, entity_id=issuer.entity_id, did=issuer.did,
            key_address=issuer.key_address, status=None if own is None else own.status.label,
            scope=None if own is None else scope_names(own.scope),
            trust=TrustOut(trusted=trust.trusted, code=trust.code.reason, reason=trust.reason,
                           failing_entity_id=trust.failing_entity_id),
            accreditation=[AccreditationOut(id=link.id, kind=link.kind.label,
                                            status=link.status.label,
                                            did=link.did, revoked_from=link.revoked_from or None)
                           for link in trust.chain],
        ))
    return out
