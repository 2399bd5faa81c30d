"""/v1/admin/recognitions: an entity's recognitions of other entities' credentials (admin
tokens only): record one, withdraw one, list one pair's.

The registry takes these transactions only from the recogniser's own trusted anchoring keys.
The service signs with such a key when it holds one: the anchoring key of an issuer it serves
(loaded at start), or a keystore in its keystore folder of one of the entity's keys on chain
(a body's, say). Otherwise the answer is 409 ``no_recogniser_key``: record the recognition with
``anchor-service registry recognise`` and the entity's key instead."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path as FilePath
from typing import Annotated, Final, Literal

from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from web3.contract import Contract

from anchor_service.api.deps import AdminIdentity, ComponentsDep
from anchor_service.api.errors import ApiError
from anchor_service.api.leases import sending_lease
from anchor_service.api.schemas import error_responses, integral, without_default
from anchor_service.chain import Transactor
from anchor_service.errors import KeyLoadError
from anchor_service.keystore import keystore_path, read_keystore
from anchor_service.recognitions import (
    MAX_PER_PAIR,
    RecognitionInputError,
    RecognitionRefusedError,
    recognise,
    recognition,
    recognitions_between,
    resolve_entity,
    withdraw,
)
from anchor_service.service import Components
from anchor_service.settings import revealed
from verifier.contract_types import OPEN_UNTIL, Recognition, scope_of

__all__ = ["RecognitionIn", "RecognitionListOut", "RecognitionOut", "router"]

router = APIRouter(prefix="/v1/admin/recognitions", tags=["admin"])
log = logging.getLogger("anchor_service.audit")
_ERRORS = error_responses(401, 403, 404, 409, 422, 502, 503)

KindName = Literal["formal-degree", "formal-non-degree", "non-formal"]
#: An entity as a request names it: its registry id, or its DID.
# The bounds sit on the integer itself, before the validator that takes 3.0 as 3: so they
# are in the schema. Ids are exact I-JSON integers (at most 2**53 - 1), as every number here.
_MAX_ID = 2**53 - 1
EntityRef = (Annotated[int, Field(ge=1, le=_MAX_ID), BeforeValidator(integral)]
             | Annotated[str, Field(min_length=5, max_length=2048, pattern=r"^did:")])
Time = Annotated[int, Field(ge=0, le=OPEN_UNTIL), BeforeValidator(integral)]
#: An entity in a query: its id (digits) or its DID.
_ENTITY_QUERY = r"^([1-9][0-9]{0,14}|did:.+)$"


class RecognitionIn(BaseModel):
    """A new recognition: ``recogniser`` recognises ``subject``'s credentials (for a body:
    those of every entity below it) of ``kinds``, issued from ``validFrom`` until
    ``validUntil`` (unix seconds, about the credentials' issuance time)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    recogniser: EntityRef = Field(description="the recognising entity: its id or DID")
    subject: EntityRef = Field(description="the recognised entity: its id or DID")
    kinds: list[KindName] = Field(min_length=1, max_length=3,
                                  description="the kinds of credentials recognised")
    valid_from: Time = Field(0, alias="validFrom",
                             description="credentials issued from this time (0: any time)")
    valid_until: Time | SkipJsonSchema[None] = Field(
        None, alias="validUntil", json_schema_extra=without_default,
        description="credentials issued before this time (absent or null: no end)")


class RecognitionOut(BaseModel):
    """A recognition as the registry holds it."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    recogniser_id: int = Field(alias="recogniserId")
    subject_id: int = Field(alias="subjectId")
    scope: list[KindName] = Field(description="the kinds recognised")
    valid_from: int = Field(alias="validFrom", description="0: any issuance time")
    valid_until: int | None = Field(alias="validUntil", description="null: no end")
    recorded_at: int = Field(alias="recordedAt")
    withdrawn_at: int | None = Field(alias="withdrawnAt",
                                     description="null: not withdrawn; else from when")

    @classmethod
    def of(cls, item: Recognition) -> RecognitionOut:
        return cls.model_validate(item.to_dict())


class RecognitionListOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    recogniser_id: int = Field(alias="recogniserId")
    subject_id: int = Field(alias="subjectId")
    recognitions: list[RecognitionOut] = Field(
        description=f"oldest first, withdrawn ones included (at most {MAX_PER_PAIR})")


def _entity(registry: Contract, field: str, reference: int | str) -> int:
    try:
        return resolve_entity(registry, reference)
    except RecognitionInputError as exc:
        raise ApiError(404 if exc.not_found else 422, "unknown_entity",
                       f"{field}: {exc}") from None


#: Keystore-folder accounts kept decrypted, by file (path, modification time, size, inode)
#: and password: decrypting costs a scrypt run (about 0.1-1 s of CPU), too much for every
#: admin request. A keystore file replaced or rewritten is read again. The service holds its
#: served issuers' keys decrypted the same way, for as long as it runs.
_ACCOUNTS: dict[tuple[str, int, int, int, bytes], LocalAccount] = {}
_ACCOUNTS_LOCK = threading.Lock()
_MAX_ACCOUNTS: Final = 64


def _keystore_account(path: FilePath, password: str) -> LocalAccount:
    """The account of keystore file ``path``, decrypted once per version of the file."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise KeyLoadError(f"cannot read keystore {path}: {exc.strerror or exc}") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, stat.st_ino,
           sha256(password.encode()).digest())
    with _ACCOUNTS_LOCK:
        cached = _ACCOUNTS.get(key)
    if cached is not None:
        return cached
    account = read_keystore(path, password)
    with _ACCOUNTS_LOCK:
        if len(_ACCOUNTS) >= _MAX_ACCOUNTS:
            _ACCOUNTS.clear()  # a folder of more keys than this is not this route's use
        _ACCOUNTS[key] = account
    return account


