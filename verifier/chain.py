"""Reading the chain for verification: nothing but a JSON-RPC endpoint.

:class:`ChainReader` is the interface the checks use; :class:`JsonRpcChainReader` implements
it with web3 (the ``chain`` extra). One reader may serve many verifications, in many threads
at once (the service shares one per process):

* One verification reads the chain through :meth:`ChainReader.at_head`: every read it makes
  (anchors, status bits, trust, entities, blocks) is of the state of that one head, so a
  report never combines two states of the chain. The head it uses was asked for at most
  ``head_max_age`` seconds before :meth:`~JsonRpcChainReader.at_head` was called; with 0 (a
  service's setting), by a head request that began after the call, so a reorganisation the
  node had made before a request arrived is always seen. Head requests are coalesced: one at
  a time, and one serves every caller that came before it began.
* Answers are cached per *lineage*: a run of heads each of which extends the one before (a
  new head's ancestor at the old head's number is the old head, followed by parent hashes,
  race-free, usually without a request as the new head's parent is the old head). Every
  answer is keyed by the block it was read at, so the answers of an older head of the
  lineage stay true of their block; an answer about the head's state is keyed by the block
  since which the contract it reads has logged no change (the blocks' log blooms say so;
  :mod:`verifier._log_blooms`), so a new head that changed nothing it depends on keeps it
  (unless the reader is told not to trust the node's blooms: then each new head reads the
  head's state again).
  A head that does not extend the one before (a reorganisation) starts a new lineage, and
  every answer of the old one goes. A read the cache cannot answer is made at the head's
  block hash with ``requireCanonical`` (EIP-1898), or, on a node that does not take that, by
  number and then checked against the head's hash; if the head was reorganised away
  meanwhile, the read fails with :class:`ReorganisedError` (``verify`` then judges again at
  the new head), so no answer of an abandoned branch is mixed with the head's or cached.
* The work per receipt is bounded: a credential's status (its issuer's entity, status list
  and index) is read as one aligned window of :data:`STATUS_WINDOW_WORDS` words of both
  purposes (one ``eth_call``) around the credential's word, never the issuer's whole list.
  A whole list (:meth:`ChainReader.status_list_words`, to compare a published list with the
  chain) is one ``eth_call`` too.
* Caches are bounded (least recently used entries go first) and guarded by a lock. One thread
  at a time asks for the head; when that fails, the threads that waited for it get the same
  failure instead of asking again, one after another. Only a read that the chain's state may
  have made fail (the node's own error, a missing block) leads to a look at the head; an
  HTTP error (such as 429) or a connection failure does not add requests.
* Error messages never quote the node's URL, whose user, path and query often hold a
  provider's API key: they name the kind of failure and the HTTP status only.
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import os
import re
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, NamedTuple, Protocol, TypeVar, cast, overload
from urllib.parse import parse_qsl, unquote, urlsplit

from verifier._log_blooms import FULL_BLOOM, BloomWindow
from verifier.contract_types import (
    ADDRESS_TEXT,
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    AnchorInfo,
    Entity,
    Recognition,
    RecognitionAnswer,
    Scope,
    SigningKeyInfo,
    StatusWords,
    Trust,
    decode,
    decode_all,
)
from verifier.contracts_abi import load_artifact
from verifier.errors import (
    CacheMiss,
    ChainReadError,
    ContractTypeError,
    PastStateError,
    ReorganisedError,
)
from verifier.text import UNSAFE

__all__ = [
    "LOG_RANGE",
    "MAX_RECORDER_BLOCKS",
    "MAX_SIGNING_KEYS_PER_ENTITY",
    "STATUS_WINDOW_WORDS",
    "BlockInfo",
    "CacheMiss",
    "ChainReader",
    "JsonRpcChainReader",
    "Lru",
    "PinnedReader",
    "block_ranges",
    "last_block_made_by",
]

#: Status words read per ``statusWords`` call for one credential: an aligned window of 8 words
#: holds the revocation and suspension bits of 2,048 neighbouring entries of a list, so the
#: credentials of one issuer issued together share calls, and one call stays small (16 words).
STATUS_WINDOW_WORDS = 8
_BITS_PER_WORD = 256
# Entries kept per head: small answers (anchors, blocks, trust, entities), status windows
# (2 x 8 words each) and whole lists (2 x 512 words, about 70 KB when every bit is set).
_MAX_SMALL_ENTRIES = 16_384
_MAX_WINDOWS = 4096
_MAX_LISTS = 16
# Contracts whose unchanged-since block a view remembers (a deployment has two).
_MAX_CONTRACTS_PER_VIEW = 16
# Parent blocks followed at most (one request each) to learn whether a new head extends the
# head seen before it; beyond, the new head starts a new lineage (its caches start empty).
_MAX_ANCESTOR_STEPS = 32
# The shortest URL part (user, path segment, query value) taken for a secret: shorter ones
# ("v1", "rpc", "1") are names, not keys, and would blank out ordinary words.
_MIN_SECRET_CHARS = 8
#: ``IssuerRegistry.MAX_SIGNING_KEYS_PER_ENTITY``: the most signing keys an entity has, hence
#: the longest answer :meth:`ChainReader.entity_signing_keys` accepts.
MAX_SIGNING_KEYS_PER_ENTITY = 64
_MAX_UINT40 = 2**40 - 1
#: The most blocks sharing one timestamp that :meth:`ChainReader.recognition_recorder`
#: searches for a recognition's event: one ``eth_getLogs`` request stays small (chains make
#: a block every second or more; a node that makes many per second is refused, not scanned).
MAX_RECORDER_BLOCKS = 64
_MAX_UINT64 = 2**64 - 1
_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_D = TypeVar("_D")


class _Header(NamedTuple):
    """What a head request reads of a block: its number, hash, parent's hash, time and logs
    bloom (as an int; :data:`~verifier._log_blooms.FULL_BLOOM` when the node gave none)."""

    number: int
    hash: bytes
    parent: bytes
    timestamp: int
    bloom: int


def _bloom_of(value: object, *, minimal: bool = False) -> int:
    """A block's ``logsBloom`` (hex text from JSON-RPC, bytes from web3) as an int; every bit
    set (any contract may have changed) unless the node gave exactly 256 bytes (some nodes
    give ``0x`` for blocks that have logs). With ``minimal``, fewer bytes are the bloom
    without its leading zero bytes (as eth-tester gives it)."""
    if isinstance(value, str) and value.startswith("0x"):
        value = bytes.fromhex(value[2:])
    if isinstance(value, bytes) and (len(value) == 256 or (minimal and len(value) < 256)):
        return int.from_bytes(value, "big")
    return FULL_BLOOM


@dataclass(frozen=True, slots=True)
class BlockInfo:
    number: int
    hash: bytes
    timestamp: int


class ChainReader(Protocol):
    """What the verification checks need from a chain."""

    def at_head(self, not_before: int = 0) -> ChainReader:
        """A reader whose every answer is of one state of the chain (one head): what one
        verification reads through, so that its report never mixes two states. When the head
        last seen is before block ``not_before`` (the receipt's block), the node is asked for
        its head again (once, shared by the verifications waiting for it); the head returned
        may still be before that block, and the caller judges what that means."""
        ...

    def chain_id(self) -> int: ...
    def latest_block(self) -> int: ...
    def block(self, number: int) -> BlockInfo | None: ...
    def block_at_time(self, timestamp: int) -> int | None: ...
    def anchor_of(self, anchor: str, key: str, root: bytes) -> AnchorInfo: ...
    def status_bits(self, anchor: str, entity_id: int, status_list: int, index: int,
                    at_block: int | None = None) -> tuple[bool, bool]:
        """(revoked, suspended) of entry ``index`` of status list ``status_list`` of entity
        ``entity_id``, now or as the chain stood at block ``at_block``."""
        ...

    def status_list_words(self, anchor: str, entity_id: int, status_list: int,
                          at_block: int | None = None) -> StatusWords:
        """Every word (:data:`~verifier.contract_types.STATUS_LIST_WORDS` of each purpose) of
        status list ``status_list`` of entity ``entity_id``, now or at block ``at_block``:
        one ``eth_call``."""
        ...
    def trusted_at(self, registry: str, key: str, when: int) -> Trust: ...
    def entity(self, registry: str, entity_id: int) -> Entity: ...

    def signing_key(self, registry: str, key_id: bytes) -> SigningKeyInfo:
        """The registry's record of signing key ``key_id`` (keccak256 of its Multikey bytes);
        ``entity_id`` 0 (:attr:`SigningKeyInfo.known` false) when no entity holds it."""
        ...

    def signing_key_trusted_at(self, registry: str, key_id: bytes, when: int) -> Trust:
        """The registry's trust in signing key ``key_id`` at ``when`` (code ``UNKNOWN_KEY``
        for a key no entity holds)."""
        ...

    def entity_signing_keys(self, registry: str, entity_id: int) -> tuple[SigningKeyInfo, ...]:
        """Every signing key ever added to entity ``entity_id``, in the order added (at most
        the registry's ``MAX_SIGNING_KEYS_PER_ENTITY``, one call)."""
        ...

    def entity_id_by_did(self, registry: str, did: str) -> int:
        """The id of the entity whose DID is ``did`` (compared byte for byte), 0 when no
        entity has it."""
        ...

    def recognised_at(self, registry: str, recogniser_id: int, subject_id: int, kind: Scope,
                      when: int, *, at_block: int | None = None) -> RecognitionAnswer:
        """Whether entity ``recogniser_id`` recognises the credentials of kind ``kind`` (one
        scope bit) that entity ``subject_id`` issued at ``when`` (the registry's
        ``recognisedAt``: directly, or through a body above either), now or as the registry
        stood at block ``at_block``."""
        ...

    def recognition(self, registry: str, recognition_id: int,
                    at_block: int | None = None) -> Recognition:
        """The recognition with id ``recognition_id``, now or at block ``at_block`` (a failed
        read when there is none)."""
        ...

    def recognition_recorder(self, registry: str, recognition_id: int, recorded_at: int,
                             at_block: int | None = None) -> str:
        """The account that recorded recognition ``recognition_id`` (its
        ``RecognitionRecorded`` event's ``recordedBy``), searched in the blocks made at
        ``recorded_at`` (the recognition's ``recordedAt``), up to block ``at_block`` when
        given. A failed read when those blocks are more than
        :data:`MAX_RECORDER_BLOCKS`, or hold no such event."""
        ...


def last_block_made_by(time_of: Callable[[int], int], when: int, low: int, high: int) -> int:
    """The last block from ``low`` to ``high`` made at or before ``when``, given that block
    ``low`` was and block ``high`` was not (``time_of`` gives a block's time, and block times
    never decrease): a binary search, about log2(high - low) calls of ``time_of``."""
    while high - low > 1:  # time_of(low) <= when < time_of(high)
        middle = (low + high) // 2
        if time_of(middle) <= when:
            low = middle
        else:
            high = middle
    return low


#: How many block numbers one ``eth_getLogs`` spans at most (nodes cap the range of a query).
LOG_RANGE: Final = 5_000


def block_ranges(first: int, last: int, size: int = LOG_RANGE) -> Iterator[tuple[int, int]]:
    """The ranges (from, to), inclusive, of at most ``size`` blocks that cover blocks
    ``first`` to ``last`` in order: one log query each."""
    for start in range(first, last + 1, size):
        yield start, min(start + size - 1, last)


class Lru(Generic[_K, _V]):
    """A bounded mapping that forgets its least recently used entries (not thread-safe: its
    owner's lock guards it)."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self.limit = limit

    @overload
    def get(self, key: _K) -> _V | None: ...

    @overload
    def get(self, key: _K, default: _D) -> _V | _D: ...

    def get(self, key: _K, default: object = None) -> object:
        """The value of ``key`` (now the most recently used), else ``default``."""
        value = self._items.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def values(self) -> list[_V]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


_MISSING = object()


# Lineage numbers, unique in the process (two readers' lineages never share one).
_LINEAGE_NUMBERS = itertools.count(1)


class _Lineage:
    """Heads each of which extends the one before, and the answers read at their blocks:
    every key names the block it was read at, a block the whole lineage shares, or the block
    since which the state the answer depends on is unchanged (:meth:`PinnedReader._state`).
    ``first`` is the lineage's first head."""

    def __init__(self, number: int, first: int) -> None:
        self.number = number  # counts lineages: a new one after every reorganisation seen
        self.blooms = BloomWindow(first)
        self.small: Lru[Hashable, Any] = Lru(_MAX_SMALL_ENTRIES)
        self.windows: Lru[Hashable, Any] = Lru(_MAX_WINDOWS)
        self.lists: Lru[Hashable, Any] = Lru(_MAX_LISTS)


class _View:
    """The chain as one head shows it; its answers are kept in its lineage's caches."""

    def __init__(self, number: int, block_hash: bytes, timestamp: int, seen: float,
                 lineage: _Lineage) -> None:
        self.number = number
        self.hash = block_hash
        self.timestamp = timestamp
        self.seen = seen  # when the last head request that answered this head began
        self.lineage = lineage
        # (contract, topics) -> the block since which its state is unchanged at this head.
        self.unchanged: dict[tuple[bytes, tuple[bytes, ...] | None], int] = {}


class _ReadsAtHead:
    """Every read of :class:`ChainReader` made at the head that :meth:`at_head` gives, once
    more at the next head if that one is reorganised away meanwhile."""

    def at_head(self, not_before: int = 0) -> PinnedReader:
        raise NotImplementedError

    def chain_id(self) -> int:
        raise NotImplementedError

    def latest_block(self) -> int:
        return self.at_head().latest_block()

    def _retried(self, read: Callable[[PinnedReader], _T]) -> _T:
        try:
            return read(self.at_head())
        except ReorganisedError:
            return read(self.at_head())  # once more, at the head that replaced it

    def block(self, number: int) -> BlockInfo | None:
        return self._retried(lambda pinned: pinned.block(number))

    def block_at_time(self, timestamp: int) -> int | None:
        return self._retried(lambda pinned: pinned.block_at_time(timestamp))

    def anchor_of(self, anchor: str, key: str, root: bytes) -> AnchorInfo:
        return self._retried(lambda pinned: pinned.anchor_of(anchor, key, root))

    def status_bits(self, anchor: str, entity_id: int, status_list: int, index: int,
                    at_block: int | None = None) -> tuple[bool, bool]:
        return self._retried(lambda pinned: pinned.status_bits(anchor, entity_id, status_list,
                                                               index, at_block))

    def status_list_words(self, anchor: str, entity_id: int, status_list: int,
                          at_block: int | None = None) -> StatusWords:
        return self._retried(lambda pinned: pinned.status_list_words(anchor, entity_id,
                                                                     status_list, at_block))

    def trusted_at(self, registry: str, key: str, when: int) -> Trust:
        return self._retried(lambda pinned: pinned.trusted_at(registry, key, when))

    def entity(self, registry: str, entity_id: int) -> Entity:
        return self._retried(lambda pinned: pinned.entity(registry, entity_id))

    def signing_key(self, registry: str, key_id: bytes) -> SigningKeyInfo:
        return self._retried(lambda pinned: pinned.signing_key(registry, key_id))

    def signing_key_trusted_at(self, registry: str, key_id: bytes, when: int) -> Trust:
        return self._retried(lambda pinned: pinned.signing_key_trusted_at(registry, key_id,
                                                                          when))

    def entity_signing_keys(self, registry: str, entity_id: int) -> tuple[SigningKeyInfo, ...]:
        return self._retried(lambda pinned: pinned.entity_signing_keys(registry, entity_id))

    def entity_id_by_did(self, registry: str, did: str) -> int:
        return self._retried(lambda pinned: pinned.entity_id_by_did(registry, did))

    def recognised_at(self, registry: str, recogniser_id: int, subject_id: int, kind: Scope,
                      when: int, *, at_block: int | None = None) -> RecognitionAnswer:
        return self._retried(lambda pinned: pinned.recognised_at(
            registry, recogniser_id, subject_id, kind, when, at_block=at_block))

    def recognition(self, registry: str, recognition_id: int,
                    at_block: int | None = None) -> Recognition:
        return self._retried(lambda pinned: pinned.recognition(registry, recognition_id,
                                                               at_block))

    def recognition_recorder(self, registry: str, recognition_id: int, recorded_at: int,
                             at_block: int | None = None) -> str:
        return self._retried(lambda pinned: pinned.recognition_recorder(
            registry, recognition_id, recorded_at, at_block))


class _CachedSince(_ReadsAtHead):
    """:meth:`JsonRpcChainReader.cached_since`: the head of the last head request, begun
    after a mark, and its lineage's cache; never a request, never a wait."""

    def __init__(self, reader: JsonRpcChainReader, mark: int) -> None:
        self._reader = reader
        self._mark = mark

    def at_head(self, not_before: int = 0) -> PinnedReader:
        pinned = self._reader.pinned_after(self._mark)
        if pinned is None or pinned.head.number < not_before:
            raise CacheMiss("head")
        return PinnedReader(self._reader, pinned._view, cache_only=True)

    def chain_id(self) -> int:
        return self.at_head().chain_id()


class _Since(_ReadsAtHead):
    """A :class:`JsonRpcChainReader` whose heads are all from head requests begun after a
    mark (:meth:`JsonRpcChainReader.since`)."""

    def __init__(self, reader: JsonRpcChainReader, mark: int) -> None:
        self._reader = reader
        self._mark = mark

    def at_head(self, not_before: int = 0) -> PinnedReader:
        return self._reader.at_head(not_before, begun_after=self._mark)

    def chain_id(self) -> int:
        return self._reader.chain_id()


class JsonRpcChainReader(_ReadsAtHead):
    """A :class:`ChainReader` over JSON-RPC (web3.py), safe to share between threads.

    Given a URL, the reader makes its own connection: ``timeout`` seconds per request, and
    with ``retries`` web3's retries with backoff of failed requests (off where an answer is
    wanted now, such as a public verification endpoint); its head requests then go over one
    kept-alive connection of its own (:meth:`close` closes it), its other requests web3's
    way. Given a ``Web3``, it uses that.
    ``head_max_age`` is how old (seconds) the head request whose head a reading uses may have
    begun before the reading asked for it: with 0, every :meth:`at_head` waits for a head
    request that began after it was called (coalesced with every other caller's). With
    ``trust_log_blooms`` false, the blocks' log blooms are not read: every new head counts as
    a change of every contract, so the answers about the head's state are read again at each
    new head (the answers about past blocks stay); for a node whose blooms cannot be relied
    on. ``clock`` is the monotonic clock (tests pass their own).

    Its own read methods each read at the current head (a reorganisation meanwhile is met by
    reading once more at the new one); a verification reads through :meth:`at_head`."""

    def __init__(self, w3_or_url: Any, *, timeout: float = 30.0, retries: bool = True,
                 head_max_age: float = 1.0, trust_log_blooms: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            from web3 import Web3  # noqa: PLC0415 - the chain extra is optional
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ChainReadError("reading the chain needs the chain extra: "
                                 "pip install 'microcred-anchor[chain]'") from exc
        self._Web3 = Web3
        # The reader's own kept-alive connection for its head requests (None: web3's provider
        # makes them, as it makes every other request).
        self._head_rpc: _KeepAliveRpc | None = None
        if isinstance(w3_or_url, str):
            options: dict[str, Any] = {} if retries else {"exception_retry_configuration": None}
            try:
                self._head_rpc = _KeepAliveRpc(w3_or_url, timeout)
            except ValueError:  # a URL http.client cannot take as requests would: web3's way
                provider = Web3.HTTPProvider(w3_or_url, request_kwargs={"timeout": timeout},
                                             **options)
            else:
                provider = _head_provider_class()(w3_or_url, self._head_rpc,
                                                  request_kwargs={"timeout": timeout},
                                                  **options)
            self.w3 = Web3(provider)
            # web3's validation asks the node for its chain id before every eth_call, to check
            # a transaction's chainId field; calls made here carry none, so it only doubles
            # the requests.
            self.w3.middleware_onion.remove("validation")
        else:
            self.w3 = w3_or_url
        self._anchor_abi = load_artifact("CredentialAnchor").abi
        self._registry_abi = load_artifact("IssuerRegistry").abi
        self._status_topics = _status_topics(self._anchor_abi)
        # eth-tester (the in-process chain) gives a bloom without its leading zero bytes.
        self._minimal_blooms = any(kind.__name__ == "EthereumTesterProvider"
                                   for kind in type(self.w3.provider).__mro__)
        self._head_max_age = head_max_age
        self.trusts_log_blooms: Final = trust_log_blooms
        self._clock = clock
        self._lock = threading.Lock()  # guards the caches and the current view
        self._refreshing = threading.Lock()  # one thread asks for the head at a time
        self._view: _View | None = None
        self._begun = 0  # head requests begun (written under _refreshing)
        self._finished = 0  # head requests finished (written under _refreshing)
        # The last finished head request: its number (of _begun), when it began, and its
        # failure (None: it answered); guarded by _refreshing.
        self._last_attempt: tuple[int, float, ChainReadError | None] | None = None
        self._dropped = False  # the last view was found reorganised away (guarded by _lock)
        self._chain_id: int | None = None
        self._contracts: dict[tuple[str, str], Any] = {}
        endpoint = getattr(self.w3.provider, "endpoint_uri", None)
        self._secrets = _url_secrets(endpoint)
        # Whether the node takes EIP-1898 block hashes for eth_call: tried on HTTP nodes (all
        # common ones do), and given up if a node refuses them while its head stands; web3's
        # own calls turn a hash into a number first, so they cannot be used for it.
        self._by_hash: bool | None = None if isinstance(endpoint, str) else False

    # ------------------------------------------------------------------ plumbing

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except ChainReadError:
            raise
        except Exception as exc:  # web3 raises many types; all mean "could not read"
            raise ChainReadError(f"cannot read {what}: {self._describe(exc)}") from None

    def _describe(self, exc: Exception) -> str:
        """The failure without the node's URL (requests' messages quote it whole)."""
        text = _describe(exc)
        for secret in self._secrets:  # a node's own message might still echo parts of it
            text = text.replace(secret, "[redacted]")
        return text

    def _contract(self, address: str, abi: Any, kind: str) -> Any:
        cache_key = (kind, address.lower())
        contract = self._contracts.get(cache_key)
        if contract is None:
            contract = self.w3.eth.contract(address=self._Web3.to_checksum_address(address),
                                            abi=abi)
            with self._lock:
                self._contracts[cache_key] = contract
        return contract

    def _current(self, not_before: int = 0, begun_after: int | None = None) -> _View:
        """The view of the chain's head from a head request that began at most
        ``head_max_age`` seconds before this call (with 0: after it), asking the node when
        there is none; when its head is before block ``not_before``, from one that began
        after this call.

        One thread asks at a time, and a request serves every thread that called before it
        began: threads that come while one is in flight wait for it, then the first of them
        asks once for all the others. If a request fails, every thread that waited for it
        gets its failure without asking again: a node that does not answer costs a caller at
        most the timeout of the request in flight plus one."""
        # A request numbered above this began after the call.
        begun = self._begun if begun_after is None else begun_after
        finished = self._finished  # one that finishes after the call may have been waited for
        max_age = self._head_max_age
        since = self._clock() - max_age
        view = self._view
        if view is not None and view.number < not_before:
            max_age = 0  # a head the receipt's block may be in: one asked for from now on
        elif max_age > 0 and view is not None and view.seen >= since:
            return view
        else:
            # Without the lock: the attempt first, then the view it set (or a newer one).
            last, view = self._last_attempt, self._view
            if view is not None and last is not None and last[2] is None and last[0] > begun:
                return view
        with self._refreshing:
            last = self._last_attempt
            if last is not None and self._finished != finished and last[2] is not None:
                raise type(last[2])(str(last[2]))  # it failed while this one waited
            if last is not None and last[2] is None and self._view is not None and (
                    last[0] > begun or (max_age > 0 and last[1] >= since)):
                # Its head is the newest the node has, even if still before not_before.
                return self._view
            self._begun += 1
            number, started = self._begun, self._clock()
            try:
                view = self._observe_head()
            except ChainReadError as exc:
                self._last_attempt = (number, started, exc)
                raise
            finally:
                self._finished += 1
            self._last_attempt = (number, started, None)
            return view

    def _head_data(self, block: str | bytes) -> _Header:
        """The header of the latest block (``"latest"``) or of the block with hash ``block``:
        a raw JSON-RPC request on an HTTP node (web3's formatting of a whole block costs more
        than the request; over the reader's own kept-alive connection when it made its own
        provider), web3's ``get_block`` on others."""
        if not isinstance(getattr(self.w3.provider, "endpoint_uri", None), str):
            data = _get_block(self.w3, block)
            if data is None:
                raise ChainReadError(f"block {block!r:.80} is missing")
            return _Header(int(data["number"]), bytes(data["hash"]), bytes(data["parentHash"]),
                           int(data["timestamp"]),
                           _bloom_of(data.get("logsBloom"), minimal=self._minimal_blooms))
        from web3.types import RPCEndpoint  # noqa: PLC0415 - the chain extra's module

        method, key = (("eth_getBlockByNumber", block) if isinstance(block, str)
                       else ("eth_getBlockByHash", "0x" + block.hex()))
        response = self.w3.provider.make_request(RPCEndpoint(method), [key, False])
        data = response.get("result") if isinstance(response, dict) else None
        if not isinstance(data, dict):
            error = response.get("error") if isinstance(response, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise _NodeAnswered(str(message) if message else "no block")
        try:
            return _Header(int(data["number"], 16), bytes.fromhex(data["hash"][2:]),
                           bytes.fromhex(data["parentHash"][2:]), int(data["timestamp"], 16),
                           _bloom_of(data.get("logsBloom")))
        except (KeyError, TypeError, ValueError):
            raise _NodeAnswered("a block without its number, hashes or time") from None

    def _observe_head(self) -> _View:
        """Ask the node for its head (caller holds ``_refreshing``). A head that extends the
        one seen before it keeps the lineage (and its answers); any other starts a new one."""
        seen = self._clock()
        number, block_hash, parent, timestamp, bloom = self._call(
            "the latest block", lambda: self._head_data("latest"))
        head_parent = parent
        with self._lock:
            old = self._view
            if old is not None and old.hash == block_hash:
                old.seen = seen
                return old
        walked: list[_Header] = []
        extends = False
        if old is not None and number > old.number:
            # Follow parent hashes down to the old head's number: blocks by hash are
            # immutable, so no reorganisation meanwhile can make this answer wrong.
            at, steps = number - 1, 0
            while at > old.number and steps < _MAX_ANCESTOR_STEPS:
                found = self._call(f"block {at}", functools.partial(self._head_data, parent))
                if found.number != at or found.hash != parent:
                    break
                walked.append(found)
                parent, at, steps = found.parent, at - 1, steps + 1
            extends = at == old.number and parent == old.hash
        with self._lock:
            if self._view is not old:
                old = None  # dropped meanwhile (found reorganised): nothing to extend
            if old is not None and extends:
                lineage = old.lineage
            else:
                lineage = _Lineage(next(_LINEAGE_NUMBERS), number)
            view = _View(number, block_hash, timestamp, seen, lineage)
            # The head and its ancestors followed by hash: blocks of its lineage, and every
            # block after the lineage's first head (the blooms show what they changed).
            headers = [*walked, _Header(number, block_hash, head_parent, timestamp, bloom)]
            for header in headers:
                lineage.small.put(("block", header.number),
                                  BlockInfo(header.number, header.hash, header.timestamp))
            lineage.blooms.add((header.number,
                                header.bloom if self.trusts_log_blooms else FULL_BLOOM)
                               for header in headers)
            self._view = view
            self._dropped = False
            return view

    def _confirm(self, view: _View) -> None:
        """Raise :class:`ReorganisedError` unless ``view``'s head is still in the chain (after
        a read made by number, which the node answers from whatever branch it now follows).
        A view found reorganised away is dropped, so the next head is asked for at once and
        starts a new lineage."""
        data = self._call(f"block {view.number}", lambda: _get_block(self.w3, view.number))
        if data is not None and bytes(data["hash"]) == view.hash:
            return
        with self._lock:
            if self._view is view:
                self._view = None
                self._dropped = True
        raise ReorganisedError(f"block {view.number} is no longer 0x{view.hash.hex()}")

    def cache_entries(self) -> dict[str, int]:
        """Entries in the current lineage's caches (``small``, ``windows``, ``lists``), each
        bounded; the lineages before it are dropped."""
        with self._lock:
            view = self._view
            if view is None:
                return {"small": 0, "windows": 0, "lists": 0}
            lineage = view.lineage
            return {"small": len(lineage.small), "windows": len(lineage.windows),
                    "lists": len(lineage.lists)}

    def _eth_call(self, view: _View, what: str, function: Any, block: tuple[int, bytes],
                  *, past: bool = False) -> Any:
        """``function`` (a web3 contract function) called at ``block`` (number, hash), a block
        of ``view``'s chain: by hash where the node takes it, else by number and confirmed."""
        number, block_hash = block
        if self._by_hash is not False:
            try:
                value = self._call_by_hash(function, block_hash)
            except _NodeAnswered as exc:
                self._confirm(view)  # a block reorganised away is refused: say so
                if self._by_hash is None:  # the head stands: perhaps hashes are not taken
                    value = self._call_by_number(view, what, function, number, past)
                    self._by_hash = False
                    return value
                raise self._read_error(what, exc, number if past else None) from None
            except Exception as exc:
                raise ChainReadError(f"cannot read {what}: {self._describe(exc)}") from None
            self._by_hash = True
            return value
        return self._call_by_number(view, what, function, number, past)

    def _call_by_hash(self, function: Any, block_hash: bytes) -> Any:
        # The chain extra's modules.
        from eth_utils.abi import (  # noqa: PLC0415
            function_abi_to_4byte_selector,
            get_abi_input_types,
            get_abi_output_types,
        )
        from web3.types import RPCEndpoint  # noqa: PLC0415

        data = function_abi_to_4byte_selector(function.abi) + self.w3.codec.encode(
            get_abi_input_types(function.abi), function.args)
        transaction = {"to": function.address, "data": "0x" + data.hex()}
        response = self.w3.provider.make_request(
            RPCEndpoint("eth_call"), [transaction, {"blockHash": "0x" + block_hash.hex(),
                                                    "requireCanonical": True}])
        error = response.get("error")
        if error is not None or "result" not in response:
            message = error.get("message") if isinstance(error, dict) else error
            raise _NodeAnswered(str(message))
        types = get_abi_output_types(function.abi)
        values = self.w3.codec.decode(types, bytes.fromhex(str(response["result"])[2:]))
        if len(values) == 1:  # one output (a struct too is one value), as web3's call gives it
            (value,) = values
            return value
        return values

    def _call_by_number(self, view: _View, what: str, function: Any, number: int,
                        past: bool) -> Any:
        try:
            value = function.call(block_identifier=number)
        except Exception as exc:
            if not _transport_failure(exc):  # perhaps the block is gone: say so if it is
                self._confirm(view)
            raise self._read_error(what, exc, number if past else None) from None
        self._confirm(view)
        return value

    def _read_error(self, what: str, exc: Exception, past_block: int | None) -> ChainReadError:
        detail = self._describe(exc)
        if past_block is not None and _node_answered(exc) and _NO_STATE.search(detail):
            return PastStateError(f"the node has no state for block {past_block} (not an "
                                  f"archive node, or restarted): {detail}")
        if past_block is not None:
            return PastStateError(f"cannot read {what} as of block {past_block}: {detail}")
        return ChainReadError(f"cannot read {what}: {detail}")

    # ------------------------------------------------------------------ the interface

    def at_head(self, not_before: int = 0, *, begun_after: int | None = None) -> PinnedReader:
        """See :meth:`ChainReader.at_head`. A receipt from a block after the head (an anchor
        made after the head request that a reading may use began) costs one head request,
        shared by the verifications waiting for it. With ``begun_after`` (a count of
        :meth:`head_requests_begun`), a head request numbered above it counts as begun after
        the call."""
        return PinnedReader(self, self._current(not_before, begun_after))

    def head_requests_begun(self) -> int:
        """How many head requests have begun: a mark that a request arriving now takes, so
        that a head request begun later (numbered above it) serves it
        (:meth:`pinned_after`, :meth:`since`)."""
        return self._begun

    def pinned_after(self, mark: int) -> PinnedReader | None:
        """A reader of the head of the last head request, if that request answered and
        began after ``mark`` (or within ``head_max_age``), and its head was not found
        reorganised since; else None. Never asks the node, never waits (for an event
        loop)."""
        last, view = self._last_attempt, self._view
        if last is None or last[2] is not None or view is None:
            return None
        max_age = self._head_max_age
        if last[0] > mark or (max_age > 0 and view.seen >= self._clock() - max_age):
            return PinnedReader(self, view)
        return None

    def lineage(self) -> int | None:
        """The number of the lineage of the head last seen: None when none was seen yet, 0
        when it was found reorganised away (no lineage has that number)."""
        with self._lock:
            view = self._view
            if view is None:
                return 0 if self._dropped else None
            return view.lineage.number

    def cached_since(self, mark: int) -> ChainReader:
        """:meth:`since`, answering from the cache alone: any read it cannot answer so (the
        head not seen since the mark included) raises :class:`CacheMiss` at once, so that
        work can be tried on an event loop and done in a thread only when the node must be
        asked."""
        return _CachedSince(self, mark)

    def since(self, mark: int) -> ChainReader:
        """This reader as a request that arrived at ``mark`` (:meth:`head_requests_begun`)
        sees it: every head it reads at is from a head request begun after the mark."""
        return _Since(self, mark)

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._call("the chain id", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def latest_block(self) -> int:
        """The head's block number, from a head request begun at most ``head_max_age``
        seconds before the call (confirmations only grow, so a slightly old number errs on
        the safe side)."""
        return self._current().number

    def close(self) -> None:
        """Close the reader's own kept-alive connection for head requests, if it made one (a
        head request after this opens another)."""
        if self._head_rpc is not None:
            self._head_rpc.close()


class PinnedReader:
    """A :class:`ChainReader` of one head's state (what :meth:`JsonRpcChainReader.at_head`
    gives), sharing its lineage's cache with every other reader pinned to a head of that
    lineage."""

    def __init__(self, reader: JsonRpcChainReader, view: _View, *,
                 cache_only: bool = False) -> None:
        self._reader = reader
        self._view = view
        self._cache_only = cache_only  # a read the cache cannot answer raises CacheMiss

    @property
    def head(self) -> BlockInfo:
        """The head this reader reads at."""
        view = self._view
        return BlockInfo(view.number, view.hash, view.timestamp)

    @property
    def lineage(self) -> int:
        """The number of the head's lineage: the same for two heads when the later one was
        seen to extend the earlier, through every head seen between them (no reorganisation
        seen); a new number after a reorganisation."""
        return self._view.lineage.number

    def _cached(self, cache: str, key: Hashable, read: Callable[[], _T]) -> _T:
        """``read()``'s answer, kept in the lineage's ``cache`` under ``key``, which names
        the block the answer is of (the head's number for the head's state)."""
        reader, lineage = self._reader, self._view.lineage
        with reader._lock:
            found = getattr(lineage, cache).get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[no-any-return]
        if self._cache_only:
            raise CacheMiss(key)
        value = read()  # of this head, or ReorganisedError: nothing else is cached
        with reader._lock:
            getattr(lineage, cache).put(key, value)
        return value

    def _head_block(self) -> tuple[int, bytes]:
        return self._view.number, self._view.hash

    def _state(self, address: str, topics: tuple[bytes, ...] | None = None) -> Hashable:
        """What names, in a cache key, the state of the contract at ``address`` as this head
        shows it: the block of this lineage since which no block may hold a log of the
        contract (with one of ``topics``, when given), as the blocks' log blooms show. The
        contracts log every change of their state (``contracts/README.md``), so an answer
        read at any head whose key names the same block is this head's answer too. The
        head's number when ``address`` is not an address (then the call fails anyway)."""
        view = self._view
        contract = _address_bytes(address) if isinstance(address, str) else None
        if contract is None:
            return view.number
        with self._reader._lock:
            since = view.unchanged.get((contract, topics))
            if since is None:
                since = view.lineage.blooms.unchanged_since(view.number, contract, topics)
                if len(view.unchanged) < _MAX_CONTRACTS_PER_VIEW:
                    view.unchanged[(contract, topics)] = since
        return ("unchanged since", since)

    def _decoded(self, model: type[_T], what: str, function: Any,
                 block: tuple[int, bytes] | None = None, *, past: bool = False) -> _T:
        """``function`` (a web3 contract function) called at this head, or at ``block`` of
        its chain, its answer decoded as ``model``. An answer that fits no model (such as an
        enum value the contracts do not have) is a failed read, not a verdict."""
        value = self._reader._eth_call(self._view, what, function,
                                       self._head_block() if block is None else block, past=past)
        try:
            return decode(model, value)
        except ContractTypeError as exc:
            raise ChainReadError(f"cannot read {what}: the node answered {exc}") from None

    def at_head(self, not_before: int = 0) -> PinnedReader:
        return self

    def chain_id(self) -> int:
        if self._cache_only and self._reader._chain_id is None:
            raise CacheMiss("chain id")
        return self._reader.chain_id()

    def latest_block(self) -> int:
        return self._view.number

    def block(self, number: int) -> BlockInfo | None:
        """Block ``number`` of this head's chain (None beyond the head)."""
        view = self._view
        if number == view.number:
            return BlockInfo(view.number, view.hash, view.timestamp)
        if not 0 <= number < view.number:
            return None

        def read() -> BlockInfo | None:
            found = self._unconfirmed_block(number)
            self._reader._confirm(view)  # read by number: of this head's chain only if it stands
            return found

        return self._cached("small", ("block", number), read)

    def _unconfirmed_block(self, number: int) -> BlockInfo | None:
        reader = self._reader
        data = reader._call(f"block {number}", lambda: _get_block(reader.w3, number))
        return None if data is None else BlockInfo(
            int(data["number"]), bytes(data["hash"]), int(data["timestamp"]))

    def block_at_time(self, timestamp: int) -> int | None:
        """The last block made at or before ``timestamp`` (None if the chain began later):
        a binary search over block timestamps, about log2(height) block reads and one check
        that the head still stands, cached."""
        # Before the head's time, the answer is a block the whole lineage shares; at or
        # after it, it is of this head.
        head = self._view.number if timestamp >= self._view.timestamp else None
        return self._cached("small", ("block_at", timestamp, head),
                            lambda: self._search_block_at(timestamp))

    def _search_block_at(self, timestamp: int) -> int | None:
        view = self._view
        seen: dict[int, BlockInfo] = {}

        def time_of(number: int) -> int:
            if number == view.number:
                return view.timestamp
            with self._reader._lock:
                cached = view.lineage.small.get(("block", number))
            block = cached if isinstance(cached, BlockInfo) else self._unconfirmed_block(number)
            if block is None:
                raise ChainReadError(f"block {number} is missing")
            seen[number] = block
            return block.timestamp

        low, high = 0, view.number
        if time_of(high) <= timestamp:
            return high
        found = None if time_of(low) > timestamp else \
            last_block_made_by(time_of, timestamp, low, high)
        self._reader._confirm(view)  # every block read above is of this head's chain
        with self._reader._lock:
            for number, block in seen.items():
                view.lineage.small.put(("block", number), block)
        return found

    def anchor_of(self, anchor: str, key: str, root: bytes) -> AnchorInfo:
        """The anchor of ``root`` by the issuer of ``key``. An anchor record is written once
        and never changes; what else the answer depends on is the anchor's registry (which
        entity holds ``key``), so a root found anchored is read once per batch while that
        registry logs nothing; a root not found anchored, once per batch and head."""
        reader, view = self._reader, self._view
        lasting = self._lasting_anchor_key(anchor, key, root)
        if lasting is not None:
            with reader._lock:
                found = view.lineage.small.get(lasting)
            if found is not None and found.block_number <= view.number:
                return cast(AnchorInfo, found)  # anchored in a block of this head's chain

        def read() -> AnchorInfo:
            functions = reader._contract(anchor, reader._anchor_abi, "anchor").functions
            info = self._decoded(AnchorInfo, "the anchor", functions.anchorOf(
                reader._Web3.to_checksum_address(key), root))
            if lasting is None and info.anchored:
                self._learn_registry_of(anchor, functions)
            return info

        info = self._cached("small", ("anchor", anchor.lower(), key.lower(), root,
                                      view.number), read)
        if info.anchored:
            lasting = lasting or self._lasting_anchor_key(anchor, key, root)
            if lasting is not None:
                with reader._lock:
                    view.lineage.small.put(lasting, info)
        return info

    def _lasting_anchor_key(self, anchor: str, key: str, root: bytes) -> Hashable | None:
        """The key of a root's anchor found anchored, named by the state of the anchor's
        registry; None while the registry is not known (read once per lineage)."""
        with self._reader._lock:
            registry = self._view.lineage.small.get(("registry of", anchor.lower()))
        if registry is None:
            return None
        return ("anchored", anchor.lower(), key.lower(), root, self._state(registry))

    def _learn_registry_of(self, anchor: str, functions: Any) -> None:
        """Read the registry of the anchor at ``anchor`` (fixed when it was deployed) and keep
        it in the lineage's cache."""
        registry = self._reader._eth_call(self._view, "the anchor's registry",
                                          functions.registry(), self._head_block())
        if isinstance(registry, str) and _address_bytes(registry) is not None:
            with self._reader._lock:
                self._view.lineage.small.put(("registry of", anchor.lower()), registry.lower())

    def _block_of(self, at_block: int | None) -> tuple[tuple[int, bytes], bool]:
        """(number, hash) of the block to read status at, and whether it is a past one:
        this head, or block ``at_block`` of its chain."""
        view = self._view
        if at_block is None or at_block == view.number:
            return self._head_block(), False
        found = self.block(at_block)
        if found is None:
            raise ChainReadError(f"block {at_block} is not in the chain up to "
                                 f"block {view.number}")
        return (found.number, found.hash), True

    def _status_words(self, anchor: str, entity_id: int, status_list: int, *, first: int,
                      count: int, at_block: int | None, cache: str) -> StatusWords:
        """``statusWords(entityId, statusList, first, count)`` at this head or ``at_block``,
        cached in this head's ``cache``; an answer of another length is a failed read."""
        reader = self._reader
        block, past = self._block_of(at_block)

        def read() -> StatusWords:
            contract = reader._contract(anchor, reader._anchor_abi, "anchor")
            words = self._decoded(StatusWords, "the status words", contract.functions.statusWords(
                entity_id, status_list, first, count), block, past=past)
            if len(words.revoked) != count or len(words.suspended) != count:
                raise ChainReadError(f"the node answered {len(words.revoked)} status words, "
                                     f"not {count}")
            return words

        # The bits at this head are those since the last possible status change.
        state = block[0] if past else self._state(anchor, reader._status_topics)
        return self._cached(cache, (anchor.lower(), entity_id, status_list, state, first,
                                    count), read)

    def status_bits(self, anchor: str, entity_id: int, status_list: int, index: int,
                    at_block: int | None = None) -> tuple[bool, bool]:
        """(revoked, suspended) of entry ``index`` of the issuer's list, as this head shows it
        or as the chain stood at ``at_block`` (a block of this head's chain; a past one needs
        a node that keeps past state). One call reads the aligned window of
        :data:`STATUS_WINDOW_WORDS` words that holds the entry's word, so neighbouring
        entries share it (per head and block)."""
        if not 0 <= index < STATUS_LIST_SIZE:
            raise ChainReadError(f"status list index {index} is not in "
                                 f"0..{STATUS_LIST_SIZE - 1}")
        word, offset = divmod(index, _BITS_PER_WORD)
        first = word - word % STATUS_WINDOW_WORDS
        words = self._status_words(anchor, entity_id, status_list, first=first,
                                   count=STATUS_WINDOW_WORDS, at_block=at_block,
                                   cache="windows")
        shift = _BITS_PER_WORD - 1 - offset  # entry 0 is a word's most significant bit
        return (bool(words.revoked[word - first] >> shift & 1),
                bool(words.suspended[word - first] >> shift & 1))

    def status_list_words(self, anchor: str, entity_id: int, status_list: int,
                          at_block: int | None = None) -> StatusWords:
        """Every word of the issuer's status list ``status_list`` (both purposes), as this
        head shows it or at ``at_block``: one ``eth_call``, cached per head and block."""
        return self._status_words(anchor, entity_id, status_list, first=0,
                                  count=STATUS_LIST_WORDS, at_block=at_block, cache="lists")

    def trusted_at(self, registry: str, key: str, when: int) -> Trust:
        """The registry's trust in ``key`` at ``when``, as this head knows it (back-dated
        revocations included)."""
        reader = self._reader

        def read() -> Trust:
            contract = reader._contract(registry, reader._registry_abi, "registry")
            return self._decoded(Trust, "the key's trust", contract.functions.trustedAt(
                reader._Web3.to_checksum_address(key), when))

        return self._cached("small", ("trust", registry.lower(), key.lower(), when,
                                      self._state(registry)), read)

    def entity(self, registry: str, entity_id: int) -> Entity:
        reader = self._reader

        def read() -> Entity:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            return self._decoded(Entity, f"entity {entity_id}", functions.entity(entity_id))

        return self._cached("small", ("entity", registry.lower(), entity_id,
                                      self._state(registry)), read)

    def signing_key(self, registry: str, key_id: bytes) -> SigningKeyInfo:
        """The record of signing key ``key_id``, as this head knows it; entity 0 when no
        entity holds it (one call, cached per head)."""
        reader = self._reader
        key_id = _key_id(key_id)

        def read() -> SigningKeyInfo:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            return self._decoded(SigningKeyInfo, "the signing key",
                                 functions.signingKeyInfo(key_id))

        return self._cached("small", ("signing key", registry.lower(), key_id,
                                      self._state(registry)), read)

    def signing_key_trusted_at(self, registry: str, key_id: bytes, when: int) -> Trust:
        """The registry's trust in signing key ``key_id`` at ``when``, as this head knows it
        (back-dated revocations included)."""
        reader = self._reader
        key_id = _key_id(key_id)

        def read() -> Trust:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            return self._decoded(Trust, "the signing key's trust",
                                 functions.signingKeyTrustedAt(key_id, when))

        return self._cached("small", ("signing trust", registry.lower(), key_id, when,
                                      self._state(registry)), read)

    def entity_signing_keys(self, registry: str, entity_id: int) -> tuple[SigningKeyInfo, ...]:
        """Every signing key of entity ``entity_id``, as this head knows it: one call
        (``entitySigningKeyInfos``), bounded by the registry's ``MAX_SIGNING_KEYS_PER_ENTITY``;
        a reply longer than that bound, or one naming another entity, is a failed read."""
        reader = self._reader
        what = f"the signing keys of entity {entity_id}"

        def read() -> tuple[SigningKeyInfo, ...]:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            value = reader._eth_call(self._view, what,
                                     functions.entitySigningKeyInfos(entity_id),
                                     self._head_block())
            if not isinstance(value, list | tuple) or len(value) > MAX_SIGNING_KEYS_PER_ENTITY:
                raise ChainReadError(f"cannot read {what}: the node answered more than "
                                     f"{MAX_SIGNING_KEYS_PER_ENTITY} keys")
            try:
                keys = decode_all(SigningKeyInfo, value)
            except ContractTypeError as exc:
                raise ChainReadError(f"cannot read {what}: the node answered {exc}") from None
            if any(key.entity_id != entity_id for key in keys):
                raise ChainReadError(f"cannot read {what}: the node answered keys of "
                                     "another entity")
            return keys

        return self._cached("small", ("signing keys", registry.lower(), entity_id,
                                      self._state(registry)), read)

    def entity_id_by_did(self, registry: str, did: str) -> int:
        """The id of the entity with DID ``did`` as this head knows it, 0 when none (one
        call, cached per head)."""
        reader = self._reader
        if not isinstance(did, str):
            raise ChainReadError(f"a DID is a string, not {did!r:.80}")

        def read() -> int:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            value = reader._eth_call(self._view, "the entity of a DID",
                                     functions.entityIdByDid(did), self._head_block())
            if type(value) is not int or not 0 <= value <= _MAX_UINT64:
                raise ChainReadError("cannot read the entity of a DID: the node answered "
                                     f"{value!r:.80}")
            return value

        return self._cached("small", ("entity by did", registry.lower(), did,
                                      self._state(registry)), read)

    def recognised_at(self, registry: str, recogniser_id: int, subject_id: int, kind: Scope,
                      when: int, *, at_block: int | None = None) -> RecognitionAnswer:
        """The registry's answer to "does ``recogniser_id`` recognise kind ``kind`` of
        ``subject_id``'s credentials issued at ``when``?", as this head knows it or as the
        registry stood at ``at_block`` (a block of this head's chain; a past one needs a node
        that keeps past state): one call, cached per head and block. A kind that is not one
        scope bit, or a time outside uint40, is the caller's mistake, refused before any
        request."""
        reader = self._reader
        if type(kind) not in (int, Scope) or kind not in (1, 2, 4):
            raise ChainReadError(f"a kind is exactly one scope bit (1, 2 or 4), not {kind!r}")
        if type(when) is not int or not 0 <= when <= _MAX_UINT40:
            raise ChainReadError(f"time {when!r} is not in 0..{_MAX_UINT40}")
        what = f"whether entity {recogniser_id} recognises entity {subject_id}"
        block, past = self._block_of(at_block)

        def read() -> RecognitionAnswer:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            return self._decoded(RecognitionAnswer, what, functions.recognisedAt(
                recogniser_id, subject_id, int(kind), when), block, past=past)

        return self._cached("small", ("recognised", registry.lower(), recogniser_id,
                                      subject_id, int(kind), when, block[0]), read)

    def recognition(self, registry: str, recognition_id: int,
                    at_block: int | None = None) -> Recognition:
        """Recognition ``recognition_id`` as this head knows it or as the registry stood at
        ``at_block`` (one call, cached per head and block); an unknown id is a failed read
        (the registry reverts)."""
        reader = self._reader
        block, past = self._block_of(at_block)

        def read() -> Recognition:
            functions = reader._contract(registry, reader._registry_abi, "registry").functions
            found = self._decoded(Recognition, f"recognition {recognition_id}",
                                  functions.recognition(recognition_id), block, past=past)
            if found.id != recognition_id:
                raise ChainReadError(f"cannot read recognition {recognition_id}: the node "
                                     f"answered recognition {found.id}")
            return found

        return self._cached("small", ("recognition", registry.lower(), recognition_id,
                                      block[0]), read)

    def recognition_recorder(self, registry: str, recognition_id: int, recorded_at: int,
                             at_block: int | None = None) -> str:
        """The account that recorded recognition ``recognition_id``: the ``recordedBy`` of
        its ``RecognitionRecorded`` event, which the registry does not store. The event is
        looked for in the blocks made at second ``recorded_at`` (found with the block-time
        search; at most :data:`MAX_RECORDER_BLOCKS` of them, up to ``at_block`` when given),
        with one ``eth_getLogs`` filtered by the event and the id; cached per head."""
        if type(recorded_at) is not int or not 0 <= recorded_at <= _MAX_UINT40:
            raise ChainReadError(f"time {recorded_at!r} is not in 0..{_MAX_UINT40}")
        what = f"who recorded recognition {recognition_id}"
        last = self.block_at_time(recorded_at)
        if last is not None and at_block is not None:
            last = min(last, at_block)
        before = self.block_at_time(recorded_at - 1) if recorded_at > 0 else None
        first = 0 if before is None else before + 1
        if last is None or last < first:
            raise ChainReadError(f"cannot read {what}: no block was made at {recorded_at}")
        if last - first + 1 > MAX_RECORDER_BLOCKS:
            raise ChainReadError(f"cannot read {what}: {last - first + 1} blocks were made "
                                 f"at {recorded_at}, more than the {MAX_RECORDER_BLOCKS} "
                                 "searched")
        return self._cached("small", ("recorder", registry.lower(), recognition_id, first,
                                      last),
                            lambda: self._read_recorder(registry, recognition_id, first, last,
                                                        what))

    def _read_recorder(self, registry: str, recognition_id: int, first: int, last: int,
                       what: str) -> str:
        reader = self._reader
        if type(recognition_id) is not int or not 0 < recognition_id <= _MAX_UINT64:
            raise ChainReadError(f"cannot read {what}: not a recognition id")
        event = reader._contract(registry, reader._registry_abi,
                                 "registry").events.RecognitionRecorded()
        address = reader._Web3.to_checksum_address(registry)
        logs = reader._call(what, lambda: reader.w3.eth.get_logs({
            "address": address, "fromBlock": first, "toBlock": last,
            "topics": [event.topic, "0x" + recognition_id.to_bytes(32, "big").hex()]}))
        reader._confirm(self._view)  # read by number: of this head's chain only if it stands
        found = [log for log in logs if not log.get("removed", False)]
        if len(found) != 1:
            raise ChainReadError(f"cannot read {what}: the node answered {len(found)} "
                                 f"RecognitionRecorded events in blocks {first}-{last}, not 1")
        try:
            recorded_by = str(event.process_log(found[0])["args"]["recordedBy"])
        except Exception as exc:  # web3 raises several types for a log it cannot decode
            raise ChainReadError(f"cannot read {what}: the node answered an event that does "
                                 f"not decode ({type(exc).__name__})") from None
        return recorded_by.lower()


def _key_id(key_id: bytes) -> bytes:
    """A signing key id as the registry takes it: 32 bytes (anything else is a caller's
    mistake, refused before any request)."""
    if not isinstance(key_id, bytes) or len(key_id) != 32:
        raise ChainReadError(f"a signing key id is 32 bytes, not {key_id!r:.80}")
    return bytes(key_id)


class _NodeAnswered(Exception):  # noqa: N818 - internal: the node's JSON-RPC error object
    """The node answered a raw request with a JSON-RPC error (its message)."""


# The anchor's events that leave every credential's status as it was: anchoring a root writes
# only that root's anchor record; a nonce is used by signed anchoring only.
_STATUS_KEEPING_EVENTS = frozenset({"RootAnchored", "NonceUsed"})


def _status_topics(anchor_abi: Any) -> tuple[bytes, ...]:
    """The topics (event signature hashes) of every event of the anchor contract but those
    that leave the status bits as they were: any of them in a block may mark a status change."""
    from eth_utils.abi import event_abi_to_log_topic  # noqa: PLC0415 - the chain extra

    return tuple(bytes(event_abi_to_log_topic(entry)) for entry in anchor_abi
                 if entry.get("type") == "event"
                 and entry.get("name") not in _STATUS_KEEPING_EVENTS)


@functools.lru_cache(maxsize=64)
def _address_bytes(address: str) -> bytes | None:
    """The 20 bytes of a hex address (``0x`` and 40 hex digits), None for anything else."""
    if _ADDRESS.fullmatch(address) is None:
        return None
    return bytes.fromhex(address[2:])


_ADDRESS = re.compile(ADDRESS_TEXT)


def _get_block(w3: Any, number: int | str | bytes) -> Any:
    from web3.exceptions import BlockNotFound  # noqa: PLC0415

    try:
        return w3.eth.get_block(number)
    except BlockNotFound:
        return None


# How nodes say that they keep no state for a block (geth, erigon, nethermind, anvil, besu).
_NO_STATE = re.compile(
    r"missing trie node|state.{0,40}not available|not available.{0,40}state|historical state"
    r"|state.{0,20}(?:pruned|unavailable)|no state|BlockOutOfRange|header not found"
    r"|resource not found|unknown block|not an archive", re.IGNORECASE)


def _describe(exc: Exception) -> str:  # noqa: PLR0911 - one answer per kind of failure
    """A failure named by its kind and HTTP status, never by the URL it went to."""
    import requests  # noqa: PLC0415 - a dependency of web3, the optional chain extra
    from web3.exceptions import Web3RPCError  # noqa: PLC0415

    if isinstance(exc, _RpcError):
        return str(exc)  # made of kinds and statuses only
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return f"the node answered HTTP {status}" + (
            " (too many requests)" if status == 429 else "")
    if isinstance(exc, requests.Timeout):
        return f"the node did not answer in time ({type(exc).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to the node ({type(exc).__name__})"
    if isinstance(exc, _NodeAnswered):
        return "the node answered: " + UNSAFE.sub("?", str(exc))[:200]
    if isinstance(exc, Web3RPCError):
        # The node's own error message (a JSON-RPC error object), shortened and printable.
        error = (exc.rpc_response or {}).get("error")
        message = error.get("message") if isinstance(error, dict) else None
        text = str(message) if message else exc.message
        return "the node answered: " + UNSAFE.sub("?", text)[:200]
    return type(exc).__name__


def _node_answered(exc: Exception) -> bool:
    """Whether the node itself refused the request (rather than being unreachable)."""
    from web3.exceptions import Web3RPCError  # noqa: PLC0415

    return isinstance(exc, Web3RPCError | _NodeAnswered)


def _transport_failure(exc: Exception) -> bool:
    """Whether the request failed on its way (no connection, no answer in time, an HTTP
    error status such as 429): nothing the chain's state could have caused."""
    import requests  # noqa: PLC0415

    return isinstance(exc, requests.RequestException | _RpcError)


def _url_secrets(url: object) -> list[str]:
    """The parts of an RPC URL that may hold an API key, longest first: the URL itself, its
    path and query, its user and password, and each path segment and query value of at least
    :data:`_MIN_SECRET_CHARS` characters (a node's error may echo any one of them), each also
    as percent-decoded."""
    if not isinstance(url, str):
        return []
    parts = urlsplit(url)
    found = [url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.query,
             parts.username or "", parts.password or ""]
    found += parts.path.split("/")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        found += [name, value]
    found += [unquote(part) for part in found]
    return sorted({s for s in found if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)


# ---------------------------------------------------------------------- head requests

# The largest JSON-RPC answer to a head request read (a block with only its transactions'
# hashes is far smaller); a bigger one is refused without reading the rest.
_MAX_RPC_ANSWER: Final = 4 * 1024 * 1024


class _RpcError(Exception):
    """A request over :class:`_KeepAliveRpc` failed. Its text names kinds and HTTP statuses
    only, never a part of the URL; ``retryable``: the node gave no usable answer, as web3's
    retries count it."""

    def __init__(self, text: str, *, retryable: bool) -> None:
        super().__init__(text)
        self.retryable = retryable


class _KeepAliveRpc:
    """JSON-RPC over one kept-alive HTTP(S) connection to a node, sent as web3's provider
    (requests) sends it: the same path and query, basic auth from ``~/.netrc`` or else the
    URL's user and password (looked up once), ``timeout`` seconds per connect or read, TLS
    checked against requests' CA bundle. The head requests go this way because web3 and
    requests cost more CPU than the request itself (a session that looks up ``~/.netrc`` per
    request, middleware, formatting), and every verification waits for one.

    Raises ValueError for a URL that it cannot serve as requests would (not http(s), or one a
    proxy from the environment applies to): web3 then makes the head requests too."""

    def __init__(self, url: str, timeout: float) -> None:
        import requests.auth  # noqa: PLC0415 - a dependency of web3, the optional chain extra
        import requests.utils  # noqa: PLC0415

        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host or not host.isascii():
            raise ValueError("not a URL of an HTTP(S) node")
        port = parts.port  # ValueError when it is not a port number
        if requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)):
            raise ValueError("a proxy from the environment applies to the URL")
        self._target = requests.utils.requote_uri(
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        self.headers = {"Content-Type": "application/json"}
        # requests' order: ~/.netrc's entry for the host first, then the URL's own.
        from_url = requests.utils.get_auth_from_url(url)
        auth = requests.utils.get_netrc_auth(url) or (from_url if any(from_url) else None)
        if auth is not None:
            self.headers["Authorization"] = requests.auth._basic_auth_str(*auth)
        try:
            if parts.scheme == "https":
                self._connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=_tls_context())
            else:
                self._connection = http.client.HTTPConnection(host, port, timeout=timeout)
        except http.client.HTTPException:  # InvalidURL: a host http.client refuses
            raise ValueError("not a host http.client takes") from None
        self.lock = threading.Lock()  # guards the connection
        self._ids = itertools.count(1)
        # A reader dropped without close() closes its socket (as urllib3's pools do).
        weakref.finalize(self, self._connection.close)

    def request(self, method: str, params: Any) -> dict[str, Any]:
        """The node's JSON-RPC answer (an object) to ``method`` with ``params`` (the caller
        holds :attr:`lock`). A kept-alive connection that the node closed meanwhile is opened
        anew once: the requests are reads, safe to send twice."""
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                           "id": next(self._ids)}).encode()
        connection = self._connection
        for attempt in (1, 2):
            reused = connection.sock is not None
            try:
                connection.request("POST", self._target, body, self.headers)
                response = connection.getresponse()
                try:
                    return self._answer(response)
                finally:
                    # Read to its end, or refused: a response whose connection the node
                    # closes holds its socket itself, apart from the connection.
                    response.close()
            except _RpcError:
                connection.close()
                raise
            except (ConnectionResetError, BrokenPipeError) as exc:  # RemoteDisconnected too
                connection.close()
                if reused and attempt == 1:
                    continue
                raise _RpcError(f"cannot connect to the node ({type(exc).__name__})",
                                  retryable=True) from None
            except TimeoutError:
                connection.close()
                raise _RpcError("the node did not answer in time (TimeoutError)",
                                  retryable=True) from None
            except (OSError, http.client.HTTPException) as exc:
                # By kind only: http.client's messages may quote the URL's path.
                connection.close()
                raise _RpcError(f"cannot connect to the node ({type(exc).__name__})",
                                  retryable=True) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _answer(self, response: http.client.HTTPResponse) -> dict[str, Any]:
        status = response.status
        if status != 200:
            raise _RpcError(f"the node answered HTTP {status}" + (
                " (too many requests)" if status == 429 else ""), retryable=status >= 400)
        too_big = f"the node's answer is over {_MAX_RPC_ANSWER // (1024 * 1024)} MiB"
        if response.length is not None and response.length > _MAX_RPC_ANSWER:
            raise _RpcError(too_big, retryable=False)  # refused before reading any of it
        data = response.read(_MAX_RPC_ANSWER + 1)
        if len(data) > _MAX_RPC_ANSWER:
            raise _RpcError(too_big, retryable=False)
        if not response.isclosed():  # not read to its end: the connection cannot be reused
            self._connection.close()
        try:
            answer = json.loads(data)
        except (ValueError, RecursionError):
            raise _RpcError("the node's answer is not JSON", retryable=False) from None
        if not isinstance(answer, dict):
            raise _RpcError("the node's answer is not a JSON-RPC answer", retryable=False)
        return answer

    def close(self) -> None:
        with self.lock:
            self._connection.close()


def _tls_context() -> ssl.SSLContext:
    """TLS as requests checks it: against the CA bundle named by ``REQUESTS_CA_BUNDLE`` or
    ``CURL_CA_BUNDLE``, else its own (certifi's)."""
    import requests.utils  # noqa: PLC0415

    bundle = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
              or requests.utils.DEFAULT_CA_BUNDLE_PATH)
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


