"""Chain faults under a running service, while clients keep submitting: the node stopped and
restarted with its state, and RPC errors injected between the service and the node. After
each, every credential answered 2xx is anchored exactly once and its receipt verifies.
Real processes: anvil, the service, and a proxy that fails requests on purpose."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from anchor_service.keystore import write_keystore
from anchor_service.store import Store
from localchain import AnvilChain
from testkit.net import free_port
from testkit.processes import (
    ServiceProcess,
    Submitters,
    assert_anchored_exactly_once,
    prepare,
    wait_until_all_anchored,
)
from testkit.world import World, build_world
from tests.anchor_service.rpc_proxy import RpcProxy


def _on(chain: AnvilChain, world: World) -> World:
    """The same deployment and cast, read through ``chain`` (a restarted node)."""
    registry, anchor = world.deployment.contracts(chain.w3)
    return dataclasses.replace(world, chain=chain, registry=registry, anchor=anchor)


def test_the_node_stopped_and_restarted_loses_nothing(tmp_path: Path) -> None:
    state = tmp_path / "chain" / "state.json"
    rpc_port = free_port()
    chain = AnvilChain.start(port=rpc_port, state_path=state)
    try:
        world = build_world(chain)
        env, port, location, issuer_id, token = prepare(world, tmp_path)
        from_block = chain.w3.eth.block_number + 1
        service = ServiceProcess(env, port, log=tmp_path / "service.log")
        try:
            service.start()
            with Submitters([port], token, tag="node-restart") as submitters:
                time.sleep(1.5)
                chain.close()  # the node goes away; the service keeps accepting
                down = len(submitters.accepted)
                time.sleep(2.0)
                assert len(submitters.accepted) > down, "no submission accepted while down"
                chain = AnvilChain.start(port=rpc_port, state_path=state)
                world = _on(chain, world)
                time.sleep(1.5)
            store = Store(location)
            wait_until_all_anchored(store, issuer_id)
        finally:
            service.kill()
        assert len(submitters.accepted) > 100
        assert_anchored_exactly_once(world, store, submitters.accepted, from_block)
        store.close()
    finally:
        chain.close()


class FlakyRpc(RpcProxy):
    """A JSON-RPC proxy on loopback that, once armed, fails a share of the requests: refused
    before they reach the node (HTTP 502, or a JSON-RPC error), or forwarded with the answer
    lost (the connection closes): the node acted, the service cannot know."""

    def __init__(self, upstream: str, failure_rate: float, seed: int) -> None:
        super().__init__(upstream)
        self.failure_rate = failure_rate
        self.armed = False
        self.injected = {"http_502": 0, "rpc_error": 0, "answer_lost": 0}
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self._lock = threading.Lock()

    def _fault(self) -> str | None:
        with self._lock:
            if not self.armed or self._rng.random() >= self.failure_rate:
                return None
            fault = self._rng.choice(list(self.injected))
            self.injected[fault] += 1
            return fault

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        fault = self._fault()
        if fault == "http_502":
            self.reply(handler, 502, b"injected fault")
            return
        if fault == "rpc_error":
            request = json.loads(body)
            error = {"jsonrpc": "2.0", "id": request.get("id"),
                     "error": {"code": -32603, "message": "injected fault"}}
            self.reply(handler, 200, json.dumps(error).encode())
            return
        if fault == "answer_lost":
            self._http.post(self.upstream, content=body,
                            headers={"Content-Type": "application/json"})
            handler.close_connection = True  # nothing written: the answer is lost
            return
        self.forward(handler, body)


@pytest.fixture
def flaky(anvil_world: World) -> Iterator[FlakyRpc]:
    with FlakyRpc(str(anvil_world.chain.rpc_url), failure_rate=0.1, seed=6) as proxy:
        yield proxy


def test_injected_rpc_errors_lose_nothing(anvil_world: World, flaky: FlakyRpc,
                                          tmp_path: Path) -> None:
    world = anvil_world
    env, port, location, issuer_id, token = prepare(world, tmp_path)
    env["MICROCRED_RPC_URL"] = flaky.url
    env["MICROCRED_BATCH_MAX_SIZE"] = "400"  # a few dozen batches, each through the faults
    from_block = world.chain.w3.eth.block_number + 1
    service = ServiceProcess(env, port, log=tmp_path / "service.log")
    try:
        service.start()  # starts against a healthy node, then one request in ten fails
        flaky.armed = True
        with Submitters([port], token, tag="flaky-rpc") as submitters:
            time.sleep(6)
        store = Store(location)
        wait_until_all_anchored(store, issuer_id)
    finally:
        service.kill()
    assert len(submitters.accepted) > 100
    assert min(flaky.injected.values()) > 0, flaky.injected  # every kind of fault happened
    assert_anchored_exactly_once(world, store, submitters.accepted, from_block)
    store.close()


def test_secrets_stay_out_of_logs_and_answers(anvil_world: World, tmp_path: Path) -> None:
    """The RPC URL's path (where providers put API keys), the keystore password and the API
    token appear in no log line and no answer, even when the node goes away and every error
    message would quote the URL."""
    world = anvil_world
    env, port, _, _, token = prepare(world, tmp_path, signing=False)
    api_key, password = "key-" + uuid.uuid4().hex, "pass-" + uuid.uuid4().hex
    write_keystore(tmp_path / "keys", world.issuer, password, scrypt_cost=2**10)
    env["MICROCRED_KEYSTORE_PASSWORD"] = password
    log = tmp_path / "service.log"
    answers: list[str] = []
    with FlakyRpc(str(world.chain.rpc_url), failure_rate=0, seed=1) as node:
        env["MICROCRED_RPC_URL"] = f"{node.url}/v3/{api_key}"
        service = ServiceProcess(env, port, log=log)
        try:
            service.start()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                answers.append(http.post("/v1/credentials", json={
                    "credentials": [{"id": "urn:secret:1"}]}).text)
                answers.append(http.get("/v1/batches",
                                        headers={"Authorization": "Bearer wrong"}).text)
                node.__exit__()  # the node is gone: connections are refused from now on
                answers.append(http.post("/v1/credentials", json={
                    "credentials": [{"id": "urn:secret:2"}]}).text)
                forced = http.post("/v1/batches")
                answers.append(forced.text)
                answers.append(http.get("/readyz").text)
                public_id = json.loads(answers[0])["accepted"][0]["id"]
                revoke = http.post(f"/v1/credentials/{public_id}/revoke", json={"reason": 1})
                answers.append(revoke.text)
                assert revoke.status_code in (409, 503), revoke.text  # never a 500
                time.sleep(3)  # the pipeline retries and logs its failures
        finally:
            service.kill()
    text = log.read_text()
    assert "[redacted]" in text, "no error quoted the RPC URL: the test proves nothing"
    for secret in (api_key, password, token):
        assert secret not in text
        assert not any(secret in answer for answer in answers)
    assert "Traceback" not in text
