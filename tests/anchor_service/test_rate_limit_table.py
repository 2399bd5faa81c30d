"""The rate limit's bucket tables (in one process, and shared by forked workers) and how
often a request looks at them: a token that has authenticated before costs one look, whether
its own limit is on or off; over real HTTP, uvicorn serving a small app behind
:class:`RateLimit`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from anchor_service.api.limits import (
    Buckets,
    LocalBuckets,
    RateLimit,
    SharedBuckets,
    mark_authenticated,
)
from tests.anchor_service.harness import served


@pytest.fixture(params=["local", "shared"])
def buckets(request: pytest.FixtureRequest) -> Iterator[Buckets]:
    if request.param == "local":
        yield LocalBuckets(100)
        return
    shared = SharedBuckets(sets=4)
    try:
        yield shared
    finally:
        shared.close()


def test_take_known_takes_only_from_a_bucket_that_exists(buckets: Buckets) -> None:
    assert buckets.take_known("token:a", 1.0, 2, 1.0) is None
    assert not buckets.known("token:a")  # looking made no bucket
    assert buckets.take("token:a", 1.0, 2, 1.0) == 0
    assert buckets.take_known("token:a", 1.0, 2, 1.0) == 0
    assert buckets.take_known("token:a", 1.0, 2, 1.0) == pytest.approx(1.0)  # spent
    assert buckets.take_known("token:a", 1.0, 2, 2.5) == 0  # refilled a second later


def test_a_rate_of_0_makes_a_bucket_and_takes_nothing(buckets: Buckets) -> None:
    for _ in range(5):
        assert buckets.take("token:b", 0.0, 1, 1.0) == 0
    assert buckets.known("token:b")
    assert all(buckets.take_known("token:b", 0.0, 1, 1.0) == 0 for _ in range(5))


class CountedBuckets(LocalBuckets):
    """Buckets that count the looks at their table."""

    def __init__(self) -> None:
        super().__init__(100)
        self.looks: list[str] = []

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        self.looks.append(f"take {key.partition(':')[0]}")
        return super().take(key, rate, burst, now)

    def take_known(self, key: str, rate: float, burst: int, now: float) -> float | None:
        self.looks.append(f"take_known {key.partition(':')[0]}")
        return super().take_known(key, rate, burst, now)

    def known(self, key: str) -> bool:
        self.looks.append(f"known {key.partition(':')[0]}")
        return super().known(key)

    def give_back(self, key: str, burst: int) -> None:
        self.looks.append(f"give_back {key.partition(':')[0]}")
        super().give_back(key, burst)


async def _page(request: Request) -> PlainTextResponse:
    if request.headers.get("authorization") == "Bearer real":
        mark_authenticated(request.scope.setdefault("state", {}))
    return PlainTextResponse("ok")


@pytest.mark.parametrize("token_rate", [0.0, 100.0])
def test_a_known_token_costs_one_look_at_the_table(token_rate: float) -> None:
    table = CountedBuckets()
    app = RateLimit(Starlette(routes=[Route("/page", _page)]), rate=token_rate, burst=50,
                    public_rate=0.001, public_burst=3, buckets=table)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        real = [client.get("/page", headers={"Authorization": "Bearer real"}).status_code
                for _ in range(6)]
        public = [client.get("/page").status_code for _ in range(4)]
    assert real == [200] * 6  # more than the address's 3: the token's own bucket
    assert public == [200, 200, 200, 429]  # the token's requests spent none of the address's
    assert table.looks == [
        # The first request: charged to the address, then found real and given back.
        "take_known token", "take address", "take token", "give_back address",
        # Each later one: a single look, at its own bucket; then the public requests.
        *["take_known token"] * 5, *["take address"] * 4]
