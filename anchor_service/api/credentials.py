"""/v1/credentials: submit, status, receipt, bundle, revoke, suspend, reinstate."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from anchor_service.api.deps import ComponentsDep, IssuerIdentity
from anchor_service.api.errors import ApiError, validation_detail
from anchor_service.api.schemas import (
    CredentialOut,
    StatusChangeIn,
    StatusChangeOut,
    SubmitIn,
    SubmitOut,
    error_responses,
)
from anchor_service.chain import Transactor
from anchor_service.errors import (
    AnchorServiceError,
    NotAnchoredError,
    UnknownCredentialError,
)
from anchor_service.service import Components
from anchor_service.signing import SigningError, check_presigned, suites
from anchor_service.store import Accepted, BatchState, CredentialRecord, Issuer, NewCredential
from verifier.contract_types import SigningKeyInfo
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


@router.post("", status_code=202, response_model=SubmitOut, responses=_ERRORS,
             openapi_extra=_SUBMIT_BODY, summary="Submit credentials or digests to anchor")
async def submit(request: Request, components: ComponentsDep,
                 identity: IssuerIdentity) -> JSONResponse:
    """Accept one or many credentials (up to ``max_items_per_request``). The answer comes once
    they are on disk; the same credential from the same issuer keeps its id (and its first
    signature).

    When the issuer has a signing key, each credential is signed at acceptance with a
    ``DataIntegrityProof`` (the request's ``suite``, else the issuer's, else eddsa-jcs-2022):
    its ``issuer`` (string or object id) must be the issuer's DID (422 ``issuer_mismatch``),
    and the SIGNED credential, proof included, is what is stored and anchored; receipts and
    bundles carry it. A credential that arrives with a ``proof`` is not signed again: its proof
    must verify (422 ``invalid_signature``) with a key the registry lists for this issuer and
    trusts now (409 ``signing_key_not_registered``), and it is anchored as it is. An issuer
    without a signing key has its credentials accepted unsigned. ``digests`` are anchored as
    they are. 503 ``no_signing_key`` when the issuer's signing key cannot be loaded. 409 when the
    registry does not trust the issuer now (its key revoked, the issuer or a body above it
    suspended or revoked), with the reason, such as "issuer not trusted: body 1 suspended";
    the registry is asked at most once a second per issuer, and when the chain cannot be
    asked the credentials are accepted (stored, and anchored once it answers)."""
    body = await request.body()
    return await run_in_threadpool(_submit, components, identity.issuer_id or 0, body)


def _submit(components: Components, issuer_id: int, body: bytes) -> JSONResponse:
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
    if payload.credentials is not None:
        items = credential_items(components, issuer_id, payload.credentials, payload.suite)
    elif payload.suite is not None:
        raise ApiError(422, "invalid_request", "suite: only credentials are signed; digests "
                       "are anchored as they are")
    else:
        items = [NewCredential(bytes.fromhex(d[2:]), new_salt()) for d in payload.digests or []]
    _require_trusted(components, issuer_id)
    accepted = components.store.accept(issuer_id, items)
    components.metrics.accepted.inc(sum(a.created for a in accepted))
    # Plain dicts, not models: for 10,000 items this is the difference of a tenth of a second.
    # The shape is SubmitOut's (documented in OpenAPI and checked by the tests).
    return JSONResponse({
        "accepted": [{"id": a.public_id, "digest": "0x" + a.digest.hex(), "created": a.created}
                     for a in accepted],
        "count": len(accepted),
    }, status_code=202)


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
    if signer is not None:
        # A key the registry no longer trusts (revoked after a leak, expired by rotation)
        # would sign credentials that no verifier accepts: refuse instead of signing. The
        # issuer's own trust is asked first: a suspended issuer or body is the reason to
        # give then, not its signing key.
        _require_trusted(components, issuer_id)
        refusal = components.signing_key_refusal(components.store.issuer(issuer_id), signer)
        if refusal is not None:
            raise ApiError(409, "signing_key_not_trusted", f"{refusal}; give the issuer a "
                           "new signing key (anchor-service signing-key create)")
    presigned = _PresignedChecker(components, issuer_id)
    items = []
    for index, credential in enumerate(credentials):
        try:
            if "proof" in credential:
                items.append(presigned.item(credential))
            elif session is not None:
                signed = session.sign(credential)
                items.append(NewCredential(signed.digest, new_salt(), signed.canonical,
                                           signed.submitted_digest))
            else:
                canonical = canonicalize(credential)
                digest = sha256(canonical).digest()
                items.append(NewCredential(digest, new_salt(), canonical, digest))
        except CredentialError as exc:
            where = str(exc).removeprefix("credential")
            raise ApiError(422, "invalid_credential", f"credentials[{index}]{where}") from None
        except SigningError as exc:
            raise ApiError(exc.http_status, exc.error_code,
                           f"credentials[{index}]: {exc}") from None
    return items


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


@router.get("/{credential_id}", response_model=CredentialOut, response_model_by_alias=True,
            responses=_ERRORS, summary="Where a credential is in the pipeline")
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
    )


@router.get("/{credential_id}/receipt", responses=_ERRORS,
            summary="The receipt of an anchored credential (format v1)")
def receipt(credential_id: str, components: ComponentsDep,
            identity: IssuerIdentity) -> JSONResponse:
    document = components.receipts.receipt(credential_id, issuer_id=identity.issuer_id)
    return JSONResponse(document.to_dict())


@router.get("/{credential_id}/bundle", responses=_ERRORS,
            summary="Credential and receipt in one document, for the learner's wallet")
def bundle(credential_id: str, components: ComponentsDep,
           identity: IssuerIdentity) -> JSONResponse:
    document = components.receipts.bundle(credential_id, issuer_id=identity.issuer_id)
    return JSONResponse(json.loads(document.to_json()))


def _status_change(action: Literal["revoke", "suspend", "reinstate"]) -> Any:
    def change(credential_id: str, change: StatusChangeIn, components: ComponentsDep,
               identity: IssuerIdentity) -> StatusChangeOut:
        record = _own(components, credential_id, identity.issuer_id)
        batch = components.store.batch(record.batch_id) if record.batch_id is not None else None
        if batch is None or batch.state is not BatchState.ANCHORED or record.leaf_index is None:
            raise NotAnchoredError(f"credential {credential_id} is not anchored yet")
        signer = components.signers.get(record.issuer_id)
        if signer is None:
            raise ApiError(503, "no_key", "the service holds no key for this issuer")
        issuer = components.store.issuer(record.issuer_id)
        _, anchor = components.deployment.contracts(components.w3)
        if action == "reinstate" and anchor.functions.isRevoked(
                issuer.key_address, batch.root, record.leaf_index).call():
            # The contract would accept the call (it lifts only a suspension) and the
            # credential would stay revoked: say so instead of answering 200.
            raise ApiError(409, "revoked", f"credential {credential_id} is revoked, and "
                           "revocation is final: reinstate lifts only a suspension. Only a root "
                           "administrator of the registry can lift a revocation "
                           "(CredentialAnchor.liftRevocations), for example one made with a "
                           "compromised key.")
        call = getattr(anchor.functions, action)(issuer.entity_id, batch.root,
                                                 [record.leaf_index], change.reason)
        tx = Transactor(components.w3, signer).transact(call)
        log.info("credential %s", action, extra={
            "credential": credential_id, "issuer": record.issuer_id, "reason": change.reason,
            "tx": "0x" + bytes(tx["transactionHash"]).hex()})
        return StatusChangeOut(id=credential_id, action=action,
                               transaction_hash="0x" + bytes(tx["transactionHash"]).hex())

    change.__name__ = action
    change.__doc__ = f"{action.capitalize()} the credential on chain (by the issuer's key)." + (
        " Reinstating lifts a suspension only: a revoked credential answers 409 (revocation "
        "is final unless a root administrator lifts it with liftRevocations)."
        if action == "reinstate" else "")
    return change


for _action in ("revoke", "suspend", "reinstate"):
    router.post(f"/{{credential_id}}/{_action}", response_model=StatusChangeOut,
                response_model_by_alias=True, responses=_ERRORS,
                summary=f"{_action.capitalize()} a credential")(_status_change(_action))


def _own(components: Components, credential_id: str, issuer_id: int | None) -> CredentialRecord:
    record = components.store.credential(credential_id)
    if record is None or record.issuer_id != issuer_id:
        # Another issuer's credential looks exactly like a missing one.
        raise UnknownCredentialError(f"no credential {credential_id}")
    return record
