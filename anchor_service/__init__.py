"""Anchor service for micro-credentials.

The issuer side: the HTTP service (:mod:`anchor_service.api`), the durable store and anchoring
pipeline (:mod:`anchor_service.store`, :mod:`anchor_service.pipeline`), receipts, the pure
batching core (:mod:`anchor_service.batch`), the chain adapter (:mod:`anchor_service.chain`:
deploy, transact, typed reverts), keystores (:mod:`anchor_service.keystore`), settings
(:mod:`anchor_service.settings`) and the ``anchor-service`` CLI (:mod:`anchor_service.cli`:
demo, stack, serve, submit, deploy, registry administration, tokens, database). It builds
on :mod:`verifier` (Merkle trees, digests, receipts, contract artifacts) and never the other
way round. ``__version__`` is the project's version, as in pyproject.toml.
"""

from anchor_service.batch import BatchItem, PreparedBatch
from anchor_service.errors import AnchorServiceError, BatchError

__all__ = ["AnchorServiceError", "BatchError", "BatchItem", "PreparedBatch", "__version__"]

__version__ = "0.2.0"