def _signer_for(components: Components, registry: Contract, entity_id: int
                ) -> tuple[LocalAccount, int | None]:
    """An anchoring key of ``entity_id`` the service holds, and the served issuer whose key
    it is (None for a key of the keystore folder): a served issuer's, else one in the
    keystore folder; 409 when it holds none."""
    for issuer in components.store.issuers():
        account = components.signers.get(issuer.id)
        if issuer.entity_id == entity_id and account is not None:
            return account, issuer.id
    password = components.settings.keystore_password
    for key in registry.functions.entityKeys(entity_id).call():
        path = keystore_path(components.settings.keystore_dir, str(key))
        if path.is_file() and password:
            try:
                return _keystore_account(path, revealed(password)), None
            except KeyLoadError as exc:
                log.warning("cannot read the keystore of %s: %s", key, exc)
    raise ApiError(409, "no_recogniser_key", f"recogniser: the service holds no anchoring key "
                   f"of entity {entity_id}; the registry takes recognitions only from the "
                   "entity's own keys (use anchor-service registry recognise with one)")


@contextmanager
def _sending(components: Components, issuer_id: int | None) -> Iterator[None]:
    """Hold the served issuer's sending lease while its anchoring key sends (its pipeline
    sends with the same key and nonces); a keystore-folder key is no pipeline's."""
    if issuer_id is None:
        yield
        return
    with sending_lease(components, issuer_id):
        yield


def _refused(exc: RecognitionRefusedError) -> ApiError:
    return ApiError(exc.http_status, exc.code, str(exc))


@router.post("", response_model=RecognitionOut, response_model_by_alias=True,
             status_code=201, responses=_ERRORS, summary="Record a recognition")
def create(request: RecognitionIn, components: ComponentsDep,
           _: AdminIdentity) -> RecognitionOut:
    """Signed with an anchoring key of the recogniser that the service holds (409
    ``no_recogniser_key`` otherwise); a served issuer's key under that issuer's sending lease,
    as its pipeline sends (503 ``busy`` when a round holds it longer than 10 s). An unknown
    entity is a 404; the registry's refusals are 409 with its reason: the entity itself, an
    empty window, 16 recognitions of the pair already."""
    registry, _anchor = components.deployment.contracts(components.w3)
    recogniser = _entity(registry, "recogniser", request.recogniser)
    subject = _entity(registry, "subject", request.subject)
    # 409 like the registry's own refusals: the schema cannot say that the window must not
    # be empty (validUntil 0 or null is open, as in the registry).
    if request.valid_until and request.valid_until <= request.valid_from:
        raise ApiError(409, "invalid_window", f"validUntil ({request.valid_until}) must be "
                       f"after validFrom ({request.valid_from})")
    scope = scope_of(request.kinds)
    account, issuer_id = _signer_for(components, registry, recogniser)
    try:
        with _sending(components, issuer_id):
            made = recognise(Transactor(components.w3, account), registry,
                             recogniser=recogniser, subject=subject, scope=scope,
                             valid_from=request.valid_from,
                             valid_until=request.valid_until or 0)
    except RecognitionRefusedError as exc:
        raise _refused(exc) from None
    log.info("recognition recorded", extra={"recognition": made.id, "recogniser": recogniser,
                                            "subject": subject, "key": account.address})
    return RecognitionOut.of(made)


@router.post("/{recognition_id}/withdraw", response_model=RecognitionOut,
             response_model_by_alias=True, responses=_ERRORS,
             summary="Withdraw a recognition (from the next second on)")
def withdraw_one(recognition_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
                 components: ComponentsDep, _: AdminIdentity) -> RecognitionOut:
    """Credentials issued from the next second on are no longer recognised by it; those
    issued before stay recognised. 404 for an unknown id, 409 when already withdrawn, 503
    ``busy`` as for recording."""
    registry, _anchor = components.deployment.contracts(components.w3)
    try:
        current = recognition(registry, recognition_id)
    except RecognitionInputError as exc:
        raise ApiError(404, "unknown_recognition", str(exc)) from None
    if current.withdrawn:
        raise ApiError(409, "already_withdrawn", f"recognition {recognition_id} is already "
                       f"withdrawn, with effect from {current.withdrawn_at}")
    account, issuer_id = _signer_for(components, registry, current.recogniser_id)
    try:
        with _sending(components, issuer_id):
            done = withdraw(Transactor(components.w3, account), registry, recognition_id)
    except RecognitionRefusedError as exc:
        raise _refused(exc) from None
    log.info("recognition withdrawn", extra={"recognition": recognition_id,
                                             "key": account.address})
    return RecognitionOut.of(done)


@router.get("", response_model=RecognitionListOut, response_model_by_alias=True,
            responses=_ERRORS, summary="One pair's recognitions")
def list_pair(recogniser: Annotated[str, Query(min_length=1, max_length=2048,
                                               pattern=_ENTITY_QUERY,
                                               description="the recogniser's id or DID")],
              subject: Annotated[str, Query(min_length=1, max_length=2048,
                                            pattern=_ENTITY_QUERY,
                                            description="the subject's id or DID")],
              components: ComponentsDep, _: AdminIdentity) -> RecognitionListOut:
    """Every recognition ``recogniser`` recorded of ``subject``, oldest first, withdrawn ones
    included (at most 16: the registry keeps no more per pair)."""
    registry, _anchor = components.deployment.contracts(components.w3)
    recogniser_id = _entity(registry, "recogniser", recogniser)
    subject_id = _entity(registry, "subject", subject)
    listed = recognitions_between(registry, recogniser_id, subject_id)
    return RecognitionListOut(recogniser_id=recogniser_id, subject_id=subject_id,
                              recognitions=[RecognitionOut.of(item) for item in listed])

