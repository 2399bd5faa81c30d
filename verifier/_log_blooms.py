"""Which blocks of a lineage may have changed a contract's state, from the blocks' log blooms.

Every block header carries a 2,048-bit bloom filter of its logs' addresses and topics
(Ethereum yellow paper, section 4.3.1): a log of address A sets three bits derived from
keccak256(A), and each of its topics three bits of its own. A filter has false positives but
no false negatives, so a block whose bloom lacks A's bits has no log of A at all.

The contracts emit an event in every transaction that changes their state (audited; see
``contracts/README.md``), so a run of blocks none of whose blooms may hold a change of a
contract leaves its state as it was: an answer read at the start of the run is the answer
at its end. :class:`BloomWindow` keeps the blooms of a lineage's recent blocks and says, for
a head, since which block a contract's state is known unchanged; the reader keys its
answers by that block instead of the head's number, so a new head that changed nothing the
answer depends on keeps it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

__all__ = ["FULL_BLOOM", "BloomWindow", "bloom_mask"]

#: A bloom with every bit set: what a block whose bloom is unknown is taken to hold.
FULL_BLOOM = (1 << 2048) - 1
# Blooms kept per lineage, for readers pinned to a head before the newest: enough for the
# heads a busy node makes while a verification runs.
_MAX_BLOOMS = 256
# (contract, topics) whose last possible change the window follows block by block, so that
# the newest head's answer needs no scan, however long the contract has been quiet.
_MAX_FOLLOWED = 16


@functools.lru_cache(maxsize=256)
def bloom_mask(value: bytes) -> int:
    """The three bits that ``value`` (a log's address, or one of its topics) sets in a bloom,
    as an int whose bit *i* is the bloom's bit *i* (the bloom's bytes read big-endian)."""
    from eth_hash.auto import keccak  # noqa: PLC0415 - the chain extra, as every chain read

    digest = keccak(value)
    mask = 0
    for at in (0, 2, 4):
        mask |= 1 << ((digest[at] << 8 | digest[at + 1]) & 2047)
    return mask


def _may_hold(bloom: int, address: int, topics: tuple[int, ...] | None) -> bool:
    """Whether a block with ``bloom`` may hold a log of the address with mask ``address`` (and,
    when ``topics`` are given, with one of them)."""
    if bloom & address != address:
        return False
    return topics is None or any(bloom & topic == topic for topic in topics)


class BloomWindow:
    """The blooms of the recent blocks of one lineage, whose first head is ``first``: its
    answers read at a block up to ``first`` are only of that head's state (blocks before it
    were never seen). Not thread-safe: the reader guards it with its lock."""

    def __init__(self, first: int) -> None:
        self.first = first
        self._blooms: dict[int, int] = {}
        self._newest = first  # the newest block added
        # (address mask, topic masks) -> the last block up to _newest that may change it.
        self._followed: dict[tuple[int, tuple[int, ...] | None], int] = {}

    def add(self, blocks: Iterable[tuple[int, int]]) -> None:
        """Keep the blooms of ``blocks`` ((number, bloom) pairs of the lineage's blocks after
        the newest added, in any order); the oldest go beyond the window's bound. A block
        skipped (not given) counts as a change of every contract."""
        for number, bloom in sorted(blocks):
            if number <= self._newest:
                continue
            followed = self._followed
            for key in followed:
                if number > self._newest + 1:
                    followed[key] = number - 1  # blocks not seen may hold anything
                if _may_hold(bloom, *key):
                    followed[key] = number
            self._blooms[number] = bloom
            self._newest = number
        while len(self._blooms) > _MAX_BLOOMS:
            del self._blooms[min(self._blooms)]

    def unchanged_since(self, head: int, address: bytes,
                        topics: tuple[bytes, ...] | None = None) -> int:
        """The earliest block *b* (``first`` at the earliest) such that no block of the lineage
        after *b* up to ``head`` may hold a log of ``address`` (with one of ``topics``, when
        given): the contract's state as those logs show it is the same after block *b* as at
        ``head``. A block whose bloom is not kept (before the window) counts as a change."""
        address_mask = bloom_mask(address)
        topic_masks = None if topics is None else tuple(bloom_mask(topic) for topic in topics)
        key = (address_mask, topic_masks)
        if head == self._newest and key in self._followed:
            return self._followed[key]
        blooms = self._blooms
        at = head
        while at > self.first:
            bloom = blooms.get(at)
            if bloom is None or _may_hold(bloom, address_mask, topic_masks):
                break
            at -= 1
        if head == self._newest and len(self._followed) < _MAX_FOLLOWED:
            self._followed[key] = at  # followed from here on, block by block
        return at
