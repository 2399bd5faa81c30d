"""/v1/credentials: submit, state, receipt, bundle, status on chain (with block evidence), and
revoke, suspend, reinstate one credential or many."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from hashlib import sha256
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from anchor_service._parallel_signing import Refusal, refusal_of, sign_share
from anchor_service.api.deps import (
    ComponentsDep,
    IssuerIdentity,
    answered_by,
    issuer_identity,
)
from anchor_service.api.errors import ApiError, validation_detail
from anchor_service.api.leases import sending_lease
from anchor_service.api.schemas import (
    BlockOut,
    BulkStatusChangeIn,
    BulkStatusChangeOut,
    CredentialOut,
    CredentialStatusOut,
    StatusChangeIn,
    StatusChangeOut,
    SubmitIn,
    SubmitOut,
    error_responses,
)
from anchor_service.errors import (
    AnchoredOn1xError,
    AnchorServiceError,
    BlockReorganisedError,
    UnknownCredentialError,
)
from anchor_service.service import Components
from anchor_service.signing import SigningError, check_presigned, suites
from anchor_service.status import (
    MAX_INDICES_PER_TRANSACTION,
    BlockRef,
    StatusAction,
    StatusEntries,
    change_credentials,
    parse_as_of,
    resolve_block,
    status_at,
    status_urls,
)
from anchor_service.store import (
    Accepted,
    BatchState,
    CredentialRecord,
    Issuer,
    NewCredential,
    StatusPosition,
    TokenIdentity,
)
from verifier.contract_types import SigningKeyInfo, StatusBits, StatusPurpose
from verifier.credential import canonicalize, new_salt, parse_json_object
from verifier.errors import CredentialError, VerifierError

__all__ = ["credential_items", "router", "sign_and_accept"]

_T = TypeVar("_T")

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])
log = logging.getLogger("anchor_service.audit")
_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 503)
_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SubmitIn.model_json_schema()}},
    }
}


async def submit(request: Request, components: ComponentsDep,
                 identity: IssuerIdentity) -> JSONResponse:
    """Accept one or many credentials (up to ``max_items_per_request``). The answer comes once
    they are on disk; the same credential from the same issuer keeps its id (and its first
    signature).

    When the issuer has a signing key, each credential is signed at acceptance with a
    ``DataIntegrityProof`` (the request's ``suite``, else the issuer's, else eddsa-jcs-2022):
    its ``issuer`` (string or object id) must be the issuer's DID (422 ``issuer_mismatch``),
    and the SIGNED credential, proof included, is what is stored and anchored; receipts and
    bundles carry it. Each credential gets the issuer's next W3C Bitstring Status List position
    when it is accepted (bound in its Merkle leaf and carried by its receipt); a credential the
    service signs carries it, before signing, as ``credentialStatus`` (two
    ``BitstringStatusListEntry`` objects, revocation and suspension), so one that already has a
    ``credentialStatus`` is refused (422 ``credential_status_set``); a resubmission keeps its
    first position. A credential that arrives with a ``proof`` is not signed again: its proof
    must verify (422 ``invalid_signature``) with a key the registry lists for this issuer and
    trusts now (409 ``signing_key_not_registered``), and it is anchored as it is. An issuer
    without a signing key has its credentials accepted unsigned. ``digests`` are anchored as
    they are. 503 ``no_signing_key`` when the issuer's signing key cannot be loaded. 409 when the
    registry does not trust the issuer now (its key revoked, the issuer or a body above it
    suspended or revoked), with the reason, such as "issuer not trusted: body 1 suspended";
    the registry is asked at most once a second per issuer, and when the chain cannot be
    asked the credentials are accepted (stored, and anchored once it answers)."""
    body = await request.body()
    issuer_id = identity.issuer_id or 0
    if len(body) <= INLINE_SUBMIT_BYTES:
        answer = await _submit_inline(components, issuer_id, body)
        if answer is not None:
            return answer
    return await components.in_thread(_submit, components, issuer_id, body)


async def _submit_request(request: Request) -> Response:
    """``POST /v1/credentials`` with its dependencies found here (:func:`answered_by`)."""
    return await submit(request, request.app.state.components, await issuer_identity(request))


router.add_api_route("", submit, methods=["POST"], status_code=202, response_model=SubmitOut,
                     responses=_ERRORS, openapi_extra=_SUBMIT_BODY,
                     summary="Submit credentials or digests to anchor",
                     route_class_override=answered_by(_submit_request))


#: Submissions up to this size are signed on the event loop when everything they need is
#: known (see _submit_inline): a few credentials, a millisecond or so of work at most.
INLINE_SUBMIT_BYTES: Final = 16 * 1024
#: How old the issuer's record, its trust and its signing key's trust may be for the event
#: loop's path, in seconds: the age the trust answers have anyway (a signing key changed by
#: another process, ``anchor-service signing-key create``, is used from at most this later).
_INLINE_FRESHNESS: Final = 1.0
_INLINE_MAX_CREDENTIALS: Final = 8  # signatures made on the loop for one request, at most


async def _submit_inline(components: Components, issuer_id: int,
                         body: bytes) -> JSONResponse | None:
    """The submission of credentials to sign, answered without a thread hand-over: on the
    event loop, and stored by the group commit's writer while the loop serves others. Only
    when everything it needs is in memory and fresh (the issuer's record, its loaded signing
    key, the registry's answers about both, status positions already reserved) and nothing
    asks the database or the chain (no credential arrives signed or with a status); None
    otherwise, before anything is done: the thread's path then answers, as it answers every
    other request. Refusals are the thread path's, raised the same way."""
    payload = _read_submission(components, body)
    credentials = payload.credentials
    if not credentials or len(credentials) > _INLINE_MAX_CREDENTIALS \
            or any("proof" in c or "credentialStatus" in c for c in credentials):
        return None
    store = components.store
    issuer = store.recent_issuer(issuer_id, _INLINE_FRESHNESS)
    signer = None if issuer is None else components.loaded_signer(issuer)
    if issuer is None or signer is None:
        return None
    trust_known, refusal = components.pipeline.trust.peek(issuer_id)
    key_known, key_refusal = components.recent_signing_key_refusal(issuer, signer,
                                                                    _INLINE_FRESHNESS)
    if not (trust_known and key_known) or refusal is not None or key_refusal is not None:
        return None
    positions = store.reserved_status(issuer_id, len(credentials))
    if positions is None:
        return None
    try:
        session = signer.session(suite=payload.suite)
    except SigningError as exc:
        raise ApiError(exc.http_status, exc.error_code, str(exc)) from None
    items = _accepted(sign_share(session, _status_entries(issuer), credentials, positions))
    return _submitted(components, await store.accept_async(issuer_id, items))


def _read_submission(components: Components, body: bytes) -> SubmitIn:
    """The request's body as a submission, with its size and suite checked."""
    try:
        # The credentials sit two levels inside {"credentials": [...]}: the nesting limit is
        # counted on each credential, as on every other path (canonicalize checks each one).
        data = parse_json_object(body, "request body", wrapper_depth=2)
    except CredentialError as exc:  # malformed JSON, NaN, huge integer, duplicate keys, ...
        raise ApiError(400, "invalid_json", str(exc)) from None
    try:
        payload = SubmitIn.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_detail(exc.errors())) from None
    limit = components.settings.max_items_per_request
    count = len(payload.credentials or payload.digests or [])
    if count > limit:
        raise ApiError(413, "too_many_items", f"{count} items; at most {limit} per request")
    if payload.suite is not None and payload.suite not in suites():
        raise ApiError(422, "invalid_suite", f"suite: {payload.suite[:60]!r} is not one of "
                       f"{', '.join(suites())}")
    return payload


