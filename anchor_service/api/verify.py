"""POST /v1/verify: stateless verification of a bundle against the chain, for anyone.

The trust list is this service's own deployment (its chain and contracts); the answer is the
verifier library's report, every check with its evidence. A credential must carry its issuer's
signature (``requireSignature``), unless the request asks ``?allowUnsigned=true``: an
unsigned credential is then judged on its anchor alone and the report says so
(``unsignedAllowed``). No token is needed: verifying reveals nothing that the bundle does not
already hold.

Being public, the route keeps its own limits: bodies of at most ``verify_max_body_bytes``
(the app's body-size limit for this path, counted as they arrive, whether or not a
Content-Length was sent), sent within ``verify_body_timeout``, at most
``verify_concurrency`` verifications in flight (beyond, 503 with Retry-After before the body
is read), and one chain reader shared by every request of the process, so that the chain
work of a verification is a few cached reads. Every verification is judged at a chain head
seen after its request arrived (one head request, coalesced, serves every request that came
before it began), so that none answers from a branch the chain had left by then."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect

from anchor_service.api.deps import ComponentsDep, answered_by
from anchor_service.api.errors import ApiError, validation_detail
from anchor_service.api.schemas import error_responses
from anchor_service.logs import Redactor
from anchor_service.service import Components
from verifier.chain import CacheMiss, ChainReader, PinnedReader
from verifier.data_integrity import ECDSA_JCS_2019, EDDSA_JCS_2022
from verifier.errors import ChainReadError, ReceiptError, UnreadableDocumentError
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import parse_datetime, verify, verify_bundle_text

__all__ = ["head_after", "reader_after_arrival", "router", "service_trust"]

router = APIRouter(prefix="/v1", tags=["verify"])
#: The public verification route, whose body limit is its own (BodySizeLimit path_limits).
PATH = "/v1/verify"
# Any JSON is documented as acceptable, because any JSON object gets an answer: a document
# that is not a well-formed bundle is reported as a failed receipt_well_formed check, not
# refused. Text that is not strict JSON is a 400, as on every route.
# The bundle's own schema is verifier/schemas/bundle-v2.schema.json.
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "description": "A bundle (format microcred-anchor-bundle, version 2): a credential and "
    "its receipt. JSON Schema: verifier/schemas/bundle-v2.schema.json. Any JSON object gets a "
    "report; text that is not strict I-JSON (a syntax error, a duplicate key, NaN, an integer "
    "literal of more than 16 digits, nesting deeper than 128 levels in the credential) is "
    "refused with 400."}}}}}
_RETRY_AFTER_SECONDS = 1
#: Bundles of at most this many bytes are verified on the event loop when the chain reader's
#: cache answers every read (a few kilobytes: well under a millisecond of work); larger ones,
#: and those that need the node, in a worker thread.
INLINE_BODY_BYTES = 16 * 1024
#: The cryptosuites whose proof is cheap enough to check on the event loop (JCS: a
#: canonicalisation of the JSON and one signature). A proof of another suite (eddsa-rdfc-2022:
#: JSON-LD expansion and RDF canonicalisation, tens of milliseconds for a crafted credential
#: of a few kilobytes) is checked in a worker thread, where it holds up no other request.
INLINE_SUITES = frozenset({EDDSA_JCS_2022, ECDSA_JCS_2019})


class _Slots:
    """Verifications in flight, in all and per client address, counted on the event loop
    (only its thread touches this). The per-client share keeps one slow sender from holding
    every slot while its bodies trickle in (each for up to the body timeout)."""

    def __init__(self, limit: int, per_client: int, what: str = "verifications") -> None:
        self.limit = limit
        self.per_client = per_client
        self.what = what  # in the refusals' words
        self.taken = 0
        self._by_client: dict[str, int] = {}

    def take(self, client: str) -> str | None:
        """Take a slot for ``client``; None if taken, else why not."""
        if self.taken >= self.limit:
            return (f"{self.limit} {self.what} are in flight, the most this service runs "
                    "at once")
        held = self._by_client.get(client, 0)
        if held >= self.per_client:
            return (f"{held} {self.what} from your address are in flight, the most it may "
                    "have at once")
        self.taken += 1
        self._by_client[client] = held + 1
        return None

    def give_back(self, client: str) -> None:
        self.taken -= 1
        held = self._by_client.pop(client) - 1
        if held:
            self._by_client[client] = held


async def verify_bundle(
    request: Request,
    components: ComponentsDep,
    as_of: Annotated[str | None, Query(
        alias="asOf", json_schema_extra={"format": "date-time"},
        description="Judge the credential as of this time (ISO 8601 with a time zone): its "
        "validity period then, and its revocation and suspension as the chain stood then. "
        "Default: now.")] = None,
    allow_unsigned: Annotated[bool, Query(
        alias="allowUnsigned",
        description="Accept a credential without an issuer signature (a Data Integrity "
        "proof) on its anchor alone: its signature checks are then not_applicable and the "
        "report's unsignedAllowed is true. A proof that is there is still checked. Default: "
        "false, an unsigned credential fails signature_valid.")] = False,
) -> Response:
    """Answers 200 with the report for any bundle, valid or not (``valid`` says which); a
    malformed bundle is reported as a failed ``receipt_well_formed`` check, and text that is
    not strict JSON (a syntax error, a duplicate key, NaN, an integer literal of more than 16
    digits, nesting too deep) is refused with 400. A body over the
    verification limit is refused with 413, and while the service has as many verifications
    in flight as it allows, requests are refused with 503 and ``Retry-After``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the bundle as application/json")
    when = _time(as_of)
    mark = components.chain_head().mark()  # the request has arrived
    slots = _slots(request, components)
    client = _client_key(request)
    refused = slots.take(client)
    if refused is not None:
        return JSONResponse(
            {"error": "busy", "detail": f"{refused}: retry in {_RETRY_AFTER_SECONDS} s"},
            status_code=503, headers={"Retry-After": str(_RETRY_AFTER_SECONDS)})
    try:
        # A bundle is a few kilobytes: a body slower than this is a client holding a slot,
        # not a slow upload (the service-wide body timeout is for large submissions).
        deadline = components.settings.verify_body_timeout
        try:
            async with asyncio.timeout(deadline):
                body = await _read_body(request)
        except TimeoutError:
            raise ApiError(408, "body_timeout", "a verification request body must arrive "
                           f"within {deadline:g} s") from None
        if not body.strip():
            raise ApiError(422, "invalid_request", "send a bundle as the request body")
        reader = await _after(components, mark)
        report = None
        work: bytes | Bundle = body
        if len(body) <= INLINE_BODY_BYTES:
            # Answered from the shared reader's cache, a small bundle's verification costs
            # less than the hand-over to a worker thread and back: made on the event loop
            # when the cache holds the bundle's anchor (a peek, before any costly work) and
            # its proof is of a cheap suite; else in a thread, with the bundle parsed here.
            bundle = _parsed(body)
            if bundle is None:  # not a bundle: reported at once, the chain is not read
                report = _verify(components, body, when, allow_unsigned, reader)
            else:
                work = bundle
                report = _inline(components, bundle, when, allow_unsigned, mark)
        if report is None:
            report = await components.in_thread(_verify, components, work, when, allow_unsigned,
                                                 reader)
    finally:
        slots.give_back(client)
    # The report quotes chain errors, and a bundle's own text: the service's secrets (the RPC
    # URL's path, where providers put API keys) are taken out of it as out of every error.
    redact: Redactor = getattr(request.app.state, "redact", Redactor())
    return Response(redact(json.dumps(report, ensure_ascii=False, allow_nan=False,
                                      separators=(",", ":"))),
                    media_type="application/json")


