"""Wiring of the running service: database, chain connection, keys, pipeline and receipts,
built from :class:`~anchor_service.settings.ServiceSettings`. Keys are read from encrypted
keystore files (:mod:`anchor_service.keystore`), one per issuer key, and never stored in the
database or logged: the anchoring keys (Ethereum accounts) and the issuers' signing keys
(Ed25519 or P-256, :mod:`anchor_service.signing`), which the database names by their public
key."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, TypeVar, TypeVarTuple

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.providers.rpc import HTTPProvider

from anchor_service._parallel_signing import SigningHelper
from anchor_service._request_threads import RequestThreads
from anchor_service.chain import Deployment, load_deployment
from anchor_service.errors import (
    AnchorServiceError,
    ChainError,
    ContractVersionError,
    KeyLoadError,
)
from anchor_service.keystore import keystore_path, read_keystore
from anchor_service.metrics import Metrics
from anchor_service.pipeline import WRONG_CONTRACTS, BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.settings import ServiceSettings, revealed
from anchor_service.signing import (
    DEFAULT_SUITE,
    IssuerSigner,
    SigningError,
    SigningKeys,
    SigningUnavailableError,
)
from anchor_service.status_lists import StatusLists, StatusWatcher
from anchor_service.store import Issuer, Store
from verifier.chain import JsonRpcChainReader
from verifier.errors import VerifierError
from verifier.multikey import Multikey

__all__ = ["ChainHead", "Components", "build_components"]

log = logging.getLogger("anchor_service.service")
#: How long an answer of the registry about an issuer's signing key stands, in seconds.
_SIGNING_TRUST_TTL: Final = 1.0
_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


class ChainHead:
    """The chain's head as the requests of one event loop see it: each request waits for a
    head request of the shared reader that began after it arrived, without holding a thread
    while it waits.

    The head requests run on the head-request thread of the components, one at a time. The
    thread serves every request waiting when it begins a head request; when it ends, it
    wakes them (one hand-over to the event loop for all) and, if others came meanwhile,
    begins the next one at once. Chaining them on the thread, rather than letting the event
    loop begin each, keeps the turns of a busy loop (several milliseconds each under load)
    out of the time between two head requests."""

    def __init__(self, reader: JsonRpcChainReader, executor: ThreadPoolExecutor) -> None:
        self.reader = reader
        self._executor = executor
        self._lock = threading.Lock()
        self._waiting: list[asyncio.Future[None]] = []
        self._asking = False  # the thread is serving the waiting requests

    def mark(self) -> int:
        """What a request arriving now waits for: a head request numbered above this."""
        return self.reader.head_requests_begun()

    async def seen_after(self, mark: int) -> None:
        """Return once a head request begun after ``mark`` has answered
        (:class:`~verifier.errors.ChainReadError` when the one waited for failed)."""
        while self.reader.pinned_after(mark) is None:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiting.append(waiter)
                start, self._asking = not self._asking, True
            if start:
                try:
                    self._executor.submit(self._ask_while_waited, loop)
                except RuntimeError:  # the components are closing
                    with self._lock:
                        self._waiting.remove(waiter)  # nobody will await it
                        self._asking = False
                    raise
            await waiter

    def _ask_while_waited(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the head-request thread: head requests while requests wait for one."""
        while True:
            with self._lock:
                waiting, self._waiting = self._waiting, []
                if not waiting:
                    self._asking = False
                    return
            # Every waiting request took its mark before now: a head request begun after
            # this count serves them all.
            error: Exception | None = None
            try:
                self.reader.at_head(0, begun_after=self.reader.head_requests_begun())
            except Exception as exc:  # ChainReadError; anything else must not hang them
                error = exc
            try:
                loop.call_soon_threadsafe(_settle, waiting, error)
            except RuntimeError:  # the event loop has closed: nobody waits on it any more
                with self._lock:
                    self._waiting.clear()
                    self._asking = False
                return


def _settle(waiting: list[asyncio.Future[None]], error: Exception | None) -> None:
    for waiter in waiting:
        if waiter.done():  # its request went away
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


