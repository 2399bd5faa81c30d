"""``?asOf=`` on the published status lists is bounded work: the block search starts at the
anchor's deployment block, takes one of the past-rendering slots (503 ``busy`` when none is
free), and keeps the block times it read; a time after the latest confirmed block is 404
``unknown_block`` (not settled yet), as ``GET /v1/credentials/{id}/status`` answers. The
renderer on the in-process chain and on anvil, and the route over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor_service.errors import StatusListRequestError
from anchor_service.samples import make_credential
from anchor_service.signing import IssuerSigner
from anchor_service.status_lists import PAST_RENDERINGS, ChainPoint, StatusLists
from anchor_service.store import Store
from testkit.world import World, issuer_signing_key, serve_issuer
from tests.anchor_service.harness import Service, service_on_fresh_chain
from verifier.chain import PinnedReader


def renderer(world: World, tmp_path: Path) -> tuple[StatusLists, list[int]]:
    """A renderer of the world's issuer; the block numbers it reads one by one, in order."""
    store = Store(tmp_path / "service.sqlite3")
    issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys")
    signer = IssuerSigner(issuer.did, issuer_signing_key())
    lists = StatusLists(world.chain.w3, world.deployment, store, lambda _: signer,
                        validity=300, confirmations=1, clock=time.time)
    reads: list[int] = []
    block_point = lists.block_point

    def counted(number: int, reader: PinnedReader | None = None) -> ChainPoint:
        reads.append(number)  # the real read, recorded
        return block_point(number, reader)

    lists.block_point = counted  # type: ignore[method-assign]
    return lists, reads


def _later_blocks(world: World, count: int) -> None:
    for _ in range(count):
        world.chain.increase_time(10)


def test_the_search_starts_at_the_deployment_and_keeps_block_times(
        world: World, tmp_path: Path) -> None:
    _later_blocks(world, 6)
    lists, reads = renderer(world, tmp_path)
    w3 = world.chain.w3
    deployed = world.deployment.block_number
    head = int(w3.eth.block_number)
    target = head - 3
    when = int(w3.eth.get_block(target)["timestamp"])

    assert lists.block_at_time(when) == target
    first = list(reads)
    assert lists.block_at_time(when) == target

    assert first
    assert min(first) == deployed  # never below the deployment block
    assert reads == first  # the second search read no block: their times are kept


def test_a_time_before_the_deployment_is_404(world: World, tmp_path: Path) -> None:
    lists, _ = renderer(world, tmp_path)
    with pytest.raises(StatusListRequestError) as refused:
        lists.block_at_time(1)
    assert (refused.value.http_status, refused.value.error_code) == (404, "not_found")
    assert f"deployed at block {world.deployment.block_number}" in refused.value.detail


def test_a_future_time_is_not_settled_yet(world: World, tmp_path: Path) -> None:
    lists, _ = renderer(world, tmp_path)
    head = lists.confirmed_head()
    with pytest.raises(StatusListRequestError) as refused:
        lists.block_at_time(head.timestamp + 1)
    assert (refused.value.http_status, refused.value.error_code) == (404, "unknown_block")
    assert "not settled yet" in refused.value.detail


def test_the_search_takes_a_past_rendering_slot(world: World, tmp_path: Path) -> None:
    _later_blocks(world, 2)
    lists, reads = renderer(world, tmp_path)
    when = lists.confirmed_head().timestamp - 1
    slots = [lists._past_slots.acquire(blocking=False) for _ in range(PAST_RENDERINGS)]
    try:
        with pytest.raises(StatusListRequestError) as busy:
            lists.block_at_time(when)
    finally:
        for _ in slots:
            lists._past_slots.release()
    assert all(slots)
    assert (busy.value.http_status, busy.value.error_code) == (503, "busy")
    assert reads == []  # refused before any block was read


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_fresh_chain(tmp_path_factory.mktemp("as-of"),
                                max_body_bytes=2**20) as running:
        yield running


def test_a_future_as_of_answers_alike_on_the_list_and_status_routes(service: Service) -> None:
    head = service.world.chain.w3.eth.get_block("latest")
    future = str(int(head["timestamp"]) + 3600)
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            make_credential("as-of", issuer="did:web:uni-a.example")]})
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        status = client.get(f"/v1/credentials/{public_id}/status", params={"asOf": future})
        listed = client.get("/issuers/uni-a/status-lists/0/revocation",
                            params={"asOf": future})
    answers: list[Any] = [status, listed]
    for found in answers:
        assert found.status_code == 404, found.text
        assert found.json()["error"] == "unknown_block"
        assert "not settled yet" in found.json()["detail"]
