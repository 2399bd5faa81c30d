"""``anchor-service stack``: the whole thing on one machine, for a demo or development.

1. a local anvil node whose state is kept in ``<data>/chain`` (a restart keeps the history);
2. the contracts, deployed once and reused on restart (``<data>/deployment.json``); a stack
   made by a 0.1.x release, whose contracts are 1.x, gets new 2.x contracts;
3. an accredited demo body and demo issuer, with keys from anvil's public development
   mnemonic (never use these keys anywhere else); the issuer's DID is
   ``did:web:localhost:issuers:demo-university``, whose DID document this service
   serves at ``/issuers/demo-university/did.json`` (a stack made by an earlier release keeps
   its issuer's DID);
   and a demo alliance (:mod:`anchor_service.demo_alliance`): the body "Demo Alliance" with
   three universities under it, served like the demo issuer, and recognitions among them;
4. the issuer key in an encrypted keystore in ``<data>/keys``, and the issuer's Ed25519
   signing key, encrypted there too and registered on chain: the stack signs the
   credentials it accepts (eddsa-jcs-2022);
5. a SQLite database in ``<data>/service.sqlite3`` (one made by an older release is upgraded
   to this release's schema) and API tokens in ``<data>/demo-tokens.json``;
6. a trust file for this deployment in ``<data>/trust.json``, for ``verify-credential``;
7. the service on 127.0.0.1, with one worker process per CPU by default
   (:mod:`anchor_service.workers`).

``<data>`` and ``<data>/keys`` are 0700 and the keystore, the tokens and the database 0600,
each from its first byte.

The ``stack`` command (:mod:`anchor_service.cli.serve`) calls :func:`run_stack`;
``anchor-service serve`` runs only the service, against any chain and configuration. The local
node comes from ``localchain``, the development package in ``hardhat-free-local/``: the
service's distribution does not ship it, and no other module of the service imports it.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from anchor_service._files import private_dir, tighten_if_exists, write_private
from anchor_service.chain import (
    Deployment,
    Transactor,
    accredit,
    add_signing_key,
    check_contract_versions,
    deploy,
    load_deployment,
)
from anchor_service.demo_alliance import seed_alliance
from anchor_service.errors import ContractVersionError, MissingExtraError
from anchor_service.keystore import write_keystore
from anchor_service.logs import configure_logging
from anchor_service.migrations import upgrade
from anchor_service.settings import ServiceSettings
from anchor_service.signing import SigningKeys
from anchor_service.store import Issuer, Store
from anchor_service.workers import serve
from verifier.contract_types import ALL_SCOPES, Kind
from verifier.multikey import Multikey

__all__ = ["DEMO_ISSUER", "DEMO_ISSUER_DID", "DEMO_KEYSTORE_PASSWORD", "run_stack"]

log = logging.getLogger("anchor_service.stack")
BODY_DID = "did:web:demo-accreditation-body.example"
DEMO_ISSUER = "demo-university"
# The demo issuer's DID in stacks made before issuers had did:web DIDs served here: such a stack
# keeps it.
LEGACY_ISSUER_DID = "did:web:demo-university.example"


#: The demo issuer's DID in a new stack. did:web names a host, never an IP address; the port is
#: left out so that the DID (and every credential naming it) stays the same whichever port the
#: stack serves on. A did:web resolver would fetch https://localhost/issuers/demo-university/
#: did.json; the stack serves that document on its own port, over http, at that path.
DEMO_ISSUER_DID = f"did:web:localhost:issuers:{DEMO_ISSUER}"

# The demo issuer's key is anvil's public development key: its keystore protects nothing, so a
# fixed password is enough unless MICROCRED_KEYSTORE_PASSWORD names another.
DEMO_KEYSTORE_PASSWORD = "demo-only-password"  # noqa: S105


def run_stack(data_dir: Path, *, port: int = 8080, chain_port: int = 8545,
              keystore_password: str = DEMO_KEYSTORE_PASSWORD, workers: int = 0) -> int:
    """Bring the local stack up and serve until interrupted, with ``workers`` processes
    (0: one per CPU)."""
    # localchain is a development package (hardhat-free-local/, installed by scripts/setup.sh),
    # not part of the service's distribution; this is the only place the service imports it.
    try:
        from localchain import AnvilChain  # noqa: PLC0415
    except ImportError as exc:
        raise MissingExtraError(
            "stack needs localchain, the development package in hardhat-free-local/ "
            f"(pip install ./hardhat-free-local, or bash scripts/setup.sh): {exc}") from None
    configure_logging(json_lines=False)
    private_dir(data_dir)
    password = keystore_password
    chain = AnvilChain.start(port=chain_port, state_path=data_dir / "chain" / "state.json")
    try:
        w3 = chain.w3
        admin, body, issuer_key, alliance_key, *universities = chain.accounts[:7]
        deployment, fresh = _deployment(data_dir / "deployment.json", Transactor(w3, admin))
        _trust_file(data_dir / "trust.json", deployment)
        keys = data_dir / "keys"
        write_keystore(keys, issuer_key, password)
        database = data_dir / "service.sqlite3"
        # The demo's own database: one made by an older release is brought to this release's
        # schema here, where `serve` would refuse it until `anchor-service db upgrade`.
        upgrade(database)
        store = Store(database)
        try:
            did = _demo_issuer_did(store, deployment, w3)
            entity_id = _demo_registry(deployment, Transactor(w3, admin), Transactor(w3, body),
                                       issuer_key.address, did)
            issuer = store.add_issuer(DEMO_ISSUER, entity_id=entity_id,
                                      key_address=issuer_key.address, did=did)
            issuer = _demo_signing_key(store, issuer, deployment, Transactor(w3, body),
                                       SigningKeys(keys, password), fresh=fresh)
            alliance = seed_alliance(deployment, Transactor(w3, admin), body_key=alliance_key,
                                     university_keys=universities, store=store, keys=keys,
                                     password=password)
            tokens = _demo_tokens(data_dir / "demo-tokens.json", store, issuer.id,
                                  {uni.name: uni.id for uni in alliance.universities})
        finally:
            store.close()
        settings = ServiceSettings(
            rpc_url=str(chain.rpc_url), deployment=data_dir / "deployment.json",
            database_url=f"sqlite:///{database}", keystore_dir=keys,
            keystore_password=password, port=port, batch_max_age=5.0, log_json=False,
            workers=workers,
        )
        _print_session(settings, tokens, data_dir / "trust.json", issuer.did,
                       alliance.summary(tokens))
        # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so
        # that the chain below is closed (and its state written) rather than orphaned. (With
        # several workers their supervisor takes SIGTERM itself and returns.)
        signal.signal(signal.SIGTERM, _exit_on_signal)
        code = serve(settings)
    finally:
        chain.close()
    return code


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _deployment(path: Path, admin: Transactor) -> tuple[Deployment, bool]:
    """The stack's contracts: those ``path`` records when they are on this chain and are the
    2.x contracts this release works with, else new ones (recorded in ``path``); and whether
    they are new."""
    if path.exists():
        deployment = load_deployment(path)
        if deployment.chain_id == admin.w3.eth.chain_id and admin.w3.eth.get_code(
                admin.w3.to_checksum_address(deployment.anchor)):
            try:
                check_contract_versions(admin.w3, deployment)
            except ContractVersionError as exc:
                # A stack made by a 0.1.x release: its 1.x contracts stay on its chain, and
                # this release anchors on new 2.x ones.
                log.warning("%s: deploying the 2.x contracts afresh", exc)
                return _deploy(path, admin), True
            log.info("reusing the contracts of %s", path)
            if path.read_text(encoding="utf-8") != deployment.to_json():
                # A record in release 0.1.0's snake_case spelling: rewritten in today's.
                path.write_text(deployment.to_json(), encoding="utf-8")
            return deployment, False
    return _deploy(path, admin), True


def _deploy(path: Path, admin: Transactor) -> Deployment:
    deployment = deploy(admin, admin_transfer_delay=3600)
    path.write_text(deployment.to_json(), encoding="utf-8")
    log.info("contracts deployed: registry %s, anchor %s", deployment.registry, deployment.anchor)
    return deployment


def _demo_issuer_did(store: Store, deployment: Deployment, w3: Any) -> str:
    """The demo issuer's DID: the one this stack's database or chain already has (a stack
    made by an earlier release keeps its own), else :data:`DEMO_ISSUER_DID`."""
    served = store.issuer_named(DEMO_ISSUER)
    if served is not None:
        return served.did
    registry, _ = deployment.contracts(w3)
    if int(registry.functions.entityIdByDid(LEGACY_ISSUER_DID).call()):
        return LEGACY_ISSUER_DID
    return DEMO_ISSUER_DID


def _demo_registry(deployment: Deployment, admin: Transactor, body: Transactor,
                   issuer_key: str, did: str) -> int:
    """Accredit the demo body and the issuer ``did`` once; return the issuer's entity id."""
    registry, _ = deployment.contracts(admin.w3)
    existing = int(registry.functions.entityIdByDid(did).call())
    if existing:
        return existing
    body_id = int(registry.functions.entityIdByDid(BODY_DID).call()) or accredit(
        admin, registry, parent=0, kind=Kind.ACCREDITATION_BODY, did=BODY_DID,
        scope=ALL_SCOPES)
    if int(registry.functions.entityOfKey(body.account.address).call()) != body_id:
        admin.transact(registry.functions.addKey(body_id, body.account.address, 0, 0))
    issuer_id = accredit(body, registry, parent=body_id, kind=Kind.TRUSTED_ISSUER,
                         did=did, scope=ALL_SCOPES)
    body.transact(registry.functions.addKey(issuer_id, issuer_key, 0, 0))
    log.info("demo body %s and issuer %s accredited", body_id, issuer_id)
    return issuer_id


