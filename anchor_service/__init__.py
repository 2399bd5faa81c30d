"""Anchor service for micro-credentials.

Today this package holds the pure batching core (:mod:`anchor_service.batch`), the chain
adapter (:mod:`anchor_service.chain`: deploy, transact, typed reverts), key loading
(:mod:`anchor_service.keys`) and the ``anchor-service`` CLI (demo, deploy, registry
administration). The HTTP service and the durable queue arrive with issue 4. It builds on
:mod:`verifier` (Merkle trees, digests, receipts, contract artifacts) and never the other way
round.
"""

from anchor_service.batch import BatchItem, PreparedBatch
from anchor_service.errors import AnchorServiceError, BatchError

__all__ = ["AnchorServiceError", "BatchError", "BatchItem", "PreparedBatch", "__version__"]

__version__ = "0.1.0"
