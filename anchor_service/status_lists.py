"""Published status lists: W3C Bitstring Status List credentials rendered from the chain.

For each issuer, list number and purpose (``revocation``, ``suspension``) the service serves a
``BitstringStatusListCredential`` signed by the issuer (``eddsa-jcs-2022`` with an Ed25519
key, ``ecdsa-jcs-2019`` with a P-256 key). Every bit comes from ``CredentialAnchor``: one
``statusWords(entity, list, 0, 512)`` call at a block reads both purposes of a whole list, and
the words' big-endian bytes are the bitstring (:func:`verifier.bitstring.words_to_bitstring`).
The credential names that block in its ``evidence`` (chain, contract, number, hash), so anyone
can check the list against the chain at that block.

Rendering costs a chain read and two signatures, so it never happens per request:

* :class:`StatusLists` keeps the rendered lists of the latest confirmed state (bounded, least
  recently used out) and serves them until the chain changes the list or less than half of
  the validity (``validFrom`` to ``validUntil``) is left;
* :class:`StatusWatcher`, a background thread, reads the anchor's four status events
  (``eth_getLogs``, from the block after the last it read to the latest confirmed block) and
  marks the (entity, list) of each one changed at its block; a list rendered at an earlier
  block is rendered again at its next request. When the last block it read is no longer the
  chain's (a reorganisation), every rendered list is dropped.
* The chain is read through the process's shared chain reader
  (:class:`~verifier.chain.JsonRpcChainReader`), and each request is answered at a head the
  reader saw after the request arrived (:meth:`StatusLists.cached` and :meth:`current` take
  it). A rendering is served only while the reader sees no reorganisation since it was read
  (the same *lineage* of heads): one made on a branch reorganised away is never served, even
  before the watcher's next round.

Lists of a past block (``?block=`` / ``?asOf=``) are rendered from the chain state at that
block and kept in a second bounded cache: a confirmed block's state does not change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from web3 import Web3
from web3.exceptions import Web3Exception

from anchor_service.chain import Deployment
from anchor_service.errors import (
    AnchorServiceError,
    SigningError,
    StatusListRequestError,
)
from anchor_service.signing import IssuerSigner
from anchor_service.store import Issuer, Store
from verifier.bitstring import encode_list, status_list_url
from verifier.chain import (
    JsonRpcChainReader,
    Lru,
    PinnedReader,
    block_ranges,
    last_block_made_by,
)
from verifier.contract_types import STATUS_LIST_SIZE, StatusPurpose, StatusWords
from verifier.contracts_abi import load_artifact
from verifier.data_integrity import VC_2_0_CONTEXT
from verifier.errors import ChainReadError, StatusListError
from verifier.multikey import KeyType
from verifier.times import iso_seconds

__all__ = [
    "BLOCK_TIMES",
    "FAILURE_SECONDS",
    "MAX_CHANGED_LISTS",
    "PAST_RENDERINGS",
    "RENDER_WAIT",
    "STATUS_EVENTS",
    "ChainPoint",
    "RenderedList",
    "StatusLists",
    "StatusWatcher",
    "highest_list",
]

log = logging.getLogger("anchor_service.status_lists")

#: The anchor's events that change a status list: each names (entityId, statusList) in its
#: two indexed topics.
STATUS_EVENTS: Final = ("CredentialsRevoked", "CredentialsSuspended", "CredentialsReinstated",
                        "RevocationsLifted")
_SUITE_OF_KEY: Final = {KeyType.ED25519: "eddsa-jcs-2022", KeyType.P256: "ecdsa-jcs-2019"}
_LIST_BYTES: Final = STATUS_LIST_SIZE // 8
#: Changed (entity, list) pairs remembered at most (see :meth:`StatusLists.mark_changed`).
MAX_CHANGED_LISTS: Final = 100_000
#: Lists of past blocks rendered at once at most (beyond: 503, retry).
PAST_RENDERINGS: Final = 2
#: Block times kept for ``?asOf=`` searches at most.
BLOCK_TIMES: Final = 4096
#: Seconds a request for a list being rendered waits for that rendering at most (as a DID
#: document's first read, :data:`anchor_service.api.did.FIRST_READ_WAIT`).
RENDER_WAIT: Final = 2.0
#: Seconds a failed rendering is answered again (503) rather than tried again.
FAILURE_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class ChainPoint:
    """A block a list is read at: its number, hash and time, and the lineage of heads (see
    :mod:`verifier.chain`) it was read in."""

    number: int
    hash: bytes
    timestamp: int
    lineage: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class RenderedList:
    """One signed list credential as served: its JSON body (the RFC 8785 form the signature
    covers), its entity tag (the quoted SHA-256 of the body), the block it was read at, and
    its validity (Unix seconds)."""

    body: bytes
    etag: str
    block: ChainPoint
    valid_from: int
    valid_until: int

    def refresh_at(self) -> float:
        """When it is rendered again although the chain did not change it: half-way."""
        return (self.valid_from + self.valid_until) / 2

    def max_age(self, now: float) -> int:
        """Seconds a cache may keep it: until it would be rendered again, never past
        ``validUntil``."""
        return max(0, int(min(self.refresh_at(), self.valid_until) - now))


@dataclass(frozen=True, slots=True)
class _Rendering:
    """Both purposes of one list, rendered from one read, and who signed them."""

    lists: dict[StatusPurpose, RenderedList]
    signer_key: str
    did: str

    @property
    def lineage(self) -> int:
        return self.lists[StatusPurpose.REVOCATION].block.lineage


def highest_list(allocated: int) -> int:
    """The highest status list of an issuer that has allocated ``allocated`` positions: that
    of its last one, or list 0 for an issuer with none yet (its first credentials go there,
    and its list 0 is served, all clear)."""
    return (allocated - 1) // STATUS_LIST_SIZE if allocated > 0 else 0


class StatusLists:
    """Renders and keeps the status list credentials of the issuers served here.

    ``signer_of(issuer_id)`` is the service's signer lookup
    (:meth:`~anchor_service.service.Components.issuer_signer`): None when the issuer has no
    signing key, :class:`~anchor_service.errors.SigningUnavailableError` when its key cannot
    be loaded; both are answered 503. :attr:`renders` counts renderings (each one chain read,
    both purposes). ``reader`` is the process's shared chain reader (by default one of its
    own over ``w3``, seeing the head after each call)."""

    def __init__(self, w3: Web3, deployment: Deployment, store: Store,
                 signer_of: Callable[[int], IssuerSigner | None], *, validity: int,
                 confirmations: int, cache_size: int = 1024, past_cache_size: int = 256,
                 clock: Callable[[], float] = time.time,
                 issuer_seconds: float = 1.0, render_wait: float = RENDER_WAIT,
                 reader: JsonRpcChainReader | None = None) -> None:
        self._own_reader = reader is None
        self.w3 = w3  # and the reader, unless one is given
        if reader is not None:
            self.reader = reader
        self.deployment = deployment
        self.store = store
        self.validity = validity
        self.confirmations = confirmations
        self.renders = 0
        self._signer_of = signer_of
        self._clock = clock
        self._issuer_seconds = issuer_seconds
        self.anchor_address = Web3.to_checksum_address(deployment.anchor)
        self._lock = threading.Lock()
        self._current: Lru[Hashable, _Rendering] = Lru(cache_size)
        self._past: Lru[Hashable, _Rendering] = Lru(past_cache_size)
        # (entity, list) -> the last block the watcher saw a status event of it in.
        self._changed: dict[tuple[int, int], int] = {}
        # name -> (issuer, until when it is taken from here rather than the database)
        self._issuers: dict[str, tuple[Issuer, float]] = {}
        self._rendering: dict[Hashable, threading.Lock] = {}
        # (issuer id, list) -> (until when, the refusal) of a rendering that failed just now.
        self._failures: dict[Hashable, tuple[float, StatusListRequestError]] = {}
        self._render_wait = render_wait
        self._past_slots = threading.BoundedSemaphore(PAST_RENDERINGS)
        # (lineage, block number) -> its time, for ?asOf= searches (least recently used out).
        self._block_times: Lru[tuple[int, int], int] = Lru(BLOCK_TIMES)
        # The first block the watcher reads events from (None: no watcher has started).
        self._watched_from: int | None = None
        # Counts drops: a rendering begun before one is served but not kept.
        self._generation = 0

    @property
    def w3(self) -> Web3:
        """The chain connection of the watcher's event queries; unless a reader was given,
        the reader's too (setting it makes a new reader)."""
        return self._w3

    @w3.setter
    def w3(self, w3: Web3) -> None:
        self._w3 = w3
        if self._own_reader:
            self.reader = JsonRpcChainReader(w3, head_max_age=0)

    def clock(self) -> float:
        """Now (Unix seconds), as the lists' validity is reckoned."""
        return self._clock()

    # ------------------------------------------------------------------ what the watcher says

    def mark_changed(self, entity_id: int, status_list: int, block_number: int) -> None:
        """A status event of (``entity_id``, ``status_list``) in block ``block_number``: a
        rendering read at an earlier block is out of date."""
        with self._lock:
            key = (entity_id, status_list)
            if block_number > self._changed.get(key, -1):
                self._changed[key] = block_number
            if len(self._changed) > MAX_CHANGED_LISTS:
                # Events of every issuer on the chain land here: past this many lists, start
                # again from nothing kept rather than grow (correct, at the cost of renders).
                self._current.clear()
                self._changed.clear()
                self._generation += 1

    def watch_from(self, block_number: int) -> None:
        """The watcher reads the status events from ``block_number`` on: a list read at an
        earlier block than the one before it is rendered again at its next request."""
        with self._lock:
            self._watched_from = block_number

    def oldest_block(self) -> int | None:
        """The earliest block a kept list of the latest state was read at (None: none
        kept)."""
        with self._lock:
            return min((rendering.lists[StatusPurpose.REVOCATION].block.number
                        for rendering in self._current.values()), default=None)

    def drop(self) -> None:
        """Forget every rendered list (the chain reorganised what they were read from)."""
        with self._lock:
            self._block_times.clear()
            self._current.clear()
            self._past.clear()
            self._changed.clear()
            self._generation += 1

    # ---------------------------------------------------------------------------- serving

    def cached(self, name: str, status_list: int, purpose: StatusPurpose,
               head: PinnedReader) -> RenderedList | None:
        """The list to serve now, from memory alone, or None when the database or the chain
        must be asked (issuer not looked up in the last second, list not rendered, changed,
        past half its validity, or rendered in another lineage than ``head``'s, the head
        seen after the request arrived). Cheap: the hot path of the route."""
        now = self._clock()
        lineage = head.lineage
        with self._lock:
            known = self._issuers.get(name)
            if known is None or known[1] <= now:
                return None
            issuer = known[0]
            rendering = self._current.get((issuer.id, status_list))
            if rendering is None or not self._fresh(issuer, status_list, rendering, now,
                                                    lineage):
                return None
            return rendering.lists[purpose]

    def _fresh(self, issuer: Issuer, status_list: int, rendering: _Rendering,
               now: float, lineage: int) -> bool:
        if rendering.lineage != lineage:
            return False  # read before a reorganisation: perhaps of an abandoned branch
        found = rendering.lists[StatusPurpose.REVOCATION]
        # A list read before the first block the watcher reads events from may have missed a
        # change made in between (a rendering in flight while the watcher started).
        watched = self._watched_from is None or found.block.number + 1 >= self._watched_from
        return (watched and rendering.signer_key == issuer.signing_key
                and rendering.did == issuer.did and now < found.refresh_at()
                and self._changed.get((issuer.entity_id, status_list), -1)
                <= found.block.number)

    def issuer(self, name: str) -> Issuer:
        """The issuer called ``name`` (from the database, kept a second); 404 when there is
        none."""
        issuer = self.store.issuer_named(name)
        if issuer is None:
            raise StatusListRequestError(404, "not_found",
                                         f"no issuer {name[:100]!r} is served here")
        with self._lock:
            self._issuers[name] = (issuer, self._clock() + self._issuer_seconds)
            if len(self._issuers) > 4 * self._current.limit:  # names come from the database
                self._issuers = {name: self._issuers[name]}
        return issuer

    def current(self, name: str, status_list: int, purpose: StatusPurpose,
                head: PinnedReader | StatusListRequestError | None = None) -> RenderedList:
        """The list as of the latest confirmed block at ``head``, a head seen after the
        request arrived (by default one the reader sees after the call; the refusal when
        the caller could not see one): the kept rendering while it is fresh, else a new
        one. One request renders; the others wait for it at most :data:`RENDER_WAIT`
        seconds, then are served the previous rendering while it is still within its
        validity, else 503 ``busy``. A failed rendering (the head not seen included) is
        answered again for :data:`FAILURE_SECONDS` rather than tried again by each waiter
        in turn. No rendering of another lineage than the head's is served: after a
        reorganisation, a list is rendered again."""
        issuer = self.issuer(name)
        self._check_list(issuer, status_list)
        key = (issuer.id, status_list)
        with self._lock:
            previous = self._current.get(key)
            if isinstance(head, PinnedReader) and previous is not None and self._fresh(
                    issuer, status_list, previous, self._clock(), head.lineage):
                return previous.lists[purpose]
        # Served meanwhile only if of the lineage the reader follows now (or of the head
        # seen last by the reader it had before, when this one has seen none).
        known = self.reader.lineage()
        if previous is not None and known is not None and previous.lineage != known:
            previous = None
        failed = self._recent_failure(key)
        if failed is not None:
            return self._meanwhile(issuer, status_list, purpose, previous, failed)
        if not isinstance(head, PinnedReader):
            try:
                if head is not None:
                    raise head
                head = self.head()
            except StatusListRequestError as exc:
                self._failed(key, exc)
                return self._meanwhile(issuer, status_list, purpose, previous, exc)
            if previous is not None and previous.lineage != head.lineage:
                previous = None
        with self._lock:
            if len(self._rendering) > 4 * self._current.limit:
                self._rendering.clear()  # a holder keeps its lock; new requests get new ones
            lock = self._rendering.setdefault(key, threading.Lock())
        # A thread per waiter: bounded, so that a flood on one list whose rendering is slow
        # (the chain slow or down) cannot hold every worker thread of the service.
        if not lock.acquire(timeout=self._render_wait):
            return self._meanwhile(issuer, status_list, purpose, previous, StatusListRequestError(
                503, "busy", f"status list {status_list} of issuer {issuer.name!r} is being "
                "rendered from the chain now; retry in a second"))
        try:
            return self._render_current(issuer, status_list, purpose, previous, head)
        finally:
            lock.release()

    def _render_current(self, issuer: Issuer, status_list: int, purpose: StatusPurpose,
                        previous: _Rendering | None, head: PinnedReader) -> RenderedList:
        """:meth:`current`'s part under the list's rendering lock."""
        key = (issuer.id, status_list)
        with self._lock:
            found = self._current.get(key)
            if found is not None and self._fresh(issuer, status_list, found, self._clock(),
                                                 head.lineage):
                return found.lists[purpose]
            generation = self._generation
        failed = self._recent_failure(key)  # the rendering this request waited for failed
        if failed is not None:
            return self._meanwhile(issuer, status_list, purpose, previous, failed)
        try:
            rendering = self.render(issuer, status_list, self.confirmed_head(head), head)
        except StatusListRequestError as exc:
            self._failed(key, exc)
            return self._meanwhile(issuer, status_list, purpose, previous, exc)
        with self._lock:
            self._failures.pop(key, None)
            # Not kept if everything was dropped meanwhile: it may be of a dropped block.
            if self._generation == generation:
                self._current.put(key, rendering)
        return rendering.lists[purpose]

    def _failed(self, key: Hashable, exc: StatusListRequestError) -> None:
        """Answer ``exc`` (a rendering's failure) to the requests of the next
        :data:`FAILURE_SECONDS` rather than try again."""
        if exc.http_status == 503:
            with self._lock:
                if len(self._failures) > self._current.limit:
                    self._failures.clear()
                self._failures[key] = (self._clock() + FAILURE_SECONDS, exc)

    def _recent_failure(self, key: Hashable) -> StatusListRequestError | None:
        with self._lock:
            failed = self._failures.get(key)
        return failed[1] if failed is not None and failed[0] > self._clock() else None

    def _meanwhile(self, issuer: Issuer, status_list: int, purpose: StatusPurpose,
                   previous: _Rendering | None,
                   refusal: StatusListRequestError) -> RenderedList:
        """What is served when the list cannot be rendered now (``refusal``: the chain cannot
        be read, or another request is rendering it): a rendering by the same key still
        within its validity stays a true statement of its block, and is served meanwhile;
        else ``refusal`` is raised."""
        if refusal.error_code in ("chain_unavailable", "busy") and previous is not None \
                and previous.signer_key == issuer.signing_key \
                and previous.lists[purpose].valid_until > self._clock() + 1:
            log.warning("status list %s/%d of issuer %s served from block %d: it cannot be "
                        "rendered again now (%s)", purpose.value, status_list, issuer.name,
                        previous.lists[purpose].block.number, refusal.error_code)
            return previous.lists[purpose]
        raise StatusListRequestError(refusal.http_status, refusal.error_code, refusal.detail)

    def at_block(self, name: str, status_list: int, purpose: StatusPurpose,
                 number: int, reader: PinnedReader | None = None) -> RenderedList:
        """The list as it stood at block ``number`` of the chain at ``reader``'s head (by
        default one seen after the call): a confirmed block the anchor existed at; 400 for
        a block not confirmed yet, 404 for one before the deployment."""
        reader = reader if reader is not None else self.head()
        issuer = self.issuer(name)
        self._check_list(issuer, status_list)
        head = self.confirmed_head(reader)
        if number > head.number:
            raise StatusListRequestError(
                400, "invalid_request", f"block {number} is not confirmed yet: the latest "
                f"block with {self.confirmations} confirmation(s) is {head.number}")
        if number < self.deployment.block_number:
            raise StatusListRequestError(
                404, "not_found", f"the anchor contract was deployed at block "
                f"{self.deployment.block_number}: there is no status list at block {number}")
        point = head if number == head.number else self.block_point(number, reader)
        # By hash: a block's state never changes, whichever branch the chain follows now.
        key = (issuer.id, issuer.signing_key, issuer.did, status_list, point.hash)
        with self._lock:
            found = self._past.get(key)
        if found is not None and self._clock() < found.lists[purpose].refresh_at():
            return found.lists[purpose]
        # Each new block asked for costs a chain read and two signatures: a client walking
        # through blocks gets a few at a time, not a core per request.
        if not self._past_slots.acquire(blocking=False):
            raise StatusListRequestError(
                503, "busy", f"{PAST_RENDERINGS} lists of past blocks are being rendered now; "
                "retry in a second")
        with self._lock:
            generation = self._generation
        try:
            rendering = self.render(issuer, status_list, point, reader)
        finally:
            self._past_slots.release()
        with self._lock:
            if self._generation == generation:
                self._past.put(key, rendering)
        return rendering.lists[purpose]

    def block_at_time(self, when: int, reader: PinnedReader | None = None) -> int:
        """The last confirmed block made at or before ``when`` (Unix seconds), searched from
        the anchor's deployment block: 404 when the anchor did not exist yet then, and 404
        ``unknown_block`` for a time after the latest confirmed block (the list then is not
        settled yet, as ``GET /v1/credentials/{id}/status`` answers). The search (about
        log2(blocks since the deployment) block reads, their times kept in a bounded cache)
        takes one of the :data:`PAST_RENDERINGS` slots: 503 ``busy`` when none is free. The
        chain is that of ``reader``'s head (by default one seen after the call)."""
        reader = reader if reader is not None else self.head()
        head = self.confirmed_head(reader)
        if when > head.timestamp:
            raise StatusListRequestError(
                404, "unknown_block", f"time {iso_seconds(when)} is after the latest confirmed "
                f"block ({head.number}, made at {iso_seconds(head.timestamp)}): the list then "
                "is not settled yet")
        if when == head.timestamp:
            return head.number
        if not self._past_slots.acquire(blocking=False):
            raise StatusListRequestError(
                503, "busy", f"{PAST_RENDERINGS} lists of past blocks are being found or "
                "rendered now; retry in a second")
        try:
            # time(low) <= when < time(high), once low is checked
            low, high = min(self.deployment.block_number, head.number), head.number

            def block_time(number: int) -> int:
                return self._block_time(number, reader)

            if block_time(low) > when:
                raise StatusListRequestError(
                    404, "not_found", f"no block made at or before {iso_seconds(max(when, 0))} "
                    f"has the anchor contract: it was deployed at block "
                    f"{self.deployment.block_number}")
            return last_block_made_by(block_time, when, low, high)
        finally:
            self._past_slots.release()

    def _block_time(self, number: int, reader: PinnedReader) -> int:
        """Block ``number``'s time in ``reader``'s chain, from a bounded cache of those read
        before in its lineage."""
        key = (reader.lineage, number)
        with self._lock:
            found = self._block_times.get(key)
            if found is not None:
                return found
        stamp = self.block_point(number, reader).timestamp
        with self._lock:
            self._block_times.put(key, stamp)
        return stamp

    def _check_list(self, issuer: Issuer, status_list: int) -> None:
        highest = highest_list(self.store.next_status_index(issuer.id))
        if status_list > highest:
            raise StatusListRequestError(
                404, "not_found", f"issuer {issuer.name!r} has no status list {status_list} "
                f"(its highest allocated list is {highest})")

    # ------------------------------------------------------------------------ the chain

    def head(self) -> PinnedReader:
        """A reader of the chain's head, seen after the call (503 when the node cannot
        say)."""
        try:
            return self.reader.at_head()
        except ChainReadError as exc:
            raise _unavailable(exc) from None

    def confirmed_head(self, reader: PinnedReader | None = None) -> ChainPoint:
        """The latest block with the required confirmations at ``reader``'s head (by
        default one seen after the call; 503 when the node cannot say)."""
        reader = reader if reader is not None else self.head()
        head = reader.head
        number = head.number - (self.confirmations - 1)
        if number < 0:
            raise StatusListRequestError(503, "chain_unavailable",
                                         "the chain has no confirmed block yet")
        return self._point(number, reader)

    def block_point(self, number: int, reader: PinnedReader | None = None) -> ChainPoint:
        """Block ``number`` of the chain at ``reader``'s head (by default one seen after the
        call; 503 when the node cannot say)."""
        return self._point(number, reader if reader is not None else self.head())

    def _point(self, number: int, reader: PinnedReader) -> ChainPoint:
        try:
            block = reader.block(number)
        except ChainReadError as exc:
            raise _unavailable(exc) from None
        if block is None:
            raise StatusListRequestError(503, "chain_unavailable", f"block {number} is not in "
                                         f"the chain up to block {reader.head.number}")
        return ChainPoint(block.number, block.hash, block.timestamp, reader.lineage)

    def read(self, entity_id: int, status_list: int, point: ChainPoint,
             reader: PinnedReader | None = None) -> dict[StatusPurpose, bytes]:
        """Both bitstrings of (``entity_id``, ``status_list``) at ``point``, a block of the
        chain at ``reader``'s head (by default one seen after the call), from one
        ``statusWords`` call made at its hash; 503 when the node cannot answer or the block
        is no longer the chain's."""
        reader = reader if reader is not None else self.head()
        try:
            found = reader.block(point.number)
            if found is None or found.hash != point.hash:
                raise StatusListRequestError(
                    503, "chain_unavailable", f"block {point.number} was reorganised while "
                    "the list was read; retry")
            words = reader.status_list_words(self.deployment.anchor, entity_id, status_list,
                                             at_block=point.number)
        except ChainReadError as exc:
            raise _unavailable(exc) from None
        return _bitstrings(words)

    # ------------------------------------------------------------------------ rendering

    def render(self, issuer: Issuer, status_list: int, point: ChainPoint,
               reader: PinnedReader | None = None) -> _Rendering:
        """Both lists of (issuer, ``status_list``) read at ``point`` (a block of the chain at
        ``reader``'s head) and signed now."""
        signer = self._signer(issuer)
        bitstrings = self.read(issuer.entity_id, status_list, point, reader)
        return self.sign(issuer, signer, status_list, point, bitstrings)

    def _signer(self, issuer: Issuer) -> IssuerSigner:
        try:
            signer = self._signer_of(issuer.id)
        except SigningError as exc:
            raise StatusListRequestError(503, "no_signing_key", str(exc)) from None
        if signer is None:
            raise StatusListRequestError(
                503, "no_signing_key", f"issuer {issuer.name!r} has no signing key: its "
                "status lists cannot be signed (anchor-service signing-key create)")
        return signer

    def sign(self, issuer: Issuer, signer: IssuerSigner, status_list: int, point: ChainPoint,
             bitstrings: dict[StatusPurpose, bytes]) -> _Rendering:
        """Both list credentials of ``bitstrings`` (read at ``point``), signed now."""
        now = int(self._clock())
        suite = _SUITE_OF_KEY[signer.key.key_type]
        session = signer.session(suite=suite, created=datetime.fromtimestamp(now, UTC))
        lists: dict[StatusPurpose, RenderedList] = {}
        for purpose, bitstring in bitstrings.items():
            try:
                url = status_list_url(signer.did, issuer.name, status_list, purpose)
            except StatusListError as exc:
                raise StatusListRequestError(
                    404, "not_found", f"issuer {issuer.name!r}: {exc}") from None
            document = {
                "@context": [VC_2_0_CONTEXT],
                "id": url,
                "type": ["VerifiableCredential", "BitstringStatusListCredential"],
                "issuer": signer.did,
                "validFrom": iso_seconds(now),
                "validUntil": iso_seconds(now + self.validity),
                "credentialSubject": {
                    "id": f"{url}#list",
                    "type": "BitstringStatusList",
                    "statusPurpose": purpose.value,
                    "encodedList": encode_list(bitstring),
                },
                "evidence": [{
                    "type": ["ChainState"],
                    "chainId": self.deployment.chain_id,
                    "contract": self.anchor_address,
                    "blockNumber": point.number,
                    "blockHash": "0x" + point.hash.hex(),
                }],
            }
            try:
                signed = session.sign(document)
            except (SigningError, AnchorServiceError) as exc:
                raise StatusListRequestError(503, "no_signing_key",
                                             f"issuer {issuer.name!r}: {exc}") from None
            lists[purpose] = RenderedList(signed.canonical, f'"{signed.digest.hex()}"', point,
                                          now, now + self.validity)
        with self._lock:
            self.renders += 1
        return _Rendering(lists, signer.key.multibase, signer.did)


