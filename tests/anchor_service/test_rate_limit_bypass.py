"""Rate limits that a client cannot sidestep, over real HTTP to a real ``anchor-service
serve`` process: a made-up ``X-Forwarded-For`` is not a new client unless it comes from a
configured proxy; one token spelled differently is one bucket; readiness and metrics are
limited, and readiness asks the chain node at most about once a second however often it is
asked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from testkit.processes import ServiceProcess, prepare
from testkit.world import World
from tests.anchor_service.test_faults import FlakyRpc


class CountingRpc(FlakyRpc):
    """A JSON-RPC proxy that counts the requests of each method."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, failure_rate=0, seed=0)
        self.calls: dict[str, int] = {}

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        for call in request if isinstance(request, list) else [request]:
            self.calls[call["method"]] = self.calls.get(call["method"], 0) + 1
        super().answer(handler, body)


def _service(world: World, tmp_path: Path, **settings: str) -> tuple[ServiceProcess, str]:
    env, port, _, _, token = prepare(world, tmp_path)
    env.update({f"MICROCRED_{name.upper()}": value for name, value in settings.items()})
    return ServiceProcess(env, port, log=tmp_path / "service.log"), token


@pytest.fixture
def limited(anvil_world: World, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A service whose limits allow bursts of 3 (token) and 4 (address), refilled at one
    request an hour; its URL and an issuer token."""
    service, token = _service(anvil_world, tmp_path, rate_limit="0.0003",
                              rate_limit_burst="3", public_rate_limit="0.0003",
                              public_rate_limit_burst="4")
    service.start()
    try:
        yield f"http://127.0.0.1:{service.port}", token
    finally:
        service.kill()


def test_forwarded_for_from_an_untrusted_peer_is_not_a_new_client(
        limited: tuple[str, str]) -> None:
    url, _ = limited
    with httpx.Client(base_url=url, timeout=30) as http:
        statuses = [http.get("/verify", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                    for n in range(1, 9)]
    assert statuses[:4] == [200] * 4
    assert statuses[4:] == [429] * 4  # every made-up address counted against the real one


def test_forwarded_for_from_a_configured_proxy_names_the_client(
        anvil_world: World, tmp_path: Path) -> None:
    service, _ = _service(anvil_world, tmp_path, public_rate_limit="0.0003",
                          public_rate_limit_burst="2", trusted_proxies="127.0.0.1")
    service.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=30) as http:
            # Each client the proxy names has a bucket of its own...
            for n in range(1, 6):
                answer = http.get("/verify", headers={"X-Forwarded-For": f"198.51.100.{n}"})
                assert answer.status_code == 200, answer.text
            # ... and a client that used its bucket up is limited, through the proxy too.
            again = [http.get("/verify", headers={"X-Forwarded-For": "198.51.100.9"}).status_code
                     for _ in range(3)]
            assert again == [200, 200, 429]
    finally:
        service.kill()


def test_one_token_spelled_differently_is_one_bucket(limited: tuple[str, str]) -> None:
    url, token = limited
    spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer   {token}",
                 f"bEaReR {token}"]
    with httpx.Client(base_url=url, timeout=30) as http:
        statuses = [http.get("/v1/batches", headers={"Authorization": value}).status_code
                    for value in spellings]
    assert statuses == [200, 200, 200, 429, 429]


def test_readiness_and_metrics_are_limited(limited: tuple[str, str]) -> None:
    url, token = limited
    with httpx.Client(base_url=url, timeout=30) as http:
        ready = [http.get("/readyz").status_code for _ in range(3)]
        metrics = [http.get("/metrics", headers={"Authorization": f"Bearer {token}"}
                            ).status_code for _ in range(3)]
        health = [http.get("/healthz").status_code for _ in range(10)]
    # One address bucket of 4 for both, whatever token comes along.
    assert ready + metrics == [200, 200, 200, 200, 429, 429]
    assert health == [200] * 10  # liveness stays free


def test_readiness_asks_the_node_about_once_a_second(anvil_world: World,
                                                     tmp_path: Path) -> None:
    node = CountingRpc(str(anvil_world.chain.rpc_url))
    with node:
        service, _ = _service(anvil_world, tmp_path, rpc_url=node.url, public_rate_limit="0",
                              poll_interval="3600")  # one pipeline round, at start
        service.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=30) as http:
                assert http.get("/readyz").json()["ready"] is True
                before = node.calls.get("eth_blockNumber", 0)
                started = time.monotonic()
                for _ in range(200):
                    answer = http.get("/readyz")
                    assert answer.status_code == 200, answer.text
                elapsed = time.monotonic() - started
                asked = node.calls.get("eth_blockNumber", 0) - before
        finally:
            service.kill()
    assert asked <= elapsed / 1.0 + 2, (asked, elapsed)


def test_made_up_tokens_are_charged_to_the_address(limited: tuple[str, str]) -> None:
    """A token that never authenticated buys no bucket of its own, on public routes (which
    never answer 401) as on the others: each request with one is counted against the
    client's address."""
    url, _ = limited
    with httpx.Client(base_url=url, timeout=30) as http:
        public = [http.get("/verify", headers={"Authorization": f"Bearer made-up-{n}"}
                           ).status_code for n in range(6)]
        private = http.get("/v1/batches", headers={"Authorization": "Bearer made-up-x"})
    assert public == [200] * 4 + [429] * 2
    assert private.status_code == 429  # the address is spent: refused before authentication


def test_a_real_token_keeps_its_own_bucket_after_authenticating(
        limited: tuple[str, str]) -> None:
    """Once a token has authenticated, its requests are counted against it, not against the
    address that public requests share."""
    url, token = limited
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.get("/v1/batches", headers=auth).status_code
        public = [http.get("/verify").status_code for _ in range(5)]
        after = [http.get("/v1/batches", headers=auth).status_code for _ in range(3)]
    assert first == 200
    assert public == [200] * 4 + [429]  # the address's 4: the token's request was not one
    assert after == [200, 200, 429]  # the token's bucket of 3, its first request included


def test_a_real_token_is_served_from_an_address_that_public_requests_used_up(
        limited: tuple[str, str]) -> None:
    """Public requests from the address an issuer shares (a NAT, say) have used up its
    bucket: the issuer's token, not seen before, is looked up and gets its own bucket instead
    of being refused with the public requests; a made-up token is still refused."""
    url, token = limited
    with httpx.Client(base_url=url, timeout=30) as http:
        public = [http.get("/verify").status_code for _ in range(5)]
        made_up = http.get("/v1/batches", headers={"Authorization": "Bearer made-up"})
        real = [http.get("/v1/batches", headers={"Authorization": f"Bearer {token}"}
                         ).status_code for _ in range(4)]
    assert public == [200] * 4 + [429]
    assert made_up.status_code == 429
    assert real == [200, 200, 200, 429]  # its bucket of 3