async def _verify_request(request: Request) -> Response:
    """``POST /v1/verify`` with its dependencies and query parameters found here
    (:func:`answered_by`): about a fifth of a verification's cost went to FastAPI's routing
    and dependency solving. The parameters are read and refused as FastAPI reads them (the last
    of repeated ones; a flag as pydantic reads a boolean)."""
    query = request.query_params
    return await verify_bundle(request, request.app.state.components,
                               as_of=query.get("asOf"),
                               allow_unsigned=_flag(query, "allowUnsigned"))


_FLAG: Final = TypeAdapter(bool)


def _flag(query: QueryParams, name: str) -> bool:
    """The boolean query parameter ``name`` (absent: False); 422 ``invalid_request``, naming
    it, if it is not one."""
    value = query.get(name)
    if value is None:
        return False
    try:
        return _FLAG.validate_python(value)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_detail(
            [{**error, "loc": ("query", name)} for error in exc.errors()])) from None


router.add_api_route(PATH.removeprefix(router.prefix), verify_bundle, methods=["POST"],
                     responses=error_responses(400, 408, 413, 415, 422, 503),
                     openapi_extra=_BODY,
                     summary="Verify a bundle (credential and receipt) against the chain",
                     route_class_override=answered_by(_verify_request))


def _client_key(request: Request) -> str:
    """Whose share a request counts against: its address, or for IPv6 its /64 (the block a
    single host or subscriber is usually given, so that one client cannot take a share per
    address)."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


def _slots(request: Request, components: Components) -> _Slots:
    slots = getattr(request.app.state, "verify_slots", None)
    if not isinstance(slots, _Slots):
        settings = components.settings
        slots = _Slots(settings.verify_concurrency, settings.verify_per_client)
        request.app.state.verify_slots = slots
    return slots


async def _read_body(request: Request) -> bytes:
    """The body (its size is bounded by the app's BodySizeLimit, 413 beyond)."""
    try:
        return await request.body()
    except ClientDisconnect:
        raise ApiError(400, "invalid_request", "the client went away before sending the "
                       "whole body") from None


def _time(text: str | None) -> datetime | None:
    """An ISO 8601 date-time with a time zone, written with its "T" (OpenAPI's date-time)."""
    if text is None:
        return None
    try:
        if "T" not in text:
            raise ValueError(f"{text!r} is not an ISO 8601 date-time")
        return parse_datetime(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"query.asOf: {exc}") from None


def service_trust(components: Components, *, require_signature: bool = True) -> TrustConfig:
    """What the public verification routes trust: this service's deployment, with its
    confirmations."""
    deployment = components.deployment
    return TrustConfig(deployments=(TrustedDeployment(
        name="this service", chain_id=deployment.chain_id, anchor=deployment.anchor,
        registry=deployment.registry),), min_confirmations=components.settings.confirmations,
        require_signature=require_signature)


async def head_after(components: Components, mark: int | None = None) -> PinnedReader:
    """A reader of the chain's head from a head request of the process's shared reader begun
    after ``mark`` (default: now, a request's arrival), awaited on the event loop and
    coalesced with the other requests'. :class:`~verifier.errors.ChainReadError` when the
    node cannot say."""
    chain_head = components.chain_head()
    if mark is None:
        mark = chain_head.mark()
    while True:
        await chain_head.seen_after(mark)
        head = chain_head.reader.pinned_after(mark)
        if head is not None:  # else found reorganised meanwhile: seen_after asks again
            return head


async def reader_after_arrival(components: Components) -> ChainReader:
    """The process's shared chain reader as a request arriving now sees it: its head from
    a head request begun after this call, awaited on the event loop (coalesced with the
    other requests'), so that the verification's thread need not wait for it."""
    return await _after(components, components.chain_head().mark())


async def _after(components: Components, mark: int) -> ChainReader:
    # On failure the verification asks once more, and reports the failure as not_checked.
    with contextlib.suppress(ChainReadError):
        await head_after(components, mark)
    return components.chain_head().reader.since(mark)


def _parsed(body: bytes) -> Bundle | None:
    """The bundle ``body`` holds; None for JSON that is not a well-formed bundle (reported as
    a failed ``receipt_well_formed``); 400 for text that is not JSON this verifier reads."""
    try:
        return Bundle.from_json(body)
    except UnreadableDocumentError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    except ReceiptError:
        return None


def _inline(components: Components, bundle: Bundle, as_of: datetime | None,
            allow_unsigned: bool, mark: int) -> dict[str, object] | None:
    """The report of ``bundle`` made on the event loop, from the shared reader's cache alone;
    None (before any costly work, as far as a look at the bundle tells) when it is to be made
    in a thread: its proof is of a costly suite, or the cache lacks its head, the chain id,
    its anchor or its block."""
    if not _cheap_proof(bundle.credential):
        return None
    trust = service_trust(components, require_signature=not allow_unsigned)
    anchor = bundle.receipt.anchor
    deployment = trust.deployment_for(anchor.chain_id, "0x" + anchor.contract.hex())
    reader: ChainReader = components.chain_head().reader.cached_since(mark)
    try:
        if deployment is not None:  # else no chain read is made
            # The reads every verification of an anchored bundle makes first, and the ones
            # that differ from one bundle to the next: cached, the rest (the issuer's) are
            # too, as a rule.
            reader = reader.at_head(anchor.block_number)
            reader.chain_id()
            reader.anchor_of(deployment.anchor, "0x" + anchor.anchoring_key.hex(),
                             bundle.receipt.root)
            reader.block(anchor.block_number)
        return _verify(components, bundle, as_of, allow_unsigned, reader)
    except CacheMiss:
        return None


def _cheap_proof(credential: Mapping[str, Any]) -> bool:
    """Whether checking ``credential``'s proof is cheap: none, one of :data:`INLINE_SUITES`,
    or a shape refused before any canonicalisation."""
    proof = credential.get("proof")
    if isinstance(proof, list) and len(proof) == 1:  # a set of one proof is that proof
        proof = proof[0]
    if not isinstance(proof, Mapping):
        return True
    return proof.get("cryptosuite") in INLINE_SUITES


def _verify(components: Components, work: bytes | Bundle, as_of: datetime | None,
            allow_unsigned: bool, reader: ChainReader) -> dict[str, object]:
    """The report of a bundle, given as the request's body or already parsed from it."""
    trust = service_trust(components, require_signature=not allow_unsigned)
    try:
        if isinstance(work, Bundle):
            return verify(work.credential, work.receipt, trust=trust, reader=reader,
                          as_of=as_of).to_dict()
        return verify_bundle_text(work, trust=trust, reader=reader, as_of=as_of).to_dict()
    except UnreadableDocumentError as exc:
        # Not JSON at all (syntax, duplicate keys, an integer literal of more than 16 digits,
        # nesting):
        # refused like any malformed request body. JSON of another shape gets a report.
        raise ApiError(400, "invalid_json", str(exc)) from None
