"""Whether an issuer served here is trusted by the registry now, and why not.

The answer is what the anchor contract itself checks before it accepts an anchor
(``IIssuerRegistry.checkKeyNow``: the key valid and unrevoked, its entity active, every
accreditation body above it active), with the failing entity named from the registry's
accreditation chain. It decides whether a submission is accepted (409 otherwise) and why a
batch cannot be anchored.

:meth:`IssuerTrustView.cached` keeps each issuer's answer for ``ttl`` seconds (1 s by
default), so that bulk ingest pays for one ``eth_call`` a second per issuer, not one per
request; a change in the registry reaches submissions within that second. When the chain
cannot be asked, the answer is "unknown" (None) and callers go on: credentials are stored
durably and anchored once the chain answers, and the contract refuses an untrusted anchor
anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from web3.contract import Contract
from web3.exceptions import Web3Exception

from anchor_service.errors import AnchorServiceError
from anchor_service.store import Issuer, Store
from verifier.contract_types import Entity, KeyCheck, Kind, Scope, Status, TrustCode, read
from verifier.errors import ContractTypeError

__all__ = ["ChainLink", "IssuerTrust", "IssuerTrustView"]

log = logging.getLogger("anchor_service.trust")

_MAX_CHAIN = 8  # the registry allows 4 levels; a longer walk means a malformed answer


@dataclass(frozen=True)
class ChainLink:
    """One entity of an issuer's accreditation chain, as the registry records it now."""

    id: int
    kind: Kind
    status: Status
    did: str
    scope: Scope
    revoked_from: int  # back-dated revocation time (unix seconds), 0 when none


@dataclass(frozen=True)
class IssuerTrust:
    """The registry's answer for one issuer now. ``reason`` is None when trusted."""

    trusted: bool
    code: TrustCode
    reason: str | None  # "issuer not trusted: body 1 suspended"
    failing_entity_id: int | None
    chain: tuple[ChainLink, ...]  # the issuer's entity first, then its bodies up to the root


@dataclass
class _Entry:
    issuer: Issuer
    trust: IssuerTrust | None  # None: the chain could not be asked
    until: float  # monotonic time until which ``trust`` stands
    lock: threading.Lock  # held by the one thread asking the chain
    answered: bool = False  # whether ``trust`` holds an answer at all (even an expired one)


class IssuerTrustView:
    """Reads issuers' trust from the registry, with a short per-issuer cache."""

    def __init__(self, store: Store, registry: Contract, *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._registry = registry
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._guard = threading.Lock()

    def check(self, issuer: Issuer, *, with_chain: bool = False) -> IssuerTrust:
        """Ask the registry now (no cache). The accreditation chain is read when the issuer
        is not trusted (to name the failing entity) or when ``with_chain``. Raises the chain
        client's error (Web3Exception, OSError) when the node cannot be asked, and
        :class:`ContractTypeError` when it answers a code these contracts do not have."""
        code = read(KeyCheck, self._registry.functions.checkKeyNow(issuer.key_address)).code
        trusted = code is TrustCode.TRUSTED
        chain = self.chain_of(issuer.entity_id) if with_chain or not trusted else ()
        if trusted:
            return IssuerTrust(True, code, None, None, chain)
        failing: ChainLink | None = None
        if code.is_entity_status:
            failing = next((link for link in chain if link.status is not Status.ACTIVE), None)
        if failing is not None:
            why = f"{failing.kind.label} {failing.id} {failing.status.label}"
        elif code.is_key_window:
            why = f"its key {issuer.key_address} is {code.reason.removeprefix('key ')}"
        elif code is TrustCode.UNKNOWN_KEY:
            why = f"its key {issuer.key_address} is not in the registry"
        else:
            why = code.reason
        return IssuerTrust(False, code, f"issuer not trusted: {why}",
                           None if failing is None else failing.id, chain)

    def chain_of(self, entity_id: int) -> tuple[ChainLink, ...]:
        """The entity and every accreditation body above it, as the registry has them now."""
        links: list[ChainLink] = []
        while entity_id != 0 and len(links) < _MAX_CHAIN:
            entity = read(Entity, self._registry.functions.entity(entity_id))
            links.append(ChainLink(id=entity.id, kind=entity.kind, status=entity.status,
                                   did=entity.did, scope=entity.scope,
                                   revoked_from=entity.revoked_from))
            entity_id = entity.parent_id
        return tuple(links)

    def cached(self, issuer_id: int) -> IssuerTrust | None:
        """The issuer's trust, at most ``ttl`` seconds old; None when the chain cannot be
        asked (the caller goes on as if trusted). While one thread asks the chain, others
        take the previous answer instead of waiting: None (unknown) if there is none yet, so
        that a node that does not answer holds one thread per issuer, not every request."""
        fresh = self._fresh(issuer_id)
        if fresh is not None:
            return fresh.trust
        entry = self._entries.get(issuer_id)
        if entry is None:
            with self._guard:
                entry = self._entries.get(issuer_id)
                if entry is None:
                    entry = _Entry(self._store.issuer(issuer_id), None, 0.0, threading.Lock())
                    self._entries[issuer_id] = entry
        if not entry.lock.acquire(blocking=False):
            return entry.trust  # someone is asking right now: the previous answer will do
        try:
            if self._clock() < entry.until:  # refreshed while this thread waited
                return entry.trust
            previous = entry.trust
            try:
                trust: IssuerTrust | None = self.check(entry.issuer)
            except (Web3Exception, OSError, AnchorServiceError, ContractTypeError) as exc:
                trust = None
                if previous is not None or not entry.answered:
                    log.warning("trust of issuer %s unknown (chain unreachable): %s; "
                                "accepting its submissions meanwhile", entry.issuer.name,
                                type(exc).__name__)
            if trust is not None and trust != previous:  # logged when it changes only
                if not trust.trusted:
                    log.warning("%s (issuer %s)", trust.reason, entry.issuer.name)
                elif previous is not None:
                    log.info("issuer %s is trusted again", entry.issuer.name)
            entry.trust, entry.answered = trust, True
            entry.until = self._clock() + self._ttl
            return trust
        finally:
            entry.lock.release()

    def peek(self, issuer_id: int) -> tuple[bool, str | None]:
        """Without asking the chain or waiting: whether a fresh answer is cached (at most
        ``ttl`` seconds old), and if so the refusal :meth:`refusal` would give (None:
        trusted, or unknown because the chain could not be asked)."""
        entry = self._fresh(issuer_id)
        if entry is None:
            return False, None
        return True, _reason(entry.trust)

    def refusal(self, issuer_id: int) -> str | None:
        """Why the registry does not trust the issuer now (as :meth:`cached` knows it), or
        None: trusted, or unknown because the chain cannot be asked."""
        return _reason(self.cached(issuer_id))

    def _fresh(self, issuer_id: int) -> _Entry | None:
        """The issuer's cached entry while its answer is at most ``ttl`` seconds old."""
        entry = self._entries.get(issuer_id)
        return entry if entry is not None and self._clock() < entry.until else None

    def forget(self, issuer_id: int) -> None:
        """Drop the cached answer: the next :meth:`cached` asks the chain."""
        entry = self._entries.get(issuer_id)
        if entry is not None:
            entry.until = 0.0


def _reason(trust: IssuerTrust | None) -> str | None:
    """The refusal a trust answer gives: its reason, None when trusted or unknown (None)."""
    return None if trust is None else trust.reason
