"""Submitting for an issuer the registry does not trust, over real HTTP against anvil: the
submission is refused with the reason (409), a batch that cannot be anchored says why in
GET /v1/batches, /metrics and /readyz, the registry view shows the suspended body, and once
the body is reactivated the batch is anchored."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchor_service.samples import make_credential
from localchain import AnvilChain
from testkit.net import free_port
from testkit.world import World, build_world
from tests.anchor_service.harness import (
    Service,
    running_service,
    trust_view_of_node,
)
from verifier.contract_types import Status

MAX_BODY = 256 * 1024


@pytest.fixture
def service(anvil_world: World, tmp_path: Path) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path, max_body_bytes=MAX_BODY) as running:
        yield running


def _set_status(world: World, entity_id: int, status: Status) -> None:
    world.tx(world.admin).transact(world.registry.functions.setStatus(entity_id, status))


def _submit_until(client: httpx.Client, credential: dict[str, Any],
                  status: int) -> httpx.Response:
    """Submit until the answer has ``status``: the service asks the registry at most once a
    second per issuer, so a registry change reaches submissions within that second."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.post("/v1/credentials", json={"credentials": [credential]})
        if answer.status_code == status:
            return answer
        assert answer.status_code in (202, 409), answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


def _ready_until(client: httpx.Client,
                 done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """/readyz once ``done``: its answer is reused for a second, so it may lag that long.
    Every answer on the way must be 200 (ready)."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def _blocked_gauge(client: httpx.Client) -> dict[tuple[str, str], float]:
    found = {}
    for line in client.get("/metrics").text.splitlines():
        match = re.fullmatch(r'microcred_blocked_batches\{issuer="([^"]*)",reason="([^"]*)"\} '
                             r'(\S+)', line)
        if match:
            found[(match[1], match[2])] = float(match[3])
    return found


def test_suspended_body_refuses_submissions_and_shows_the_blocked_batch(
        service: Service) -> None:
    world = service.world
    reason = f"issuer not trusted: body {world.body_id} suspended"
    with service.client(service.issuer_token) as client, service.client() as public:
        first = client.post("/v1/credentials",
                            json={"credentials": [make_credential("before-suspension")]})
        assert first.status_code == 202, first.text
        public_id = first.json()["accepted"][0]["id"]

        _set_status(world, world.body_id, Status.SUSPENDED)
        try:
            refused = _submit_until(client, make_credential("while-suspended"), 409)
            assert refused.json() == {"error": "issuer_not_trusted", "detail": reason}

            # The credential accepted before the suspension goes into a batch that waits.
            cut = client.post("/v1/batches")
            assert cut.status_code == 202, cut.text
            batch_id = client.get(f"/v1/credentials/{public_id}").json()["batchId"]
            assert batch_id is not None
            listed = {b["id"]: b for b in client.get("/v1/batches").json()}
            assert listed[batch_id]["state"] == "built"
            assert listed[batch_id]["blockedReason"] == reason
            assert _blocked_gauge(public)[("uni-a", reason)] >= 1
            # Reported, not failed: a registry decision about one issuer is no fault of the
            # replica (see the /readyz docstring).
            ready = _ready_until(public, lambda r: bool(r["blocked"]))
            blocked = {(b["issuer"], b["reason"]): b for b in ready["blocked"]}
            assert batch_id in blocked[("uni-a", reason)]["batchIds"]
            assert blocked[("uni-a", reason)]["batches"] >= 1

            issuers = {i["name"]: i for i in client.get("/v1/registry/issuers").json()}
            uni_a = issuers["uni-a"]
            assert uni_a["status"] == "active"  # the issuer itself; its body is not
            assert uni_a["trust"] == {"trusted": False, "code": "accreditor not active",
                                      "reason": reason, "failingEntityId": world.body_id}
            assert [(e["id"], e["kind"], e["status"]) for e in uni_a["accreditation"]] == [
                (world.issuer_id, "issuer", "active"), (world.body_id, "body", "suspended")]
            assert issuers["uni-b"]["trust"]["reason"] == (
                f"issuer not trusted: issuer {world.revoked_id} revoked")
        finally:
            _set_status(world, world.body_id, Status.ACTIVE)

        # Reactivated: the waiting batch is anchored by the pipeline on its own.
        deadline = time.monotonic() + 60
        while client.get(f"/v1/credentials/{public_id}").json()["state"] != "anchored":
            assert time.monotonic() < deadline, "the batch was not anchored after reactivation"
            time.sleep(0.1)
        listed = {b["id"]: b for b in client.get("/v1/batches").json()}
        assert listed[batch_id]["blockedReason"] is None
        assert ("uni-a", reason) not in _blocked_gauge(public)
        assert _ready_until(public, lambda r: not r["blocked"])["blocked"] == []
        assert _submit_until(client, make_credential("after-reactivation"), 202)
        issuers = {i["name"]: i for i in client.get("/v1/registry/issuers").json()}
        assert issuers["uni-a"]["trust"]["trusted"] is True
        assert issuers["uni-a"]["trust"]["reason"] is None


def test_revoked_issuer_is_refused_with_the_reason(service: Service) -> None:
    with service.client(service.other_token) as revoked:  # uni-b: its entity is revoked
        answer = revoked.post("/v1/credentials", json={"digests": ["0x" + "ab" * 32]})
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == (
            f"issuer not trusted: issuer {service.world.revoked_id} revoked")
        assert revoked.get("/v1/batches").json() == []  # nothing was stored


def test_a_revoked_key_is_named(service: Service) -> None:
    world = service.world
    snapshot = world.chain.snapshot()
    try:
        world.tx(world.admin).transact(world.registry.functions.revokeKey(world.issuer.address, 0))
        with service.client(service.issuer_token) as client:
            refused = _submit_until(client, make_credential("revoked-key"), 409)
        assert refused.json()["detail"] == (
            f"issuer not trusted: its key {world.issuer.address} is revoked")
    finally:
        world.chain.revert(snapshot)


def test_submissions_are_accepted_while_the_chain_is_unreachable(tmp_path: Path) -> None:
    """The credentials are stored durably and anchored once the chain answers; refusing them
    would turn a node outage into lost submissions."""
    chain = AnvilChain.start()
    try:
        world = build_world(chain)
        with running_service(world, tmp_path, max_body_bytes=MAX_BODY) as service:
            chain.close()  # the node is gone before the service ever asked about uni-a
            with service.client(service.issuer_token) as client:
                answer = client.post("/v1/credentials",
                                     json={"credentials": [make_credential("node-down")]})
                assert answer.status_code == 202, answer.text
                assert answer.json()["accepted"][0]["created"] is True
    finally:
        chain.close()


def test_trust_view_answers_unknown_when_the_node_is_down(tmp_path: Path) -> None:
    store, issuer, view = trust_view_of_node(tmp_path / "db.sqlite3",
                                             f"http://127.0.0.1:{free_port()}", timeout=5)
    try:
        assert view.cached(issuer.id) is None  # unknown: the caller goes on
        assert view.cached(issuer.id) is None  # and the answer is cached, not retried at once
    finally:
        store.close()
