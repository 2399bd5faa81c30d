"""The W3C CCG Verifiable Credentials API (VC-API): issue, verify a credential, verify a
presentation, with the API's request and response shapes, so that standard tooling (and the
VC-API test suites) can drive the service.

- ``POST /credentials/issue`` (issuer token): signs the credential with the issuer's signing
  key (Data Integrity), accepts it for anchoring exactly as ``POST /v1/credentials`` does, and
  answers 201 ``{verifiableCredential}`` with ``Location`` naming its status route.
- ``POST /credentials/verify`` (public): ``{verified, checks, warnings, errors}`` from our
  verifier, against the credential's anchor receipt (``options.receipt``, else the one this
  service holds for the credential's digest), plus the full report under ``anchorReport``;
  ``options.checks`` ``["proof"]`` checks the issuer's proof alone, with no receipt.
- ``POST /presentations/verify`` (public): a VC 2.0 ``VerifiablePresentation``: its own proof
  (if any: ``authentication`` by a ``did:key`` holder; ``options.challenge`` and
  ``options.domain`` must match the proof's), and each credential in it as above.

The verification routes keep the limits of ``POST /v1/verify`` and share its slots: bodies of
at most ``verify_max_body_bytes``, sent within ``verify_body_timeout``, at most
``verify_concurrency`` verifications in flight (``verify_per_client`` per client address).
A document that verifies is a 200 with the result; one that does not (a credential not
anchored yet included) is a 400 with the result, ``verified: false`` and the reasons, as the
VC-API has it; a request the API cannot read (not JSON, not the request's shape) is a 400
with an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from hashlib import sha256
from typing import Any, Final, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from anchor_service.api import verify as public_verify
from anchor_service.api.deps import ComponentsDep, IssuerIdentity, answered_by
from anchor_service.api.errors import ApiError, BusyError, validation_detail
from anchor_service.api.schemas import error_responses
from anchor_service.api.vcapi_schemas import (
    CredentialResult,
    IssueRequest,
    IssueResponse,
    PresentationResult,
    VerifyCredentialRequest,
    VerifyPresentationOptions,
    VerifyPresentationRequest,
)
from anchor_service.errors import NotAnchoredError, UnknownCredentialError
from anchor_service.logs import Redactor
from anchor_service.service import Components
from verifier.chain import ChainReader
from verifier.credential import canonicalize, issuer_id, parse_json_object
from verifier.data_integrity import verify_proof
from verifier.did import split_verification_method
from verifier.errors import (
    CredentialError,
    DataIntegrityError,
    DataIntegrityKeyError,
    ReceiptError,
)
from verifier.receipt import Receipt
from verifier.verify import CheckStatus, VerificationReport, check_signature, verify

__all__ = ["ISSUE_PATH", "MAX_PRESENTED_CREDENTIALS", "VERIFY_PATHS", "router"]

router = APIRouter(tags=["vc-api"])
ISSUE_PATH: Final = "/credentials/issue"
CREDENTIAL_VERIFY_PATH: Final = "/credentials/verify"
PRESENTATION_VERIFY_PATH: Final = "/presentations/verify"
#: The public routes, whose body limit is the verification limit (BodySizeLimit path_limits).
VERIFY_PATHS: Final = (CREDENTIAL_VERIFY_PATH, PRESENTATION_VERIFY_PATH)
#: Credentials in one presentation, at most: each costs a verification with its chain reads.
MAX_PRESENTED_CREDENTIALS: Final = 32
_VC_V2: Final = "https://www.w3.org/ns/credentials/v2"
_VC_V1: Final = "https://www.w3.org/2018/credentials/v1"
_EARLIER_FAILED: Final = "not checked: an earlier check failed"


def _body(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


# ------------------------------------------------------------------------------- issue


@router.post(ISSUE_PATH, status_code=201, response_model=IssueResponse,
             responses=error_responses(400, 401, 403, 409, 413, 415, 422, 503),
             openapi_extra=_body(IssueRequest, "VC-API IssueCredentialRequest"),
             summary="Sign a credential and accept it for anchoring (VC-API)")
async def issue(request: Request, components: ComponentsDep,
                identity: IssuerIdentity) -> JSONResponse:
    """Signs ``credential`` with the issuer's signing key (``options.cryptosuite``, else the
    issuer's suite) and accepts the signed credential for anchoring, as ``POST
    /v1/credentials`` does: the answer comes once it is on disk, and its ``Location`` is the
    credential's status route; the same credential sent again keeps its id and its first
    proof. 400 for a request or credential that cannot be issued (not JSON, another shape, an
    issuer that is not the issuer's DID, a proof already there, an unknown cryptosuite), 409
    when the registry does not trust the issuer now or the issuer has no signing key."""
    _require_json(request)
    body = await request.body()
    return await components.in_thread(_issue, components, identity.issuer_id or 0, body)


def _issue(components: Components, issuer_id: int, body: bytes) -> JSONResponse:
    payload = _parse(IssueRequest, body, wrapper_depth=1)
    options = payload.options
    if options is not None and options.mandatoryPointers:
        raise ApiError(400, "invalid_request", "options.mandatoryPointers: selective "
                       "disclosure is not supported by these cryptosuites")
    credential = dict(payload.credential)
    if "proof" in credential:
        raise ApiError(400, "invalid_credential", "credential: already has a proof; send a "
                       "credential signed elsewhere to POST /v1/credentials, which checks its "
                       "proof and anchors it as it is")
    signed, public_id = _sign_and_accept(components, issuer_id, credential,
                                         None if options is None else options.cryptosuite)
    return JSONResponse({"verifiableCredential": signed}, status_code=201,
                        headers={"Location": f"/v1/credentials/{public_id}"})


def _sign_and_accept(components: Components, issuer_id: int, credential: dict[str, Any],
                     suite: str | None) -> tuple[dict[str, Any], str]:
    """Sign and accept through the path of ``POST /v1/credentials``."""
    from anchor_service.api import credentials  # noqa: PLC0415 - the route module owns it

    signer = components.issuer_signer(issuer_id)
    if signer is None:
        raise ApiError(409, "no_signing_key", "this issuer has no signing key: create one "
                       "with `anchor-service signing-key create`")
    if "issuer" not in credential:
        # VC-API clients often leave the issuer to the issuing service: it is this one's DID.
        credential = {**credential, "issuer": signer.did}
    try:
        ((document, accepted),) = credentials.sign_and_accept(
            components, issuer_id, [credential], suite=suite)
    except ApiError as exc:
        if exc.status != 422:
            raise
        # The VC-API answers 400 for a credential or option it cannot issue, and names the
        # request's own fields (one "credential", and "options.cryptosuite").
        detail = exc.detail
        for theirs, ours in (("credentials[0]", "credential"), ("suite:", "options.cryptosuite:")):
            if detail.startswith(theirs):
                detail = ours + detail.removeprefix(theirs)
        raise ApiError(400, exc.error, detail) from None
    return document, accepted.public_id


# ------------------------------------------------------------------------------ verify


def _not_verified(result: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: 400 is the result itself for a document that does not verify (as the VC-API
    has it), or an error for a request it cannot read."""
    return {**error_responses(408, 413, 415, 429, 503), 400: {
        "description": "not verified (the result, verified false, errors saying why), or a "
        "request that is not the VC-API's shape (error, detail)",
        "content": {"application/json": {"schema": {"anyOf": [
            {"$ref": f"#/components/schemas/{result.__name__}"},
            {"$ref": "#/components/schemas/ErrorOut"}]}}}}}


async def verify_credential(request: Request, components: ComponentsDep) -> Response:
    """200 with the result for a credential that verifies; 400 with the result (``verified``
    false, ``errors`` saying why) for one that does not (a credential not anchored yet is
    one), and 400 with an error for a request that is not the VC-API's shape.
    ``options.checks`` ``["proof"]`` checks the issuer's proof alone, with no anchor."""
    return await _verification(request, components, _verify_credential_request)


async def verify_presentation(request: Request, components: ComponentsDep) -> Response:
    """The presentation's proof, if it has one (``authentication`` by the ``did:key`` of its
    ``verificationMethod``; ``options.challenge`` and ``options.domain`` must equal the
    proof's), and each credential as ``POST /credentials/verify`` verifies it. 200 with the
    result when everything verifies, 400 with the result when something does not, 400 with
    an error for a request that is not the VC-API's shape, 413 beyond
    :data:`MAX_PRESENTED_CREDENTIALS` credentials."""
    return await _verification(request, components, _verify_presentation_request)


def _public(endpoint: Callable[[Request, Components], Coroutine[Any, Any, Response]]
            ) -> type[APIRoute]:
    """The route class of a public verification (:func:`answered_by`): ``endpoint`` with the
    components, found without FastAPI's dependency solving."""

    async def handler(request: Request) -> Response:
        return await endpoint(request, request.app.state.components)

    return answered_by(handler)


def _add_verification_routes() -> None:
    for path, endpoint, result, request, summary in (
            (CREDENTIAL_VERIFY_PATH, verify_credential, CredentialResult,
             VerifyCredentialRequest,
             "Verify a credential: its proof, issuer key and anchor (VC-API)"),
            (PRESENTATION_VERIFY_PATH, verify_presentation, PresentationResult,
             VerifyPresentationRequest,
             "Verify a presentation and every credential in it (VC-API)")):
        router.add_api_route(path, endpoint, methods=["POST"], response_model=result,
                             responses=_not_verified(result),
                             openapi_extra=_body(request, f"VC-API {request.__name__}"),
                             summary=summary, route_class_override=_public(endpoint))


_add_verification_routes()


async def _verification(request: Request, components: Components,
                        check: Callable[[Components, bytes, ChainReader], dict[str, Any]]
                        ) -> Response:
    """A public VC-API verification: the body read within the public verification limits,
    ``check`` run off the event loop with the shared chain reader as of the request's
    arrival (every credential judged at a head seen after it), 200 when verified and 400
    with the result when not (503 when the verification slots are taken)."""
    try:
        async with _public_verification(request, components) as body:
            reader = await public_verify.reader_after_arrival(components)
            result = await components.in_thread(check, components, body, reader)
    except BusyError as busy:
        return busy.response()
    return _json(request, result, 200 if result["verified"] else 400)


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the request as application/json")


@asynccontextmanager
async def _public_verification(request: Request, components: Components, *,
                               also: public_verify._Slots | None = None
                               ) -> AsyncIterator[bytes]:
    """The body of a public verification, read while holding one of the verification slots
    shared with ``POST /v1/verify``, and one of ``also`` when given (a route's own limit);
    503 with Retry-After when none is free, before the body is read."""
    _require_json(request)
    slots = public_verify._slots(request, components)  # one budget for all public verification
    client = public_verify._client_key(request)
    retry = public_verify._RETRY_AFTER_SECONDS
    refused = slots.take(client)
    if refused is not None:
        raise BusyError(f"{refused}: retry in {retry} s", retry)
    if also is not None and (refused := also.take(client)) is not None:
        slots.give_back(client)
        raise BusyError(f"{refused}: retry in {retry} s", retry)
    try:
        deadline = components.settings.verify_body_timeout
        try:
            async with asyncio.timeout(deadline):
                body = await public_verify._read_body(request)
        except TimeoutError:
            raise ApiError(408, "body_timeout", "a verification request body must arrive "
                           f"within {deadline:g} s") from None
        yield body
    finally:
        slots.give_back(client)
        if also is not None:
            also.give_back(client)


def _json(request: Request, result: Mapping[str, Any], status: int = 200) -> Response:
    # The answer quotes chain errors and the request's own text: the service's secrets are
    # taken out of it as out of every error.
    redact: Redactor = getattr(request.app.state, "redact", Redactor())
    return Response(redact(json.dumps(result, ensure_ascii=False, allow_nan=False,
                                      separators=(",", ":"))),
                    status_code=status, media_type="application/json")


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], body: bytes, *, wrapper_depth: int) -> _M:
    """The request as ``model``: 400 for text that is not strict JSON or not its shape."""
    if not body.strip():
        raise ApiError(400, "invalid_request", "send the request as a JSON object")
    try:
        data = parse_json_object(body, "request body", wrapper_depth=wrapper_depth)
    except CredentialError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_detail(exc.errors())) from None


