"""POST /v1/verify and issuer signatures, over real HTTP (uvicorn) against anvil: a signature
is required unless the request asks ``?allowUnsigned=true``, and the report says which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.anchor_service.test_verify_limits import verify_service
from tests.verifier.wallet import anchored_bundles, register_signing_key, sign
from verifier.receipt import Bundle

JSON = {"Content-Type": "application/json"}
NOT_BOOL = "query.allowUnsigned: Input should be a valid boolean, unable to interpret input"
SIGNATURE_CHECKS = ("signature_valid", "signing_key_registered",
                    "signing_key_trusted_at_anchoring")


@pytest.fixture(scope="module")
def bundles(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    """A signed and an unsigned bundle of the world's issuer, anchored on anvil."""
    store = Store(tmp_path_factory.mktemp("verify-signatures") / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=anvil_world.issuer_id,
                     key_address=anvil_world.issuer.address, did="did:web:uni-a.example")
    register_signing_key(anvil_world)
    signed, unsigned = anchored_bundles(anvil_world, store, anvil_world.issuer,
                                        [sign(make_credential("api-signed")),
                                         make_credential("api-unsigned")], signed=False)
    store.close()
    return {"signed": signed, "unsigned": unsigned}


@pytest.fixture
def http(anvil_world: World, tmp_path: Path) -> Iterator[httpx.Client]:
    with verify_service(anvil_world, tmp_path, str(anvil_world.chain.rpc_url)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _statuses(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["name"]: c["status"] for c in checks}


def test_a_signed_bundle_reports_its_signature(http: httpx.Client,
                                               bundles: dict[str, Bundle]) -> None:
    signed = bundles["signed"]
    report = http.post("/v1/verify", content=signed.to_json(), headers=JSON).json()
    assert report["valid"] is True, report
    assert report["unsignedAllowed"] is False
    assert report["signature"]["verificationMethod"] \
        == signed.credential["proof"]["verificationMethod"]
    assert all(_statuses(report)[name] == "passed" for name in SIGNATURE_CHECKS)


def test_an_unsigned_bundle_needs_allow_unsigned(http: httpx.Client,
                                                 bundles: dict[str, Bundle]) -> None:
    unsigned = bundles["unsigned"].to_json()
    refused = http.post("/v1/verify", content=unsigned, headers=JSON)
    assert refused.status_code == 200
    report = refused.json()
    assert report["valid"] is False
    assert [n for n, s in _statuses(report).items() if s == "failed"] == ["signature_valid"]
    assert report["unsignedAllowed"] is False
    allowed = http.post("/v1/verify", params={"allowUnsigned": "true"}, content=unsigned,
                        headers=JSON).json()
    assert allowed["valid"] is True, allowed
    assert allowed["unsignedAllowed"] is True
    assert allowed["signature"] is None
    assert all(_statuses(allowed)[name] == "not_applicable" for name in SIGNATURE_CHECKS)
    bad = http.post("/v1/verify", params={"allowUnsigned": "perhaps"}, content=unsigned,
                    headers=JSON)
    assert bad.status_code == 422, bad.text


def test_allow_unsigned_is_documented(http: httpx.Client) -> None:
    operation = http.get("/openapi.json").json()["paths"]["/v1/verify"]["post"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "allowUnsigned"]
    assert parameter["in"] == "query"
    assert "not_applicable" in parameter["description"]
    assert parameter["schema"]["default"] is False


def test_the_query_is_read_and_refused_as_before(http: httpx.Client,
                                                 bundles: dict[str, Bundle]) -> None:
    """The route reads its query itself: a flag as pydantic reads a boolean ("yes", "on",
    "1"...), the last of repeated parameters, and a refusal in the words FastAPI's validation
    gave."""
    body = bundles["unsigned"].to_json()

    def verified(query: str) -> httpx.Response:
        return http.post(f"/v1/verify?{query}", content=body, headers=JSON)

    for query, allowed in (("allowUnsigned=yes", True), ("allowUnsigned=ON", True),
                           ("allowUnsigned=0", False), ("", False),
                           ("allowUnsigned=false&allowUnsigned=1", True)):
        answer = verified(query)
        assert answer.status_code == 200, (query, answer.text)
        assert answer.json()["unsignedAllowed"] is allowed, query
    # The refusals' words are those the route gave through FastAPI's validation (240953e).
    refusals = {query: verified(query) for query in (
        "allowUnsigned=maybe", "allowUnsigned=", "asOf=yesterday")}
    assert {query: (answer.status_code, answer.json()) for query, answer in refusals.items()
            } == {"allowUnsigned=maybe": (422, {"error": "invalid_request", "detail": NOT_BOOL}),
                  "allowUnsigned=": (422, {"error": "invalid_request", "detail": NOT_BOOL}),
                  "asOf=yesterday": (422, {"error": "invalid_request", "detail":
                                           "query.asOf: 'yesterday' is not an ISO 8601 "
                                           "date-time"})}
