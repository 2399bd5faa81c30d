"""POST /v1/verify's own limits, over real HTTP (uvicorn) against anvil through a counting
JSON-RPC proxy: a small body limit enforced while the body streams in, a bounded number of
verifications in flight (503 with Retry-After without reading the body), and one chain reader
shared by every request, which still follows the chain through a reorganisation, and reads
each new head's state again when the node's log blooms are not to be trusted."""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchor_service.api import create_app
from anchor_service.settings import ServiceSettings
from testkit.world import World
from tests.anchor_service.harness import open_request, read_answer, served
from tests.anchor_service.rpc_proxy import CountingRpcProxy, ZeroBloomProxy
from tests.verifier.test_bounded_chain_reads import HugeBatch, anchor_huge_batch, change_status

DEFAULT_LIMIT = 2**20  # verify_max_body_bytes' default
JSON = {"Content-Type": "application/json"}


@contextmanager
def verify_service(world: World, data: Path, rpc_url: str,
                   **overrides: Any) -> Iterator[str]:
    """The service for ``world``'s deployment, reading the chain at ``rpc_url``, without its
    pipeline (nothing is anchored through it here) and without the public rate limit; its
    base URL."""
    deployment = data / "deployment.json"
    deployment.write_text(world.deployment.to_json(), encoding="utf-8")
    settings = ServiceSettings(
        rpc_url=rpc_url, deployment=deployment,
        database_url=f"sqlite:///{data / 'service.sqlite3'}", keystore_dir=data / "keys",
        log_json=False, public_rate_limit=0, **overrides)
    with served(create_app(settings, run_pipeline=False)) as url:
        yield url


@pytest.fixture
def node(anvil_world: World) -> Iterator[CountingRpcProxy]:
    with CountingRpcProxy(str(anvil_world.chain.rpc_url)) as proxy:
        yield proxy


@pytest.fixture
def batch(anvil_world: World) -> HugeBatch:
    return anchor_huge_batch(anvil_world, 3, tree_size=8)


