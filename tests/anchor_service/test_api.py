"""The HTTP API over real HTTP (uvicorn on loopback), on a real SQLite file, against the
contracts on the in-process chain and on anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor_service import __version__
from anchor_service.api.schemas import SubmitOut
from anchor_service.samples import make_credential
from localchain import LocalChain
from testkit.net import check_inclusion
from testkit.world import build_world, check_on_chain
from tests.anchor_service.harness import Service, anchor_now, running_service
from verifier.bitstring import status_entries
from verifier.contract_types import StatusBits, StatusPurpose, read
from verifier.credential import credential_digest
from verifier.receipt import Bundle, Receipt

MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def service(chain: LocalChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(build_world(chain), tmp_path_factory.mktemp("service"),
                         max_body_bytes=MAX_BODY) as running:
        yield running


def test_submit_anchor_and_fetch_receipts(service: Service) -> None:
    credentials = [make_credential(f"e2e-{n}") for n in range(3)]
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": credentials})
        assert answer.status_code == 202, answer.text
        SubmitOut.model_validate(answer.json())  # the documented shape
        accepted = answer.json()["accepted"]
        assert [a["created"] for a in accepted] == [True, True, True]
        ids = [a["id"] for a in accepted]
        assert client.get(f"/v1/credentials/{ids[0]}/receipt").status_code == 409
        anchor_now(client, ids)
        for credential, public_id in zip(credentials, ids, strict=True):
            receipt = Receipt.from_json(client.get(f"/v1/credentials/{public_id}/receipt").text)
            check_inclusion(receipt)
            check_on_chain(service.world, receipt)
            bundle = Bundle.from_json(client.get(f"/v1/credentials/{public_id}/bundle").text)
            # The issuer has a signing key: the credential anchored is the signed one.
            signed = dict(bundle.credential)
            assert signed.pop("proof")["cryptosuite"] == "eddsa-jcs-2022"
            # ...with its status entries, at the position the receipt carries.
            urls = {purpose: "https://uni-a.example/issuers/uni-a/status-lists/"
                    f"{receipt.status_list}/{purpose}" for purpose in StatusPurpose}
            assert signed.pop("credentialStatus") == status_entries(urls,
                                                                    receipt.status_list_index)
            assert signed == credential
            assert receipt.credential_digest == credential_digest(bundle.credential)
        batches = client.get("/v1/batches").json()
        assert batches[0]["state"] == "anchored"


def test_submission_is_idempotent_and_takes_digests(service: Service) -> None:
    credential = make_credential("idempotent")
    digest = "0x" + credential_digest(make_credential("private")).hex()
    with service.client(service.issuer_token) as client:
        first = client.post("/v1/credentials", json={"credentials": [credential]}).json()
        again = client.post("/v1/credentials", json={"credentials": [credential]}).json()
        assert again["accepted"][0]["id"] == first["accepted"][0]["id"]
        assert again["accepted"][0]["created"] is False
        by_digest = client.post("/v1/credentials", json={"digests": [digest]})
        assert by_digest.status_code == 202
        public_id = by_digest.json()["accepted"][0]["id"]
        assert client.get(f"/v1/credentials/{public_id}").json()["digest"] == digest
        anchor_now(client, [public_id])
        assert client.get(f"/v1/credentials/{public_id}/receipt").status_code == 200
        bundle = client.get(f"/v1/credentials/{public_id}/bundle")
        assert bundle.status_code == 404
        assert "submitted as a digest" in bundle.json()["detail"]


def test_bulk_submission_of_1000(service: Service) -> None:
    with service.client(service.issuer_token) as client:
        answer = client.post(
            "/v1/credentials",
            json={"digests": ["0x" + n.to_bytes(32, "big").hex() for n in range(1, 1001)]},
        )
        assert answer.status_code == 202
        assert answer.json()["count"] == 1000


def test_authentication_and_isolation(service: Service) -> None:
    with service.client(service.issuer_token) as mine:
        public_id = mine.post(
            "/v1/credentials", json={"credentials": [make_credential("isolated")]}
        ).json()["accepted"][0]["id"]
        anchor_now(mine, [public_id])
    with service.client() as anonymous:
        answer = anonymous.post("/v1/credentials", json={"digests": ["0x" + "11" * 32]})
        assert answer.status_code == 401
        assert "Bearer" in answer.json()["detail"]
    with service.client("mca_not-a-token") as forged:
        assert forged.get(f"/v1/credentials/{public_id}").status_code == 401
    with service.client(service.admin) as admin:
        assert admin.get(f"/v1/credentials/{public_id}").status_code == 403
    with service.client(service.issuer_token) as issuer:
        assert issuer.post("/v1/admin/tokens", json={"role": "admin"}).status_code == 403
    with service.client(service.other_token) as other:
        for path in ("", "/receipt", "/bundle"):
            answer = other.get(f"/v1/credentials/{public_id}{path}")
            assert answer.status_code == 404, path
        assert other.post(f"/v1/credentials/{public_id}/revoke", json={}).status_code == 404
        assert other.get("/v1/batches").json() == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"credentials": [', 400, "invalid JSON"),
        (b'{"credentials": [{"a": NaN}]}', 400, "NaN"),
        (b'{"credentials": [{"a": 1, "a": 2}]}', 400, "duplicate key"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"credentials": "x"}', 422, "credentials"),
        (b'{"credentials": [1]}', 422, "credentials.0"),
        (b'{"credentials": [{"a": 1}], "extra": 1}', 422, "extra"),
        (b'{"credentials": [{"a": 1}], "digests": ["0x' + b"11" * 32 + b'"]}', 422, "exactly one"),
        (b'{"credentials": []}', 422, "at least 1 item"),
        (b'{"digests": ["0x1234"]}', 422, "digests.0"),
        (b'{"credentials": [{"n": 12345678901234567890}]}', 400, "integer 12345678901234567890"),
        (b'{"credentials": [{"n": 9007199254740993}]}', 422, "credentials[0].n: integer"),
        (b'{"credentials": [{"n": 1e16}]}', 422, "credentials[0].n: number"),
        (
            b'{"digests": [' + b",".join(b'"0x' + b"%064x" % n + b'"' for n in range(1001)) + b"]}",
            413,
            "at most 1000",
        ),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    service: Service, body: bytes, status: int, message: str
) -> None:
    before = service.store.pending(service.issuer_id)[0], len(service.store.batches())
    with service.client(service.issuer_token) as client:
        answer = client.post(
            "/v1/credentials", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    assert (service.store.pending(service.issuer_id)[0], len(service.store.batches())) == before


def test_out_of_range_query_numbers_are_422(service: Service) -> None:
    with service.client(service.issuer_token) as client:  # found by schemathesis: was a 500
        answer = client.get("/v1/batches", params={"before": 2**88})
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("query.before: ")


def test_oversized_bodies_and_unknown_ids(service: Service) -> None:
    with service.client(service.issuer_token) as client:
        huge = client.post(
            "/v1/credentials",
            content=b"x" * (MAX_BODY + 1),
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        assert "over" in huge.json()["detail"]

        def chunks() -> Iterator[bytes]:
            for _ in range(MAX_BODY // 1024 + 2):
                yield b" " * 1024

        streamed = client.post(
            "/v1/credentials", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        missing = client.get("/v1/credentials/does-not-exist/receipt")
        assert missing.status_code == 404
        assert "does-not-exist" in missing.json()["detail"]
        assert client.post("/v1/credentials/nope/revoke", json={"reason": 300}).status_code == 422


def test_a_wrong_method_is_405_with_the_paths_methods(service: Service) -> None:
    """The Allow header names what the path takes (RFC 9110: a 405 must carry one): a path
    of its own, not the parameterised one it also matches."""
    with service.client(service.issuer_token) as client:
        answers = {path: client.request(method, path) for method, path in (
            ("GET", "/v1/credentials"), ("DELETE", "/v1/credentials/some-id"),
            ("DELETE", "/v1/credentials/revoke"), ("PUT", "/v1/credentials/some-id/revoke"))}
    allowed = {path: (answer.status_code, answer.headers.get("Allow"))
               for path, answer in answers.items()}
    assert allowed == {"/v1/credentials": (405, "POST"),
                       "/v1/credentials/some-id": (405, "GET"),
                       "/v1/credentials/revoke": (405, "POST"),
                       "/v1/credentials/some-id/revoke": (405, "POST")}
    assert all(answer.json()["error"] == "http_error" for answer in answers.values())


def test_revoke_suspend_reinstate_on_chain(service: Service) -> None:
    anchor, entity = service.world.anchor, service.world.issuer_id
    with service.client(service.issuer_token) as client:
        public_id = client.post(
            "/v1/credentials", json={"credentials": [make_credential("status")]}
        ).json()["accepted"][0]["id"]
        record = service.store.credential(public_id)
        assert record is not None
        assert record.status is not None
        position = (entity, record.status.list, record.status.index)

        def bits() -> StatusBits:
            return read(StatusBits, anchor.functions.statusOf(*position))

        # Status needs no anchor: a credential still waiting for its batch can be suspended.
        assert client.post(f"/v1/credentials/{public_id}/suspend", json={"reason": 2}).is_success
        assert bits() == StatusBits(revoked=False, suspended=True)
        anchor_now(client, [public_id])
        receipt = Receipt.from_json(client.get(f"/v1/credentials/{public_id}/receipt").text)
        assert (receipt.status_list, receipt.status_list_index) == position[1:]
        assert client.post(f"/v1/credentials/{public_id}/reinstate", json={}).is_success
        assert bits() == StatusBits(revoked=False, suspended=False)
        revoked = client.post(f"/v1/credentials/{public_id}/revoke", json={"reason": 1})
        assert revoked.status_code == 200
        assert revoked.json()["transactionHash"].startswith("0x")
        assert bits() == StatusBits(revoked=True, suspended=False)


def test_operations_endpoints(service: Service) -> None:
    with service.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "version": __version__}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        metrics = client.get("/metrics").text
        assert "microcred_queue_depth" in metrics
        assert "microcred_batch_size_count" in metrics
        schema = client.get("/openapi.json").json()
        assert "/v1/credentials" in schema["paths"]
        assert "requestBody" in schema["paths"]["/v1/credentials"]["post"]
    with service.client(service.issuer_token) as client:
        issuers = {i["name"]: i for i in client.get("/v1/registry/issuers").json()}
        assert issuers["uni-a"]["did"] == "did:web:uni-a.example"
        assert issuers["uni-a"]["status"] == "active"
        assert issuers["uni-a"]["scope"] == ["formal-degree", "formal-non-degree", "non-formal"]
        assert issuers["uni-b"]["status"] == "revoked"


def test_admin_routes_check_the_chain(service: Service) -> None:
    with service.client(service.admin) as admin:
        wrong_key = admin.post(
            "/v1/admin/issuers",
            json={
                "name": "x",
                "entityId": service.world.issuer_id,
                "keyAddress": service.world.stranger.address,
            },
        )
        assert wrong_key.status_code == 409  # well formed, but not what the registry says
        assert "is not a key of registry entity" in wrong_key.json()["detail"]
        body = admin.post(
            "/v1/admin/issuers",
            json={
                "name": "y",
                "entityId": service.world.body_id,
                "keyAddress": service.world.body.address,
            },
        )
        assert body.status_code == 409
        assert "not an issuer" in body.json()["detail"]
        assert admin.post("/v1/admin/tokens", json={"role": "issuer"}).status_code == 422
        unknown = admin.post("/v1/admin/tokens", json={"role": "issuer", "issuerId": 999})
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == "issuerId: no issuer 999"
        assert json.loads(admin.post("/v1/admin/tokens", json={"role": "admin"}).text)["token"]


def _submit_cli(service: Service, path: Path, *, timeout: float,
                ) -> subprocess.CompletedProcess[str]:
    """``anchor-service submit PATH`` through the service, with the issuer's token."""
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", "submit", str(path), "--url", service.url,
         "--quiet"],
        env={**os.environ, "MICROCRED_TOKEN": service.issuer_token},
        capture_output=True, text=True, timeout=timeout, check=False)