def _verify_credential_request(components: Components, body: bytes,
                               reader: ChainReader) -> dict[str, Any]:
    payload = _parse(VerifyCredentialRequest, body, wrapper_depth=1)
    options = payload.options
    warnings = _ignored_options(options, "options")
    wanted = _wanted_checks(None if options is None else options.checks, warnings)
    result = _verify_one(components, payload.verifiableCredential,
                         None if options is None else options.receipt, "verifiableCredential",
                         wanted, reader=reader)
    result["warnings"] = warnings + result["warnings"]
    return result


#: The checks a request may name in ``options.checks``.
_CHECKS: Final = ("proof", "anchor")


def _wanted_checks(named: list[str] | None, warnings: list[str]) -> frozenset[str]:
    """The checks ``options.checks`` asks for (both when it names none); a name this service
    does not know is a warning, never a check silently passed."""
    if named is None:
        return frozenset(_CHECKS)
    for name in dict.fromkeys(named):
        if name not in _CHECKS:
            warnings.append(f"options.checks: {name[:100]!r} is not a check of this service "
                            f"({', '.join(_CHECKS)}); not run")
    wanted = frozenset(named) & frozenset(_CHECKS)
    if not wanted:
        raise ApiError(400, "invalid_request", "options.checks: names none of this "
                       f"service's checks ({', '.join(_CHECKS)})")
    return wanted


