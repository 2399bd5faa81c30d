"""Published status lists: ``GET /issuers/{name}/status-lists/{list}/{purpose}``.

A W3C ``BitstringStatusListCredential`` signed by the issuer, each bit read from the chain
(:mod:`anchor_service.status_lists`): as of the latest block with the required confirmations,
or as of ``?block=N`` / ``?asOf=TIME`` (RFC 3339 with a time zone, or Unix seconds). Public
(rate limited per client address like every route without a token) and cacheable: ``ETag``
is the quoted SHA-256 of the body, ``If-None-Match`` answers 304, ``Cache-Control`` lets
caches keep it until the service would render it again.

Each request is answered at a chain head seen after it arrived (one head request of the
process's shared chain reader, coalesced, serves every request that came before it began), so
a list read on a branch the chain has left is never served. A list the service keeps in memory
is then answered without a thread, a database query or another chain read."""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from anchor_service.api import verify as public_verify
from anchor_service.api.deps import ComponentsDep
from anchor_service.api.errors import ApiError, BusyError
from anchor_service.api.schemas import error_responses
from anchor_service.errors import StatusListRequestError
from anchor_service.service import Components
from anchor_service.status import parse_as_of
from anchor_service.status_lists import RenderedList, StatusLists
from verifier.chain import PinnedReader
from verifier.contract_types import StatusPurpose
from verifier.errors import ChainReadError

__all__ = ["PATH", "router"]

router = APIRouter(tags=["status lists"])

PATH: Final = "/issuers/{name}/status-lists/{status_list}/{purpose}"
_MEDIA_TYPES: Final = ("application/vc", "application/vc+ld+json")
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_LIST: Final = 2**32 - 1
_LIST_SCHEMA: Final = {
    "type": "object",
    "description": "A BitstringStatusListCredential (W3C Bitstring Status List v1.0) with a "
    "DataIntegrityProof, its evidence the chain block it was read at",
    "required": ["@context", "id", "type", "issuer", "validFrom", "validUntil",
                 "credentialSubject", "evidence", "proof"],
}
_ANSWERS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "the status list credential",
          "content": {"application/json": {"schema": _LIST_SCHEMA},
                      "application/vc": {"schema": _LIST_SCHEMA}}},
    304: {"description": "the list named by If-None-Match is still the one served"},
    **error_responses(400, 404, 429, 503),
}


@router.get(PATH, responses=_ANSWERS, summary="A status list of an issuer, from the chain")
async def status_list(
    request: Request,
    components: ComponentsDep,
    name: str,
    status_list: str,
    purpose: str,
    *,
    block: str | None = Query(None, description="the list as it stood at this block"),
    as_of: str | None = Query(None, alias="asOf", description="the list as it stood at this "
                              "time: RFC 3339 with a time zone, or Unix seconds"),
) -> Response:
    """The issuer's ``revocation`` or ``suspension`` list number ``status_list``, signed by
    the issuer (``eddsa-jcs-2022``, or ``ecdsa-jcs-2019`` for a P-256 key), with the block it
    was read at in ``evidence``. 400 for a bad ``block`` or ``asOf`` (or both, or a block not
    confirmed yet); 404 for an issuer not served here, a purpose other than those two, a
    list above the issuer's highest allocated list, a block or time before the anchor's
    deployment, or (``unknown_block``, as the credential status route answers) an ``asOf``
    after the latest confirmed block, whose list is not settled yet; 503 when the issuer has
    no signing key or the chain cannot be read, and ``busy`` (with Retry-After) while
    :data:`~anchor_service.status_lists.PAST_RENDERINGS` past lists are being found or
    rendered."""
    number, chosen = _list_and_purpose(status_list, purpose)
    lists = components.status_lists()
    head = await _head_after_arrival(components)
    found: RenderedList
    if block is None and as_of is None:
        cached = None if isinstance(head, StatusListRequestError) else lists.cached(
            name, number, chosen, head)
        found = cached if cached is not None else await components.in_thread(
            _served, lists.current, name, number, chosen, head)
    else:
        if isinstance(head, StatusListRequestError):
            raise _answer(head)
        at = await components.in_thread(_served, _block_of, lists, block, as_of, head)
        found = await components.in_thread(_served, lists.at_block, name, number, chosen,
                                           at, head)
    return _response(request, found, lists.clock())


async def _head_after_arrival(components: Components) -> PinnedReader | StatusListRequestError:
    """A reader of the chain's head as seen after the request arrived, or the refusal when
    the node cannot say (a kept list may still be served, see StatusLists.current)."""
    try:
        return await public_verify.head_after(components)
    except ChainReadError as exc:
        return StatusListRequestError(503, "chain_unavailable",
                                      f"the chain cannot be read now: {exc}")


def _list_and_purpose(status_list: str, purpose: str) -> tuple[int, StatusPurpose]:
    if not _NUMBER.fullmatch(status_list) or int(status_list) > _MAX_LIST:
        raise ApiError(404, "not_found", f"{status_list[:20]!r} is not a status list number "
                       f"(0..{_MAX_LIST})")
    try:
        return int(status_list), StatusPurpose(purpose)
    except ValueError:
        raise ApiError(404, "not_found", f"{purpose[:20]!r} is not a status purpose: "
                       "revocation or suspension") from None


def _served(function: Any, *args: Any) -> Any:
    """``function(*args)`` with its refusal as an HTTP answer."""
    try:
        return function(*args)
    except StatusListRequestError as exc:
        raise _answer(exc) from None


def _answer(refusal: StatusListRequestError) -> ApiError:
    """The HTTP answer of a refusal (``busy``: 503 with Retry-After)."""
    if refusal.error_code == "busy":
        return BusyError(refusal.detail, 1)
    return ApiError(refusal.http_status, refusal.error_code, refusal.detail)


def _block_of(lists: StatusLists, block: str | None, as_of: str | None,
              head: PinnedReader) -> int:
    if block is not None and as_of is not None:
        raise StatusListRequestError(400, "invalid_request",
                                     "give block or asOf, not both")
    if block is not None:
        if not _NUMBER.fullmatch(block):
            raise StatusListRequestError(400, "invalid_request",
                                         f"block: {block[:30]!r} is not a block number")
        return int(block)
    assert as_of is not None  # noqa: S101 - one of the two is given (the caller's test)
    return lists.block_at_time(_time(as_of), head)


def _time(text: str) -> int:
    """Unix seconds of an ``asOf`` (:func:`anchor_service.status.parse_as_of`)."""
    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise StatusListRequestError(400, "invalid_request", f"asOf: {exc}") from None


def _response(request: Request, found: RenderedList, now: float) -> Response:
    headers = {"ETag": found.etag,
               "Cache-Control": f"public, max-age={found.max_age(now)}",
               "Vary": "Accept"}
    wanted = request.headers.get("if-none-match")
    if wanted is not None and _matches(wanted, found.etag):
        return Response(status_code=304, headers=headers)
    accept = request.headers.get("accept", "").lower()
    media_type = next((t for t in _MEDIA_TYPES if t in accept), "application/json")
    return Response(found.body, media_type=media_type, headers=headers)


def _matches(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))