def test_cli_submits_a_folder_and_a_jsonl_file(service: Service, tmp_path: Path) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    for n in range(4):
        credential = json.dumps(make_credential(f"cli-{n}"))
        (folder / f"c{n}.json").write_text(credential, encoding="utf-8")
    lines = tmp_path / "more.jsonl"
    lines.write_text(
        "\n".join(json.dumps(make_credential(f"cli-l{n}")) for n in range(3)) + "\n",
        encoding="utf-8",
    )
    for path in (folder, lines):
        result = _submit_cli(service, path, timeout=180)
        assert result.returncode == 0, result.stderr
    written = sorted(folder.glob("*.bundle.json"))
    assert [p.name for p in written] == [f"c{n}.bundle.json" for n in range(4)]
    jsonl_bundles = (tmp_path / "more.bundles.jsonl").read_text(encoding="utf-8").splitlines()
    for n, text in enumerate([p.read_text(encoding="utf-8") for p in written] + jsonl_bundles):
        bundle = Bundle.from_json(text)
        assert bundle.credential["id"] in {f"urn:test:cli-{n}", f"urn:test:cli-l{n - 4}"}
        receipt = bundle.receipt
        assert receipt.credential_digest == credential_digest(bundle.credential)
        check_inclusion(receipt)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "good.json").write_text(json.dumps(make_credential("never-sent")), encoding="utf-8")
    (bad / "x.json").write_text('{"score": NaN}', encoding="utf-8")
    result = _submit_cli(service, bad, timeout=120)
    assert result.returncode == 2
    assert "x.json" in result.stderr
    assert "NaN" in result.stderr
    assert "Traceback" not in result.stderr
    # The bad file is left out; the good one is anchored all the same.
    assert sorted(p.name for p in bad.glob("*.bundle.json")) == ["good.bundle.json"]