@dataclass
class Components:
    """Everything a request handler needs; one per app, no module globals."""

    settings: ServiceSettings
    store: Store
    w3: Web3
    deployment: Deployment
    signers: dict[int, LocalAccount]
    pipeline: Pipeline
    receipts: Receipts
    metrics: Metrics = field(default_factory=Metrics)
    #: Issuer id -> its signer, for the issuers whose signing key the database names and the
    #: service could load. An issuer the database gives a key but that is not here has its
    #: credentials refused (503), never anchored unsigned.
    signing: dict[int, IssuerSigner] = field(default_factory=dict)
    _signing_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                          repr=False)
    #: Issuer id -> (signing key id, when asked (monotonic), the registry's refusal or None).
    _signing_trust: dict[int, tuple[bytes, float, str | None]] = field(
        default_factory=dict, init=False, repr=False)
    #: Held by the one thread asking the registry about a signing key (see
    #: signing_key_refusal).
    _signing_trust_asking: threading.Lock = field(default_factory=threading.Lock, init=False,
                                                  repr=False)
    _chain_reader: JsonRpcChainReader | None = field(default=None, init=False, repr=False)
    #: The thread the head requests of the ChainHeads run on (made with the first).
    _head_thread: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    #: The threads of :meth:`in_thread`.
    request_threads: RequestThreads = field(default_factory=RequestThreads, init=False,
                                            repr=False)
    _chain_reader_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                               repr=False)
    _status_lists: StatusLists | None = field(default=None, init=False, repr=False)
    # Per event loop (a process serves one; tests may make several): the loop and its
    # ChainHead.
    _chain_heads: dict[int, tuple[asyncio.AbstractEventLoop, ChainHead]] = field(
        default_factory=dict, init=False, repr=False)
    _status_watcher: StatusWatcher | None = field(default=None, init=False, repr=False)
    #: Signs half of each large submission in a second process: started with the service
    #: (create_app), else at the first large submission.
    signing_helper: SigningHelper = field(default_factory=SigningHelper, init=False,
                                          repr=False)

    def status_lists(self) -> StatusLists:
        """The published status lists of this process (made at first use): rendered from
        the chain, kept while the chain does not change them (see
        :mod:`anchor_service.status_lists`)."""
        with self._chain_reader_lock:
            if self._status_lists is None:
                self._status_lists = StatusLists(
                    self.w3, self.deployment, self.store, self.issuer_signer,
                    validity=self.settings.status_list_validity,
                    confirmations=self.settings.confirmations,
                    reader=self._shared_reader())
            return self._status_lists

    def start_status_watcher(self) -> None:
        """Start watching the anchor's status events (every ``poll_interval`` seconds), so
        that a published list is rendered again once the chain changes it."""
        lists = self.status_lists()
        with self._chain_reader_lock:
            if self._status_watcher is None:
                self._status_watcher = StatusWatcher(lists, self.settings.poll_interval)
            self._status_watcher.start()

    def stop_status_watcher(self) -> None:
        with self._chain_reader_lock:
            watcher = self._status_watcher
        if watcher is not None:
            watcher.stop()

    def chain_reader(self) -> JsonRpcChainReader:
        """The verification reader of this process, made at first use and shared by every
        request (its caches live per chain head, are bounded and thread-safe). Over HTTP it
        has a connection of its own, with a short timeout and no retries: a public
        verification reports an unreachable node at once instead of holding its slot."""
        with self._chain_reader_lock:
            return self._shared_reader()

    def _shared_reader(self) -> JsonRpcChainReader:
        """:meth:`chain_reader` (the caller holds ``_chain_reader_lock``)."""
        if self._chain_reader is None:
            provider = self.w3.provider
            max_age = self.settings.verify_head_max_age
            blooms = self.settings.trust_log_blooms
            self._chain_reader = (
                JsonRpcChainReader(str(provider.endpoint_uri), timeout=10, retries=False,
                                   head_max_age=max_age, trust_log_blooms=blooms)
                if isinstance(provider, HTTPProvider)
                else JsonRpcChainReader(self.w3, head_max_age=max_age, trust_log_blooms=blooms))
        return self._chain_reader

    def chain_head(self) -> ChainHead:
        """The :class:`ChainHead` of the running event loop over :meth:`chain_reader`: what
        the public verification and status-list routes await, so that each answers from
        the chain as it was after the request arrived."""
        loop = asyncio.get_running_loop()
        reader = self.chain_reader()
        with self._chain_reader_lock:
            found = self._chain_heads.get(id(loop))
            if found is None or found[0] is not loop:
                if len(self._chain_heads) > 8:  # loops of closed test clients
                    self._chain_heads.clear()
                if self._head_thread is None:
                    self._head_thread = ThreadPoolExecutor(1, thread_name_prefix="chain-head")
                found = self._chain_heads[id(loop)] = (loop, ChainHead(reader,
                                                                       self._head_thread))
            return found[1]

    async def in_thread(self, call: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """``call(*args)`` on one of the request threads of this process
        (:class:`~anchor_service._request_threads.RequestThreads`), handed over at once."""
        return await self.request_threads.run(call, *args)

    def load_signer(self, issuer: Issuer) -> bool:
        """Start anchoring for ``issuer`` if its keystore is there; False if it is not."""
        path = keystore_path(self.settings.keystore_dir, issuer.key_address)
        if not path.exists():
            log.warning("no keystore for issuer %s (%s): not anchoring for it", issuer.name,
                        issuer.key_address)
            return False
        account = read_keystore(path, revealed(self.settings.keystore_password))
        self.pipeline.add_signer(issuer.id, account)
        self.signers[issuer.id] = account
        return True

    def signing_keys(self) -> SigningKeys:
        """The issuers' signing key files (in the keystore folder, with its password)."""
        return SigningKeys(self.settings.keystore_dir,
                           revealed(self.settings.keystore_password))

    def load_signing(self, issuer: Issuer) -> IssuerSigner | None:
        """Load the signing key the database names for ``issuer`` (None when it names none:
        its credentials are accepted unsigned). A key that cannot be loaded (file missing,
        wrong password) is logged and leaves the issuer without a signer: its credentials are
        refused until it is fixed. The key's registration on chain for the issuer's entity
        is checked and a warning logged when it is not there."""
        with self._signing_lock:
            if issuer.signing_key is None:
                self.signing.pop(issuer.id, None)
                return None
            try:
                key = Multikey.from_multibase(issuer.signing_key)
                signer = IssuerSigner(issuer.did, self.signing_keys().load(key),
                                      issuer.signing_suite or DEFAULT_SUITE)
            except (KeyLoadError, SigningError, VerifierError) as exc:
                self.signing.pop(issuer.id, None)
                log.warning("cannot load the signing key of issuer %s: %s; its credentials "
                            "are refused (503 no_signing_key) until it is loaded", issuer.name,
                            exc)
                return None
            self.signing[issuer.id] = signer
        self._check_binding(issuer, signer)
        return signer

    def _check_binding(self, issuer: Issuer, signer: IssuerSigner) -> None:
        """Warn when the registry does not list the signing key for the issuer's entity:
        credentials signed with it would fail verification (signing_key_registered)."""
        try:
            info = self.chain_reader().signing_key(self.deployment.registry, signer.key_id)
        except (VerifierError, AnchorServiceError, OSError) as exc:
            log.warning("cannot check on chain that the signing key of issuer %s is "
                        "registered: %s", issuer.name, exc)
            return
        if info.entity_id != issuer.entity_id:
            whose = ("is not registered" if info.entity_id == 0
                     else f"is registered for entity {info.entity_id}")
            log.warning("the signing key %s of issuer %s %s, not for its entity %d: the "
                        "credentials it signs will not verify until the key is registered "
                        "for the issuer (anchor-service registry add-signing-key)",
                        signer.key.multibase, issuer.name, whose, issuer.entity_id)

    def issuer_signer(self, issuer_id: int) -> IssuerSigner | None:
        """The signer of the issuer's credentials as the database has it now: None when it
        names no signing key (accepted unsigned). A key changed in the database (by
        ``anchor-service signing-key create``) is loaded at its first use.
        :class:`SigningUnavailableError` when the key cannot be loaded."""
        issuer = self.store.issuer(issuer_id)
        if issuer.signing_key is None:
            if issuer_id in self.signing:
                with self._signing_lock:
                    self.signing.pop(issuer_id, None)
            return None
        loaded = self.loaded_signer(issuer)
        if loaded is not None:
            return loaded
        signer = self.signing.get(issuer_id)
        if signer is not None and signer.key.multibase == issuer.signing_key:
            # The same key with another suite or DID: no need to decrypt it again.
            try:
                signer = IssuerSigner(issuer.did, signer.private_key,
                                      issuer.signing_suite or DEFAULT_SUITE)
            except SigningError as exc:
                raise SigningUnavailableError(f"issuer {issuer.name}'s suite: {exc}") from None
            with self._signing_lock:
                self.signing[issuer_id] = signer
        else:
            signer = self.load_signing(issuer)
        if signer is None:
            raise SigningUnavailableError(
                f"the service cannot load the signing key of issuer {issuer.name} "
                f"({issuer.signing_key}) from its keystore folder: its credentials are "
                "refused rather than anchored unsigned")
        return signer

    def loaded_signer(self, issuer: Issuer) -> IssuerSigner | None:
        """The signer :meth:`issuer_signer` would give for this record of the issuer, when
        this process has it loaded already (None: ask :meth:`issuer_signer`, which may read
        the database and the keystore)."""
        signer = self.signing.get(issuer.id)
        if signer is None or issuer.signing_key is None \
                or signer.key.multibase != issuer.signing_key \
                or (signer.suite, signer.did) != (issuer.signing_suite or DEFAULT_SUITE,
                                                  issuer.did):
            return None
        return signer

    def recent_signing_key_refusal(self, issuer: Issuer, signer: IssuerSigner,
                                   max_age: float) -> tuple[bool, str | None]:
        """Without asking the chain: whether :meth:`signing_key_refusal` has an answer for
        this signer at most ``max_age`` seconds old, and if so that answer."""
        cached = self._signing_trust.get(issuer.id)
        if cached is None or cached[0] != signer.key_id \
                or time.monotonic() - cached[1] >= max_age:
            return False, None
        return True, cached[2]

    def next_block_time(self) -> int:
        """The earliest time the chain's next block can have, its latest block's time plus
        one second (:class:`ChainError` when the node cannot answer): "now" for the registry
        when it judges something new, such as the anchor that follows an acceptance (a
        revocation made now counts from the next second)."""
        try:
            return int(self.w3.eth.get_block("latest")["timestamp"]) + 1
        except (Web3Exception, OSError, KeyError) as exc:
            raise ChainError(f"cannot read the chain's latest block: {exc}") from None

    def signing_key_refusal(self, issuer: Issuer, signer: IssuerSigner) -> str | None:
        """Why the registry does not trust the issuer's signing key now (revoked, expired,
        not registered for the issuer's entity, the issuer or a body above it not active), or
        None. Asked at most once a second per issuer, so that bulk ingest pays one chain read
        a second, by one thread at a time: requests arriving while it asks take the answer
        of a second ago (a key revoked now is refused from the next answer on). When the
        chain cannot be asked, the last answer stands; with no answer yet
        the key is taken as the database names it (a warning is logged), as submissions are
        accepted while the node is down."""
        known, refusal = self.recent_signing_key_refusal(issuer, signer, _SIGNING_TRUST_TTL)
        if known:
            return refusal
        cached = self._signing_trust.get(issuer.id)
        if cached is not None and cached[0] == signer.key_id:
            # One thread asks; the requests arriving meanwhile take the answer of a second
            # ago instead of each asking the node too (a burst of reads every second under
            # load, and the latency of every request caught in it).
            if not self._signing_trust_asking.acquire(blocking=False):
                return cached[2]
        else:
            self._signing_trust_asking.acquire()  # no answer yet for this key: wait for one
        try:
            return self._ask_signing_key_refusal(issuer, signer)
        finally:
            self._signing_trust_asking.release()

    def _ask_signing_key_refusal(self, issuer: Issuer, signer: IssuerSigner) -> str | None:
        now = time.monotonic()
        known, refusal = self.recent_signing_key_refusal(issuer, signer, _SIGNING_TRUST_TTL)
        if known:
            return refusal  # asked by the thread this one waited for
        cached = self._signing_trust.get(issuer.id)
        registry = self.deployment.registry
        try:
            trust = self.chain_reader().signing_key_trusted_at(registry, signer.key_id,
                                                               self.next_block_time())
        except (VerifierError, AnchorServiceError, OSError) as exc:
            if cached is not None and cached[0] == signer.key_id:
                return cached[2]
            log.warning("cannot ask the registry whether the signing key of issuer %s is "
                        "trusted: %s", issuer.name, exc)
            return None
        refusal = (None if trust.trusted and trust.entity_id == issuer.entity_id else
                   f"signing key {signer.key.multibase} is registered for entity "
                   f"{trust.entity_id}, not for issuer {issuer.name} (entity "
                   f"{issuer.entity_id})" if trust.trusted else
                   f"signing key {signer.key.multibase} is not trusted now: {trust.reason}")
        self._signing_trust[issuer.id] = (signer.key_id, now, refusal)
        return refusal

    def close(self) -> None:
        self.request_threads.close()  # before the store closes under their calls
        self.stop_status_watcher()
        self.signing_helper.close()
        self.pipeline.stop()
        self.store.close()
        with self._chain_reader_lock:
            reader, self._chain_reader = self._chain_reader, None
            head_thread, self._head_thread = self._head_thread, None
            self._chain_heads.clear()
        if head_thread is not None:
            head_thread.shutdown(wait=False)
        if reader is not None:
            reader.close()  # its kept-alive connection to the node


def build_components(
    settings: ServiceSettings, *, w3: Web3 | None = None, store: Store | None = None
) -> Components:
    """Connect everything. Issuers whose keystore is missing are served (receipts, status)
    but not anchored for; a warning says so.

    A chain node on another chain than the deployment's, or one where the deployment's
    contracts are not 2.x (:class:`ContractVersionError`), is an error. An unreachable node is
    not: the service starts (not ready), accepts credentials, and its pipeline keeps asking
    the node, with backoff, and anchors once the node answers as the deployment's chain."""
    if w3 is None:
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    deployment = load_deployment(settings.deployment)
    own_store = store is None
    store = store or Store(settings.database_url, pool_size=settings.database_pool_size)
    relayer = (read_keystore(settings.relayer_keystore, revealed(settings.keystore_password))
               if settings.relayer_keystore is not None else None)
    metrics = Metrics()
    policy = BatchPolicy(max_size=settings.batch_max_size, max_age=settings.batch_max_age,
                         confirmations=settings.confirmations)
    pipeline = Pipeline(store, w3, deployment, {}, policy, relayer=relayer, metrics=metrics)
    problem = None if pipeline.check_chain() else pipeline.chain_problem or ""
    if problem is not None and (problem.startswith(WRONG_CONTRACTS)
                                or problem.startswith("wrong chain")):
        if own_store:
            store.close()
        # The node's URL stays out of the message: its path may hold a provider's API key.
        if problem.startswith(WRONG_CONTRACTS):
            raise ContractVersionError(
                f"{settings.deployment}: {problem.removeprefix(WRONG_CONTRACTS)}")
        raise ChainError(f"{settings.deployment} is for chain {deployment.chain_id}, but the "
                         f"chain node is chain {pipeline.node_chain_id}")
    receipts = Receipts(store, chain_id=deployment.chain_id, contract=deployment.anchor)
    components = Components(settings, store, w3, deployment, {}, pipeline, receipts, metrics)
    for issuer in store.issuers():
        components.load_signer(issuer)
        components.load_signing(issuer)
    return components


