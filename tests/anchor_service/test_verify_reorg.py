"""The service's public reads right after a reorganisation, over real HTTP (uvicorn) against
anvil, with the default settings: ``POST /v1/verify``, the VC-API's ``POST
/credentials/verify`` and a published status list all answer from the branch the chain
follows when the request arrives, never from the cached view of a branch it has left, even
when the switch happened a moment before (well within any head-age window) and every cache
is warm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchor_service.api import create_app
from anchor_service.settings import ServiceSettings
from anchor_service.store import Store
from testkit.world import World, serve_issuer
from tests.anchor_service.harness import served
from tests.verifier.test_bounded_chain_reads import (
    POSITION,
    HugeBatch,
    anchor_huge_batch,
    change_status,
)
from verifier.bitstring import bit, decode_list
from verifier.contract_types import encode_status_indices

JSON = {"Content-Type": "application/json"}


@dataclass
class Service:
    http: httpx.Client
    issuer: str  # the name the world's issuer is served under (its status lists)


@pytest.fixture
def service(anvil_world: World, tmp_path: Path) -> Iterator[Service]:
    """The service for the world's deployment with its default chain-reading settings, the
    world's issuer served (with its signing key, for its status lists), no pipeline, no public
    rate limit, and a status watcher that looks at the chain once an hour only: a fresh
    answer can only come from the request's own look at the chain."""
    world = anvil_world
    deployment = tmp_path / "deployment.json"
    deployment.write_text(world.deployment.to_json(), encoding="utf-8")
    store = Store(tmp_path / "service.sqlite3")
    issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys")
    store.close()
    settings = ServiceSettings(
        rpc_url=str(world.chain.rpc_url), deployment=deployment,
        database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}",
        keystore_dir=tmp_path / "keys", keystore_password="pw",
        log_json=False, public_rate_limit=0, poll_interval=3600)
    with served(create_app(settings, run_pipeline=False)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        yield Service(http, issuer.name)


def _failed(report: dict[str, Any]) -> list[str]:
    return [check["name"] for check in report["checks"] if check["status"] == "failed"]


def _verify(service: Service, batch: HugeBatch) -> dict[str, Any]:
    answer = service.http.post("/v1/verify", content=batch.bundle.to_json().encode(),
                               headers=JSON)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _vc_verify(service: Service, batch: HugeBatch) -> dict[str, Any]:
    bundle = json.loads(batch.bundle.to_json())
    answer = service.http.post("/credentials/verify", json={
        "verifiableCredential": bundle["credential"],
        "options": {"receipt": bundle["receipt"]}})
    assert answer.status_code in (200, 400), answer.text
    result: dict[str, Any] = answer.json()
    assert "verified" in result, result
    return result


def _same_height_on_another_branch(world: World, snapshot: Any, height: int) -> None:
    """Revert to ``snapshot`` and mine up to ``height`` (at least one block): the head has
    that number and another hash."""
    world.chain.revert(snapshot)
    world.chain.mine(max(1, height - world.chain.w3.eth.block_number))
    assert world.chain.w3.eth.block_number == height


def test_a_verification_right_after_a_reorganisation_is_of_the_new_branch(
        anvil_world: World, service: Service) -> None:
    """Verified (caches warm), the anchor's block reorganised away, verified at once: the
    anchor is not found. Then anchored again and revoked on that branch: at once, revoked."""
    world = anvil_world
    before_anchoring = world.chain.snapshot()
    batch = anchor_huge_batch(world, 5, tree_size=16)
    for _ in range(3):
        assert _verify(service, batch)["valid"] is True
    assert _vc_verify(service, batch)["verified"] is True

    height = world.chain.w3.eth.block_number
    _same_height_on_another_branch(world, before_anchoring, height)
    report = _verify(service, batch)
    assert _failed(report) == ["anchored_on_chain"], report
    result = _vc_verify(service, batch)
    assert result["verified"] is False, result
    assert any("anchored_on_chain" in error for error in result["errors"]), result


def test_a_revocation_follows_the_branch_the_chain_is_on(
        anvil_world: World, service: Service) -> None:
    """The credential revoked on one branch and not on the other: each verification, made
    right after the switch, says what the branch the chain follows then holds."""
    world = anvil_world
    batch = anchor_huge_batch(world, 6, tree_size=16)
    assert _verify(service, batch)["valid"] is True
    fork = world.chain.snapshot()

    change_status(world, "revoke", POSITION, 1)  # branch A: revoked
    world.chain.mine(1)
    height = world.chain.w3.eth.block_number
    assert _failed(_verify(service, batch)) == ["not_revoked"]
    assert _vc_verify(service, batch)["verified"] is False

    _same_height_on_another_branch(world, fork, height)  # branch B: never revoked
    assert _verify(service, batch)["valid"] is True
    assert _vc_verify(service, batch)["verified"] is True

    change_status(world, "revoke", POSITION, 1)  # and revoked on B too
    assert _failed(_verify(service, batch)) == ["not_revoked"]


def _list_bits(service: Service) -> bytes:
    answer = service.http.get(f"/issuers/{service.issuer}/status-lists/0/revocation")
    assert answer.status_code == 200, answer.text
    return decode_list(answer.json()["credentialSubject"]["encodedList"])


def test_a_status_list_right_after_a_reorganisation_is_of_the_new_branch(
        anvil_world: World, service: Service) -> None:
    """A list rendered (and kept) on a branch where entry 9 is revoked is not served once
    the chain has switched to a branch where it is not, though the watcher has not looked
    at the chain since: the request's own look at the head sees the switch."""
    world = anvil_world
    fork = world.chain.snapshot()
    world.tx(world.issuer).transact(world.anchor.functions.revoke(
        world.issuer_id, 0, encode_status_indices([9]), 1))
    assert bit(_list_bits(service), 9)
    assert bit(_list_bits(service), 9)  # kept: served from memory

    height = world.chain.w3.eth.block_number
    _same_height_on_another_branch(world, fork, height + 1)
    assert not bit(_list_bits(service), 9)
