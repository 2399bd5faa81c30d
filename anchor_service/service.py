"""Wiring of the running service: database, chain connection, keys, pipeline and receipts,
built from :class:`~anchor_service.settings.ServiceSettings`. Keys are read from encrypted
keystore files, one per issuer key, and never stored in the database or logged."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from anchor_service.chain import ChainError, Deployment, load_deployment
from anchor_service.keys import KeyLoadError
from anchor_service.metrics import Metrics
from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.settings import ServiceSettings
from anchor_service.store import Issuer, Store

__all__ = ["Components", "build_components", "keystore_path", "write_keystore"]

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

    def load_signer(self, issuer: Issuer) -> bool:
        """Start anchoring for ``issuer`` if its keystore is there; False if it is not."""
        path = keystore_path(self.settings.keystore_dir, issuer.key_address)
        if not path.exists():
            log.warning("no keystore for issuer %s (%s): not anchoring for it", issuer.name,
                        issuer.key_address)
            return False
        account = _decrypt(path, _password(self.settings))
        self.pipeline.add_signer(issuer.id, account)
        self.signers[issuer.id] = account
        return True

    def close(self) -> None:
        self.pipeline.stop()
        self.store.close()


def keystore_path(directory: Path, address: str) -> Path:
    """Where the keystore of ``address`` lives in ``directory``."""
    return directory / f"{address.lower().removeprefix('0x')}.json"


def write_keystore(directory: Path, account: LocalAccount, password: str, *,
                   scrypt_cost: int | None = None) -> Path:
    """Encrypt ``account`` into ``directory`` (readable by the owner only). ``scrypt_cost``
    is scrypt's N (default eth-account's 2**18, about a second to decrypt); tests that start
    services over and over use less."""
    directory.mkdir(parents=True, exist_ok=True)
    path = keystore_path(directory, account.address)
    document = Account.encrypt(bytes(account.key), password, kdf="scrypt",
                               iterations=scrypt_cost)
    path.write_text(json.dumps(document), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def _decrypt(path: Path, password: str) -> LocalAccount:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        account: LocalAccount = Account.from_key(Account.decrypt(document, password))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyLoadError(f"cannot use keystore {path}: {type(exc).__name__}") from None
    return account


def build_components(
    settings: ServiceSettings, *, w3: Web3 | None = None, store: Store | None = None
) -> Components:
    """Connect everything. Issuers whose keystore is missing are served (receipts, status)
    but not anchored for; a warning says so."""
    if w3 is None:
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    deployment = load_deployment(settings.deployment)
    if deployment.chain_id != w3.eth.chain_id:
        raise ChainError(f"{settings.deployment} is for chain {deployment.chain_id}, but "
                         f"{settings.rpc_url} is chain {w3.eth.chain_id}")
    store = store or Store(settings.database_url, pool_size=settings.database_pool_size)
    relayer = (_decrypt(settings.relayer_keystore, _password(settings))
               if settings.relayer_keystore is not None else None)
    metrics = Metrics()
    policy = BatchPolicy(max_size=settings.batch_max_size, max_age=settings.batch_max_age,
                         confirmations=settings.confirmations)
    pipeline = Pipeline(store, w3, deployment, {}, policy, relayer=relayer, metrics=metrics)
    receipts = Receipts(store, chain_id=deployment.chain_id, contract=deployment.anchor)
    components = Components(settings, store, w3, deployment, {}, pipeline, receipts, metrics)
    for issuer in store.issuers():
        components.load_signer(issuer)
    return components


def _password(settings: ServiceSettings) -> str:
    secret = settings.keystore_password
    return secret.get_secret_value() if secret is not None else ""