def _submitted(components: Components, accepted: list[Accepted]) -> JSONResponse:
    """The 202 answer to a submission."""
    components.metrics.accepted.inc(sum(a.created for a in accepted))
    # Plain dicts, not models: for 10,000 items this is the difference of a tenth of a second.
    # The shape is SubmitOut's (documented in OpenAPI and checked by the tests).
    return JSONResponse({
        "accepted": [{"id": a.public_id, "digest": "0x" + a.digest.hex(), "created": a.created}
                     for a in accepted],
        "count": len(accepted),
    }, status_code=202)


def _submit(components: Components, issuer_id: int, body: bytes) -> JSONResponse:
    payload = _read_submission(components, body)
    if payload.credentials is not None:
        items = credential_items(components, issuer_id, payload.credentials, payload.suite)
    elif payload.suite is not None:
        raise ApiError(422, "invalid_request", "suite: only credentials are signed; digests "
                       "are anchored as they are")
    else:
        items = [NewCredential(bytes.fromhex(d[2:]), new_salt()) for d in payload.digests or []]
    _require_trusted(components, issuer_id)
    return _submitted(components, components.store.accept(issuer_id, items))


def sign_and_accept(components: Components, issuer_id: int,
                    credentials: Sequence[Mapping[str, Any]], *, suite: str | None = None,
                    ) -> list[tuple[dict[str, Any], Accepted]]:
    """Sign (or check, or take as they are: :func:`credential_items`) and store credentials
    as ``POST /v1/credentials`` does, and return each stored document with its acceptance. A
    credential sent before comes back as it was stored the first time (its first proof)."""
    if suite is not None and suite not in suites():
        raise ApiError(422, "invalid_suite", f"suite: {suite[:60]!r} is not one of "
                       f"{', '.join(suites())}")
    items = credential_items(components, issuer_id, credentials, suite)
    _require_trusted(components, issuer_id)
    accepted = components.store.accept(issuer_id, items)
    components.metrics.accepted.inc(sum(a.created for a in accepted))
    documents = []
    for item, acceptance in zip(items, accepted, strict=True):
        content = item.content
        if acceptance.digest != item.digest:  # sent before: the stored, first signature
            record = components.store.credential(acceptance.public_id)
            content = None if record is None else record.content
        documents.append((json.loads(content or b"{}"), acceptance))
    return documents


