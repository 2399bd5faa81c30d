"""POST /v1/portfolios/verify over real HTTP (uvicorn) on anvil: credentials with ECTS issued
and anchored through the service, verified as a portfolio (bundles, or one presentation);
the totals, duplicates, requirement and chain evidence of the answer; every malformed body
refused with a 4xx and a message; and the verification slots shared with POST /v1/verify
(503 with Retry-After while they are taken)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from anchor_service.api.portfolios import PortfolioReportOut
from anchor_service.samples import make_credential
from testkit.net import free_port
from testkit.world import World
from tests.anchor_service.harness import (
    Service,
    anchor_now,
    read_answer,
    refused_while_held,
    running_service,
)
from tests.anchor_service.test_verify_limits import verify_service
from verifier.portfolio import MAX_PORTFOLIO_ENTRIES

PATH = "/v1/portfolios/verify"
ISSUER = {"id": "did:web:uni-a.example", "name": "University A"}


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("portfolio"),
                         max_body_bytes=4 * 1024 * 1024, public_rate_limit=0) as running:
        yield running


def plain(tag: str, ects: float | str | None, kind: str | None,
          achievement: str | None = None) -> dict[str, Any]:
    """A credential in the plain form: credentialSubject.ectsCredits, learningScope."""
    subject: dict[str, Any] = {"name": "Zoë"}
    if ects is not None:
        subject["ectsCredits"] = ects
    if achievement is not None:
        subject["achievement"] = achievement
    extra: dict[str, Any] = {} if kind is None else {"learningScope": kind}
    return make_credential(tag, issuer=ISSUER, subject=subject, **extra)


def issue_all(service: Service, credentials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Submit, sign and anchor ``credentials`` through the service; their bundles."""
    with service.client(service.issuer_token) as client:
        accepted = client.post("/v1/credentials", json={"credentials": credentials})
        assert accepted.status_code in (200, 201, 202), accepted.text
        ids = [item["id"] for item in accepted.json()["accepted"]]
        anchor_now(client, ids)
        return [client.get(f"/v1/credentials/{i}/bundle").json() for i in ids]


@pytest.fixture(scope="module")
def bundles(service: Service) -> list[dict[str, Any]]:
    """0: 6 ECTS non-formal (achievement A); 1: 4.5 ECTS formal outside a programme;
    2: the same achievement A again (a duplicate); 3: 5 ECTS non-formal, tampered after
    anchoring (not valid); 4: no ECTS stated."""
    issued = issue_all(service, [
        plain("pf-0", 6, "non-formal", "urn:achievement:a"),
        plain("pf-1", "4.5", "formal-non-degree"),
        plain("pf-2", 6, "non-formal", "urn:achievement:a"),
        plain("pf-3", 5, "non-formal"),
        plain("pf-4", None, "non-formal"),
    ])
    issued[3]["credential"]["credentialSubject"]["ectsCredits"] = 50  # 5 ECTS become 50
    return issued


def post(service: Service, body: object, **headers: str) -> httpx.Response:
    with service.client() as client:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post(PATH, content=content,
                           headers={"Content-Type": "application/json", **headers})


