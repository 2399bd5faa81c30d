"""/v1/admin: register issuers, issue API tokens and give issuers signing keys (admin tokens
only).

Signing keys: registering a key on chain takes a root administrator or a trusted key of the
issuer's accreditation body, and the service holds neither (it holds issuers' anchoring keys
and, optionally, a relayer key, which the registry gives no such right). So the API does what
the service can do alone, in two steps around the accreditor's transaction: ``POST
.../signing-key`` makes the key and keeps it encrypted in the keystore folder, and answers
its public key (for ``anchor-service registry add-signing-key``); ``PUT .../signing-key``
makes a key that the registry lists for the issuer and trusts now the issuer's current
signing key. Nothing is signed with a key before the registry lists it, so no credential is
anchored with a signature that would not verify. ``anchor-service signing-key create`` does
all three steps at once, with the accreditor's key."""

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
from anchor_service.errors import AnchorServiceError
from anchor_service.service import Components
from anchor_service.signing import DEFAULT_SUITE, SigningError, key_type_for_suite
from anchor_service.store import Issuer
from verifier.contract_types import ADDRESS_TEXT, Entity, Kind, read, signing_key_id
from verifier.did import verification_method_id
from verifier.errors import VerifierError
from verifier.multikey import KeyType, Multikey

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = logging.getLogger("anchor_service.audit")
_ERRORS = error_responses(401, 403, 404, 409, 422, 502, 503)


class IssuerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    entity_id: JsonInt = Field(alias="entityId", ge=1)
    key_address: str = Field(alias="keyAddress", pattern=f"^{ADDRESS_TEXT}$")


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


class SigningKeyIn(BaseModel):
    """A new signing key: its type, and the suite the issuer signs with."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["ed25519", "p256"] = "ed25519"
    suite: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="the issuer's Data Integrity suite (default: eddsa-jcs-2022 for Ed25519, "
        "ecdsa-jcs-2019 for P-256)")


class SigningKeyActivateIn(BaseModel):
    """Make a key made by ``POST .../signing-key`` and registered on chain the issuer's
    current signing key."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    public_key_multibase: str = Field(alias="publicKeyMultibase", min_length=2, max_length=256)
    suite: str | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="the issuer's Data Integrity suite (default: the key type's)")


class SigningKeyOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    issuer: str
    did: str
    entity_id: int = Field(alias="entityId")
    public_key_multibase: str | None = Field(alias="publicKeyMultibase")
    key_id: str | None = Field(None, alias="keyId", description="its id in the registry")
    suite: str | None = None
    verification_method: str | None = Field(None, alias="verificationMethod")
    active: bool = Field(description="whether the service signs the issuer's credentials "
                         "with this key now")
    register_with: str | None = Field(
        None, alias="registerWith", description="for a key not active yet: the command that "
        "registers it on chain (run by the issuer's accreditation body)")


def _served_issuer(components: Components, name: str) -> Issuer:
    issuer = components.store.issuer_named(name)
    if issuer is None:
        raise ApiError(404, "not_found", f"no issuer named {name!r}")
    return issuer


def _suite_for(key_type: KeyType, suite: str | None) -> str:
    """``suite``, or the default of ``key_type``; 422 when it does not fit the key."""
    chosen = suite or (DEFAULT_SUITE if key_type is KeyType.ED25519 else "ecdsa-jcs-2019")
    try:
        needed = key_type_for_suite(chosen)
    except SigningError as exc:
        raise ApiError(422, exc.error_code, f"suite: {exc}") from None
    if needed is not key_type:
        raise ApiError(422, "invalid_suite", f"suite: {chosen} needs a {needed.label} key, not "
                       f"{key_type.label}")
    return chosen


@router.get("/issuers/{name}/signing-key", response_model=SigningKeyOut,
            response_model_by_alias=True, responses=_ERRORS,
            summary="The issuer's current signing key")
def signing_key(name: str, components: ComponentsDep, _: AdminIdentity) -> SigningKeyOut:
    issuer = _served_issuer(components, name)
    if issuer.signing_key is None:
        return SigningKeyOut(issuer=issuer.name, did=issuer.did, entity_id=issuer.entity_id,
                             public_key_multibase=None, active=False)
    return _key_out(issuer, Multikey.from_multibase(issuer.signing_key),
                    issuer.signing_suite or DEFAULT_SUITE, active=True)