def _require_trusted(components: Components, issuer_id: int) -> None:
    """409 when the registry does not trust the issuer now: its batches could not be anchored.
    The answer is cached a second per issuer (bulk ingest pays one chain call a second). When
    the chain cannot be asked, the credentials are accepted: they are stored durably and
    anchored once it answers, and the anchor contract refuses an untrusted issuer anyway."""
    refusal = components.pipeline.trust.refusal(issuer_id)
    if refusal is not None:
        raise ApiError(409, "issuer_not_trusted", refusal)


def credential_items(components: Components, issuer_id: int,
                     credentials: Sequence[Mapping[str, Any]],
                     suite: str | None = None) -> list[NewCredential]:
    """What the store accepts for these credentials of ``issuer_id``: each signed with the
    issuer's signing key and ``suite`` (default: the issuer's), checked when it arrives
    signed, or as it is when the issuer has no signing key. Raises :class:`ApiError` naming
    the first credential that cannot be accepted (``credentials[i]``) and why."""
    try:
        signer = components.issuer_signer(issuer_id)
        session = signer.session(suite=suite) if signer is not None else None
    except SigningError as exc:
        raise ApiError(exc.http_status, exc.error_code, str(exc)) from None
    if signer is None and suite is not None:
        raise ApiError(422, "invalid_suite", "suite: this issuer has no signing key, so its "
                       "credentials are accepted unsigned (anchor-service signing-key create "
                       "gives it one)")
    issuer: Issuer | None = None
    if signer is not None:
        # A key the registry no longer trusts (revoked after a leak, expired by rotation)
        # would sign credentials that no verifier accepts: refuse instead of signing. The
        # issuer's own trust is asked first: a suspended issuer or body is the reason to
        # give then, not its signing key.
        _require_trusted(components, issuer_id)
        issuer = components.store.issuer(issuer_id)
        refusal = components.signing_key_refusal(issuer, signer)
        if refusal is not None:
            raise ApiError(409, "signing_key_not_trusted", f"{refusal}; give the issuer a "
                           "new signing key (anchor-service signing-key create)")
    # Before positions are allocated: none is wasted.
    _refuse_status_entries(components, issuer_id, credentials, signing=session is not None)
    # Every credential gets its status position before it is signed (its credentialStatus
    # names it); a resubmission keeps its first one, leaving this one unused.
    positions = components.store.allocate_status(issuer_id, len(credentials))
    status = _status_entries(issuer or components.store.issuer(issuer_id))
    if session is not None and not any(isinstance(c, Mapping) and "proof" in c
                                       for c in credentials):
        # Only credentials to sign: a large submission is signed on two cores.
        return _accepted(components.signing_helper.sign(session, status, credentials,
                                                        positions))
    presigned = _PresignedChecker(components, issuer_id)

    def item(index: int, credential: Mapping[str, Any], position: StatusPosition,
             ) -> NewCredential:
        if "proof" in credential:
            return replace(presigned.item(credential), status=position)
        if session is not None:
            return _accepted(sign_share(session, status, [credential], [position], index))[0]
        canonical = canonicalize(credential)
        digest = sha256(canonical).digest()
        return NewCredential(digest, new_salt(), canonical, digest, position)

    items = []
    for index, (credential, position) in enumerate(zip(credentials, positions, strict=True)):
        try:
            items.append(item(index, credential, position))
        except (CredentialError, SigningError) as exc:
            raise _refused(refusal_of(index, exc)) from None
    return items


