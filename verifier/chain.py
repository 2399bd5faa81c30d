"""Reading the chain for verification: nothing but a JSON-RPC endpoint.

:class:`ChainReader` is the interface the checks use; :class:`JsonRpcChainReader` implements
it with web3 (the ``chain`` extra) and caches what cannot change for a given question (blocks,
entities, trust at a past time), so that verifying many receipts costs few calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from verifier.contracts_abi import load_artifact
from verifier.errors import VerifierError
from verifier.registry_terms import TRUST_CODES

__all__ = [
    "AnchorInfo",
    "BlockInfo",
    "ChainReadError",
    "ChainReader",
    "EntityInfo",
    "JsonRpcChainReader",
    "TrustAt",
]



class ChainReadError(VerifierError):
    """The chain could not be read (unreachable node, unexpected answer)."""


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


class JsonRpcChainReader:
    """A :class:`ChainReader` over JSON-RPC (web3.py)."""

    def __init__(self, w3_or_url: Any, *, latest_block_max_age: float = 1.0) -> None:
        try:
            from web3 import Web3  # noqa: PLC0415 - the chain extra is optional
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ChainReadError("reading the chain needs the chain extra: "
                                 "pip install 'microcred-anchor[chain]'") from exc
        self._Web3 = Web3
        self.w3 = (Web3(Web3.HTTPProvider(w3_or_url, request_kwargs={"timeout": 30}))
                   if isinstance(w3_or_url, str) else w3_or_url)
        self._anchor_abi = load_artifact("CredentialAnchor").abi
        self._registry_abi = load_artifact("IssuerRegistry").abi
        self._blocks: dict[int, BlockInfo | None] = {}
        self._entities: dict[tuple[str, int], EntityInfo] = {}
        self._trust: dict[tuple[str, str, int], TrustAt] = {}
        self._chain_id: int | None = None
        self._latest: tuple[float, int] | None = None  # (when read, block number)
        self._latest_max_age = latest_block_max_age
        self._anchors: dict[tuple[str, str, bytes], AnchorInfo] = {}
        self._words: dict[tuple[str, str, bytes, int | None],
                          tuple[list[int], list[int]]] = {}
        self._blocks_at: dict[int, int | None] = {}

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # web3 raises many types; all mean "could not read"
            raise ChainReadError(f"cannot read {what}: {type(exc).__name__}: {exc}") from None

    def _contract(self, address: str, abi: Any) -> Any:
        return self.w3.eth.contract(address=self._Web3.to_checksum_address(address), abi=abi)

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._call("the chain id", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def latest_block(self) -> int:
        """The latest block number, re-read at most every ``latest_block_max_age`` seconds
        (confirmations only grow, so a slightly old number errs on the safe side)."""
        now = time.monotonic()
        if self._latest is None or now - self._latest[0] > self._latest_max_age:
            number = int(self._call("the latest block", lambda: self.w3.eth.block_number))
            self._latest = (now, number)
        return self._latest[1]

    def block(self, number: int) -> BlockInfo | None:
        if number not in self._blocks:
            data = self._call(f"block {number}", lambda: _get_block(self.w3, number))
            self._blocks[number] = None if data is None else BlockInfo(
                int(data["number"]), bytes(data["hash"]), int(data["timestamp"]))
        return self._blocks[number]

    def block_at_time(self, timestamp: int) -> int | None:
        """The last block made at or before ``timestamp`` (None if the chain began later):
        a binary search over block timestamps, about log2(height) block reads, cached."""
        if timestamp not in self._blocks_at:
            self._blocks_at[timestamp] = self._search_block_at(timestamp)
        return self._blocks_at[timestamp]

    def _search_block_at(self, timestamp: int) -> int | None:
        def time_of(number: int) -> int:
            block = self.block(number)
            if block is None:
                raise ChainReadError(f"block {number} is missing")
            return block.timestamp

        low, high = 0, self.latest_block()
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
        """The anchor of ``root`` by the issuer of ``key``; read once per batch."""
        cache_key = (anchor.lower(), key.lower(), root)
        if cache_key not in self._anchors:
            contract = self._contract(anchor, self._anchor_abi)
            values = self._call("the anchor", lambda: contract.functions.anchorOf(
                self._Web3.to_checksum_address(key), root).call())
            self._anchors[cache_key] = AnchorInfo(bool(values[0]), int(values[1]),
                                                  str(values[2]), int(values[3]),
                                                  int(values[4]), int(values[5]))
        return self._anchors[cache_key]

    def status_bits(self, anchor: str, key: str, root: bytes, leaf_index: int,
                    at_block: int | None = None) -> tuple[bool, bool]:
        """(revoked, suspended) of one credential, now or as the chain stood at ``at_block``
        (which needs a node that keeps past state). The batch's whole bitmaps are read at the
        first question about it, a few thousand words per call, so that the status of every
        credential of a batch costs one call, not one each."""
        cache_key = (anchor.lower(), key.lower(), root, at_block)
        if cache_key not in self._words:
            size = self.anchor_of(anchor, key, root).tree_size
            contract = self._contract(anchor, self._anchor_abi)
            revoked: list[int] = []
            suspended: list[int] = []
            words = (size + 255) // 256
            for first in range(0, words, _WORDS_PER_CALL):
                count = min(_WORDS_PER_CALL, words - first)
                part = self._call("the status bitmaps", lambda f=first, c=count: (
                    contract.functions.statusWords(
                        self._Web3.to_checksum_address(key), root, f, c).call(
                            block_identifier="latest" if at_block is None else at_block)))
                revoked += part[0]
                suspended += part[1]
            self._words[cache_key] = (revoked, suspended)
        revoked_words, suspended_words = self._words[cache_key]
        word, bit = divmod(leaf_index, 256)
        if word >= len(revoked_words):
            return False, False
        return bool(revoked_words[word] >> bit & 1), bool(suspended_words[word] >> bit & 1)

    def trusted_at(self, registry: str, key: str, when: int) -> TrustAt:
        cache_key = (registry.lower(), key.lower(), when)
        if cache_key not in self._trust:
            contract = self._contract(registry, self._registry_abi)
            trust = self._call("the key's trust", lambda: contract.functions.trustedAt(
                self._Web3.to_checksum_address(key), when).call())
            self._trust[cache_key] = TrustAt(bool(trust[0]), int(trust[1]), int(trust[2]),
                                             int(trust[3]))
        return self._trust[cache_key]

    def entity(self, registry: str, entity_id: int) -> EntityInfo:
        cache_key = (registry.lower(), entity_id)
        if cache_key not in self._entities:
            contract = self._contract(registry, self._registry_abi)
            e = self._call(f"entity {entity_id}",
                           lambda: contract.functions.entity(entity_id).call())
            self._entities[cache_key] = EntityInfo(int(e[0]), str(e[9]), str(e[10]), int(e[2]),
                                                   int(e[3]), int(e[4]))
        return self._entities[cache_key]


_WORDS_PER_CALL = 2048  # 524,288 credentials' status per eth_call


def _get_block(w3: Any, number: int) -> Any:
    from web3.exceptions import BlockNotFound  # noqa: PLC0415

    try:
        return w3.eth.get_block(number)
    except BlockNotFound:
        return None
