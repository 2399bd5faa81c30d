"""Receipts and bundles for anchored credentials, served from the stored trees.

Trees are restored from the database without rehashing and kept in a small LRU cache, so a
receipt of any credential in a batch of 1,000,000 is one cached tree lookup and one audit path
(about 5 us), not a rebuild.
"""

from __future__ import annotations

import json
from functools import lru_cache

from anchor_service.errors import AnchoredOn1xError, NotAnchoredError, UnknownCredentialError
from anchor_service.store import BatchState, CredentialRecord, Store
from verifier.merkle import MerkleTree
from verifier.receipt import Anchor, Bundle, Receipt

__all__ = ["Receipts"]


class Receipts:
    """Makes receipts for one deployment (chain id and anchor contract)."""

    def __init__(self, store: Store, *, chain_id: int, contract: str,
                 cached_trees: int = 8) -> None:
        self.store = store
        self.chain_id = chain_id
        self.contract = bytes.fromhex(contract.removeprefix("0x"))
        self._tree = lru_cache(maxsize=cached_trees)(self._load_tree)

    def receipt(self, public_id: str, *, issuer_id: int | None = None) -> Receipt:
        """The receipt of credential ``public_id`` (of ``issuer_id``, when given)."""
        return self._receipt(self._record(public_id, issuer_id))

    def receipt_of(self, record: CredentialRecord) -> Receipt:
        """The receipt of a credential already read from the store."""
        return self._receipt(record)

    def bundle(self, public_id: str, *, issuer_id: int | None = None) -> Bundle:
        """Credential and receipt in one document; only for credentials sent in full."""
        record = self._record(public_id, issuer_id)
        receipt = self._receipt(record)
        if record.content is None:
            raise UnknownCredentialError(
                f"credential {public_id} was submitted as a digest; there is no content to bundle")
        return Bundle.create(json.loads(record.content), receipt)

    def _record(self, public_id: str, issuer_id: int | None) -> CredentialRecord:
        record = self.store.credential(public_id)
        if record is None or (issuer_id is not None and record.issuer_id != issuer_id):
            raise UnknownCredentialError(f"no credential {public_id}")
        return record

    def _receipt(self, record: CredentialRecord) -> Receipt:
        public_id = record.public_id
        batch = self.store.batch(record.batch_id) if record.batch_id is not None else None
        if (
            batch is None or batch.state is not BatchState.ANCHORED or record.leaf_index is None
            or batch.tx_hash is None or batch.block_hash is None or batch.block_number is None
        ):
            state = "waiting for a batch" if batch is None else f"batch {batch.id} is {batch.state}"
            raise NotAnchoredError(f"credential {public_id} is not anchored yet ({state})")
        position = record.status
        if position is None:
            raise AnchoredOn1xError(
                f"credential {public_id} was anchored on a CredentialAnchor 1.x deployment "
                "(status per batch), before status lists: it has no status list position, so "
                "no receipt or bundle of format version 2 exists for it. Its receipt and bundle "
                "of format version 1, fetched then, verify with verifier 0.1.x (pip install "
                "\"microcred-anchor<0.2\")); its status is read from that deployment.")
        # The anchoring key's address: a record read within the last second will do (an
        # issuer's key address never changes once it has anchored).
        issuer = (self.store.recent_issuer(record.issuer_id, 1.0)
                  or self.store.issuer(record.issuer_id))
        tree = self._tree(batch.id)
        return Receipt.create(
            credential_digest=record.digest,
            salt=record.salt,
            status_list=position.list,
            status_list_index=position.index,
            leaf_index=record.leaf_index,
            tree_size=batch.size,
            audit_path=tree.inclusion_proof(record.leaf_index),
            root=batch.root,
            anchor=Anchor(
                chain_id=self.chain_id,
                contract=self.contract,
                transaction_hash=batch.tx_hash,
                block_number=batch.block_number,
                block_hash=batch.block_hash,
                anchoring_key=bytes.fromhex(issuer.key_address.removeprefix("0x")),
            ),
        )

    def _load_tree(self, batch_id: int) -> MerkleTree:
        return self.store.load_tree(batch_id)
