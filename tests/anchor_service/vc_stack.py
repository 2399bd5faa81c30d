"""A served anchor service whose issuers sign (for the VC-API and interop tests): uvicorn on
loopback, a real SQLite file, the contracts on a real anvil node, and two issuers with
did:web DIDs of this service (``did:web:service.example:issuers:<name>``) and signing keys
registered in the registry: ``acme`` (Ed25519, eddsa-jcs-2022) and ``acme-p256`` (P-256,
ecdsa-jcs-2019). The W3C reference implementation runs as ``node interop/vc.mjs``, resolving
those DIDs through the served ``/issuers/<name>/did.json`` (``service.example`` stands for the
loopback URL). The ``stack`` fixture (tests/conftest.py) serves one for each test module that
asks for it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchor_service.api import create_app
from anchor_service.chain import accredit, add_signing_key
from anchor_service.keystore import write_keystore
from anchor_service.service import Components, build_components
from anchor_service.settings import ServiceSettings
from anchor_service.signing import SigningKeys
from anchor_service.store import Store
from testkit.world import World
from tests.anchor_service.harness import anchor_now, served
from verifier.contract_types import ALL_SCOPES, Kind
from verifier.multikey import Multikey, encode_secret_multikey

ROOT = Path(__file__).resolve().parents[2]
VC_SCRIPT = ROOT / "interop" / "vc.mjs"
HOST = "service.example"
PASSWORD = "pw"
VC_V2 = "https://www.w3.org/ns/credentials/v2"
#: The issuers of the stack: name, key type, the suite it signs with by default.
ISSUERS = (("acme", "ed25519", None), ("acme-p256", "p256", "ecdsa-jcs-2019"))


def did_of(name: str) -> str:
    return f"did:web:{HOST}:issuers:{name}"


@dataclass
class VcStack:
    url: str
    world: World
    store: Store
    components: Components
    data: Path
    tokens: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Multikey] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def issue(self, name: str, credential: dict[str, Any],
              options: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"credential": credential}
        if options is not None:
            body["options"] = options
        with self.client(self.tokens[name]) as client:
            return client.post("/credentials/issue", json=body)

    def anchor(self, name: str, ids: list[str]) -> None:
        """Cut a batch of ``name``'s waiting credentials now and wait until ``ids`` are
        anchored."""
        with self.client(self.tokens[name]) as client:
            anchor_now(client, ids)

    def verify(self, credential: dict[str, Any],
               options: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /credentials/verify (no token): the VC-API result."""
        return self._verified("/credentials/verify", "verifiableCredential", credential,
                              options)

    def verify_presentation(self, presentation: dict[str, Any],
                            options: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /presentations/verify (no token): the VC-API result."""
        return self._verified("/presentations/verify", "verifiablePresentation", presentation,
                              options)

    def _verified(self, path: str, member: str, document: dict[str, Any],
                  options: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {member: document}
        if options is not None:
            body["options"] = options
        with self.client() as client:
            answer = client.post(path, json=body)
        result: dict[str, Any] = answer.json()
        # The VC-API's statuses: 200 verified, 400 with the result when not.
        assert answer.status_code == (200 if result.get("verified") is True else 400), \
            answer.text
        return result

    def key_file(self, name: str, directory: Path) -> Path:
        """The registered signing key of ``name`` as a Multikey verification method with its
        secret, for the reference implementation to sign with."""
        key = self.keys[name]
        secret = SigningKeys(self.data / "keys", PASSWORD).load(key)
        did = did_of(name)
        path = directory / f"{name}-key.json"
        path.write_text(json.dumps({
            "id": f"{did}#{key.multibase}", "controller": did, "type": "Multikey",
            "publicKeyMultibase": key.multibase,
            "secretKeyMultibase": encode_secret_multikey(secret)}), encoding="utf-8")
        return path


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is not on PATH: the interop tests run the reference implementation "
                    "(W3C @digitalbazaar/vc) with it")
    if not (ROOT / "interop" / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        pytest.fail("interop/node_modules is missing: run `bash scripts/setup.sh --tests` "
                    "(it runs `npm ci --prefix interop`)")
    return found


def run_vc(stack: VcStack, command: str, document: dict[str, Any] | None,
           *args: str) -> subprocess.CompletedProcess[str]:
    """``node interop/vc.mjs COMMAND ARGS`` resolving this stack's did:web DIDs."""
    return subprocess.run(
        [node(), str(VC_SCRIPT), command, "--base-url", stack.url, "--did-host", HOST, *args],
        input="" if document is None else json.dumps(document), capture_output=True,
        text=True, timeout=120, check=False)


def reference_verify(stack: VcStack, credential: dict[str, Any]) -> dict[str, Any]:
    """What the reference implementation says of ``credential`` ({verified, error})."""
    return _reference_check(stack, "verify", credential)


def reference_status(stack: VcStack, credential: dict[str, Any]) -> dict[str, Any]:
    """What the reference implementation's checkStatus says of ``credential``: {verified,
    error, revocation, suspension}."""
    return _reference_check(stack, "status", credential)


def _reference_check(stack: VcStack, command: str, credential: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``vc.mjs COMMAND``: exit code 0 exactly when it says verified."""
    done = run_vc(stack, command, credential)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) == (result["verified"] is True)
    return result


def reference_sign(stack: VcStack, credential: dict[str, Any], key_file: Path,
                   suite: str) -> dict[str, Any]:
    """``credential`` signed by the reference implementation (vc.issue)."""
    done = run_vc(stack, "issue", credential, "--suite", suite, "--key", str(key_file))
    assert done.returncode == 0, done.stderr
    signed: dict[str, Any] = json.loads(done.stdout)
    return signed


@contextmanager
def vc_stack(world: World, data: Path) -> Iterator[VcStack]:
    """The stack on ``world``'s deployment (accounts 6 and 7 of its chain become the two
    issuers' anchoring keys), its files in ``data``, stopped on exit."""
    deployment = data / "deployment.json"
    deployment.write_text(world.deployment.to_json(), encoding="utf-8")
    store = Store(data / "service.sqlite3")
    signing_keys = SigningKeys(data / "keys", PASSWORD, scrypt_cost=2**4)
    keys: dict[str, Multikey] = {}
    entities: dict[str, int] = {}
    tokens: dict[str, str] = {}
    as_body = world.tx(world.body)
    for (name, key_type, suite), account in zip(ISSUERS, world.chain.accounts[6:8],
                                                strict=True):
        entity_id = accredit(as_body, world.registry, parent=world.body_id,
                             kind=Kind.TRUSTED_ISSUER, did=did_of(name), scope=ALL_SCOPES)
        as_body.transact(world.registry.functions.addKey(entity_id, account.address, 0, 0))
        write_keystore(data / "keys", account, PASSWORD)
        issuer = store.add_issuer(name, entity_id=entity_id, key_address=account.address,
                                  did=did_of(name))
        key, _ = signing_keys.create(key_type)
        add_signing_key(as_body, world.registry, entity_id=entity_id, key=key)
        store.set_signing_key(issuer.id, key.multibase, suite)
        keys[name], entities[name] = key, entity_id
        tokens[name] = store.add_token(role="issuer", issuer_id=issuer.id)
    settings = ServiceSettings(
        rpc_url="unused-in-process", deployment=deployment,
        database_url=f"sqlite:///{data / 'service.sqlite3'}", keystore_dir=data / "keys",
        keystore_password=PASSWORD, batch_max_age=3600, poll_interval=0.05,
        max_items_per_request=1000, log_json=False,
        # Tests change the chain and verify at once: no lag behind the head.
        verify_head_max_age=0.0)
    components = build_components(settings, w3=world.chain.w3, store=store)
    try:
        with served(create_app(components=components)) as url:
            yield VcStack(url, world, store, components, data, tokens, keys, entities)
    finally:
        components.close()
