"""Credential status on chain: the W3C Bitstring Status List entries of the credentials the
service signs, status changes by the issuer's key, and status reads at a block.

A credential's status lives in ``CredentialAnchor`` at (issuer entity, list, index), the
position allocated when it was accepted (:meth:`anchor_service.store.Store.allocate_status`).
Changing it needs no anchor: ``revoke``, ``suspend`` and ``reinstate`` take packed big-endian
indices of one list, so a bulk change is one transaction per list and per
:data:`MAX_INDICES_PER_TRANSACTION` indices (ascending: adjacent indices share storage words,
the cheapest order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from typing import Any, Final

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, Web3Exception

from anchor_service.chain import Transactor
from anchor_service.errors import (
    AnchoredOn1xError,
    AnchorServiceError,
    BlockReorganisedError,
    ChainError,
    CredentialRevokedError,
    StateUnavailableError,
    StatusChangeIncompleteError,
    UnknownBlockError,
)
from anchor_service.store import CredentialRecord, Issuer, StatusPosition
from verifier.bitstring import status_entries_text, status_list_url
from verifier.chain import last_block_made_by
from verifier.contract_types import (
    STATUS_LIST_WORDS,
    StatusBits,
    StatusPurpose,
    StatusWords,
    encode_status_indices,
    read,
)
from verifier.credential import canonicalize
from verifier.errors import StatusListError, VerifierError
from verifier.times import timestamp

__all__ = [
    "MAX_INDICES_PER_TRANSACTION",
    "BlockRef",
    "StatusAction",
    "StatusChanges",
    "StatusEntries",
    "change_credentials",
    "parse_as_of",
    "plan",
    "resolve_block",
    "status_at",
    "status_urls",
]

#: Indices per status transaction: 10,000 adjacent ones cost about 7.5M gas, well inside a
#: block.
MAX_INDICES_PER_TRANSACTION: Final = 10_000


class StatusAction(StrEnum):
    """A status change and the ``CredentialAnchor`` function that makes it."""

    REVOKE = "revoke"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    LIFT = "lift"

    @property
    def function(self) -> str:
        return "liftRevocations" if self is StatusAction.LIFT else self.value


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block the status is read at: its number, hash and time (unix seconds)."""

    number: int
    hash: bytes
    timestamp: int


def status_urls(issuer: Issuer, status_list: int) -> dict[StatusPurpose, str] | None:
    """The URLs of the issuer's list ``status_list`` for both purposes, on the host of its
    did:web DID; None for an issuer whose DID is not a did:web (nowhere to publish)."""
    try:
        return {purpose: status_list_url(issuer.did, issuer.name, status_list, purpose)
                for purpose in StatusPurpose}
    except StatusListError:
        return None


class StatusEntries:
    """The ``credentialStatus`` of one issuer's credentials, made for many at a time: the list
    URLs and the canonical JSON (RFC 8785) of the entries are made once per list, and each
    credential's is that template with its index put in (what signing hashes, without
    canonicalising the entries again)."""

    _MARK: Final = "\x00index\x00"

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self._templates: dict[int, tuple[dict[StatusPurpose, str], list[bytes] | None]] = {}

    def entries(self, position: StatusPosition) -> tuple[list[dict[str, Any]], bytes]:
        """The entries at ``position`` and their canonical member text,
        ``"credentialStatus":[...]``. :class:`AnchorServiceError` for an issuer without a
        did:web DID."""
        found = self._templates.get(position.list)
        if found is None:
            urls = status_urls(self.issuer, position.list)
            if urls is None:
                raise AnchorServiceError(f"issuer {self.issuer.name}'s DID {self.issuer.did!r} "
                                         "is not a did:web: its status lists have no URL")
            marked = canonicalize({"credentialStatus": status_entries_text(urls, self._MARK)})[1:-1]
            pieces = marked.split(b"\\u0000index\\u0000")
            # Two marks per entry, and nowhere else (a URL cannot hold a NUL character);
            # otherwise each credential's entries are canonicalised on their own.
            found = (urls, pieces if len(pieces) == 5 else None)
            if len(self._templates) < _MAX_TEMPLATES:
                self._templates[position.list] = found
        urls, template = found
        entries = status_entries_text(urls, str(position.index))
        if template is None:
            return entries, canonicalize({"credentialStatus": entries})[1:-1]
        return entries, str(position.index).encode("ascii").join(template)


_MAX_TEMPLATES: Final = 64  # lists one request spans: one or two