def _ignored_options(options: BaseModel | None, where: str) -> list[str]:
    extra = sorted((options.model_extra or {}) if options is not None else {})
    return [f"{where}.{name[:100]}: not an option of this service; ignored" for name in extra]


def _verify_one(components: Components, credential: dict[str, Any],
                receipt_data: dict[str, Any] | None, where: str,
                wanted: frozenset[str], *, reader: ChainReader) -> dict[str, Any]:
    """The VC-API result of one credential (400 if it cannot be canonicalised at all)."""
    try:
        canonical = canonicalize(credential)
    except CredentialError as exc:
        detail = str(exc).removeprefix("credential")
        raise ApiError(400, "invalid_credential", f"{where}{detail}") from None
    warnings = _context_warnings(credential)
    if "anchor" not in wanted:  # the proof alone, as any Data Integrity verifier checks it
        proof = check_signature(credential)
        passed = proof.status is CheckStatus.PASSED
        return {"verified": passed, "checks": ["proof"] if passed else [],
                "warnings": warnings, "errors": [] if passed else [f"proof: {proof.detail}"],
                "anchorReport": None}
    if receipt_data is not None:
        try:
            receipt = Receipt.from_dict(receipt_data)
        except ReceiptError as exc:
            return _unverified(warnings, f"receipt: {exc}")
    else:
        found = _stored_receipt(components, credential, sha256(canonical).digest())
        if isinstance(found, str):
            return _unverified(warnings, found)
        receipt = found
    report = verify(credential, receipt, trust=public_verify.service_trust(components),
                    reader=reader)
    return _result(report, warnings)


