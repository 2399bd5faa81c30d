"""Submissions answered on the event loop: a credential to sign, whose issuer's record, signing
key and trust are in memory and fresh, is signed on the loop and stored by the group commit's
writer, with no thread hand-over; anything else takes the thread's path. Both give the same
answers. A signing key changed by another process is used within a second. Real HTTP, a real
SQLite file, the in-process chain."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi
import fastapi.routing
import httpx
import pytest
import starlette.routing
from fastapi.dependencies.utils import solve_dependencies

import anchor_service.api.credentials as credentials_route
from anchor_service.api import create_app
from anchor_service.api.deps import answered_by, direct_routes
from anchor_service.chain import add_signing_key
from anchor_service.keystore import write_keystore
from anchor_service.service import Components, build_components
from anchor_service.settings import ServiceSettings
from anchor_service.signing import SigningKeys
from anchor_service.store import Store
from localchain import InProcessChain
from testkit.world import World, build_world, serve_issuer
from tests.anchor_service.harness import served

DID = "did:web:uni-a.example"
PASSWORD = "pw"


@dataclass
class Inline:
    world: World
    components: Components
    data: Path
    url: str
    token: str
    issuer_id: int
    hand_overs: list[str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inline]:
    chain = InProcessChain.start()
    try:
        world = build_world(chain)
        (tmp_path / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
        write_keystore(tmp_path / "keys", world.issuer, PASSWORD, scrypt_cost=2**4)
        store = Store(tmp_path / "service.sqlite3")
        issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys", password=PASSWORD)
        token = store.add_token(role="issuer", issuer_id=issuer.id)
        store.close()
        settings = ServiceSettings(
            rpc_url="unused-in-process", deployment=tmp_path / "deployment.json",
            database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}",
            keystore_dir=tmp_path / "keys", keystore_password=PASSWORD, batch_max_age=3600,
            poll_interval=0.05, log_json=False)
        hand_overs: list[str] = []
        components = build_components(settings, w3=chain.w3)
        handed = components.in_thread

        async def counted(function: Callable[..., Any], *args: Any) -> Any:
            if function.__module__ == credentials_route.__name__:
                hand_overs.append(function.__name__)
            return await handed(function, *args)

        # What the route hands to a thread: the submission's thread path, and nothing else
        # (the request's token is looked up in one, once: not the route's).
        monkeypatch.setattr(components, "in_thread", counted)
        try:
            with served(create_app(components=components)) as url:
                yield Inline(world, components, tmp_path, url, token, issuer.id, hand_overs)
        finally:
            components.close()
    finally:
        chain.close()


def _credential(tag: str, **fields: Any) -> dict[str, Any]:
    return {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": f"urn:inline:{tag}",
            "type": ["VerifiableCredential"], "issuer": DID,
            "credentialSubject": {"id": f"urn:learner:{tag}", "ects": 2.5}, **fields}


def _stored(inline: Inline, public_id: str) -> dict[str, Any]:
    record = inline.components.store.credential(public_id)
    assert record is not None
    assert record.content is not None
    document: dict[str, Any] = json.loads(record.content)
    return document


def test_single_submissions_are_signed_and_stored_without_a_thread(inline: Inline) -> None:
    with inline.client() as client:
        first = client.post("/v1/credentials", json={"credentials": [_credential("0")]})
        assert first.status_code == 202, first.text
        # The first one reads the issuer, its key and the registry: the thread's path.
        assert inline.hand_overs == ["_submit"]
        answers = [client.post("/v1/credentials", json={"credentials": [_credential(str(n))]})
                   for n in range(1, 11)]
    assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
    # The caches last a second: requests a second apart would each take the thread again.
    assert len(inline.hand_overs) < 1 + len(answers)
    ids = [first.json()["accepted"][0]["id"]] + [a.json()["accepted"][0]["id"] for a in answers]
    documents = [_stored(inline, public_id) for public_id in ids]
    # Signed the same way on both paths: a proof by the issuer's key, and consecutive status
    # positions in their entries.
    methods = {document["proof"]["verificationMethod"] for document in documents}
    assert len(methods) == 1
    positions = [int(document["credentialStatus"][0]["statusListIndex"])
                 for document in documents]
    assert positions == list(range(positions[0], positions[0] + len(documents)))
    assert [document["id"] for document in documents] == [f"urn:inline:{n}"
                                                          for n in range(11)]
    assert all(answer.json()["accepted"][0]["created"] is True for answer in answers)


def test_what_needs_the_database_or_the_chain_takes_the_thread(inline: Inline) -> None:
    with inline.client() as client:
        assert client.post("/v1/credentials",
                           json={"credentials": [_credential("warm")]}).status_code == 202
        before = len(inline.hand_overs)
        # Sent again (found by its submitted digest): the same id, not created anew.
        again = client.post("/v1/credentials", json={"credentials": [_credential("warm")]})
        assert again.status_code == 202
        assert again.json()["accepted"][0]["created"] is False
        # More credentials than the loop signs for one request; digests; a credential
        # carrying a status of its own (refused, with the thread path's answer).
        many = client.post("/v1/credentials", json={
            "credentials": [_credential(f"many-{n}") for n in range(9)]})
        assert many.status_code == 202
        digests = client.post("/v1/credentials", json={"digests": ["0x" + "ab" * 32]})
        assert digests.status_code == 202
        status = client.post("/v1/credentials", json={
            "credentials": [_credential("status", credentialStatus={"id": "urn:s"})]})
        assert status.status_code == 422
        assert status.json()["error"] == "credential_status_set"
    assert len(inline.hand_overs) - before >= 3  # many, digests and status at least


def test_refusals_are_the_same_on_the_loop(inline: Inline) -> None:
    with inline.client() as client:
        assert client.post("/v1/credentials",
                           json={"credentials": [_credential("warm")]}).status_code == 202
        before = len(inline.hand_overs)
        foreign = client.post("/v1/credentials", json={
            "credentials": [_credential("foreign", issuer="did:web:other.example")]})
        suite = client.post("/v1/credentials", json={
            "credentials": [_credential("suite")], "suite": "ecdsa-jcs-2019"})
        broken = client.post("/v1/credentials", content=b'{"credentials": [',
                             headers={"Content-Type": "application/json"})
    assert (foreign.status_code, foreign.json()["error"]) == (422, "issuer_mismatch")
    assert foreign.json()["detail"].startswith("credentials[0]")
    assert suite.status_code == 422
    assert "P-256" in suite.json()["detail"]
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    # Answered on the loop (the caches were fresh): no thread for any of them, unless a
    # second passed and a cache had to be read again.
    assert len(inline.hand_overs) - before < 3


def test_a_signing_key_changed_by_another_process_is_used_within_a_second(
        inline: Inline) -> None:
    with inline.client() as client:
        first = client.post("/v1/credentials", json={"credentials": [_credential("old")]})
        assert first.status_code == 202
        old = _stored(inline, first.json()["accepted"][0]["id"])["proof"]["verificationMethod"]
        # As `anchor-service signing-key create` does, from another process: a new key in
        # the keystore, registered on chain, recorded in the database.
        key, _ = SigningKeys(inline.data / "keys", PASSWORD, scrypt_cost=2**4).create("ed25519")
        add_signing_key(inline.world.tx(inline.world.body), inline.world.registry,
                        entity_id=inline.world.issuer_id, key=key)
        other = Store(inline.data / "service.sqlite3")
        try:
            other.set_signing_key(inline.issuer_id, key.multibase)
        finally:
            other.close()
        changed_at = time.monotonic()
        methods: list[str] = []
        deadline = changed_at + 30  # bounds the loop; the documented window is a second
        while time.monotonic() < deadline:
            answer = client.post("/v1/credentials", json={
                "credentials": [_credential(f"new-{len(methods)}")]})
            assert answer.status_code == 202, answer.text
            method = _stored(inline, answer.json()["accepted"][0]["id"])["proof"][
                "verificationMethod"]
            methods.append(method)
            if method.endswith(key.multibase):
                break
            time.sleep(0.05)
    assert methods[-1] == f"{DID}#{key.multibase}"
    assert set(methods[:-1]) <= {old}


def test_the_route_finds_its_dependencies_itself(inline: Inline,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[str] = []
    solve = solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    with inline.client() as client:
        submitted = client.post("/v1/credentials", json={"credentials": [_credential("a")]})
        assert submitted.status_code == 202, submitted.text
        public_id = submitted.json()["accepted"][0]["id"]
        state = client.get(f"/v1/credentials/{public_id}")
        early = [client.get(f"/v1/credentials/{public_id}/{kind}")
                 for kind in ("receipt", "bundle")]
        chain_status = client.get(f"/v1/credentials/{public_id}/status")
    # FastAPI solved the dependencies of another route, not those of the submission nor of
    # the three reads of one credential (its state, receipt and bundle).
    assert solved == [f"/v1/credentials/{public_id}/status"]
    assert chain_status.status_code in (200, 409)
    assert state.status_code == 200
    # The state is written as FastAPI writes the response model: by alias, nulls included.
    assert state.json() == {
        "id": public_id, "digest": submitted.json()["accepted"][0]["digest"],
        "state": "pending", "batchId": None, "leafIndex": None, "root": None,
        "transactionHash": None, "blockNumber": None,
        "statusList": state.json()["statusList"],
        "statusListIndex": state.json()["statusListIndex"]}
    assert isinstance(state.json()["statusListIndex"], int)
    # Not anchored yet: the documented refusal, from the app's exception handlers.
    assert [(a.status_code, a.json()["error"]) for a in early] == [(409, "not_anchored")] * 2
    with inline.client() as client:
        unknown = client.get("/v1/credentials/no-such-id/receipt")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    # Its refusals are the dependencies' own.
    body = {"credentials": [_credential("b")]}
    with httpx.Client(base_url=inline.url, timeout=60) as anonymous:
        missing = anonymous.post("/v1/credentials", json=body)
        basic = anonymous.post("/v1/credentials", json=body,
                               headers={"Authorization": "Basic dXNlcjpwdw=="})
        unknown = anonymous.post("/v1/credentials", json=body,
                                 headers={"Authorization": "Bearer not-a-token"})
    for answer in (missing, basic, unknown):
        assert (answer.status_code, answer.json()["error"]) == (401, "unauthenticated")
    assert "Bearer" in missing.json()["detail"]
    assert unknown.json()["detail"] == "unknown API token"
    admin = inline.components.store.add_token(role="admin")
    with httpx.Client(base_url=inline.url, timeout=60,
                      headers={"Authorization": f"Bearer {admin}"}) as client:
        refused = client.post("/v1/credentials", json=body)
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")


def test_submissions_and_verifications_are_answered_past_the_routers(inline: Inline,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """DirectRoutes hands the submission and the public verifications to their handlers once
    the service's own middleware has let them through: no router matches them; the reads of
    one credential are routed (their path has a parameter) but solve no dependencies. Other
    routes are routed as before, a refusal is answered by the app's handlers, and a crash is
    the usual 500, after which the service goes on."""
    routed: list[str] = []
    route = starlette.routing.Router.__call__

    async def counted(router: starlette.routing.Router, scope: Any, *args: Any) -> None:
        routed.append(f"{scope['method']} {scope['path']}")
        await route(router, scope, *args)

    monkeypatch.setattr(starlette.routing.Router, "__call__", counted)
    with inline.client() as client:
        submitted = client.post("/v1/credentials", json={"credentials": [_credential("a")]})
        assert submitted.status_code == 202, submitted.text
        public_id = submitted.json()["accepted"][0]["id"]
        assert client.get(f"/v1/credentials/{public_id}").status_code == 200
        malformed = client.post("/v1/credentials", content=b"{",
                                headers={"Content-Type": "application/json"})
        listed = client.get("/v1/credentials")  # the path, another method: not direct
    with httpx.Client(base_url=inline.url, timeout=60) as anonymous:
        # The public verifications are answered directly too.
        report = anonymous.post("/v1/verify", content=b"{}",
                                headers={"Content-Type": "application/json"})
        vc_api = anonymous.post("/credentials/verify", json={"credential": {}})
    assert routed == [f"GET /v1/credentials/{public_id}", "GET /v1/credentials"]
    assert report.status_code == 200
    assert report.json()["valid"] is False
    assert vc_api.status_code == 400
    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_json")
    assert listed.status_code == 405
    assert listed.headers["Allow"] == "POST"

    async def crashing(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(credentials_route, "submit", crashing)
    with inline.client() as client:
        crashed = client.post("/v1/credentials", json={"credentials": [_credential("b")]})
    assert (crashed.status_code, crashed.text) == (500, "Internal Server Error")
    with inline.client() as client:  # uvicorn closes the connection of a crashed request
        assert client.get(f"/v1/credentials/{public_id}").status_code == 200


def test_only_routes_without_path_parameters_are_answered_directly() -> None:
    router = fastapi.APIRouter()

    async def handler(request: Any) -> Any:
        raise AssertionError("never called")

    for path in ("/fixed", "/{name}"):
        router.add_api_route(path, handler, methods=["POST"],
                             route_class_override=answered_by(handler))
    router.add_api_route("/plain", handler, methods=["POST"])
    assert direct_routes([router]) == {("POST", "/fixed"): handler}
