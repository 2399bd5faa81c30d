"""Issuer DID documents (did:web), generated from the on-chain registry.

``GET /issuers/{name}/did.json`` is where a did:web resolver looks for the document of
``did:web:<host>:issuers:<name>`` (did:web method specification: the DID's path segments become
the URL's path, with ``/did.json`` appended). ``GET /.well-known/did.json`` serves the issuer
whose DID is ``did:web:<host>`` itself, when the ``did_web_host`` setting names that host.

The chain is the authority: the DID is the registry entity's, and the document lists the
entity's registered signing keys as ``Multikey`` verification methods. A key retired by
ordinary rotation or expiry stays listed (credentials signed with it before keep verifying:
whether it was trusted when a credential was anchored is the registry's question, which our
verifier asks); a key revoked (for compromise) is removed, so a standard verifier refuses
what it signed.

The routes are public, so each answer is kept for about a second per issuer: a flood costs
a few chain reads a second, whatever its rate. The host part of the DID is not checked (the
service cannot know the name it is reached by behind a proxy); its path must name the
issuer."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from anchor_service.api.deps import ComponentsDep
from anchor_service.api.errors import ApiError
from anchor_service.api.schemas import error_responses
from anchor_service.service import Components
from anchor_service.store import Issuer
from verifier.did import did_document
from verifier.errors import ChainReadError, ContractTypeError, DataIntegrityError
from verifier.multikey import Multikey

__all__ = ["CACHE_SECONDS", "WELL_KNOWN_PATH", "did_names_issuer", "router"]

router = APIRouter(tags=["did"])
log = logging.getLogger("anchor_service.api")

#: How long an answer (document or refusal) is served again without reading the chain.
CACHE_SECONDS: Final = 1.0
#: Seconds a request for a document never read before waits for the read in flight.
FIRST_READ_WAIT: Final = 2.0
WELL_KNOWN_PATH: Final = "/.well-known/did.json"
_DID_MEDIA_TYPES: Final = ("application/did+json", "application/did+ld+json")
_DOCUMENT_SCHEMA: Final = {
    "type": "object",
    "description": "A DID document (W3C DID Core 1.0) with Multikey verification methods "
    "under assertionMethod.",
    "required": ["@context", "id", "verificationMethod", "assertionMethod"],
    "properties": {
        "@context": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string"},
        "verificationMethod": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "type", "controller", "publicKeyMultibase"],
            "properties": {"id": {"type": "string"}, "type": {"const": "Multikey"},
                           "controller": {"type": "string"},
                           "publicKeyMultibase": {"type": "string"}}}},
        "assertionMethod": {"type": "array", "items": {"type": "string"}},
    },
}
_ANSWERS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "the DID document",
          "content": {"application/json": {"schema": _DOCUMENT_SCHEMA},
                      "application/did+json": {"schema": _DOCUMENT_SCHEMA}}},
    **error_responses(404, 429, 502, 503),
}


@dataclass(frozen=True, slots=True)
class _Answer:
    """A document, or why there is none (an HTTP status and error)."""

    document: dict[str, Any] | None
    status: int = 200
    error: str = ""
    detail: str = ""


_BUSY = _Answer(None, 503, "busy", "the DID document is being read from the registry now; "
                "retry in a second")


class _DocumentCache:
    """Answers by key for :data:`CACHE_SECONDS`, each key read by one request at a time.

    While a key is being read, other requests for it get the previous answer (kept past its
    time for this). With none yet, they wait for that read at most ``first_read_wait`` seconds
    (a standard verifier fetches a DID document for several checks at once, with no cache of
    its own), then get 503: a flood during a slow first read holds each thread that briefly,
    and never starts a second read. The table holds at most one entry per issuer served here
    and one for the well-known DID (unknown names are refused before the cache), and the lock
    guards only the table, never a chain read."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, *,
                 first_read_wait: float = FIRST_READ_WAIT) -> None:
        self.seconds = seconds
        self.first_read_wait = first_read_wait
        self._clock = clock
        self._answers: dict[str, tuple[float, _Answer]] = {}
        self._reading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], _Answer]) -> _Answer:
        with self._lock:
            cached = self._answers.get(key)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            done = self._reading.get(key)
            if done is None:
                done = self._reading[key] = threading.Event()
                reader = True
            elif cached is not None:
                return cached[1]
            else:
                reader = False
        if not reader:
            if not done.wait(self.first_read_wait):
                return _BUSY
            with self._lock:
                found = self._answers.get(key)
            return _BUSY if found is None else found[1]
        try:
            answer = compute()
            with self._lock:
                self._answers[key] = (self._clock() + self.seconds, answer)
        finally:
            with self._lock:
                del self._reading[key]
            done.set()
        return answer


@router.get("/issuers/{name}/did.json", responses=_ANSWERS,
            summary="The DID document of an issuer (did:web), from the registry")