def _demo_signing_key(store: Store, issuer: Issuer, deployment: Deployment, body: Transactor,
                      keys: SigningKeys, *, fresh: bool = False) -> Issuer:
    """Give the demo issuer an Ed25519 signing key, registered on chain by the demo body, once:
    the stack signs its credentials. On ``fresh`` contracts the key it already has is
    registered on the new registry."""
    if issuer.signing_key is not None:
        if fresh:
            registry, _ = deployment.contracts(body.w3)
            add_signing_key(body, registry, entity_id=issuer.entity_id,
                            key=Multikey.from_multibase(issuer.signing_key))
        return issuer
    registry, _ = deployment.contracts(body.w3)
    key, _path = keys.create("ed25519")
    add_signing_key(body, registry, entity_id=issuer.entity_id, key=key)
    log.info("demo issuer's signing key %s registered", key.multibase)
    return store.set_signing_key(issuer.id, key.multibase, "eddsa-jcs-2022")


def _demo_tokens(path: Path, store: Store, issuer_id: int,
                 universities: dict[str, int] | None = None) -> dict[str, str]:
    """The stack's API tokens: admin, the demo issuer's ("issuer") and one per alliance
    university (by its name); those a file from an earlier start lacks are added to it."""
    tokens: dict[str, str] = {}
    if path.exists():
        tighten_if_exists(path)  # written by an older version, or copied in
        tokens = json.loads(path.read_text(encoding="utf-8"))
    wanted = {"admin": None, "issuer": issuer_id, **(universities or {})}
    missing = [name for name in wanted if name not in tokens]
    for name in missing:
        owner = wanted[name]
        tokens[name] = (store.add_token(role="admin") if owner is None
                        else store.add_token(role="issuer", issuer_id=owner))
    if missing:
        write_private(path, json.dumps(tokens, indent=2) + "\n")
    return tokens