def _accepted(signed: list[NewCredential] | Refusal) -> list[NewCredential]:
    """The signed credentials; the :class:`ApiError` of the first refused one."""
    if isinstance(signed, Refusal):
        raise _refused(signed)
    return signed


def _refused(refusal: Refusal) -> ApiError:
    return ApiError(refusal.status, refusal.error, refusal.detail)


def _refuse_status_entries(components: Components, issuer_id: int,
                           credentials: Sequence[Mapping[str, Any]], *, signing: bool) -> None:
    """422 for a credential to sign (``signing``, no proof) that already has a
    ``credentialStatus``, and for one kept as sent (pre-signed, or of an issuer without a
    signing key) that carries a ``BitstringStatusListEntry``: the service allocates each
    credential's position when it accepts it, so such an entry cannot name it, and every
    verification would fail ``status_entries_match``. One exception: a credential this issuer
    has already (the one the service signed, sent again to find its id), which keeps its
    first id and position."""
    for index, credential in enumerate(credentials):
        kept = "proof" in credential or not signing
        if kept and _bitstring_entries(credential.get("credentialStatus")) \
                and _accepted_before(components, issuer_id, credential):
            continue
        if not kept and "credentialStatus" in credential:
            raise ApiError(422, "credential_status_set", f"credentials[{index}]."
                           "credentialStatus: the service sets the status entries of the "
                           "credentials it signs (two BitstringStatusListEntry objects at the "
                           "position it allocates); send the credential without "
                           "credentialStatus")
        if kept and _bitstring_entries(credential.get("credentialStatus")):
            raise ApiError(422, "credential_status_mismatch", f"credentials[{index}]."
                           "credentialStatus: a BitstringStatusListEntry names a status "
                           "position, but the service allocates each credential's position "
                           "when it accepts it, so this entry cannot name the position "
                           "anchored with it and the credential would never verify; send it "
                           "without BitstringStatusListEntry entries (its receipt carries its "
                           "position), or unsigned by an issuer with a signing key, which "
                           "sets them")


def _accepted_before(components: Components, issuer_id: int,
                     credential: Mapping[str, Any]) -> bool:
    """Whether the issuer's store holds this very credential (by its digest)."""
    try:
        digest = sha256(canonicalize(credential)).digest()
    except CredentialError:
        return False  # refused with its reason later
    return components.store.credential_by_digest(issuer_id, digest) is not None


def _bitstring_entries(status: Any) -> bool:
    """Whether a ``credentialStatus`` (one entry or a list) has a BitstringStatusListEntry."""
    entries = status if isinstance(status, list) else [status]
    for entry in entries:
        kinds = entry.get("type") if isinstance(entry, dict) else None
        if kinds == "BitstringStatusListEntry" or (
                isinstance(kinds, list) and "BitstringStatusListEntry" in kinds):
            return True
    return False


@lru_cache(maxsize=64)
def _status_entries(issuer: Issuer) -> StatusEntries:
    """The issuer's status entries maker, kept across requests (its templates are made once
    a list): an issuer whose record changed (a new DID, key or suite) is another key."""
    return StatusEntries(issuer)


