"""A credential's status read at a block is of that block: a block reorganised away during the
read is refused rather than answered with another branch's bits under the old block's hash,
and a block before the anchor's deployment has no status (404 ``unknown_block``, not a chain
error). On the in-process chain and on anvil (snapshots make the reorganisation), and the
route over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from anchor_service.errors import BlockReorganisedError, UnknownBlockError
from anchor_service.samples import make_credential
from anchor_service.status import resolve_block, status_at
from anchor_service.store import StatusPosition
from testkit.world import World
from tests.anchor_service.harness import Service, service_on_fresh_chain
from verifier.contract_types import StatusBits, encode_status_indices


def test_a_block_reorganised_away_is_refused(world: World) -> None:
    position = StatusPosition(0, 3)
    snapshot = world.chain.snapshot()
    world.chain.increase_time(5)  # a block of its own, with its own hash
    at = resolve_block(world.chain.w3, 1)
    assert status_at(world.chain.w3, world.anchor, world.issuer_id, position, at) \
        == StatusBits(False, False)

    # Another branch replaces that block: there, index 3 is revoked in it.
    world.chain.revert(snapshot)
    world.tx(world.issuer).transact(world.anchor.functions.revoke(
        world.issuer_id, 0, encode_status_indices([3]), 0))
    assert int(world.chain.w3.eth.block_number) >= at.number
    with pytest.raises(BlockReorganisedError, match="reorganised"):
        status_at(world.chain.w3, world.anchor, world.issuer_id, position, at)


def test_a_block_before_the_deployment_has_no_status(world: World) -> None:
    at = resolve_block(world.chain.w3, 1, block=0)
    with pytest.raises(UnknownBlockError, match="before the anchor contract was deployed"):
        status_at(world.chain.w3, world.anchor, world.issuer_id, StatusPosition(0, 0), at,
                  deployed_at=world.deployment.block_number)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_fresh_chain(tmp_path_factory.mktemp("reads"),
                                max_body_bytes=2**20) as running:
        yield running


def test_the_status_route_answers_404_before_the_deployment(service: Service) -> None:
    assert service.world.deployment.block_number > 0
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            make_credential("before-deployment", issuer="did:web:uni-a.example")]})
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        found = client.get(f"/v1/credentials/{public_id}/status", params={"block": "0"})
    assert found.status_code == 404, found.text
    assert found.json()["error"] == "unknown_block"
    assert "before the anchor contract was deployed" in found.json()["detail"]