def test_verify_endpoint_reports_every_check(service: Service) -> None:
    with service.client(service.issuer_token) as client:
        public_id = client.post(
            "/v1/credentials", json={"credentials": [make_credential("verify-endpoint")]}
        ).json()["accepted"][0]["id"]
        anchor_now(client, [public_id])
        bundle = client.get(f"/v1/credentials/{public_id}/bundle").text
    with service.client() as anyone:  # no token needed
        report = anyone.post("/v1/verify", content=bundle,
                             headers={"Content-Type": "application/json"})
        assert report.status_code == 200
        assert report.json()["valid"] is True, report.json()
        assert report.json()["issuerDid"] == "did:web:uni-a.example"
        forged = json.loads(bundle)
        forged["credential"]["id"] = "urn:forged"
        answer = anyone.post("/v1/verify", json=forged).json()
        assert answer["valid"] is False
        failed = [c["name"] for c in answer["checks"] if c["status"] == "failed"]
        assert failed == ["digest_matches"]
        before = anyone.post("/v1/verify", params={"asOf": "2020-01-01T00:00:00Z"},
                             content=bundle, headers={"Content-Type": "application/json"})
        assert before.status_code == 200
        assert before.json()["asOf"] == 1577836800
        assert [c["name"] for c in before.json()["checks"] if c["status"] == "failed"] == [
            "anchored_on_chain"]
        for bad in ("2020-01-01T00:00:00", "soon"):
            refused = anyone.post("/v1/verify", params={"asOf": bad}, content=bundle,
                                  headers={"Content-Type": "application/json"})
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"].startswith("query.asOf: ")
        # JSON that is not a bundle gets a report; text that is not JSON is a 400.
        other = anyone.post("/v1/verify", content=b'{"format": "something else"}',
                            headers={"Content-Type": "application/json"}).json()
        assert [c["name"] for c in other["checks"] if c["status"] == "failed"] == [
            "receipt_well_formed"]
        junk = anyone.post("/v1/verify", content=b"{nope",
                           headers={"Content-Type": "application/json"})
        assert junk.status_code == 400, junk.text
        assert junk.json() == {"error": "invalid_json", "detail": "bundle: invalid JSON at "
                               "line 1 column 2: Expecting property name enclosed in double "
                               "quotes"}