class _PresignedChecker:
    """Checks credentials that arrive signed, asking the registry once per key and request."""

    def __init__(self, components: Components, issuer_id: int) -> None:
        self._components = components
        self._issuer_id = issuer_id
        self._issuer: Issuer | None = None
        self._registered: dict[bytes, SigningKeyInfo] = {}
        self._trusted: dict[bytes, str | None] = {}

    def item(self, credential: Mapping[str, Any]) -> NewCredential:
        if self._issuer is None:
            self._issuer = self._components.store.issuer(self._issuer_id)
        check_presigned(credential, issuer_did=self._issuer.did, registered=self._registered_key,
                        entity_id=self._issuer.entity_id, trusted_now=self._trusted_now)
        canonical = canonicalize(credential)
        digest = sha256(canonical).digest()
        return NewCredential(digest, new_salt(), canonical, digest)

    def _read(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except (VerifierError, AnchorServiceError, OSError) as exc:
            raise ApiError(503, "chain_unavailable", "cannot ask the registry whether the "
                           f"credential's signing key is registered: {exc}") from None

    def _registered_key(self, key_id: bytes) -> SigningKeyInfo:
        if key_id not in self._registered:
            registry = self._components.deployment.registry
            reader = self._components.chain_reader()
            self._registered[key_id] = self._read(lambda: reader.signing_key(registry, key_id))
        return self._registered[key_id]

    def _trusted_now(self, key_id: bytes) -> str | None:
        if key_id not in self._trusted:
            registry = self._components.deployment.registry
            reader = self._components.chain_reader()
            # "Now" is the chain's: the anchor that follows is judged at its block's time.
            trust = self._read(lambda: reader.signing_key_trusted_at(
                registry, key_id, self._components.next_block_time()))
            self._trusted[key_id] = None if trust.trusted else trust.reason
        return self._trusted[key_id]


def status(credential_id: str, components: ComponentsDep,
           identity: IssuerIdentity) -> CredentialOut:
    record = _own(components, credential_id, identity.issuer_id)
    batch = components.store.batch(record.batch_id) if record.batch_id is not None else None
    state: Literal["pending", "batched", "sent", "anchored"] = (
        "pending" if batch is None else
        "batched" if batch.state is BatchState.BUILT else
        "sent" if batch.state is BatchState.SENT else "anchored")
    return CredentialOut(
        id=record.public_id, digest="0x" + record.digest.hex(), state=state,
        batch_id=record.batch_id, leaf_index=record.leaf_index,
        root=None if batch is None else "0x" + batch.root.hex(),
        transaction_hash=None if batch is None or batch.tx_hash is None
        else "0x" + batch.tx_hash.hex(),
        block_number=None if batch is None else batch.block_number,
        status_list=record.status_list, status_list_index=record.status_index,
    )


def receipt(credential_id: str, components: ComponentsDep,
            identity: IssuerIdentity) -> JSONResponse:
    document = components.receipts.receipt(credential_id, issuer_id=identity.issuer_id)
    return JSONResponse(document.to_dict())


def bundle(credential_id: str, components: ComponentsDep,
           identity: IssuerIdentity) -> JSONResponse:
    document = components.receipts.bundle(credential_id, issuer_id=identity.issuer_id)
    return JSONResponse(json.loads(document.to_json()))


def _read_in_thread(endpoint: Callable[[str, Components, TokenIdentity],
                                       CredentialOut | Response]) -> type[APIRoute]:
    """The route class of a read of one credential by the issuer's token (:func:`answered_by`):
    ``endpoint`` runs in a thread, as FastAPI runs a plain function, with the dependencies
    found without FastAPI's dependency solving; a model it returns is written as FastAPI
    writes the route's response model."""

    async def handler(request: Request) -> Response:
        identity = await issuer_identity(request)
        components = request.app.state.components
        answer = await components.in_thread(endpoint, request.path_params["credential_id"],
                                            components, identity)
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer.model_dump(mode="json", by_alias=True))

    return answered_by(handler)


router.add_api_route("/{credential_id}", status, methods=["GET"], response_model=CredentialOut,
                     response_model_by_alias=True, responses=_ERRORS,
                     summary="Where a credential is in the pipeline",
                     route_class_override=_read_in_thread(status))