def test_a_body_over_the_verification_limit_is_refused_while_it_streams(
        anvil_world: World, node: CountingRpcProxy, batch: HugeBatch, tmp_path: Path) -> None:
    with verify_service(anvil_world, tmp_path, node.url) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        bundle = batch.bundle.to_json().encode()
        assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"] is True
        # A bundle padded with spaces to just the limit is still read and verified.
        padded = bundle + b" " * (DEFAULT_LIMIT - len(bundle))
        assert http.post("/v1/verify", content=padded, headers=JSON).json()["valid"] is True

        # Declared too large: refused before anything is read.
        declared = http.post("/v1/verify", content=padded + b" ", headers=JSON)
        assert declared.status_code == 413, declared.text
        assert declared.json()["error"] == "body_too_large"
        assert f"at most {DEFAULT_LIMIT} bytes" in declared.json()["detail"]
        # 64 MiB declared (the service-wide limit) and never sent: answered all the same.
        connection = open_request(url, 64 * 2**20)
        try:
            assert read_answer(connection).startswith(b"HTTP/1.1 413")
        finally:
            connection.close()

        # Chunked, no length, and the body never ends: refused once past the limit.
        connection = open_request(url, None)
        try:
            chunk = b" " * 65536
            for _ in range(DEFAULT_LIMIT // len(chunk) + 1):
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            answer = read_answer(connection)
        finally:
            connection.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"body_too_large" in answer


def test_verifications_beyond_the_concurrency_limit_get_503_without_reading_the_body(
        anvil_world: World, node: CountingRpcProxy, batch: HugeBatch, tmp_path: Path) -> None:
    bundle = batch.bundle.to_json().encode()
    with verify_service(anvil_world, tmp_path, node.url, verify_concurrency=2) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        # Two requests whose bodies do not come hold both slots...
        holders = [open_request(url, len(bundle)) for _ in range(2)]
        try:
            # ... so a third is refused. (Until the holders' requests reach the route, a
            # whole third request is verified: send those until one is refused. A holder that
            # arrived while such a request held a slot was refused itself: open it anew.)
            deadline = time.monotonic() + 30
            while http.post("/v1/verify", content=bundle, headers=JSON).status_code != 503:
                assert time.monotonic() < deadline, "never refused"
                for n, holder in enumerate(holders):
                    if select.select([holder], [], [], 0)[0]:  # answered: it holds nothing
                        holder.close()
                        holders[n] = open_request(url, len(bundle))
            # Refused at once, although its body never comes.
            third = open_request(url, len(bundle))
            try:
                head, _, body = read_answer(third).partition(b"\r\n\r\n")
            finally:
                third.close()
            assert head.startswith(b"HTTP/1.1 503"), head
            assert b"retry-after: 1" in head.lower()
            refused = json.loads(body)
            assert refused["error"] == "busy"
            assert "2 verifications are in flight" in refused["detail"]
            # A slot is given back when its request ends: then verifications go through.
            for holder in holders:
                holder.sendall(bundle)
                assert read_answer(holder).startswith(b"HTTP/1.1 200"), "the held request failed"
        finally:
            for holder in holders:
                holder.close()
        assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"] is True


def test_one_client_holds_only_its_share_of_the_verification_slots(
        anvil_world: World, node: CountingRpcProxy, batch: HugeBatch, tmp_path: Path) -> None:
    """A slow sender (its bodies never come) from one address cannot take every slot."""
    bundle = batch.bundle.to_json().encode()
    with verify_service(anvil_world, tmp_path, node.url, verify_concurrency=16,
                        verify_per_client=2) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        holders = [open_request(url, len(bundle)) for _ in range(2)]
        try:
            # Whole requests from the same address go through until both holders have
            # reached the route; then they are refused, with 14 slots still free. (A holder
            # that arrived while such a request held a share was refused itself: open it
            # anew.)
            deadline = time.monotonic() + 30
            while (third := http.post("/v1/verify", content=bundle,
                                      headers=JSON)).status_code != 503:
                assert third.status_code == 200, third.text
                assert time.monotonic() < deadline, "never refused"
                for n, holder in enumerate(holders):
                    if select.select([holder], [], [], 0)[0]:  # answered: it holds nothing
                        holder.close()
                        holders[n] = open_request(url, len(bundle))
            assert third.headers["retry-after"] == "1"
            assert "2 verifications from your address are in flight" in third.json()["detail"]
            for holder in holders:
                holder.sendall(bundle)
                assert read_answer(holder).startswith(b"HTTP/1.1 200")
        finally:
            for holder in holders:
                holder.close()


def test_a_verification_body_that_trickles_is_cut_off_and_frees_its_slot(
        anvil_world: World, node: CountingRpcProxy, batch: HugeBatch, tmp_path: Path) -> None:
    bundle = batch.bundle.to_json().encode()
    with verify_service(anvil_world, tmp_path, node.url, verify_per_client=1,
                        verify_body_timeout=1.0) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        slow = open_request(url, len(bundle))
        try:
            slow.sendall(bundle[:10])  # and never the rest
            head, _, body = read_answer(slow).partition(b"\r\n\r\n")
        finally:
            slow.close()
        assert head.startswith(b"HTTP/1.1 408"), head
        assert json.loads(body) == {"error": "body_timeout", "detail": "a verification "
                                    "request body must arrive within 1 s"}
        # Its slot (the client's only one here) is free again.
        assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"] is True


def test_one_reader_serves_every_request_and_follows_a_reorganisation(
        anvil_world: World, node: CountingRpcProxy, tmp_path: Path) -> None:
    """The first verification reads the chain; the next ones are answered from the shared
    reader's view of the head (the head itself is asked for before each read here, as
    verify_head_max_age is 0). After a reorganisation that removes the anchor, the same
    reader, caches warm, answers from the new branch."""
    world = anvil_world
    before_anchoring = world.chain.snapshot()
    batch = anchor_huge_batch(world, 11, tree_size=12)
    bundle = batch.bundle.to_json().encode()
    with verify_service(world, tmp_path, node.url, verify_head_max_age=0) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        at_start = node.calls("eth_call")  # the start-up's contract version checks
        assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"] is True
        state_reads = node.calls("eth_call") - at_start
        # anchor, its registry, trust, entity, signing key, signing key trust, status window
        assert 0 < state_reads <= 7
        for _ in range(10):
            assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"]
        # nothing read again: one reader
        assert node.calls("eth_call") - at_start == state_reads

        height = world.chain.w3.eth.block_number
        world.chain.revert(before_anchoring)
        world.chain.mine(height - world.chain.w3.eth.block_number)
        assert world.chain.w3.eth.block_number == height  # same height, another branch
        report = http.post("/v1/verify", content=bundle, headers=JSON).json()
        failed = [c["name"] for c in report["checks"] if c["status"] == "failed"]
        assert failed == ["anchored_on_chain"], report


def test_with_log_blooms_not_trusted_a_revocation_is_seen_whatever_the_blooms_say(
        anvil_world: World, tmp_path: Path) -> None:
    """``trust_log_blooms=false`` reaches the shared reader: through a node whose blooms are
    all zeros (they would hide the revocation's block), the head after a revocation is read
    again and the verification fails ``not_revoked``."""
    world = anvil_world
    position = (7, 4_243)  # this test's own entry of the module's chain
    bundle = anchor_huge_batch(world, 1, tree_size=4, position=position).bundle.to_json()
    with ZeroBloomProxy(str(world.chain.rpc_url)) as node, \
            verify_service(world, tmp_path, node.url, verify_head_max_age=0,
                           trust_log_blooms=False) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/v1/verify", content=bundle, headers=JSON).json()["valid"] is True
        change_status(world, "revoke", position)
        report = http.post("/v1/verify", content=bundle, headers=JSON).json()
        failed = [c["name"] for c in report["checks"] if c["status"] == "failed"]
        assert failed == ["not_revoked"], report