def test_rate_limits_answer_429_per_token_and_per_address(
    service: Service, tmp_path: Path
) -> None:
    with (
        running_service(service.world, tmp_path, max_body_bytes=MAX_BODY, rate_limit=1,
                        rate_limit_burst=5, public_rate_limit=1,
                        public_rate_limit_burst=2) as limited,
        limited.client(limited.issuer_token) as client,
    ):
        answers = [client.get("/v1/batches") for _ in range(8)]
        assert [a.status_code for a in answers[:5]] == [200] * 5
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        with limited.client(limited.other_token) as other:
            assert other.get("/v1/batches").status_code == 200  # its own bucket
        with limited.client() as anyone:
            assert {anyone.get("/healthz").status_code for _ in range(20)} == {200}
            public = [anyone.post("/v1/verify", json={}).status_code
                      for _ in range(4)]
            assert public[:2] == [200, 200]
            assert public[-1] == 429
        time.sleep(1.1)  # one request a second comes back
        assert client.get("/v1/batches").status_code == 200
        # Made-up tokens do not each buy a bucket: their 401s count against the address.
        with limited.client() as guesser:
            time.sleep(2.1)  # the address bucket refills (1 a second, burst 2)
            guesses = [guesser.get("/v1/batches", headers={
                "Authorization": f"Bearer mca_guess{n}"}).status_code for n in range(5)]
            assert guesses[:2] == [401, 401]
            assert guesses[-1] == 429