def _bitstrings(words: StatusWords) -> dict[StatusPurpose, bytes]:
    """The two bitstrings of a whole list's words: each word's big-endian bytes, in order
    (entry 0 is the first word's most significant bit)."""
    return {StatusPurpose.REVOCATION: b"".join(w.to_bytes(32, "big") for w in words.revoked),
            StatusPurpose.SUSPENSION: b"".join(w.to_bytes(32, "big")
                                               for w in words.suspended)}


def _unavailable(exc: Exception) -> StatusListRequestError:
    if isinstance(exc, StatusListRequestError):
        return exc
    if isinstance(exc, ChainReadError):  # its message names no part of the node's URL
        return StatusListRequestError(503, "chain_unavailable",
                                      f"the chain cannot be read now: {str(exc)[:300]}")
    return StatusListRequestError(503, "chain_unavailable",
                                  f"the chain cannot be read now: {type(exc).__name__}: "
                                  f"{str(exc)[:300]}")


class StatusWatcher:
    """Watches the anchor's status events and tells :class:`StatusLists` which lists they
    change; a daemon thread polling every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, lists: StatusLists, interval: float) -> None:
        self.lists = lists
        self.interval = interval
        self.last: ChainPoint | None = None
        self.polls = 0
        w3 = lists.w3
        abi = load_artifact("CredentialAnchor").abi
        self._topics = ["0x" + bytes(w3.keccak(text=_signature(abi, "event", name))).hex()
                        for name in STATUS_EVENTS]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="status-list-watcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except StatusListRequestError as exc:
                log.warning("status list watcher: %s", exc.detail)
            except Exception:  # a thread that dies would leave every list unwatched
                log.exception("status list watcher: unexpected error; it keeps watching")
            self._stop.wait(self.interval)

    def poll(self) -> None:
        """One round: check the last block read still stands, then read the status events
        of the blocks confirmed since."""
        lists = self.lists
        reader = lists.head()  # one head request a round
        head = lists.confirmed_head(reader)
        last = self.last
        self.polls += 1
        if last is None:
            # First round: the events after the oldest list rendered before it, if any.
            oldest = lists.oldest_block()
            start = head.number + 1 if oldest is None else oldest + 1
            # A rendering still in flight (read at a block before ``start``) is not trusted
            # once it is kept: events between its block and ``start`` are never read.
            lists.watch_from(start)
        elif lists.block_point(last.number, reader).hash != last.hash:
            # The chain reorganised the block last read: nothing rendered before is trusted.
            log.warning("status list watcher: block %d was reorganised; every rendered "
                        "status list is dropped", last.number)
            lists.drop()
            self.last = head
            return
        else:
            start = last.number + 1
        for first, last_of_range in block_ranges(start, head.number):
            for entry in self._logs(first, last_of_range):
                topics = entry["topics"]
                if entry.get("removed") or len(topics) < 3:
                    continue
                lists.mark_changed(int.from_bytes(bytes(topics[1]), "big"),
                                   int.from_bytes(bytes(topics[2]), "big"),
                                   int(entry["blockNumber"]))
        self.last = head

    def _logs(self, start: int, end: int) -> list[Any]:
        try:
            return list(self.lists.w3.eth.get_logs({
                "address": self.lists.anchor_address,
                "fromBlock": start, "toBlock": end,
                "topics": [self._topics],
            }))
        except (Web3Exception, OSError, ValueError) as exc:
            raise _unavailable(exc) from None


def _signature(abi: Any, kind: str, name: str) -> str:
    """``name(type,...)`` of the ``kind`` (function, event) ``name`` in ``abi``."""
    entry = next(entry for entry in abi
                 if entry.get("type") == kind and entry.get("name") == name)
    return f"{name}({','.join(str(i['type']) for i in entry['inputs'])})"