def _key_out(issuer: Issuer, key: Multikey, suite: str, *, active: bool,
             register_with: str | None = None) -> SigningKeyOut:
    return SigningKeyOut(
        issuer=issuer.name, did=issuer.did, entity_id=issuer.entity_id,
        public_key_multibase=key.multibase, key_id="0x" + signing_key_id(key).hex(), suite=suite,
        verification_method=verification_method_id(issuer.did, key), active=active,
        register_with=register_with)


@router.post("/issuers/{name}/signing-key", response_model=SigningKeyOut,
             response_model_by_alias=True, status_code=201, responses=_ERRORS,
             summary="Make a signing key for an issuer (registered on chain next)")
def create_signing_key(name: str, request: SigningKeyIn, components: ComponentsDep,
                       _: AdminIdentity) -> SigningKeyOut:
    """Make an Ed25519 or P-256 key and keep it encrypted in the keystore folder. It is not
    used yet: register it on chain for the issuer's entity (``registerWith``: the issuer's
    accreditation body or a root administrator signs), then make it current with ``PUT``.
    422 for an issuer whose DID is not a did:web, which standard verifiers cannot resolve."""
    issuer = _served_issuer(components, name)
    if not issuer.did.startswith("did:web:"):
        raise ApiError(422, "not_did_web", f"issuer {name}'s DID {issuer.did!r} is not a "
                       "did:web: standard verifiers could not find its keys")
    if not components.settings.keystore_password:
        raise ApiError(503, "no_keystore_password", "the service has no keystore password "
                       "to encrypt the key with")
    key_type = KeyType.ED25519 if request.type == "ed25519" else KeyType.P256
    suite = _suite_for(key_type, request.suite)
    key, _path = components.signing_keys().create(key_type)
    log.info("signing key made", extra={"issuer": issuer.id, "key": key.multibase})
    return _key_out(issuer, key, suite, active=False,
                    register_with="anchor-service registry add-signing-key --deployment "
                    f"DEPLOYMENT --entity {issuer.entity_id} --public-key {key.multibase}")


@router.put("/issuers/{name}/signing-key", response_model=SigningKeyOut,
            response_model_by_alias=True, responses=_ERRORS,
            summary="Make a registered signing key the issuer's current one")
def activate_signing_key(name: str, request: SigningKeyActivateIn, components: ComponentsDep,
                         _: AdminIdentity) -> SigningKeyOut:
    """The key must be in the keystore folder (made by ``POST``; 404 otherwise) and the
    registry must list it for the issuer's entity and trust it now (409
    ``signing_key_not_registered`` otherwise). From then on the issuer's credentials are
    signed with it."""
    issuer = _served_issuer(components, name)
    try:
        key = Multikey.from_multibase(request.public_key_multibase)
    except VerifierError as exc:
        raise ApiError(422, "invalid_request", f"publicKeyMultibase: {exc}") from None
    suite = _suite_for(key.key_type, request.suite)
    if not components.signing_keys().path(key).is_file():
        raise ApiError(404, "not_found", f"the keystore folder holds no signing key "
                       f"{key.multibase} (make one with POST)")
    reader = components.chain_reader()
    registry = components.deployment.registry
    try:
        identifier = signing_key_id(key)
        info = reader.signing_key(registry, identifier)
        trust = reader.signing_key_trusted_at(registry, identifier, components.next_block_time())
    except (VerifierError, AnchorServiceError, OSError) as exc:
        raise ApiError(503, "chain_unavailable", f"cannot ask the registry about signing key "
                       f"{key.multibase}: {exc}") from None
    if info.entity_id != issuer.entity_id:
        raise ApiError(409, "signing_key_not_registered", f"signing key {key.multibase} is "
                       + ("not registered" if info.entity_id == 0 else
                          f"registered for entity {info.entity_id}")
                       + f", not for issuer {name}'s entity {issuer.entity_id}")
    if not trust.trusted:
        raise ApiError(409, "signing_key_not_registered",
                       f"signing key {key.multibase} is not trusted now: {trust.reason}")
    updated = components.store.set_signing_key(issuer.id, key.multibase, suite)
    if components.load_signing(updated) is None:
        components.store.set_signing_key(issuer.id, issuer.signing_key, issuer.signing_suite)
        raise ApiError(503, "no_signing_key", f"the service cannot load signing key "
                       f"{key.multibase} (see its log); the issuer's key is unchanged")
    log.info("signing key activated", extra={"issuer": issuer.id, "key": key.multibase})
    return _key_out(issuer, key, suite, active=True)


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