def plan(positions: Iterable[StatusPosition]) -> list[tuple[int, tuple[int, ...]]]:
    """The status transactions for these positions: (list, indices), lists ascending, indices
    ascending and distinct, at most :data:`MAX_INDICES_PER_TRANSACTION` per transaction."""
    calls: list[tuple[int, tuple[int, ...]]] = []
    for status_list, group in groupby(sorted(set(positions)), key=lambda p: p.list):
        indices = [position.index for position in group]
        for start in range(0, len(indices), MAX_INDICES_PER_TRANSACTION):
            calls.append((status_list,
                          tuple(indices[start:start + MAX_INDICES_PER_TRANSACTION])))
    return calls


class StatusChanges:
    """Reads and changes the status of one issuer entity's credentials on ``anchor``."""

    def __init__(self, w3: Web3, anchor: Contract, entity_id: int) -> None:
        self.w3 = w3
        self.anchor = anchor
        self.entity_id = entity_id

    def revoked(self, positions: Sequence[StatusPosition],
                block: int | str = "latest") -> list[StatusPosition]:
        """Those of ``positions`` that are revoked at ``block``: one ``statusWords`` call per
        list, over the words the positions span."""
        found = []
        for status_list, indices in plan(positions):
            first, last = indices[0] // 256, indices[-1] // 256
            words = self._words(status_list, first, last - first + 1, block)
            found += [StatusPosition(status_list, index) for index in indices
                      if words.revoked[index // 256 - first] >> (255 - index % 256) & 1]
        return found

    def _words(self, status_list: int, first: int, count: int,
               block: int | str) -> StatusWords:
        if not 0 <= first < STATUS_LIST_WORDS:
            raise AnchorServiceError(f"word {first} is outside a status list")
        try:
            return read(StatusWords, self.anchor.functions.statusWords(
                self.entity_id, status_list, first, count), block_identifier=block)
        except (Web3Exception, OSError) as exc:
            raise ChainError(f"cannot read status list {status_list}: {exc}") from None

    def change(self, action: StatusAction, account: LocalAccount,
               positions: Sequence[StatusPosition], reason: int) -> list[bytes]:
        """Send the transactions of ``action`` for ``positions`` from ``account`` (the
        issuer's anchoring key, or a root admin's for :attr:`StatusAction.LIFT`), each waited
        for; their hashes, in order. A failure of the first raises as it is (a refusal by the
        contract: :class:`~anchor_service.errors.RevertError`; nothing changed); of a later
        one, :class:`~anchor_service.errors.StatusChangeIncompleteError`, naming the
        transactions already mined and their positions (their changes stand)."""
        transactor = Transactor(self.w3, account)
        function = getattr(self.anchor.functions, action.function)
        hashes: list[bytes] = []
        done: list[str] = []
        calls = plan(positions)
        for number, (status_list, indices) in enumerate(calls, 1):
            try:
                receipt = transactor.transact(function(self.entity_id, status_list,
                                                       encode_status_indices(indices), reason))
            except (AnchorServiceError, Web3Exception, OSError) as exc:
                if not hashes:
                    raise  # nothing changed
                raise StatusChangeIncompleteError(
                    f"transaction {number} of {len(calls)} failed ({exc}); the "
                    f"{len(hashes)} before it are mined and their changes stand: "
                    f"{'; '.join(done)}. Send the rest again to finish",
                    hashes, exc) from None
            hashes.append(bytes(receipt["transactionHash"]))
            done.append(f"0x{hashes[-1].hex()} (list {status_list}, {len(indices)} "
                        f"indices {indices[0]}..{indices[-1]})")
        return hashes


def change_credentials(w3: Web3, anchor: Contract, issuer: Issuer, account: LocalAccount, *,
                       action: StatusAction, records: Sequence[CredentialRecord],
                       reason: int) -> list[bytes]:
    """Change the status of these credentials of ``issuer`` with ``account`` (its anchoring
    key; a root admin's to lift), after checking them all: nothing is sent when one was
    anchored on a 1.x deployment (:class:`AnchoredOn1xError`) or, to reinstate, when one is
    revoked (:class:`CredentialRevokedError`: the contract would take the call and leave it
    revoked). The transaction hashes, in order."""
    unplaced = [record.public_id for record in records if record.status is None]
    if unplaced:
        raise AnchoredOn1xError(
            f"credential {_some(unplaced)} was anchored on a CredentialAnchor 1.x deployment, "
            "before status lists: its status is changed on that deployment (with "
            "anchor-service 0.1.x), not here; nothing was changed")
    changes = StatusChanges(w3, anchor, issuer.entity_id)
    positions = [record.status for record in records if record.status is not None]
    if action is StatusAction.REINSTATE:
        revoked = set(changes.revoked(positions))
        if revoked:
            which = [record.public_id for record in records if record.status in revoked]
            raise CredentialRevokedError(
                f"credential {_some(which)} is revoked, and revocation is final: reinstate "
                "lifts only a suspension. Only a root administrator of the registry can lift a "
                "revocation (CredentialAnchor.liftRevocations: anchor-service registry "
                "lift-revocations), for example one made with a compromised key. Nothing was "
                "changed.")
    return changes.change(action, account, positions, reason)


def _some(ids: Sequence[str]) -> str:
    return ids[0] + (f" (and {len(ids) - 1} more)" if len(ids) > 1 else "")


def status_at(w3: Web3, anchor: Contract, entity_id: int, position: StatusPosition,
              block: BlockRef, *, deployed_at: int = 0) -> StatusBits:
    """``statusOf(entity, list, index)`` at ``block``, checked to be of that block: read by
    number, then the block at that number must still have ``block.hash``
    (:class:`BlockReorganisedError` otherwise: the answer may be of another branch).
    :class:`UnknownBlockError` for a block before the anchor's deployment (block
    ``deployed_at``: no status then), :class:`StateUnavailableError` when the node no longer
    has that block's state."""
    if block.number < deployed_at:
        raise UnknownBlockError(f"block {block.number} is before the anchor contract was "
                                f"deployed (block {deployed_at}): there is no status then")
    try:
        bits = read(StatusBits, anchor.functions.statusOf(entity_id, position.list,
                                                          position.index),
                    block_identifier=block.number)
        now = bytes(w3.eth.get_block(block.number)["hash"])
    except (Web3Exception, ValueError) as exc:
        if "state" in str(exc).lower() or "pruned" in str(exc).lower():
            raise StateUnavailableError(f"the chain node no longer has the state of block "
                                        f"{block.number} (an archive node has it): {exc}"
                                        ) from None
        raise ChainError(f"cannot read the status at block {block.number}: {exc}") from None
    except (OSError, KeyError, VerifierError) as exc:
        raise ChainError(f"cannot read the status at block {block.number}: {exc}") from None
    if now != block.hash:
        raise BlockReorganisedError(f"block {block.number} was reorganised while the status "
                                    "was read; retry")
    return bits


_UNIX: Final = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_TIME_CHARS: Final = 40  # an RFC 3339 date-time with fractions and an offset is 32


def parse_as_of(text: str) -> int:
    """An ``asOf`` (the status route's and the published lists'): Unix seconds, or an RFC 3339
    date-time with a time zone, as Unix seconds; :class:`ValueError` otherwise."""
    if _UNIX.fullmatch(text):
        return int(text)
    try:
        if len(text) <= _MAX_TIME_CHARS and "T" in text.upper():
            return timestamp(text)
    except ValueError:
        pass
    raise ValueError(f"{text[:40]!r} is not a time: give RFC 3339 with a time zone "
                     "(2026-01-31T12:00:00Z) or Unix seconds")


def resolve_block(w3: Web3, confirmations: int, *, block: int | None = None,
                  as_of: int | None = None, first: int = 0) -> BlockRef:
    """The block to read status at: ``block`` when given, else the last block whose time is
    at or before ``as_of`` (unix seconds) when given, else the latest block with
    ``confirmations`` confirmations. A block or time later than the latest confirmed block
    is :class:`UnknownBlockError` (its status is not settled yet), as is a time before block
    ``first`` (the search starts there)."""
    try:
        head = int(w3.eth.block_number) - (confirmations - 1)
        if head < 0:
            raise UnknownBlockError("the chain has no block with the required confirmations "
                                    "yet")
        if block is not None:
            if block > head:
                raise UnknownBlockError(f"block {block} is not on the chain with "
                                        f"{confirmations} confirmation(s) yet (the latest such "
                                        f"block is {head})")
            return _block(w3, block)
        latest = _block(w3, head)
        if as_of is None or as_of >= latest.timestamp:
            if as_of is not None and as_of > latest.timestamp:
                raise UnknownBlockError(
                    f"time {as_of} is after the latest confirmed block ({latest.number}, at "
                    f"{latest.timestamp}): the status then is not settled yet")
            return latest
        # The search starts at block ``first`` (the anchor's deployment: no status before).
        low, high = min(first, head), head
        earliest = _block(w3, low)
        if as_of < earliest.timestamp:
            raise UnknownBlockError(f"time {as_of} is before block {low} (at "
                                    f"{earliest.timestamp}), the first one searched: the "
                                    "chain's first block, or the anchor's deployment")
        # time(low) <= as_of < time(head): as_of is before the latest confirmed block's time.
        return _block(w3, last_block_made_by(lambda number: _block(w3, number).timestamp,
                                             as_of, low, high))
    except (Web3Exception, OSError) as exc:
        if isinstance(exc, BlockNotFound):
            raise UnknownBlockError(f"the chain node has no such block: {exc}") from None
        raise ChainError(f"cannot read the chain's blocks: {exc}") from None


def _block(w3: Web3, number: int) -> BlockRef:
    found = w3.eth.get_block(number)
    return BlockRef(int(found["number"]), bytes(found["hash"]), int(found["timestamp"]))
