"""Wiring of the running service: database, chain connection, keys, pipeline and receipts,
built from :class:`~anchor_service.settings.ServiceSettings`. Keys are read from encrypted
keystore files (:mod:`anchor_service.keystore`), one per issuer key, and never stored in the
database or logged."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from anchor_service.chain import Deployment, load_deployment
from anchor_service.errors import ChainError
from anchor_service.keystore import keystore_path, read_keystore
from anchor_service.metrics import Metrics
from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.settings import ServiceSettings, revealed
from anchor_service.store import Issuer, Store
from verifier.chain import JsonRpcChainReader

__all__ = ["Components", "build_components"]

log = logging.getLogger("anchor_service.service")


@dataclass
class Components:
    """Everything a request handler needs; one per app, no module globals."""

    settings: ServiceSettings
    store: Store
    w3: Web3
    deployment: Deployment
    signers: dict[int, LocalAccount]
    pipeline: Pipeline
    receipts: Receipts
    metrics: Metrics = field(default_factory=Metrics)
    _chain_reader: JsonRpcChainReader | None = field(default=None, init=False, repr=False)
    _chain_reader_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                               repr=False)

    def chain_reader(self) -> JsonRpcChainReader:
        """The verification reader of this process, made at first use and shared by every
        request (its caches live per chain head, are bounded and thread-safe). Over HTTP it
        has a connection of its own, with a short timeout and no retries: a public
        verification reports an unreachable node at once instead of holding its slot."""
        with self._chain_reader_lock:
            if self._chain_reader is None:
                provider = self.w3.provider
                max_age = self.settings.verify_head_max_age
                self._chain_reader = (
                    JsonRpcChainReader(str(provider.endpoint_uri), timeout=10, retries=False,
                                       head_max_age=max_age)
                    if isinstance(provider, HTTPProvider)
                    else JsonRpcChainReader(self.w3, head_max_age=max_age))
            return self._chain_reader

    def load_signer(self, issuer: Issuer) -> bool:
        """Start anchoring for ``issuer`` if its keystore is there; False if it is not."""
        path = keystore_path(self.settings.keystore_dir, issuer.key_address)
        if not path.exists():
            log.warning("no keystore for issuer %s (%s): not anchoring for it", issuer.name,
                        issuer.key_address)
            return False
        account = read_keystore(path, revealed(self.settings.keystore_password))
        self.pipeline.add_signer(issuer.id, account)
        self.signers[issuer.id] = account
        return True

    def close(self) -> None:
        self.pipeline.stop()
        self.store.close()


def build_components(
    settings: ServiceSettings, *, w3: Web3 | None = None, store: Store | None = None
) -> Components:
    """Connect everything. Issuers whose keystore is missing are served (receipts, status)
    but not anchored for; a warning says so.

    A chain node on another chain than the deployment's is an error. An unreachable node is
    not: the service starts (not ready), accepts credentials, and its pipeline keeps asking
    the node, with backoff, and anchors once the node answers as the deployment's chain."""
    if w3 is None:
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    deployment = load_deployment(settings.deployment)
    own_store = store is None
    store = store or Store(settings.database_url, pool_size=settings.database_pool_size)
    relayer = (read_keystore(settings.relayer_keystore, revealed(settings.keystore_password))
               if settings.relayer_keystore is not None else None)
    metrics = Metrics()
    policy = BatchPolicy(max_size=settings.batch_max_size, max_age=settings.batch_max_age,
                         confirmations=settings.confirmations)
    pipeline = Pipeline(store, w3, deployment, {}, policy, relayer=relayer, metrics=metrics)
    if not pipeline.check_chain() and pipeline.node_chain_id is not None:
        if own_store:
            store.close()
        # The node's URL stays out of the message: its path may hold a provider's API key.
        raise ChainError(f"{settings.deployment} is for chain {deployment.chain_id}, but the "
                         f"chain node is chain {pipeline.node_chain_id}")
    receipts = Receipts(store, chain_id=deployment.chain_id, contract=deployment.anchor)
    components = Components(settings, store, w3, deployment, {}, pipeline, receipts, metrics)
    for issuer in store.issuers():
        components.load_signer(issuer)
    return components