async def issuer_document(name: str, request: Request, components: ComponentsDep) -> Response:
    """The document of ``did:web:<host>:issuers:<name>``: the issuer's signing keys registered
    on chain and not revoked, as ``Multikey`` verification methods under ``assertionMethod``.
    404 for an issuer not served here, or whose DID on the chain is not of this form; 503
    when the chain cannot be read."""
    # Unknown names are refused before the cache, so that it holds one entry per issuer.
    issuer = await components.in_thread(components.store.issuer_named, name)
    if issuer is None:
        raise ApiError(404, "not_found", f"no issuer {name[:100]!r} is served here")
    answer = await components.in_thread(
        _cached, request, f"issuer:{issuer.id}",
        lambda: _document_answer(components, issuer, lambda did: did_names_issuer(did, name),
                                 f"did:web:<host>:issuers:{name}"))
    return _response(request, answer)


@router.get(WELL_KNOWN_PATH, responses=_ANSWERS,
            summary="The DID document of the issuer whose DID is did:web:<this host>")
async def well_known_document(request: Request, components: ComponentsDep) -> Response:
    """Served when the ``did_web_host`` setting names a host: the document of the issuer
    whose DID on the chain is ``did:web:<did_web_host>``. 404 otherwise."""
    host = _did_web_host(components)
    if not host:
        raise ApiError(404, "not_found", "this service serves no DID at /.well-known/did.json "
                       "(the did_web_host setting is empty)")
    answer = await components.in_thread(_cached, request, f"host:{host}",
                                        lambda: _well_known_answer(components, host))
    return _response(request, answer)


def _did_web_host(components: Components) -> str:
    return components.settings.did_web_host


def _cached(request: Request, key: str, compute: Callable[[], _Answer]) -> _Answer:
    cache = getattr(request.app.state, "did_documents", None)
    if not isinstance(cache, _DocumentCache):
        cache = _DocumentCache(CACHE_SECONDS)
        request.app.state.did_documents = cache
    return cache.get(key, compute)


def _response(request: Request, answer: _Answer) -> Response:
    if answer.document is None:
        raise ApiError(answer.status, answer.error, answer.detail)
    accept = request.headers.get("accept", "").lower()
    media_type = next((t for t in _DID_MEDIA_TYPES if t in accept), "application/json")
    body = json.dumps(answer.document, ensure_ascii=False, separators=(",", ":"))
    # Caches may keep it as long as this service does; no longer, or a revoked key would
    # stay listed in them.
    return Response(body, media_type=media_type,
                    headers={"Cache-Control": f"public, max-age={int(CACHE_SECONDS)}",
                             "Vary": "Accept"})


def expected_did_path(name: str) -> tuple[str, str]:
    """The path segments (after the host) of the did:web DID of issuer ``name``."""
    return ("issuers", name)


def did_names_issuer(did: str, name: str) -> bool:
    """Whether ``did`` is ``did:web:<host>:issuers:<name>`` (the host is not checked)."""
    if not did.startswith("did:web:"):
        return False
    segments = did[len("did:web:"):].split(":")
    return (len(segments) == 3 and bool(segments[0])
            and tuple(unquote(s) for s in segments[1:]) == expected_did_path(name))


def _well_known_answer(components: Components, host: str) -> _Answer:
    did = f"did:web:{host}"
    issuer = next((i for i in components.store.issuers() if i.did == did), None)
    if issuer is None:
        return _Answer(None, 404, "not_found", f"no issuer served here has the DID {did}")
    return _document_answer(components, issuer, lambda found: found == did, did)


def _document_answer(components: Components, issuer: Issuer, matches: Callable[[str], bool],
                     expected: str) -> _Answer:
    """The document of ``issuer`` from the chain, if its registry DID ``matches``."""
    registry = components.deployment.registry
    try:
        reader = components.chain_reader().at_head()
        entity = reader.entity(registry, issuer.entity_id)
        if not matches(entity.did):
            return _Answer(None, 404, "not_found", (
                f"issuer {issuer.name!r}: its DID in the registry (entity {issuer.entity_id}) "
                f"is {entity.did[:200]!r}, not {expected}: its document is not served here"))
        infos = reader.entity_signing_keys(registry, issuer.entity_id)
    except ChainReadError as exc:
        return _Answer(None, 503, "chain_unavailable",
                       f"the registry cannot be read now: {exc}")
    except ContractTypeError as exc:
        return _Answer(None, 502, "chain_answer_unexpected", str(exc))
    keys: list[Multikey] = []
    for info in infos:
        if info.revoked_at != 0:
            continue  # revoked (compromise): no longer listed
        try:
            keys.append(info.multikey())
        except DataIntegrityError as exc:
            # The registry checks a key's form, not that its point is on the curve: a key
            # that is not one can sign nothing, and the issuer's other keys stay listed.
            log.warning("issuer %s: signing key 0x%s in the registry is not a valid key, "
                        "left out of its DID document: %s", issuer.name,
                        bytes(info.key_id).hex(), exc)
    try:
        return _Answer(did_document(entity.did, keys))
    except DataIntegrityError as exc:
        return _Answer(None, 502, "chain_answer_unexpected",
                       f"issuer {issuer.name!r}: its registry DID is not a DID: {exc}")
