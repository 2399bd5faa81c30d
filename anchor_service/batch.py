"""Pure batching core: a batch of credential digests becomes one RFC 9162 tree and, once its
root is anchored, one receipt per credential. No I/O here; the chain and the database are
adapters of the service."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from anchor_service.errors import BatchError
from verifier.credential import DIGEST_SIZE, MAX_SALT_SIZE, MIN_SALT_SIZE, leaf_input, new_salt
from verifier.errors import CredentialError
from verifier.merkle import MerkleTree
from verifier.receipt import Anchor, Receipt

__all__ = ["BatchItem", "PreparedBatch"]


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One accepted credential: its digest, the salt drawn for it and its status list
    position (list number and index), which its leaf binds."""

    credential_digest: bytes
    salt: bytes
    status_list: int
    status_index: int

    def __post_init__(self) -> None:
        digest = self.credential_digest
        if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
            raise BatchError(f"credential digest must be {DIGEST_SIZE} bytes")
        if not isinstance(self.salt, bytes) or not MIN_SALT_SIZE <= len(self.salt) <= MAX_SALT_SIZE:
            raise BatchError(f"salt must be {MIN_SALT_SIZE}..{MAX_SALT_SIZE} bytes")
        try:
            leaf_input(self.salt, digest, self.status_list, self.status_index)
        except CredentialError as exc:
            raise BatchError(str(exc)) from None

    @classmethod
    def salted(cls, credential_digest: bytes, status_list: int, status_index: int) -> BatchItem:
        """A new item for ``credential_digest`` at this status position, with a fresh random
        salt."""
        return cls(credential_digest, new_salt(), status_list, status_index)

    @property
    def leaf_input(self) -> bytes:
        """``salt || digest || statusList || statusListIndex``, the Merkle leaf input."""
        return leaf_input(self.salt, self.credential_digest, self.status_list, self.status_index)


class PreparedBatch:
    """The Merkle tree of a batch, ready to be anchored, and the receipts that follow."""

    __slots__ = ("_items", "_tree")

    def __init__(self, items: Sequence[BatchItem]) -> None:
        if not items:
            raise BatchError("a batch needs at least one credential")
        self._items = tuple(items)
        self._tree = MerkleTree([item.leaf_input for item in self._items])

    @property
    def root(self) -> bytes:
        """The batch root to anchor."""
        return self._tree.root

    @property
    def size(self) -> int:
        """Number of credentials in the batch."""
        return self._tree.size

    @property
    def items(self) -> tuple[BatchItem, ...]:
        """The items, in leaf order."""
        return self._items

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of credential ``index``."""
        if not 0 <= index < self.size:
            raise BatchError(f"index {index} is not in this batch of {self.size}")
        return self._tree.inclusion_proof(index)

    def inclusion_proofs(self) -> Iterator[list[bytes]]:
        """Every audit path of the batch, in leaf order (cheaper than one call per index)."""
        return self._tree.inclusion_proofs()

    def receipt(self, index: int, anchor: Anchor) -> Receipt:
        """The receipt of credential ``index`` once the root is anchored at ``anchor``."""
        return self._receipt(index, self.inclusion_proof(index), anchor)

    def receipts(self, anchor: Anchor) -> Iterator[Receipt]:
        """Every receipt of the batch, in leaf order."""
        for index, path in enumerate(self.inclusion_proofs()):
            yield self._receipt(index, path, anchor)

    def _receipt(self, index: int, path: list[bytes], anchor: Anchor) -> Receipt:
        item = self._items[index]
        return Receipt.create(
            credential_digest=item.credential_digest,
            salt=item.salt,
            status_list=item.status_list,
            status_list_index=item.status_index,
            leaf_index=index,
            tree_size=self.size,
            audit_path=path,
            root=self.root,
            anchor=anchor,
        )
