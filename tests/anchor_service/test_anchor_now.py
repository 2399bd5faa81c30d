"""``POST /v1/batches`` answers at once, even while the pipeline's round waits for the chain
node: it cuts the batch, answers 202 with it (built), and the pipeline anchors it once the
node answers again. A real ``anchor-service serve`` process on anvil, through a JSON-RPC proxy
that holds the pipeline's transaction broadcasts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from anchor_service.samples import make_credential
from testkit.processes import ServiceProcess, prepare
from testkit.world import World
from tests.anchor_service.rpc_proxy import RpcProxy
from tests.postgres import PostgresServer

_HOLD_AT_MOST = 120.0  # seconds a held request waits for release() before it goes on anyway


class HoldingProxy(RpcProxy):
    """Forwards every JSON-RPC request, except that requests of the ``held`` methods wait
    until :meth:`release` (then go on to the node, answered as usual)."""

    def __init__(self, upstream: str, held: set[str]) -> None:
        super().__init__(upstream)
        self.held_methods = held
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests held right now."""
        with self._lock:
            return self._waiting

    def release(self) -> None:
        self._released.set()

    def __exit__(self, *_: object) -> None:
        self.release()
        super().__exit__()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        items = request if isinstance(request, list) else [request]
        methods = {str(item.get("method")) for item in items if isinstance(item, dict)}
        if methods & self.held_methods and not self._released.is_set():
            with self._lock:
                self._waiting += 1
            try:
                self._released.wait(_HOLD_AT_MOST)
            finally:
                with self._lock:
                    self._waiting -= 1
        self.forward(handler, body)


def _wait_for(what: str, check: Callable[[], object], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_anchor_now_answers_while_a_round_waits_for_the_node(
        anvil_world: World, tmp_path: Path, database: str,
        request: pytest.FixtureRequest) -> None:
    location = None
    if database == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        location = server.new_database()
    with HoldingProxy(str(anvil_world.chain.rpc_url), {"eth_sendRawTransaction"}) as proxy:
        env, port, _database, _issuer_id, token = prepare(anvil_world, tmp_path, location)
        # Batches of two cut by the pipeline; a lone credential waits (for an hour) until
        # someone asks for its batch.
        env.update({"MICROCRED_RPC_URL": proxy.url, "MICROCRED_BATCH_MAX_SIZE": "2",
                    "MICROCRED_BATCH_MAX_AGE": "3600"})
        service = ServiceProcess(env, port, tmp_path / "service.log")
        service.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                pair = http.post("/v1/credentials", json={"credentials": [
                    make_credential(n, id_prefix="urn:anchor-now:pair") for n in range(2)]})
                assert pair.status_code == 202, pair.text
                pair_ids = [a["id"] for a in pair.json()["accepted"]]
                # The pipeline cuts the full batch and, sending it, waits for the node.
                _wait_for("the pipeline did not send the full batch", lambda: proxy.waiting)

                lone = http.post("/v1/credentials", json={"credentials": [
                    make_credential(0, id_prefix="urn:anchor-now:lone")]})
                assert lone.status_code == 202, lone.text
                lone_id = lone.json()["accepted"][0]["id"]
                assert http.get(f"/v1/credentials/{lone_id}").json()["batchId"] is None

                # The round is still waiting for the node: the answer does not wait for it.
                answer = http.post("/v1/batches")
                assert proxy.waiting, "the round ended before the answer: the test proves nothing"
                assert answer.status_code == 202, answer.text
                (batch,) = answer.json()
                assert (batch["state"], batch["size"]) == ("built", 1)
                assert http.get(f"/v1/credentials/{lone_id}").json()["batchId"] == batch["id"]
                # Nothing more is waiting: asking again cuts nothing.
                assert http.post("/v1/batches").json() == []

                proxy.release()
                _wait_for("not everything was anchored once the node answered", lambda: {
                    http.get(f"/v1/credentials/{i}").json()["state"]
                    for i in [*pair_ids, lone_id]} == {"anchored"})
                listed = {b["id"]: b for b in http.get("/v1/batches").json()}
                assert listed[batch["id"]]["state"] == "anchored"
        finally:
            service.kill()


def test_anchor_now_wakes_the_pipeline(anvil_world: World, tmp_path: Path) -> None:
    """With rounds an hour apart, the batch asked for is still sent at once: the request
    wakes the pipeline rather than waiting for its next round."""
    env, port, _database, _issuer_id, token = prepare(anvil_world, tmp_path)
    env.update({"MICROCRED_POLL_INTERVAL": "3600", "MICROCRED_BATCH_MAX_AGE": "3600"})
    service = ServiceProcess(env, port, tmp_path / "service.log")
    service.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            submitted = http.post("/v1/credentials", json={"credentials": [
                make_credential(0, id_prefix="urn:anchor-now:woken")]})
            assert submitted.status_code == 202, submitted.text
            public_id = submitted.json()["accepted"][0]["id"]
            answer = http.post("/v1/batches")
            assert answer.status_code == 202, answer.text
            (batch,) = answer.json()
            # Sent by the woken round (confirmed by a later one, an hour later here).
            _wait_for("the pipeline was not woken", lambda: http.get(
                f"/v1/credentials/{public_id}").json()["state"] in {"sent", "anchored"})
            listed = {b["id"]: b for b in http.get("/v1/batches").json()}
            assert listed[batch["id"]]["transactionHash"] is not None
    finally:
        service.kill()
