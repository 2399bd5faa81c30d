"""Issuer DID documents served at the did:web path, from the registry on a real anvil node,
over real HTTP: the registered signing keys as Multikey verification methods, rotated-out
keys kept, revoked keys removed, the DID checked against the issuer's name, and the shapes a
standard did:web resolver expects."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from web3 import Web3

from anchor_service.api import create_app
from anchor_service.api.did import CACHE_SECONDS, _Answer, _DocumentCache
from anchor_service.chain import (
    accredit,
    add_signing_key,
    revoke_signing_key,
    shorten_signing_key_expiry,
)
from anchor_service.service import build_components
from anchor_service.settings import ServiceSettings
from anchor_service.store import Store
from testkit.net import free_port
from testkit.world import World
from tests.anchor_service.harness import Service, running_service, served
from verifier.contract_types import ALL_SCOPES, Kind
from verifier.did import DID_CONTEXT, MULTIKEY_CONTEXT, did_web_url, split_verification_method
from verifier.multikey import KeyType, Multikey, decode_multibase

HOST = "service.example"
_names = (f"acme-{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("did"),
                         max_body_bytes=1024 * 1024) as running:
        yield running


def ed25519_key() -> Multikey:
    return Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())


def p256_key() -> Multikey:
    return Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())


def new_issuer(service: Service, *, did: str | None = None) -> tuple[str, str, int]:
    """A new issuer entity under the world's body, served here: its name, DID, entity id."""
    world = service.world
    name = next(_names)
    did = did or f"did:web:{HOST}:issuers:{name}"
    entity_id = accredit(world.tx(world.body), world.registry, parent=world.body_id,
                         kind=Kind.TRUSTED_ISSUER, did=did, scope=ALL_SCOPES)
    service.store.add_issuer(name, entity_id=entity_id, key_address="0x" + "00" * 19 + "01",
                             did=did)
    return name, did, entity_id


def register(service: Service, entity_id: int, key: Multikey, **window: int) -> bytes:
    world = service.world
    return add_signing_key(world.tx(world.body), world.registry, entity_id=entity_id, key=key,
                           **window)


def document(service: Service, name: str, **headers: str) -> httpx.Response:
    with service.client() as client:
        return client.get(f"/issuers/{name}/did.json", headers=headers)


def listed(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [m["publicKeyMultibase"] for m in answer.json()["verificationMethod"]]


def test_document_lists_the_registered_keys_of_both_types(service: Service) -> None:
    name, did, entity_id = new_issuer(service)
    ed, p256 = ed25519_key(), p256_key()
    register(service, entity_id, ed)
    register(service, entity_id, p256)

    answer = document(service, name)

    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [
            {"id": f"{did}#{key.multibase}", "type": "Multikey", "controller": did,
             "publicKeyMultibase": key.multibase} for key in (ed, p256)],
        "assertionMethod": [f"{did}#{ed.multibase}", f"{did}#{p256.multibase}"],
    }


def test_rotated_out_key_stays_listed_and_revoked_key_is_removed(service: Service) -> None:
    name, _, entity_id = new_issuer(service)
    world = service.world
    old, new, compromised = ed25519_key(), ed25519_key(), p256_key()
    old_id = register(service, entity_id, old)
    register(service, entity_id, new)
    compromised_id = register(service, entity_id, compromised)
    # Rotation: the old key's validity ends soon (it signed credentials that must keep
    # verifying); compromise: the third key is revoked, back-dated by the accreditor.
    shorten_signing_key_expiry(world.tx(world.body), world.registry, key_id=old_id,
                               valid_until=world.now() + 5)
    revoke_signing_key(world.tx(world.body), world.registry, key_id=compromised_id,
                       effective_from=world.now() - 100)

    assert listed(document(service, name)) == [old.multibase, new.multibase]


def test_a_registered_key_that_is_not_a_point_is_left_out(service: Service) -> None:
    """The registry checks a key's form, not its point: a P-256 "key" whose x has no point on
    the curve is left out of the document, and the issuer's other keys are still served."""
    name, _, entity_id = new_issuer(service)
    world = service.world
    good = ed25519_key()
    register(service, entity_id, good)
    not_a_point = b"\x80\x24\x02" + (1).to_bytes(32, "big")
    world.tx(world.body).transact(
        world.registry.functions.addSigningKey(entity_id, not_a_point, 0, 0))

    assert listed(document(service, name)) == [good.multibase]