def test_a_portfolio_of_bundles_is_verified_with_its_totals_and_evidence(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    answer = post(service, {"bundles": bundles, "requireEcts": 10,
                            "requireKind": "non-formal"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["format"] == "microcred-anchor-portfolio-report"
    # The answer is what the OpenAPI and the report's own JSON Schema document.
    PortfolioReportOut.model_validate(report)
    jsonschema.validate(report, json.loads(
        files("verifier").joinpath("schemas/portfolio-report-v1.schema.json").read_text("utf-8")))
    entries = report["entries"]
    assert [e["source"] for e in entries] == [f"bundles[{i}]" for i in range(5)]
    assert [e["verdict"] for e in entries] == ["valid", "valid", "valid", "not_valid", "valid"]
    assert [e["counted"] for e in entries] == [True, True, False, False, False]
    assert [e["credits"]["ects"] for e in entries] == [6, 4.5, 6, 50, None]
    assert entries[2]["duplicateOf"] == 0
    assert "same achievement" in entries[2]["reason"]
    assert "digest_matches" in entries[3]["reason"]
    assert entries[4]["reason"].startswith("ECTS unknown")
    assert all(e["issuer"]["did"] == ISSUER["id"] for e in entries if e["verdict"] == "valid")

    totals = report["totals"]
    assert totals["ects"] == 10.5
    assert totals["byKind"] == {"formal-degree": 0, "formal-non-degree": 4.5, "non-formal": 6}
    assert totals["counted"] == 2
    assert [d["index"] for d in totals["duplicates"]] == [2]
    (institution,) = totals["byInstitution"]
    assert institution["issuerDid"] == ISSUER["id"]
    assert institution["entityId"] == service.world.issuer_id
    assert institution["ects"] == 10.5

    requirement = report["requirement"]
    assert requirement["met"] is False
    assert requirement["have"] == 6
    assert "short by 4 ECTS" in requirement["detail"]

    # The evidence: the block every answer was read at, as the chain has it.
    chain = report["chain"]
    w3 = service.world.chain.w3
    block = w3.eth.get_block(chain["blockNumber"])
    assert chain["blockHash"] == "0x" + bytes(block["hash"]).hex()
    assert chain["blockTime"] == block["timestamp"]
    assert chain["chainId"] == w3.eth.chain_id
    newest = max(b["receipt"]["anchor"]["blockNumber"] for b in bundles)
    assert chain["blockNumber"] >= newest

    # A re-check as of that block's time gives the same answers.
    as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(chain["blockTime"]))
    again = post(service, {"bundles": bundles, "requireEcts": 10, "asOf": as_of})
    assert again.status_code == 200, again.text
    assert again.json()["totals"]["ects"] == 10.5
    assert again.json()["requirement"]["met"] is True
    assert again.json()["asOf"] == chain["blockTime"]
    # ... and so does blockTime itself, as the report gives it (Unix seconds).
    by_seconds = post(service, {"bundles": bundles, "requireEcts": 10,
                                "asOf": chain["blockTime"]})
    assert by_seconds.status_code == 200, by_seconds.text
    assert by_seconds.json()["totals"] == again.json()["totals"]
    assert by_seconds.json()["asOf"] == chain["blockTime"]


def test_a_presentation_is_verified_and_its_issuer_recognises_itself(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [b["credential"] for b in bundles[:2]],
        "anchorReceipts": [b["receipt"] for b in bundles[:2]],
    }
    answer = post(service, {"presentation": presentation, "recognisedBy": ISSUER["id"]})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [e["source"] for e in report["entries"]] == [
        "verifiableCredential[0]", "verifiableCredential[1]"]
    assert report["recognisedBy"] == {"did": ISSUER["id"],
                                      "entityId": service.world.issuer_id}
    assert [e["recognition"]["path"] for e in report["entries"]] == ["self", "self"]
    assert report["totals"]["ects"] == 10.5
    assert report["requirement"] is None


def _bad_inputs(bundle: dict[str, Any]) -> list[tuple[str, object, int, str]]:
    """(what, body, status, text in the answer's detail)."""
    one = [bundle]
    presentation = {"type": "VerifiablePresentation", "verifiableCredential": [],
                    "anchorReceipts": []}
    return [
        ("not JSON", b"{bundles: [", 400, "invalid JSON"),
        ("an empty body", b"", 422, "send a portfolio"),
        ("not an object", [bundle], 400, "top level must be a JSON object"),
        ("a duplicate key", b'{"bundles": [], "bundles": []}', 400, "duplicate"),
        ("neither portfolio", {"requireEcts": 5}, 422, "exactly one of"),
        ("both portfolios", {"bundles": one, "presentation": presentation}, 422,
         "exactly one of"),
        ("bundles not a list", {"bundles": bundle}, 422, "bundles"),
        ("no bundles", {"bundles": []}, 422, "bundles"),
        ("a bundle not an object", {"bundles": ["x"]}, 422, "bundles.0"),
        ("presentation not an object", {"presentation": []}, 422, "presentation"),
        ("null presentation", {"presentation": None}, 422, "presentation"),
        ("not a presentation", {"presentation": {"type": "VerifiableCredential"}}, 422,
         "not a VerifiablePresentation"),
        ("credentials not a list", {"presentation": {**presentation,
                                                     "verifiableCredential": 5}}, 422,
         "verifiableCredential is not an array"),
        ("a DID that is not one", {"bundles": one, "recognisedBy": "uni-a"}, 422,
         "recognisedBy"),
        ("a DID not a string", {"bundles": one, "recognisedBy": 7}, 422, "recognisedBy"),
        ("an unknown DID", {"bundles": one, "recognisedBy": "did:web:nobody.example"}, 409,
         "not in the registry"),
        ("a null member", {"bundles": one, "asOf": None}, 422, "asOf: must not be null"),
        ("negative ECTS", {"bundles": one, "requireEcts": -1}, 422, "requireEcts"),
        ("zero ECTS", {"bundles": one, "requireEcts": 0}, 422, "requireEcts"),
        ("ECTS as a string", {"bundles": one, "requireEcts": "10"}, 422, "requireEcts"),
        ("ECTS as a boolean", {"bundles": one, "requireEcts": True}, 422, "requireEcts"),
        ("too many ECTS", {"bundles": one, "requireEcts": 10**9}, 422, "requireEcts"),
        ("more ECTS than the library takes", {"bundles": one, "requireEcts": 200_000}, 422,
         "requireEcts"),
        ("ECTS to three decimals", {"bundles": one, "requireEcts": 0.001}, 422, "requireEcts"),
        ("an unknown kind", {"bundles": one, "requireEcts": 5, "requireKind": "informal"},
         422, "requireKind"),
        ("a kind without ECTS", {"bundles": one, "requireKind": "non-formal"}, 422,
         "requireKind"),
        ("a date that is not one", {"bundles": one, "asOf": "yesterday"}, 422, "asOf"),
        ("a date without a zone", {"bundles": one, "asOf": "2026-01-01T00:00:00"}, 422,
         "asOf"),
        ("a date after year 9999 in UTC", {"bundles": one,
                                           "asOf": "9999-12-31T23:59:59-14:00"}, 422,
         "asOf: '9999-12-31T23:59:59-14:00' is out of range"),
        ("a date before 1970", {"bundles": one, "asOf": "1969-12-31T23:59:59Z"}, 422,
         "asOf: '1969-12-31T23:59:59Z' is out of range"),
        ("negative seconds", {"bundles": one, "asOf": -1}, 422, "asOf"),
        ("seconds after year 9999", {"bundles": one, "asOf": 253_402_300_800}, 422, "asOf"),
        ("seconds as a boolean", {"bundles": one, "asOf": True}, 422, "asOf"),
        ("seconds as a float", {"bundles": one, "asOf": 1.5}, 422, "asOf"),
        ("an unknown member", {"bundles": one, "recognizedBy": "did:web:x"}, 422,
         "recognizedBy"),
        ("too many bundles", {"bundles": [{}] * (MAX_PORTFOLIO_ENTRIES + 1)}, 422,
         f"at most {MAX_PORTFOLIO_ENTRIES}"),
        ("too many credentials", {"presentation": {
            **presentation, "verifiableCredential": [{}] * (MAX_PORTFOLIO_ENTRIES + 1)}},
         422, f"at most {MAX_PORTFOLIO_ENTRIES}"),
        ("nested too deep", b'{"bundles": [' + b"[" * 200 + b"]" * 200 + b"]}", 400,
         "nested"),
    ]


def test_every_malformed_body_is_refused_with_a_4xx_and_a_message(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    failures = []
    for what, body, status, text in _bad_inputs(bundles[0]):
        answer = post(service, body)
        detail = answer.json().get("detail", "") if answer.headers.get(
            "content-type", "").startswith("application/json") else answer.text
        if answer.status_code != status or text not in detail:
            failures.append(f"{what}: {answer.status_code} {answer.text[:300]}")
    assert failures == []


def test_a_body_over_the_verification_limit_or_not_json_is_refused(
        service: Service, bundles: list[dict[str, Any]]) -> None:
    # The public verification limit (verify_max_body_bytes, 1 MiB by default), not the
    # service-wide one (4 MiB here).
    text = json.dumps({"bundles": bundles[:1]}).encode()
    padded = text + b" " * (2**20 - len(text))
    assert post(service, padded).status_code == 200
    over = post(service, padded + b" ")
    assert over.status_code == 413, over.text
    assert over.json()["error"] == "body_too_large"
    wrong = post(service, text, **{"Content-Type": "text/plain"})
    assert wrong.status_code == 415, wrong.text


def test_portfolios_share_the_verification_slots_and_get_503_when_busy(
        anvil_world: World, bundles: list[dict[str, Any]], tmp_path: Path) -> None:
    body = json.dumps({"bundles": bundles[:1]}).encode()
    with verify_service(anvil_world, tmp_path, str(anvil_world.chain.rpc_url),
                        verify_concurrency=1) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        def send() -> httpx.Response:
            return http.post(PATH, content=body, headers={"Content-Type": "application/json"})

        refused, holder = refused_while_held(url, PATH, body, send)
        try:
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "busy"
            assert "1 verifications are in flight" in refused.json()["detail"]
            # The single-bundle route draws on the same slots.
            assert http.post("/v1/verify", content=json.dumps(bundles[0]).encode(),
                             headers={"Content-Type": "application/json"}).status_code == 503
            holder.sendall(body)
            assert read_answer(holder).startswith(b"HTTP/1.1 200")
        finally:
            holder.close()
        answer = send()
        assert answer.status_code == 200, answer.text
        assert answer.json()["entries"][0]["verdict"] == "valid"


def test_a_chain_that_cannot_be_read_is_a_503_not_a_500(
        anvil_world: World, bundles: list[dict[str, Any]], tmp_path: Path) -> None:
    # Nothing listens on this port: the service starts, and cannot read the chain.
    dead = f"http://127.0.0.1:{free_port()}"
    with verify_service(anvil_world, tmp_path, dead) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post(PATH, json={"bundles": bundles[:1]})
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "chain_unavailable"
    assert "the chain cannot be read" in answer.json()["detail"]
