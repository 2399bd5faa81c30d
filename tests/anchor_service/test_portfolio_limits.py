"""POST /v1/portfolios/verify's own limits, over real HTTP (uvicorn) on anvil: one portfolio in
flight per client address (503 with Retry-After for a second, while POST /v1/verify still
answers), at most PORTFOLIO_MAX_ENTRIES credentials (422 beyond), and a time budget after
which the credentials not started come back not_checked in a 200 answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from anchor_service.samples import make_credential
from anchor_service.settings import ServiceSettings
from testkit.world import World
from tests.anchor_service.harness import Service, read_answer, refused_while_held, running_service
from tests.anchor_service.test_portfolio_api import (
    PATH,
    issue_all,
    plain,
    post,
)
from verifier.portfolio import MAX_PORTFOLIO_ENTRIES, TIMED_OUT_REASON


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A budget no portfolio can meet: every credential is left unstarted.
    with running_service(anvil_world, tmp_path_factory.mktemp("portfolio-limits"),
                         max_body_bytes=4 * 1024 * 1024, public_rate_limit=0,
                         portfolio_max_entries=2, portfolio_deadline_seconds=1e-9) as running:
        yield running


@pytest.fixture(scope="module")
def bundles(service: Service) -> list[dict[str, Any]]:
    return issue_all(service, [plain("limit-0", 6, "non-formal"),
                               plain("limit-1", 3, "formal-degree")])


def test_more_credentials_than_the_service_takes_is_a_422(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    answer = post(service, {"bundles": [*bundles, bundles[0]]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "too_many_credentials"
    assert answer.json()["detail"] == ("3 credentials in the portfolio; this service verifies "
                                       "at most 2 in one request (split the portfolio)")
    credentials = [make_credential(f"many-{i}", issuer="did:web:uni-a.example")
                   for i in range(3)]
    answer = post(service, {"presentation": {"type": ["VerifiablePresentation"],
                                             "verifiableCredential": credentials,
                                             "anchorReceipts": []}})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "too_many_credentials"
    assert answer.json()["detail"].startswith("3 credentials in the portfolio")


def test_the_entry_cap_stays_within_the_librarys() -> None:
    assert ServiceSettings(portfolio_max_entries=MAX_PORTFOLIO_ENTRIES)
    with pytest.raises(ValueError, match="portfolio_max_entries"):
        ServiceSettings(portfolio_max_entries=MAX_PORTFOLIO_ENTRIES + 1)
    assert ServiceSettings().portfolio_max_entries == 200


def test_credentials_not_started_within_the_budget_come_back_not_checked(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    answer = post(service, {"bundles": bundles, "requireEcts": 5})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [e["verdict"] for e in report["entries"]] == ["not_checked", "not_checked"]
    assert [e["reason"] for e in report["entries"]] == [TIMED_OUT_REASON] * 2
    assert report["totals"]["counted"] == 0
    assert report["requirement"]["met"] is False
    assert "2 credential(s) not checked against the chain" in report["requirement"]["detail"]


def test_one_portfolio_in_flight_per_client(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    body = json.dumps({"bundles": bundles[:1]}).encode()
    with service.client() as http:
        def send() -> httpx.Response:
            return http.post(PATH, content=body, headers={"Content-Type": "application/json"})

        refused, holder = refused_while_held(service.url, PATH, body, send)
        try:
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "busy"
            assert refused.json()["detail"] == (
                "1 portfolio verifications from your address are in flight, the most it may "
                "have at once: retry in 1 s")
            # Single verifications have their own slots: they go on.
            single = http.post("/v1/verify", content=json.dumps(bundles[0]).encode(),
                               headers={"Content-Type": "application/json"})
            assert single.status_code == 200, single.text
            assert single.json()["valid"] is True
            holder.sendall(body)
            assert read_answer(holder).startswith(b"HTTP/1.1 200")
        finally:
            holder.close()
        assert send().status_code == 200