def test_issuer_without_signing_keys_has_a_document_without_methods(service: Service) -> None:
    name, did, _ = new_issuer(service)

    answer = document(service, name)

    assert answer.status_code == 200
    assert answer.json()["id"] == did
    assert answer.json()["verificationMethod"] == []
    assert answer.json()["assertionMethod"] == []


def test_unknown_issuer_is_404(service: Service) -> None:
    answer = document(service, "nobody-here")

    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert "no issuer 'nobody-here'" in answer.json()["detail"]


def test_issuer_whose_registry_did_is_not_its_did_web_path_is_404(service: Service) -> None:
    # The world's issuer "uni-a" has the DID did:web:uni-a.example on the chain: its
    # document is not served at /issuers/uni-a/did.json.
    answer = document(service, "uni-a")

    assert answer.status_code == 404
    assert "did:web:uni-a.example" in answer.json()["detail"]
    assert "did:web:<host>:issuers:uni-a" in answer.json()["detail"]


def test_did_of_another_issuer_name_is_404(service: Service) -> None:
    other_name, other_did, _ = new_issuer(service)
    # An issuer whose registry DID names another issuer's path.
    name, _, entity_id = new_issuer(service, did=f"did:web:{HOST}:issuers:{other_name}x")
    register(service, entity_id, ed25519_key())

    answer = document(service, name)

    assert answer.status_code == 404
    assert f"issuers:{other_name}x" in answer.json()["detail"]
    assert document(service, other_name).json()["id"] == other_did


def test_document_has_the_shape_standard_resolvers_expect(service: Service) -> None:
    name, did, entity_id = new_issuer(service)
    keys = [ed25519_key(), p256_key()]
    for key in keys:
        register(service, entity_id, key)

    answer = document(service, name, accept="application/did+json")

    # did:web: the DID's document is at the URL the method specification derives from it.
    assert did_web_url(did) == f"https://{HOST}/issuers/{name}/did.json"
    assert answer.headers["content-type"] == "application/did+json"
    assert "max-age=1" in answer.headers["cache-control"]
    body = answer.json()
    # DID Core 1.0: the JSON-LD representation starts with the DID context; every
    # verification method is controlled by the DID, identified by a DID URL of it, and
    # referenced from assertionMethod by that id.
    assert body["@context"][0] == DID_CONTEXT
    assert body["id"] == did
    assert "authentication" not in body
    ids = [method["id"] for method in body["verificationMethod"]]
    assert len(set(ids)) == len(ids) == 2
    assert body["assertionMethod"] == ids
    for method, key in zip(body["verificationMethod"], keys, strict=True):
        assert set(method) == {"id", "type", "controller", "publicKeyMultibase"}
        assert method["type"] == "Multikey"
        assert method["controller"] == did
        vm_did, vm_key = split_verification_method(method["id"])
        assert (vm_did, vm_key) == (did, key)
        # Multikey: base58btc ("z") of the multicodec header and the raw key.
        raw = decode_multibase(method["publicKeyMultibase"])
        header = {KeyType.ED25519: b"\xed\x01", KeyType.P256: b"\x80\x24"}[key.key_type]
        assert raw[:2] == header


def test_chain_unreachable_is_503_with_a_message(anvil_world: World, tmp_path: Path) -> None:
    deployment = tmp_path / "deployment.json"
    deployment.write_text(anvil_world.deployment.to_json(), encoding="utf-8")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = ServiceSettings(
        rpc_url=dead, deployment=deployment,
        database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}",
        keystore_dir=tmp_path / "keys", keystore_password="pw", log_json=False)
    store = Store(tmp_path / "service.sqlite3")
    store.add_issuer("acme", entity_id=7, key_address="0x" + "00" * 19 + "01",
                     did=f"did:web:{HOST}:issuers:acme")
    components = build_components(
        settings, w3=Web3(Web3.HTTPProvider(dead, request_kwargs={"timeout": 2})), store=store)
    try:
        with served(create_app(components=components, run_pipeline=False)) as url:
            answer = httpx.get(f"{url}/issuers/acme/did.json", timeout=60)
    finally:
        components.close()

    assert answer.status_code == 503
    assert answer.json()["error"] == "chain_unavailable"
    assert "registry cannot be read" in answer.json()["detail"]


def test_well_known_document_is_404_without_a_did_web_host(service: Service) -> None:
    with service.client() as client:
        answer = client.get("/.well-known/did.json")

    assert answer.status_code == 404
    assert "did_web_host" in answer.json()["detail"]