def _is_head_request(method: str, params: Any) -> bool:
    """Whether a request is one of the reader's head requests: the latest block, or a block
    by hash, each without its transactions."""
    if not isinstance(params, list | tuple) or len(params) != 2 or params[1] is not False:
        return False
    return method == "eth_getBlockByHash" or (
        method == "eth_getBlockByNumber" and params[0] == "latest")


@functools.cache
def _head_provider_class() -> type[Any]:
    """web3's HTTP provider, whose head requests go over a :class:`_KeepAliveRpc` (made at
    first use: the chain extra is optional). Every other request goes web3's way, and so does
    a head request while the kept connection is busy (never queued behind it)."""
    from web3 import HTTPProvider  # noqa: PLC0415
    from web3.providers.rpc.utils import check_if_retry_on_failure  # noqa: PLC0415
    from web3.types import RPCEndpoint, RPCResponse  # noqa: PLC0415

    class HeadProvider(HTTPProvider):
        def __init__(self, endpoint_uri: str, head_rpc: _KeepAliveRpc, **kwargs: Any) -> None:
            super().__init__(endpoint_uri, **kwargs)
            self.head_rpc = head_rpc
            head_rpc.headers["User-Agent"] = self.get_request_headers()["User-Agent"]

        def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
            head_rpc = self.head_rpc
            if not _is_head_request(method, params) or not head_rpc.lock.acquire(
                    blocking=False):
                return super().make_request(method, params)
            try:
                # web3's retries with backoff, where the reader was made with them.
                config = self.exception_retry_configuration
                attempts = config.retries if config is not None and \
                    check_if_retry_on_failure(method, config.method_allowlist) else 1
                for attempt in range(max(attempts, 1)):
                    try:
                        return cast("RPCResponse", head_rpc.request(method, params))
                    except _RpcError as exc:
                        if config is None or not exc.retryable or attempt >= attempts - 1:
                            raise
                        time.sleep(config.backoff_factor * 2 ** attempt)
                raise AssertionError("unreachable: the last attempt returns or raises")
            finally:
                head_rpc.lock.release()

    return HeadProvider