def _context_warnings(credential: Mapping[str, Any]) -> list[str]:
    context = credential.get("@context")
    first = context[0] if isinstance(context, list) and context else context
    if first == _VC_V1:
        return [f"@context: a VC Data Model 1.1 credential ({_VC_V1}); verifiers that "
                f"accept only VC 2.0 ({_VC_V2}) refuse it"]
    return []


def _unverified(warnings: list[str], error: str) -> dict[str, Any]:
    return {"verified": False, "checks": [], "warnings": warnings, "errors": [error],
            "anchorReport": None}


def _result(report: VerificationReport, warnings: list[str]) -> dict[str, Any]:
    passed = [c.name for c in report.checks if c.status is CheckStatus.PASSED]
    failed = [f"{c.name}: {c.detail}" for c in report.checks
              if c.status is CheckStatus.FAILED
              or (c.status is CheckStatus.NOT_CHECKED and c.detail != _EARLIER_FAILED)]
    # Checks skipped because an earlier one failed are consequences, not causes: warnings.
    skipped = [f"{c.name}: {c.detail}" for c in report.checks
               if c.status is CheckStatus.NOT_CHECKED and c.detail == _EARLIER_FAILED]
    return {"verified": report.valid, "checks": passed, "warnings": warnings + skipped,
            "errors": failed, "anchorReport": report.to_dict()}


def _stored_receipt(components: Components, credential: Mapping[str, Any],
                    digest: bytes) -> Receipt | str:
    """The receipt this service holds for the credential, or why there is none."""
    issuer_did = issuer_id(credential)
    if issuer_did is None:
        return ("issuer: the credential names no issuer (a string or an object with an id), "
                "so no receipt of this service can be found for it: send its receipt in "
                "options.receipt")
    issuer = components.store.issuer_with_did(issuer_did)
    if issuer is None:
        return (f"no receipt: the issuer {issuer_did[:200]!r} does not anchor through this "
                "service; send the credential's receipt in options.receipt")
    record = components.store.credential_by_digest(issuer.id, digest)
    if record is None:
        return (f"no receipt: this service has no credential of {issuer_did[:200]!r} with "
                f"digest 0x{digest.hex()} (not submitted here, or changed since); send its "
                "receipt in options.receipt")
    try:
        return components.receipts.receipt_of(record)
    except NotAnchoredError as exc:
        return f"not anchored yet: {exc}; verify it again once its batch is anchored"
    except UnknownCredentialError as exc:
        return f"no receipt: {exc}"


# ------------------------------------------------------------------------ presentations


