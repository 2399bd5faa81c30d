"""Anchor service for micro-credentials.

Today this package holds the pure batching core (:mod:`anchor_service.batch`) and a demo CLI;
the HTTP service, durable queue and chain adapters arrive with later issues. It builds on
:mod:`verifier` (Merkle trees, digests, receipts) and never the other way round.
"""

from anchor_service.batch import BatchItem, PreparedBatch
from anchor_service.errors import AnchorServiceError, BatchError

__all__ = ["AnchorServiceError", "BatchError", "BatchItem", "PreparedBatch", "__version__"]

__version__ = "0.1.0"
