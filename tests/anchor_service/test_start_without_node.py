"""A replica started while its chain node is down: it starts, says it is not ready (and why,
without the node's URL), accepts credentials, and anchors them once the node is back; a node
that comes back on another chain than the deployment's is reported, not anchored on. Real
processes: anvil (stopped and started again with its state) and ``anchor-service serve``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anchor_service.store import Store
from localchain import AnvilChain
from testkit.net import free_port
from testkit.processes import (
    ServiceProcess,
    assert_anchored_exactly_once,
    prepare,
    wait_until_all_anchored,
)
from testkit.world import World, build_world


@dataclasses.dataclass
class StoppedNode:
    """A deployment on an anvil node that is stopped now; ``start`` brings it back with its
    state."""

    world: World
    port: int
    state: Path
    chain: AnvilChain | None = None

    def start(self) -> World:
        self.chain = AnvilChain.start(port=self.port, state_path=self.state)
        registry, anchor = self.world.deployment.contracts(self.chain.w3)
        return dataclasses.replace(self.world, chain=self.chain, registry=registry,
                                   anchor=anchor)


@pytest.fixture
def stopped_node(tmp_path: Path) -> Iterator[StoppedNode]:
    state = tmp_path / "chain" / "state.json"
    port = free_port()
    chain = AnvilChain.start(port=port, state_path=state)
    try:
        world = build_world(chain)
    finally:
        chain.close()  # writes the state: the deployment survives the restart
    node = StoppedNode(world, port, state)
    try:
        yield node
    finally:
        if node.chain is not None:
            node.chain.close()


def _readiness(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)


def _wait_for_readiness(port: int, ready: bool, check: str) -> httpx.Response:
    deadline = time.monotonic() + 120  # the backoff reaches 30 s between checks
    while True:
        answer = _readiness(port)
        if answer.json()["ready"] is ready and check in answer.json()["chain"]:
            return answer
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


def test_a_replica_started_while_the_node_is_down_anchors_once_it_is_back(
        stopped_node: StoppedNode, tmp_path: Path) -> None:
    env, port, location, issuer_id, token = prepare(stopped_node.world, tmp_path, signing=False)
    service = ServiceProcess(env, port, log=tmp_path / "service.log")
    try:
        service.start()  # waits for /healthz: the process is up although the node is not
        down = _readiness(port)
        assert down.status_code == 503, down.text
        assert down.json()["chain"].startswith("unreachable"), down.text
        assert down.json()["database"] == "ok"
        assert "127.0.0.1" not in down.text
        assert str(stopped_node.port) not in down.text

        ids = [f"urn:node-down:{n}" for n in range(30)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            answer = http.post("/v1/credentials",
                               json={"credentials": [{"id": i} for i in ids]})
            assert answer.status_code == 202, answer.text
            accepted = {a["id"] for a in answer.json()["accepted"]}
            assert len(accepted) == len(ids)
            time.sleep(1.5)  # a few failed checks: the backoff grows past its first step

            world = stopped_node.start()
            from_block = world.chain.w3.eth.block_number + 1
            store = Store(location)
            try:
                wait_until_all_anchored(store, issuer_id)
                assert_anchored_exactly_once(world, store, accepted, from_block)
            finally:
                store.close()
            ready = _wait_for_readiness(port, True, "ok, block")
            assert ready.status_code == 200
            for public_id in accepted:
                assert http.get(f"/v1/credentials/{public_id}").json()["state"] == "anchored"
    finally:
        service.kill()
    log = (tmp_path / "service.log").read_text(encoding="utf-8")
    assert "chain node unreachable" in log
    assert "Application startup failed" not in log


def test_a_node_that_comes_back_on_another_chain_is_reported(
        stopped_node: StoppedNode, tmp_path: Path) -> None:
    env, port, location, _, token = prepare(stopped_node.world, tmp_path, signing=False)
    deployment = tmp_path / "deployment.json"
    wrong = dataclasses.replace(stopped_node.world.deployment, chain_id=999_001)
    deployment.write_text(wrong.to_json(), encoding="utf-8")
    service = ServiceProcess(env, port, log=tmp_path / "service.log")
    try:
        service.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            answer = http.post("/v1/credentials", json={"credentials": [{"id": "urn:wrong:1"}]})
            assert answer.status_code == 202, answer.text
            (public_id,) = (a["id"] for a in answer.json()["accepted"])
            stopped_node.start()
            reported = _wait_for_readiness(port, False, "wrong chain")
            assert reported.status_code == 503
            assert "999001" in reported.json()["chain"], reported.text
            assert http.get(f"/v1/credentials/{public_id}").json()["state"] != "anchored"
    finally:
        service.kill()
    log = (tmp_path / "service.log").read_text(encoding="utf-8")
    assert "ERROR anchor_service.pipeline: not anchoring: wrong chain" in log
    store = Store(location)
    try:
        assert all(batch.tx_hash is None for batch in store.batches(limit=100))
    finally:
        store.close()
