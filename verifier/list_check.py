"""Whether a published status list tells the truth: a ``BitstringStatusListCredential`` of this
project compared with the chain at the block it names.

This project's lists carry their chain state as evidence::

    "evidence": [{"type": ["ChainState"], "chainId": 31337, "contract": "0x...",
                  "blockNumber": 1234, "blockHash": "0x..."}]

and a list agrees with the chain when every check below holds:

* it is a well-formed list credential (:func:`verifier.status_list.list_bitstring`) of one
  purpose, revocation or suspension, whose ``id`` is the credential's ``statusListCredential``
  (or, for a credential without status entries, a list URL of the anchoring issuer,
  ``https://<its did:web host>/issuers/<name>/status-lists/<list>/<purpose>``) naming the
  same list number and purpose, with exactly the 131,072 entries of a chain list;
* its Data Integrity proof verifies with a key of its issuer (the verification method is
  ``<issuer DID>#<key>``), and that key is registered to the anchoring entity in the registry
  and was trusted at the time of the evidence block;
* its evidence names the trusted deployment's chain and anchor contract, and a block that is
  in the chain with that very hash;
* its whole bitstring equals the chain's list at that block (``statusWords(entity, list, 0,
  512)``, one ``eth_call`` at that block, which needs a node that keeps that block's state);
* it was not stale when signed: its block was made at or before its ``validFrom``, and the
  chain's list did not change between its block and the block the service would have rendered
  it at when it signed it, the last block made more than :data:`SIGNING_CLOCK_SLACK` seconds
  before ``validFrom`` (a block's time is set by its producer, and a later block may have
  reached the service only after the rendering) less ``min_confirmations - 1`` blocks, never
  before its own block (the block after its own read, and when that one is not later than
  ``validFrom``, a binary search up to the head), and one more ``statusWords`` call, at that
  block, when it is a later one. A server holding the issuer's key that signs an old block's
  list as current is caught here, though the bits agree with that old block.

Its validity window (``validUntil``, and ``validFrom`` against the time of verification) is
not judged here: a list is evidence of the chain at its block whenever it is read, and the
chain answers for the present.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from verifier.bitstring import parse_status_list_url, words_to_bitstring
from verifier.chain import ChainReader, last_block_made_by
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    Entity,
    StatusPurpose,
    StatusWords,
    signing_key_id,
)
from verifier.credential import issuer_id
from verifier.data_integrity import verify_proof
from verifier.did import split_verification_method
from verifier.errors import ChainReadError, DataIntegrityError, StatusListError
from verifier.status_list import list_bitstring
from verifier.times import timestamp

__all__ = ["EVIDENCE_TYPE", "SIGNING_CLOCK_SLACK", "ListComparison", "compare_lists"]

EVIDENCE_TYPE: Final = "ChainState"
# Differing entries named in a failure (a list may differ in every entry).
_MAX_NAMED: Final = 8
_HEX = frozenset("0123456789abcdefABCDEF")

#: Seconds before a list's ``validFrom`` within which a block may still have been unknown to
#: the service when it rendered the list: a block's time is set by its producer, and the block
#: reaches other nodes seconds later (one 12 s slot covers it on Ethereum). A list that was
#: stale by more than this is caught.
SIGNING_CLOCK_SLACK: Final = 15


@dataclass(frozen=True, slots=True)
class ListComparison:
    """The outcome of :func:`compare_lists`: passed, why, and per list what was compared."""

    passed: bool
    detail: str
    lists: tuple[Mapping[str, Any], ...] = field(default=())


class _Disagrees(Exception):  # noqa: N818 - internal: a list that does not agree, and why
    pass


def _is_for(list_credential: Mapping[str, Any], did: str, status_list: int,
            list_urls: Collection[str]) -> bool:
    """Whether a list credential names the issuer ``did`` and is at one of ``list_urls`` (the
    credential's ``statusListCredential`` URLs) or, without them, is list ``status_list`` of
    ``did`` (a list URL on its host, under its name)."""
    list_id = list_credential.get("id") if isinstance(list_credential, Mapping) else None
    if not isinstance(list_id, str) or issuer_id(list_credential) != did:
        return False
    if list_urls:
        return list_id in list_urls
    try:
        return parse_status_list_url(list_id, did)[0] == status_list
    except StatusListError:
        return False


def compare_lists(lists: Sequence[Mapping[str, Any]], *, reader: ChainReader, registry: str,
                  anchor: str, chain_id: int, entity: Entity, status_list: int,
                  list_urls: Collection[str] = (),
                  min_confirmations: int = 1) -> ListComparison:
    """Compare the lists among ``lists`` that are the credential's (its issuer is the
    anchoring ``entity``, and its ``id`` is one of ``list_urls``, the credential's
    ``statusListCredential`` URLs; for a credential without status entries, ``list_urls`` is
    empty and the id is list ``status_list`` of the entity's DID) with the chain that
    ``reader`` reads (the deployment's ``registry`` and ``anchor`` on chain ``chain_id``;
    ``min_confirmations`` the confirmations the service renders lists with). Fails when none
    of them is, or when one disagrees. A chain that cannot be read raises
    :class:`~verifier.errors.ChainReadError` (nothing is judged)."""
    mine = [item for item in lists if _is_for(item, entity.did, status_list, list_urls)]
    if not mine:
        wanted = (" or ".join(repr(url[:200]) for url in sorted(list_urls)) if list_urls else
                  f"list {status_list}")
        return ListComparison(False, f"none of the {len(lists)} status list(s) given is "
                              f"{wanted} of the anchoring issuer {entity.did!r}")
    compared = []
    for item in mine:
        try:
            compared.append(_compare(item, reader=reader, registry=registry, anchor=anchor,
                                     chain_id=chain_id, entity=entity,
                                     status_list=status_list,
                                     min_confirmations=min_confirmations))
        except _Disagrees as exc:
            return ListComparison(False, f"the status list {str(item.get('id'))[:200]!r} does "
                                  f"not agree with the chain: {exc}", tuple(compared))
    purposes = ", ".join(sorted({str(c["purpose"]) for c in compared}))
    return ListComparison(True, f"the published {purposes} list(s) agree with the chain at "
                          "their blocks", tuple(compared))


def _compare(list_credential: Mapping[str, Any], *, reader: ChainReader, registry: str,
             anchor: str, chain_id: int, entity: Entity, status_list: int,
             min_confirmations: int) -> dict[str, Any]:
    try:
        bitstring = list_bitstring(list_credential, purpose=None, at=None)
    except StatusListError as exc:
        raise _Disagrees(f"not a status list credential: {exc}") from None
    purpose = _purpose(list_credential, entity.did, status_list)
    if len(bitstring) * 8 != STATUS_LIST_SIZE:
        raise _Disagrees(f"it has {len(bitstring) * 8} entries, a chain list "
                         f"{STATUS_LIST_SIZE}")
    block_number, block_hash = _evidence(list_credential, chain_id, anchor)
    key_id = _signature(list_credential, entity.did)
    info = reader.signing_key(registry, key_id)
    if not info.known or info.entity_id != entity.id:
        raise _Disagrees("its signing key is not registered to the anchoring issuer"
                         if not info.known or info.entity_id == 0 else
                         f"its signing key is registered to entity {info.entity_id}, not "
                         f"to the anchoring issuer (entity {entity.id})")
    block = reader.block(block_number)
    if block is None:
        raise _Disagrees(f"its block {block_number} is not in the chain (beyond the head)")
    if block.hash != block_hash:
        raise _Disagrees(f"its block {block_number} is 0x{block_hash.hex()}, the chain's is "
                         f"0x{block.hash.hex()}")
    trust = reader.signing_key_trusted_at(registry, key_id, block.timestamp)
    if not trust.trusted:
        raise _Disagrees(f"its signing key was not trusted at block {block_number}: "
                         f"{trust.reason}")
    words = reader.status_list_words(anchor, entity.id, status_list, block_number)
    chain = _bits(words, purpose)
    if chain != bitstring:
        raise _Disagrees(f"entries {_differing_named(chain, bitstring)} differ from the "
                         f"chain's {purpose.value} list at block {block_number}")
    signed_at = _signed_block(list_credential, reader=reader, block_number=block_number,
                              block_time=block.timestamp, min_confirmations=min_confirmations)
    if signed_at != block_number:
        then = _bits(reader.status_list_words(anchor, entity.id, status_list, signed_at),
                     purpose)
        if then != chain:
            raise _Disagrees(f"it was stale when signed: it is the chain's list at block "
                             f"{block_number}, but by block {signed_at} (the last block before "
                             f"its validFrom {list_credential['validFrom']!s:.40}"
                             + (f", less {min_confirmations - 1} for confirmations"
                                if min_confirmations > 1 else "")
                             + f") the chain had changed entries "
                             f"{_differing_named(chain, then)}")
    return {"id": list_credential.get("id"), "purpose": purpose.value,
            "blockNumber": block_number, "blockHash": "0x" + block_hash.hex(),
            "signedAtBlock": signed_at, "keyId": "0x" + key_id.hex()}


def _signed_block(list_credential: Mapping[str, Any], *, reader: ChainReader,
                  block_number: int, block_time: int, min_confirmations: int) -> int:
    """The block the service would have rendered the list at when it signed it: the last
    block made more than :data:`SIGNING_CLOCK_SLACK` seconds before its ``validFrom`` (block
    times are the producer's, and such a block reaches the service seconds later), less
    ``min_confirmations - 1`` blocks (the service renders at the latest block with the
    required confirmations), never before the list's own block, which must have been made at
    or before ``validFrom``."""
    stated = list_credential.get("validFrom")
    try:
        valid_from = timestamp(stated)
    except ValueError:
        raise _Disagrees(f"its validFrom {stated!r:.60} is not a date-time (it must say when "
                         "it was signed)") from None
    if block_time > valid_from:
        raise _Disagrees(f"its block {block_number} was made at {block_time}, after its "
                         f"validFrom {stated!s:.40} ({valid_from})")
    latest = _last_block_at(reader, block_number, valid_from - 1 - SIGNING_CLOCK_SLACK)
    return max(block_number, latest - (min_confirmations - 1))


def _last_block_at(reader: ChainReader, known: int, when: int) -> int:
    """The last block made at or before ``when``, given that block ``known`` was: one block
    read when the next block came later (a list signed as soon as rendered), else a binary
    search between ``known`` and the head (about log2 of the blocks since ``known``), not
    over the whole chain."""
    def made(number: int) -> int:
        block = reader.block(number)
        if block is None:
            raise ChainReadError(f"block {number} of the chain is missing")
        return block.timestamp

    head = reader.latest_block()
    if known >= head or made(known + 1) > when:
        return known
    low, high = known + 1, head  # made(low) <= when
    if made(high) <= when:
        return high
    return last_block_made_by(made, when, low, high)


def _purpose(list_credential: Mapping[str, Any], did: str, status_list: int) -> StatusPurpose:
    """The list's one purpose, which its ``id`` (a list URL of ``did``, list number
    ``status_list``) names too."""
    subject = list_credential["credentialSubject"]
    stated = subject.get("statusPurpose")
    try:
        purpose = StatusPurpose(stated) if isinstance(stated, str) else None
    except ValueError:
        purpose = None
    if purpose is None:
        raise _Disagrees(f"its statusPurpose {stated!r:.60} is not revocation or suspension")
    try:
        number, named = parse_status_list_url(str(list_credential["id"]), did)
    except StatusListError as exc:
        raise _Disagrees(f"its id is not a list URL of its issuer: {exc}") from None
    if number != status_list:
        raise _Disagrees(f"its id names list {number}, the receipt's is list {status_list}")
    if named is not purpose:
        raise _Disagrees(f"its id names the {named.value} list, its subject {purpose.value}")
    return purpose


def _evidence(list_credential: Mapping[str, Any], chain_id: int,
              anchor: str) -> tuple[int, bytes]:
    """(block number, block hash) of the list's one ``ChainState`` evidence, which must name
    the trusted deployment."""
    evidence = list_credential.get("evidence")
    items = evidence if isinstance(evidence, list) else [evidence]
    states = [item for item in items if isinstance(item, Mapping) and EVIDENCE_TYPE in (
        item["type"] if isinstance(item.get("type"), list) else [item.get("type")])]
    if len(states) != 1:
        raise _Disagrees(f"it has {len(states)} {EVIDENCE_TYPE} evidence entries, not one")
    (state,) = states
    if state.get("chainId") != chain_id or type(state.get("chainId")) is not int:
        raise _Disagrees(f"its evidence names chain {state.get('chainId')!r:.30}, the "
                         f"receipt's is {chain_id}")
    contract = state.get("contract")
    if not isinstance(contract, str) or contract.lower() != anchor.lower():
        raise _Disagrees(f"its evidence names contract {contract!r:.60}, the trusted anchor is "
                         f"{anchor}")
    number, block_hash = state.get("blockNumber"), state.get("blockHash")
    if type(number) is not int or number < 0:
        raise _Disagrees(f"its evidence's blockNumber {number!r:.30} is not a block number")
    if not isinstance(block_hash, str) or len(block_hash) != 66 \
            or not block_hash.startswith("0x") or not set(block_hash[2:]) <= _HEX:
        raise _Disagrees(f"its evidence's blockHash {block_hash!r:.80} is not a 32-byte hex "
                         "hash")
    return number, bytes.fromhex(block_hash[2:])


def _signature(list_credential: Mapping[str, Any], did: str) -> bytes:
    """The registry id of the key the list's proof verifies with, a key of ``did``."""
    proof = list_credential.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, Mapping):
        raise _Disagrees("it is not signed (no single Data Integrity proof)")
    try:
        signer, key = split_verification_method(proof.get("verificationMethod"))
        if signer != did:
            raise _Disagrees(f"it is signed with a key of {signer!r}, not of its issuer")
        verify_proof(list_credential, key)
    except DataIntegrityError as exc:
        raise _Disagrees(f"its proof does not verify: {exc}") from None
    return signing_key_id(key)


def _bits(words: StatusWords, purpose: StatusPurpose) -> bytes:
    """The bitstring of the list of ``purpose`` in ``words``."""
    return words_to_bitstring(words.revoked if purpose is StatusPurpose.REVOCATION
                              else words.suspended)


def _differing_named(left: bytes, right: bytes) -> str:
    """The entries in which two bitstrings of one length differ, for a message: the first
    :data:`_MAX_NAMED`, and how many more."""
    differing = _differing(left, right)
    named = ", ".join(map(str, differing[:_MAX_NAMED]))
    return named + (f" and {len(differing) - _MAX_NAMED} more"
                    if len(differing) > _MAX_NAMED else "")


def _differing(left: bytes, right: bytes) -> list[int]:
    """The entries in which two bitstrings of one length differ, ascending."""
    found = []
    for at, (a, b) in enumerate(zip(left, right, strict=True)):
        diff = a ^ b
        while diff:
            high = diff.bit_length() - 1
            found.append(8 * at + 7 - high)
            diff &= ~(1 << high)
    return sorted(found)