router.add_api_route("/{credential_id}/receipt", receipt, methods=["GET"], responses=_ERRORS,
                     summary="The receipt of an anchored credential (format v2)",
                     route_class_override=_read_in_thread(receipt))
router.add_api_route("/{credential_id}/bundle", bundle, methods=["GET"], responses=_ERRORS,
                     summary="Credential and receipt in one document, for the learner's wallet",
                     route_class_override=_read_in_thread(bundle))


def _status_change(action: StatusAction) -> Any:
    def change(credential_id: str, change: StatusChangeIn, components: ComponentsDep,
               identity: IssuerIdentity) -> StatusChangeOut:
        record = _own(components, credential_id, identity.issuer_id)
        (tx_hash,) = _change_status(components, action, [record], change.reason)
        return StatusChangeOut(id=credential_id, action=action.value,
                               transaction_hash="0x" + tx_hash.hex())

    change.__name__ = action.value
    change.__doc__ = (
        f"{action.value.capitalize()} the credential on chain, by the issuer's anchoring key, "
        "at its status list position (issuer entity, list, index); no anchor is needed, so a "
        "credential still waiting for its batch can be changed too." + (
            " Reinstating lifts a suspension only: a revoked credential answers 409 "
            "(revocation is final unless a root administrator lifts it with liftRevocations: "
            "anchor-service registry lift-revocations)."
            if action is StatusAction.REINSTATE else ""))
    return change


def _bulk_status_change(action: StatusAction) -> Any:
    def change(body: BulkStatusChangeIn, components: ComponentsDep,
               identity: IssuerIdentity) -> BulkStatusChangeOut:
        limit = components.settings.max_items_per_request
        if len(body.ids) > limit:
            raise ApiError(413, "too_many_items", f"{len(body.ids)} ids; at most {limit} per "
                           "request")
        found = components.store.credentials(body.ids)
        missing = [public_id for public_id in body.ids
                   if public_id not in found or found[public_id].issuer_id != identity.issuer_id]
        if missing:
            # Another issuer's credential looks exactly like a missing one.
            raise UnknownCredentialError(
                f"no credential {missing[0]}" + (f" (and {len(missing) - 1} more unknown ids)"
                                                 if len(missing) > 1 else "")
                + "; nothing was changed")
        records = [found[public_id] for public_id in dict.fromkeys(body.ids)]
        hashes = _change_status(components, action, records, body.reason)
        return BulkStatusChangeOut(action=action.value, count=len(records),
                                   transaction_hashes=["0x" + h.hex() for h in hashes])

    change.__name__ = f"{action.value}_many"
    change.__doc__ = (
        f"{action.value.capitalize()} many credentials of the issuer on chain, by its anchoring "
        "key: every id is checked first (all or nothing: one unknown id, or one anchored on a "
        "1.x deployment, and nothing is sent), then one transaction per status list and per "
        f"{MAX_INDICES_PER_TRANSACTION} indices, ascending. The answer lists the transaction "
        "hashes. Only the checking is all or nothing: when a later transaction fails (the "
        "contract refuses it, or the chain), those already mined stand, and the answer "
        "(409 or 503 status_change_incomplete) names them with their positions in detail and "
        "in transactionHashes." + (
            " A revoked credential among them answers 409 and nothing is sent."
            if action is StatusAction.REINSTATE else ""))
    return change


def _change_status(components: Components, action: StatusAction,
                   records: Sequence[CredentialRecord], reason: int) -> list[bytes]:
    """Change the status of these credentials of one issuer (checked first, all or nothing);
    the transaction hashes."""
    issuer_id = records[0].issuer_id
    signer = components.signers.get(issuer_id)
    if signer is None:
        raise ApiError(503, "no_key", "the service holds no key for this issuer")
    issuer = components.store.issuer(issuer_id)
    _, anchor = components.deployment.contracts(components.w3)
    with sending_lease(components, issuer_id):
        hashes = change_credentials(components.w3, anchor, issuer, signer, action=action,
                                    records=records, reason=reason)
    log.info("credentials %s", action.value, extra={
        "credentials": len(records), "issuer": issuer_id, "reason": reason,
        "tx": ",".join("0x" + h.hex() for h in hashes)})
    return hashes