def _trust_file(path: Path, deployment: Deployment) -> None:
    """Write what ``verify-credential --trust`` needs to accept this stack's anchors. Nothing
    in it is secret: the same addresses are in ``deployment.json``."""
    trust = {"deployments": [{"name": "local stack", "chainId": deployment.chain_id,
                              "anchor": deployment.anchor, "registry": deployment.registry}],
             "minConfirmations": 1}
    path.write_text(json.dumps(trust, indent=2) + "\n", encoding="utf-8")


def _print_session(settings: ServiceSettings, tokens: dict[str, str], trust: Path,
                   did: str, alliance: str) -> None:
    url = f"http://{settings.host}:{settings.port}"
    print(f"""
microcred-anchor is starting on {url} (chain {settings.rpc_url})
  OpenAPI docs:  {url}/docs
  issuer token:  {tokens['issuer']}
  admin token:   {tokens['admin']}
  trust file:    {trust} (verify-credential BUNDLE --trust {trust})

Try it (another terminal):
  TOKEN={tokens['issuer']}
  curl -s -X POST {url}/v1/credentials -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"credentials": [{{"id": "urn:demo:1", "issuer": {{"id": "{did}"}}}}]}}'
  curl -s -X POST {url}/v1/batches -H "Authorization: Bearer $TOKEN"      # anchor now
  curl -s {url}/v1/credentials/<id>/receipt -H "Authorization: Bearer $TOKEN"

{alliance}
""", file=sys.stderr, flush=True)
