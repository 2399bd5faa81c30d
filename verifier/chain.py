"""Reading the chain for verification: nothing but a JSON-RPC endpoint.

:class:`ChainReader` is the interface the checks use; :class:`JsonRpcChainReader` implements
it with web3 (the ``chain`` extra). One reader may serve many verifications, in many threads
at once (the service shares one per process):

* It looks at the chain's head (number and hash) at most once every ``head_max_age`` seconds,
  and reads every state that can change (anchors, status bits, trust, entities, blocks by
  number) at that head's block number. Those answers are cached in a view of that head, which
  is dropped as a whole when a head with another hash is seen: after a reorganisation, no
  answer of the abandoned branch is served again.
* The work per receipt is bounded whatever the anchored tree size: the status bits are read
  as one aligned window of at most :data:`STATUS_WINDOW_WORDS` words (one ``eth_call``) around
  the credential's word, never the batch's whole bitmap.
* Caches are bounded (least recently used entries go first) and guarded by a lock.
* Error messages never quote the node's URL, whose path and query often hold a provider's API
  key: they name the kind of failure and the HTTP status only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from verifier.contracts_abi import load_artifact
from verifier.errors import VerifierError
from verifier.registry_terms import TRUST_CODES

__all__ = [
    "STATUS_WINDOW_WORDS",
    "AnchorInfo",
    "BlockInfo",
    "ChainReadError",
    "ChainReader",
    "EntityInfo",
    "JsonRpcChainReader",
    "PastStateError",
    "TrustAt",
]

#: Status words read per ``statusWords`` call: an aligned window of 256 words holds the
#: revocation and suspension bits of 65,536 credentials, so the receipts of one batch share
#: few calls, and no batch, however large its declared tree, costs more than one call per
#: receipt.
STATUS_WINDOW_WORDS = 256
_BITS_PER_WORD = 256
# Entries kept per head: small answers (anchors, blocks, trust, entities), and status windows
# (each up to 2 x 256 words, about 35 KB when every bit is set).
_MAX_SMALL_ENTRIES = 16_384
_MAX_WINDOWS = 256
_T = TypeVar("_T")


class ChainReadError(VerifierError):
    """The chain could not be read (unreachable node, unexpected answer)."""

    #: How a report names this failure before the message.
    headline = "chain unreachable"


class PastStateError(ChainReadError):
    """The node answered, but keeps no state for the past block asked about (not an archive
    node, or restarted from a saved state)."""

    headline = "cannot judge as of that time"


@dataclass(frozen=True, slots=True)
class BlockInfo:
    number: int
    hash: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class AnchorInfo:
    """``CredentialAnchor.anchorOf``: a batch root as the issuer anchored it."""

    anchored: bool
    entity_id: int
    key: str
    anchored_at: int
    block_number: int
    tree_size: int


@dataclass(frozen=True, slots=True)
class TrustAt:
    trusted: bool
    code: int
    entity_id: int
    failing_entity_id: int

    @property
    def reason(self) -> str:
        return TRUST_CODES[self.code] if 0 <= self.code < len(TRUST_CODES) else str(self.code)


@dataclass(frozen=True, slots=True)
class EntityInfo:
    id: int
    did: str
    name_uri: str
    kind: int
    status: int
    scope: int


class ChainReader(Protocol):
    """What the verification checks need from a chain."""

    def chain_id(self) -> int: ...
    def latest_block(self) -> int: ...
    def block(self, number: int) -> BlockInfo | None: ...
    def block_at_time(self, timestamp: int) -> int | None: ...
    def anchor_of(self, anchor: str, key: str, root: bytes) -> AnchorInfo: ...
    def status_bits(self, anchor: str, key: str, root: bytes, leaf_index: int,
                    at_block: int | None = None) -> tuple[bool, bool]: ...
    def trusted_at(self, registry: str, key: str, when: int) -> TrustAt: ...
    def entity(self, registry: str, entity_id: int) -> EntityInfo: ...


class _Lru:
    """A bounded mapping that forgets its least recently used entries (not thread-safe: the
    reader's lock guards it)."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._limit = limit

    def get(self, key: Hashable) -> Any:
        value = self._items.get(key, _MISSING)
        if value is not _MISSING:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


_MISSING = object()


class _View:
    """The chain as one head shows it, with every answer read at that head."""

    def __init__(self, number: int, block_hash: bytes, seen: float) -> None:
        self.number = number
        self.hash = block_hash
        self.seen = seen  # when this head was last confirmed as the chain's head
        self.small = _Lru(_MAX_SMALL_ENTRIES)
        self.windows = _Lru(_MAX_WINDOWS)


class JsonRpcChainReader:
    """A :class:`ChainReader` over JSON-RPC (web3.py), safe to share between threads.

    Given a URL, the reader makes its own connection: ``timeout`` seconds per request, and
    with ``retries`` web3's retries with backoff of failed requests (off where an answer is
    wanted now, such as a public verification endpoint). Given a ``Web3``, it uses that.
    ``head_max_age`` is how long (seconds) an observed head is used before the node is asked
    again; answers are as fresh as that. ``clock`` is the monotonic clock (tests pass their
    own)."""

    def __init__(self, w3_or_url: Any, *, timeout: float = 30.0, retries: bool = True,
                 head_max_age: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            from web3 import Web3  # noqa: PLC0415 - the chain extra is optional
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ChainReadError("reading the chain needs the chain extra: "
                                 "pip install 'microcred-anchor[chain]'") from exc
        self._Web3 = Web3
        if isinstance(w3_or_url, str):
            options: dict[str, Any] = {} if retries else {"exception_retry_configuration": None}
            self.w3 = Web3(Web3.HTTPProvider(w3_or_url, request_kwargs={"timeout": timeout},
                                             **options))
            # web3's validation asks the node for its chain id before every eth_call, to check
            # a transaction's chainId field; calls made here carry none, so it only doubles
            # the requests.
            self.w3.middleware_onion.remove("validation")
        else:
            self.w3 = w3_or_url
        self._anchor_abi = load_artifact("CredentialAnchor").abi
        self._registry_abi = load_artifact("IssuerRegistry").abi
        self._head_max_age = head_max_age
        self._clock = clock
        self._lock = threading.Lock()  # guards the caches and the current view
        self._refreshing = threading.Lock()  # one thread asks for the head at a time
        self._view: _View | None = None
        self._chain_id: int | None = None
        self._contracts: dict[tuple[str, str], Any] = {}
        self._secrets = _url_secrets(getattr(self.w3.provider, "endpoint_uri", None))

    # ------------------------------------------------------------------ plumbing

    def _call(self, what: str, fn: Callable[[], _T], *, past_block: int | None = None) -> _T:
        try:
            return fn()
        except Exception as exc:  # web3 raises many types; all mean "could not read"
            detail = self._describe(exc)
            if past_block is not None and _node_answered(exc):
                raise PastStateError(
                    f"the node has no state for block {past_block} (not an archive node, or "
                    f"restarted): {detail}") from None
            raise ChainReadError(f"cannot read {what}: {detail}") from None

    def _describe(self, exc: Exception) -> str:
        """The failure without the node's URL (requests' messages quote it whole)."""
        text = _describe(exc)
        for secret in self._secrets:  # a node's own message might still echo it
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

    def _current(self) -> _View:
        """The view of the chain's head, asking the node when it is older than allowed."""
        view = self._view
        if view is not None and self._clock() - view.seen <= self._head_max_age:
            return view
        with self._refreshing:
            view = self._view
            if view is not None and self._clock() - view.seen <= self._head_max_age:
                return view  # another thread asked meanwhile
            return self._observe_head(view)

    def _observe_head(self, old: _View | None) -> _View:
        seen = self._clock()
        data = self._call("the latest block", lambda: self.w3.eth.get_block("latest"))
        number, block_hash = int(data["number"]), bytes(data["hash"])
        with self._lock:
            if old is not None and old.hash == block_hash and self._view is old:
                old.seen = seen
                return old
            view = _View(number, block_hash, seen)
            self._view = view  # the old view's answers go with it
            return view

    def _renewed(self, view: _View) -> _View:
        """The head right now, whatever the age of ``view`` (after a read at ``view`` failed,
        perhaps because its block was reorganised away)."""
        with self._refreshing:
            current = self._view
            if current is not None and current is not view:
                return current
            return self._observe_head(view)

    def _cached(self, cache: str, key: Hashable, read: Callable[[_View], _T]) -> _T:
        """``read`` at the current head, cached in that head's view. A read that fails is
        tried once more if the head has changed meanwhile."""
        view = self._current()
        with self._lock:
            found = getattr(view, cache).get(key)
        if found is not _MISSING:
            return found  # type: ignore[no-any-return]
        try:
            value = read(view)
        except ChainReadError:
            renewed = self._renewed(view)
            if renewed is view:
                raise
            view = renewed
            value = read(view)
        with self._lock:
            getattr(view, cache).put(key, value)
        return value

    # ------------------------------------------------------------------ the interface

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._call("the chain id", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def latest_block(self) -> int:
        """The head's block number, asked at most every ``head_max_age`` seconds
        (confirmations only grow, so a slightly old number errs on the safe side)."""
        return self._current().number

    def block(self, number: int) -> BlockInfo | None:
        """Block ``number`` of the canonical chain (None if there is none yet)."""
        def read(_: _View) -> BlockInfo | None:
            data = self._call(f"block {number}", lambda: _get_block(self.w3, number))
            return None if data is None else BlockInfo(
                int(data["number"]), bytes(data["hash"]), int(data["timestamp"]))

        return self._cached("small", ("block", number), read)

    def block_at_time(self, timestamp: int) -> int | None:
        """The last block made at or before ``timestamp`` (None if the chain began later):
        a binary search over block timestamps, about log2(height) block reads, cached."""
        return self._cached("small", ("block_at", timestamp),
                            lambda view: self._search_block_at(timestamp, view.number))

    def _search_block_at(self, timestamp: int, head: int) -> int | None:
        def time_of(number: int) -> int:
            block = self.block(number)
            if block is None:
                raise ChainReadError(f"block {number} is missing")
            return block.timestamp

        low, high = 0, head
        if time_of(high) <= timestamp:
            return high
        if time_of(low) > timestamp:
            return None
        while high - low > 1:  # time_of(low) <= timestamp < time_of(high)
            middle = (low + high) // 2
            if time_of(middle) <= timestamp:
                low = middle
            else:
                high = middle
        return low

    def anchor_of(self, anchor: str, key: str, root: bytes) -> AnchorInfo:
        """The anchor of ``root`` by the issuer of ``key``; read once per batch and head."""
        def read(view: _View) -> AnchorInfo:
            contract = self._contract(anchor, self._anchor_abi, "anchor")
            values = self._call("the anchor", lambda: contract.functions.anchorOf(
                self._Web3.to_checksum_address(key), root).call(block_identifier=view.number))
            return AnchorInfo(bool(values[0]), int(values[1]), str(values[2]), int(values[3]),
                              int(values[4]), int(values[5]))

        return self._cached("small", ("anchor", anchor.lower(), key.lower(), root), read)

    def status_bits(self, anchor: str, key: str, root: bytes, leaf_index: int,
                    at_block: int | None = None) -> tuple[bool, bool]:
        """(revoked, suspended) of one credential, now or as the chain stood at ``at_block``
        (which needs a node that keeps past state). One call reads the aligned window of
        :data:`STATUS_WINDOW_WORDS` words that holds the credential's word, so the status of
        the credentials of one batch costs one call per 65,536 of them and head, and a batch
        declaring 2**53 leaves costs no more than one of eight."""
        word, bit = divmod(leaf_index, _BITS_PER_WORD)
        words = -(-self.anchor_of(anchor, key, root).tree_size // _BITS_PER_WORD)
        if word >= words:
            return False, False  # not a leaf of the anchored tree: no status bits
        window = word // STATUS_WINDOW_WORDS
        first = window * STATUS_WINDOW_WORDS
        count = min(STATUS_WINDOW_WORDS, words - first)

        def read(view: _View) -> tuple[tuple[int, ...], tuple[int, ...]]:
            contract = self._contract(anchor, self._anchor_abi, "anchor")
            block = view.number if at_block is None else at_block
            revoked, suspended = self._call(
                "the status bits", lambda: contract.functions.statusWords(
                    self._Web3.to_checksum_address(key), root, first, count).call(
                        block_identifier=block), past_block=at_block)
            if len(revoked) != count or len(suspended) != count:
                raise ChainReadError(f"the node answered {len(revoked)} status words, "
                                     f"not {count}")
            return tuple(revoked), tuple(suspended)

        revoked_words, suspended_words = self._cached(
            "windows", (anchor.lower(), key.lower(), root, at_block, window), read)
        offset = word - first
        return (bool(revoked_words[offset] >> bit & 1),
                bool(suspended_words[offset] >> bit & 1))

    def trusted_at(self, registry: str, key: str, when: int) -> TrustAt:
        """The registry's trust in ``key`` at ``when``, as the head knows it (back-dated
        revocations included)."""
        def read(view: _View) -> TrustAt:
            contract = self._contract(registry, self._registry_abi, "registry")
            trust = self._call("the key's trust", lambda: contract.functions.trustedAt(
                self._Web3.to_checksum_address(key), when).call(block_identifier=view.number))
            return TrustAt(bool(trust[0]), int(trust[1]), int(trust[2]), int(trust[3]))

        return self._cached("small", ("trust", registry.lower(), key.lower(), when), read)

    def entity(self, registry: str, entity_id: int) -> EntityInfo:
        def read(view: _View) -> EntityInfo:
            contract = self._contract(registry, self._registry_abi, "registry")
            e = self._call(f"entity {entity_id}", lambda: contract.functions.entity(
                entity_id).call(block_identifier=view.number))
            return EntityInfo(int(e[0]), str(e[9]), str(e[10]), int(e[2]), int(e[3]), int(e[4]))

        return self._cached("small", ("entity", registry.lower(), entity_id), read)


def _get_block(w3: Any, number: int) -> Any:
    from web3.exceptions import BlockNotFound  # noqa: PLC0415

    try:
        return w3.eth.get_block(number)
    except BlockNotFound:
        return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _describe(exc: Exception) -> str:
    """A failure named by its kind and HTTP status, never by the URL it went to."""
    import requests  # noqa: PLC0415 - a dependency of web3, the optional chain extra
    from web3.exceptions import Web3RPCError  # noqa: PLC0415

    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return f"the node answered HTTP {status}" + (
            " (too many requests)" if status == 429 else "")
    if isinstance(exc, requests.Timeout):
        return f"the node did not answer in time ({type(exc).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to the node ({type(exc).__name__})"
    if isinstance(exc, Web3RPCError):
        # The node's own error message (a JSON-RPC error object), shortened and printable.
        error = (exc.rpc_response or {}).get("error")
        message = error.get("message") if isinstance(error, dict) else None
        text = str(message) if message else exc.message
        return "the node answered: " + _CONTROL.sub("?", text)[:200]
    return type(exc).__name__


def _node_answered(exc: Exception) -> bool:
    """Whether the node itself refused the request (rather than being unreachable)."""
    from web3.exceptions import Web3RPCError  # noqa: PLC0415

    return isinstance(exc, Web3RPCError)


def _url_secrets(url: object) -> list[str]:
    """The parts of an RPC URL that may hold an API key: its path and query, user info."""
    if not isinstance(url, str):
        return []
    parts = urlsplit(url)
    found = [url]
    if parts.path.strip("/") or parts.query:
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    if parts.password:
        found.append(parts.password)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)