for _action in (StatusAction.REVOKE, StatusAction.SUSPEND, StatusAction.REINSTATE):
    router.post(f"/{_action.value}", response_model=BulkStatusChangeOut,
                response_model_by_alias=True, responses=_ERRORS,
                summary=f"{_action.value.capitalize()} many credentials by id"
                )(_bulk_status_change(_action))
    router.post(f"/{{credential_id}}/{_action.value}", response_model=StatusChangeOut,
                response_model_by_alias=True, responses=_ERRORS,
                summary=f"{_action.value.capitalize()} a credential")(_status_change(_action))


@router.get("/{credential_id}/status", response_model=CredentialStatusOut,
            response_model_by_alias=True, responses=_ERRORS,
            summary="A credential's status on chain, with the block it was read at")
def chain_status(credential_id: str, components: ComponentsDep, identity: IssuerIdentity,
                 block: str | None = None,
                 as_of: Annotated[str | None, Query(alias="asOf")] = None,
                 ) -> CredentialStatusOut:
    """Whether the credential is revoked or suspended, read from ``CredentialAnchor`` at its
    status list position, at the latest block with the service's required confirmations, or
    at ``block`` (a block number) or at ``asOf`` (the last block at or before that time: unix
    seconds or RFC 3339 with a time zone); the block's number, hash and time are the evidence.
    400 for an unreadable value or both given; 404 ``unknown_block`` for a block or time the
    chain has not confirmed yet (not settled yet), or before the anchor's deployment; 409
    ``state_unavailable`` when the node no longer has that block's state; 409
    ``anchored_on_1x`` for a credential anchored on a 1.x deployment. The list URLs are
    null for an issuer without a did:web DID."""
    record = _own(components, credential_id, identity.issuer_id)
    if block is not None and as_of is not None:
        raise ApiError(400, "invalid_query", "give at most one of block and asOf")
    number: int | None = None
    when: int | None = None
    if block is not None:
        if not block.isascii() or not block.isdigit() or len(block) > 18:
            raise ApiError(400, "invalid_query", f"block: {block[:40]!r} is not a block number")
        number = int(block)
    if as_of is not None:
        try:
            when = parse_as_of(as_of)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", f"asOf: {exc}") from None
    position = record.status
    if position is None:
        raise AnchoredOn1xError(
            f"credential {credential_id} was anchored on a CredentialAnchor 1.x deployment, "
            "before status lists: its status is read from that deployment (verifier 0.1.x), "
            "not here")
    issuer = components.store.issuer(record.issuer_id)
    at, bits = _status_read(components, issuer.entity_id, position, number, when)
    urls = status_urls(issuer, position.list) or {}
    return CredentialStatusOut(
        id=credential_id, revoked=bits.revoked, suspended=bits.suspended,
        status_list=position.list, status_list_index=position.index,
        revocation_list=urls.get(StatusPurpose.REVOCATION),
        suspension_list=urls.get(StatusPurpose.SUSPENSION),
        block=BlockOut(number=at.number, hash="0x" + at.hash.hex(), timestamp=at.timestamp))


def _status_read(components: Components, entity_id: int, position: StatusPosition,
                 number: int | None, when: int | None) -> tuple[BlockRef, StatusBits]:
    """The block asked for and the status at it; read again, once, at the block found anew
    when the first was reorganised away during the read."""
    _, anchor = components.deployment.contracts(components.w3)
    deployed_at = components.deployment.block_number
    try:
        at = resolve_block(components.w3, components.settings.confirmations, block=number,
                           as_of=when, first=deployed_at)
        return at, status_at(components.w3, anchor, entity_id, position, at,
                             deployed_at=deployed_at)
    except BlockReorganisedError:
        at = resolve_block(components.w3, components.settings.confirmations, block=number,
                           as_of=when, first=deployed_at)
        return at, status_at(components.w3, anchor, entity_id, position, at,
                             deployed_at=deployed_at)


def _own(components: Components, credential_id: str, issuer_id: int | None) -> CredentialRecord:
    record = components.store.credential(credential_id)
    if record is None or record.issuer_id != issuer_id:
        # Another issuer's credential looks exactly like a missing one.
        raise UnknownCredentialError(f"no credential {credential_id}")
    return record