def _verify_presentation_request(components: Components, body: bytes,
                                 reader: ChainReader) -> dict[str, Any]:
    # A credential sits three levels inside: request, presentation, verifiableCredential list.
    payload = _parse(VerifyPresentationRequest, body, wrapper_depth=3)
    presentation = payload.verifiablePresentation
    options = payload.options
    warnings = _ignored_options(options, "options")
    credentials = _presented_credentials(presentation)
    receipts: list[dict[str, Any] | None] = list(
        options.receipts if options is not None and options.receipts is not None
        else [None] * len(credentials))
    if len(receipts) != len(credentials):
        raise ApiError(400, "invalid_request", f"options.receipts: {len(receipts)} receipts "
                       f"for {len(credentials)} credentials (give one, or null, for each)")
    checks: list[str] = []
    errors: list[str] = []
    _presentation_proof(presentation, options, checks, warnings, errors)
    wanted = _wanted_checks(None if options is None else options.checks, warnings)
    results = [_verify_one(components, credential, receipt,
                           f"verifiablePresentation.verifiableCredential[{index}]", wanted,
                           reader=reader)
               for index, (credential, receipt) in enumerate(zip(credentials, receipts,
                                                                 strict=True))]
    unverified = [str(i) for i, r in enumerate(results) if not r["verified"]]
    if unverified:
        errors.append(f"credentials: not verified: verifiableCredential[{', '.join(unverified)}]"
                      " (see credentialResults)")
    elif results:
        checks.append("credentials")
    return {"verified": not errors, "checks": checks, "warnings": warnings, "errors": errors,
            "credentialResults": results}


def _presented_credentials(presentation: Mapping[str, Any]) -> list[dict[str, Any]]:
    kinds = presentation.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or "VerifiablePresentation" not in kinds:
        raise ApiError(400, "invalid_presentation", "verifiablePresentation.type: must "
                       "include VerifiablePresentation")
    held = presentation.get("verifiableCredential", [])
    held = [held] if isinstance(held, dict) else held
    if not isinstance(held, list) or not all(isinstance(c, dict) for c in held):
        raise ApiError(400, "invalid_presentation", "verifiablePresentation."
                       "verifiableCredential: must be a credential (JSON object) or a list "
                       "of them")
    if len(held) > MAX_PRESENTED_CREDENTIALS:
        raise ApiError(413, "too_many_items", f"{len(held)} credentials in the presentation; "
                       f"at most {MAX_PRESENTED_CREDENTIALS} per request")
    return held


def _presentation_proof(presentation: Mapping[str, Any],
                        options: VerifyPresentationOptions | None, checks: list[str],
                        warnings: list[str], errors: list[str]) -> None:
    """The presentation's own proof, then its challenge, domain and holder."""
    challenge = None if options is None else options.challenge
    domain = None if options is None else options.domain
    proof = presentation.get("proof")
    if proof is None:
        if challenge is not None or domain is not None:
            errors.append("proof: the presentation has no proof, so the challenge and domain "
                          "given in options cannot be checked")
        else:
            warnings.append("proof: the presentation has no proof: its holder is not "
                            "authenticated")
        return
    if isinstance(proof, list) and len(proof) == 1:  # a set of one proof is that proof
        proof = proof[0]
    if not isinstance(proof, dict):
        errors.append("proof: one DataIntegrityProof object (or a list holding one) is "
                      "supported, not a proof set")
        return
    try:
        did, key = split_verification_method(proof.get("verificationMethod"))
        if did != f"did:key:{key.multibase}":
            raise DataIntegrityKeyError(f"verificationMethod: the holder's key must be a "
                                        f"did:key (did:key:<key>#<key>), not {did[:100]!r}")
        verify_proof(presentation, key, expected_proof_purpose="authentication")
    except DataIntegrityError as exc:
        errors.append(f"proof: {exc}")
        return
    checks.append("proof")
    _bound_to(proof, {"challenge": challenge, "domain": domain}, checks, warnings, errors)
    holder = presentation.get("holder")
    holder = holder.get("id") if isinstance(holder, dict) else holder
    if holder is not None:
        if holder == did:
            checks.append("holder")
        else:
            errors.append("holder: not the DID of the key that signed the presentation")


def _bound_to(proof: Mapping[str, Any], expected: Mapping[str, str | None], checks: list[str],
              warnings: list[str], errors: list[str]) -> None:
    """The proof's challenge and domain against those the verifier asked for."""
    for name, wanted in expected.items():
        given = proof.get(name)
        if wanted is None:
            if given is not None:
                warnings.append(f"{name}: the proof has one, but options.{name} was not given "
                                "to check it against")
        elif given == wanted:
            checks.append(name)
        else:
            errors.append(f"{name}: the proof's {name} is not options.{name}")