def test_a_first_read_is_shared_by_the_requests_that_arrive_while_it_runs() -> None:
    """A standard verifier asks for the same document several times at once: the requests
    that arrive during the first read wait for it and get its answer, and nothing reads the
    chain twice."""
    cache = _DocumentCache(CACHE_SECONDS, first_read_wait=30.0)
    reading, release = threading.Event(), threading.Event()
    reads = []

    def slow() -> _Answer:
        reads.append(1)
        reading.set()
        assert release.wait(30)
        return _Answer({"id": "a-1"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(cache.get, "a", slow)
        assert reading.wait(30)
        waiting = [pool.submit(cache.get, "a", slow) for _ in range(3)]
        release.set()
        answers = [future.result(30) for future in [first, *waiting]]
    assert [answer.document for answer in answers] == [{"id": "a-1"}] * 4
    assert len(reads) == 1


def test_a_slow_read_holds_one_thread_and_the_others_answer_soon() -> None:
    """While one request reads a key from a slow chain, the others do not wait for it longer
    than the first-read wait: 503 busy when nothing was read before, the previous answer at
    once otherwise."""
    cache = _DocumentCache(CACHE_SECONDS, first_read_wait=0.0)
    reading, release = threading.Event(), threading.Event()

    def slow(answer: str) -> _Answer:
        reading.set()
        assert release.wait(30)
        return _Answer({"id": answer})

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(cache.get, "a", lambda: slow("a-1"))
        assert reading.wait(30)
        meanwhile = [cache.get("a", lambda: _Answer({"id": "not read"})) for _ in range(100)]
        release.set()
        assert first.result(30).document == {"id": "a-1"}
    assert {(answer.status, answer.error) for answer in meanwhile} == {(503, "busy")}

    cache = _DocumentCache(0.0)  # every answer already old: the stale one stands in
    cache.get("a", lambda: _Answer({"id": "a-1"}))
    reading.clear()
    release.clear()
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(cache.get, "a", lambda: slow("a-2"))
        assert reading.wait(30)
        stale = cache.get("a", lambda: _Answer({"id": "not read"}))
        release.set()
        assert second.result(30).document == {"id": "a-2"}
    assert stale.document == {"id": "a-1"}


def test_answers_are_kept_a_second_so_a_flood_costs_one_read() -> None:
    now = [100.0]
    cache = _DocumentCache(CACHE_SECONDS, clock=lambda: now[0])
    reads: list[str] = []

    def read(key: str) -> _Answer:
        reads.append(key)
        return _Answer({"id": f"{key}-{len(reads)}"})

    flood = [cache.get("a", lambda: read("a")) for _ in range(1000)]
    now[0] += CACHE_SECONDS / 2
    still = cache.get("a", lambda: read("a"))
    other = cache.get("b", lambda: read("b"))
    now[0] += CACHE_SECONDS
    fresh = cache.get("a", lambda: read("a"))

    assert {answer.document["id"] for answer in flood if answer.document} == {"a-1"}
    assert still.document == {"id": "a-1"}
    assert other.document == {"id": "b-2"}
    assert fresh.document == {"id": "a-3"}
    assert reads == ["a", "b", "a"]


def test_well_known_document_of_the_issuer_named_by_did_web_host(
        service: Service, tmp_path: Path) -> None:
    world = service.world
    did = "did:web:wk.example"
    entity_id = accredit(world.tx(world.body), world.registry, parent=world.body_id,
                         kind=Kind.TRUSTED_ISSUER, did=did, scope=ALL_SCOPES)
    key = ed25519_key()
    register(service, entity_id, key)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(world.deployment.to_json(), encoding="utf-8")
    store = Store(tmp_path / "service.sqlite3")
    store.add_issuer("wk", entity_id=entity_id, key_address="0x" + "00" * 19 + "02", did=did)
    settings = ServiceSettings(
        rpc_url="unused-in-process", deployment=deployment,
        database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}", keystore_dir=tmp_path / "keys",
        keystore_password="pw", log_json=False, did_web_host="wk.example")
    components = build_components(settings, w3=world.chain.w3, store=store)
    try:
        with served(create_app(components=components, run_pipeline=False)) as url:
            well_known = httpx.get(f"{url}/.well-known/did.json", timeout=60)
            by_path = httpx.get(f"{url}/issuers/wk/did.json", timeout=60)
    finally:
        components.close()

    assert did_web_url(did) == "https://wk.example/.well-known/did.json"
    assert well_known.status_code == 200, well_known.text
    assert well_known.json()["id"] == did
    assert listed(well_known) == [key.multibase]
    assert by_path.status_code == 404
