"""/v1/admin/recognitions over real HTTP (uvicorn) on a chain of its own: record, list and
withdraw as the registry then holds them, signed with the recogniser's own key (a served
issuer's, or a body's keystore in the keystore folder); admin tokens only; every bad input and
every refusal of the registry a 4xx with a message, nothing recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from anchor_service.keystore import write_keystore
from tests.anchor_service.harness import Service, service_on_fresh_chain
from verifier.contract_types import Recognition, Scope, read

BODY_DID = "did:web:body.example"
UNI_A = "did:web:uni-a.example"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("admin-recognitions")
    with service_on_fresh_chain(data, max_body_bytes=1 << 20) as running:
        # The body's anchoring key in the keystore folder: the service may act for the body.
        write_keystore(data / "keys", running.world.body, "pw", scrypt_cost=2**10)
        yield running


def _on_chain(service: Service, recognition_id: int) -> Recognition:
    return read(Recognition, service.world.registry.functions.recognition(recognition_id))


def _count(service: Service) -> int:
    return int(service.world.registry.functions.recognitionCount().call())


def test_record_list_and_withdraw(service: Service) -> None:
    world = service.world
    with service.client(service.admin) as http:
        made = http.post("/v1/admin/recognitions", json={
            "recogniser": world.issuer_id, "subject": BODY_DID,
            "kinds": ["formal-degree", "non-formal"], "validFrom": 1_600_000_000})
        assert made.status_code == 201, made.text
        body = made.json()
        on_chain = _on_chain(service, body["id"])
        assert body == on_chain.to_dict()
        assert (on_chain.recogniser_id, on_chain.subject_id) == (world.issuer_id, world.body_id)
        assert on_chain.scope == Scope.FORMAL_DEGREE | Scope.NON_FORMAL
        assert body["validUntil"] is None
        assert body["withdrawnAt"] is None

        listed = http.get("/v1/admin/recognitions",
                          params={"recogniser": UNI_A, "subject": str(world.body_id)})
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"recogniserId": world.issuer_id, "subjectId": world.body_id,
                                 "recognitions": [body]}

        withdrawn = http.post(f"/v1/admin/recognitions/{body['id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["withdrawnAt"] == _on_chain(service, body["id"]).withdrawn_at
        assert withdrawn.json()["withdrawnAt"] is not None

        again = http.post(f"/v1/admin/recognitions/{body['id']}/withdraw")
        assert again.status_code == 409
        assert again.json()["error"] == "already_withdrawn"
        assert f"recognition {body['id']} is already withdrawn" in again.json()["detail"]


def test_a_body_acts_with_its_key_from_the_keystore_folder(service: Service) -> None:
    world = service.world
    with service.client(service.admin) as http:
        made = http.post("/v1/admin/recognitions", json={
            "recogniser": BODY_DID, "subject": world.issuer_id, "kinds": ["formal-non-degree"],
            "validFrom": 1_600_000_000, "validUntil": 1_900_000_000})
        assert made.status_code == 201, made.text
        on_chain = _on_chain(service, made.json()["id"])
        assert (on_chain.recogniser_id, on_chain.subject_id) == (world.body_id, world.issuer_id)
        assert (on_chain.valid_from, on_chain.valid_until) == (1_600_000_000, 1_900_000_000)


def test_routes_take_an_admin_token(service: Service) -> None:
    routes = (("post", "/v1/admin/recognitions", {"recogniser": 1, "subject": 2,
                                                  "kinds": ["non-formal"]}),
              ("post", "/v1/admin/recognitions/1/withdraw", None),
              ("get", "/v1/admin/recognitions?recogniser=1&subject=2", None))
    before = _count(service)
    for token, status in ((None, 401), (service.issuer_token, 403)):
        with service.client(token) as http:
            for method, path, body in routes:
                answer = http.request(method, path, json=body)
                assert answer.status_code == status, (path, answer.text)
                assert answer.json()["detail"]
    assert _count(service) == before


def _bad_posts(service: Service) -> list[tuple[dict[str, Any], int, str, str]]:
    world = service.world
    ok = {"recogniser": world.issuer_id, "subject": BODY_DID, "kinds": ["non-formal"]}
    return [
        ({**ok, "subject": world.issuer_id}, 409, "self_recognition",
         "cannot record a recognition of itself"),
        ({**ok, "validFrom": 2000, "validUntil": 1000}, 409, "invalid_window",
         "validUntil (1000) must be after validFrom (2000)"),
        ({**ok, "kinds": ["informal"]}, 422, "invalid_request", "kinds"),
        ({**ok, "kinds": []}, 422, "invalid_request", "kinds"),
        ({**ok, "kinds": "non-formal"}, 422, "invalid_request", "kinds"),
        ({**ok, "subject": "did:web:nobody.example"}, 404, "unknown_entity",
         "subject: no entity with DID did:web:nobody.example"),
        ({**ok, "recogniser": 999}, 404, "unknown_entity", "recogniser: no entity 999"),
        ({**ok, "recogniser": 0}, 422, "invalid_request", "recogniser"),
        ({**ok, "recogniser": "uni-a"}, 422, "invalid_request", "recogniser"),
        ({**ok, "recogniser": 2**53}, 422, "invalid_request", "recogniser"),
        ({**ok, "validUntil": 2**40}, 422, "invalid_request", "validUntil"),
        ({**ok, "validFrom": -1}, 422, "invalid_request", "validFrom"),
        ({**ok, "extra": 1}, 422, "invalid_request", "extra"),
        ({**ok, "recogniser": world.revoked_id}, 409, "no_recogniser_key",
         f"holds no anchoring key of entity {world.revoked_id}"),
    ]


def test_bad_input_and_refusals_are_4xx_with_a_message(service: Service) -> None:
    before = _count(service)
    with service.client(service.admin) as http:
        for body, status, error, detail in _bad_posts(service):
            answer = http.post("/v1/admin/recognitions", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["error"] == error, (body, answer.text)
            assert detail in answer.json()["detail"], (body, answer.text)
        for path, status in (("/v1/admin/recognitions/424242/withdraw", 404),
                             ("/v1/admin/recognitions/0/withdraw", 422),
                             ("/v1/admin/recognitions/x/withdraw", 422)):
            answer = http.post(path)
            assert answer.status_code == status, (path, answer.text)
            assert answer.json()["detail"]
        for params, status in (({"recogniser": "1"}, 422),
                               ({"recogniser": "1", "subject": "999"}, 404),
                               ({"recogniser": "one", "subject": "2"}, 422),
                               ({"recogniser": "did:web:nobody.example", "subject": "2"}, 404)):
            answer = http.get("/v1/admin/recognitions", params=params)
            assert answer.status_code == status, (params, answer.text)
            assert answer.json()["detail"]
    assert _count(service) == before


def test_a_pair_takes_at_most_16(service: Service) -> None:
    """The registry's bound per pair, withdrawn ones included: the 17th is a 409."""
    world = service.world
    pair = {"recogniser": BODY_DID, "subject": world.revoked_id, "kinds": ["formal-degree"]}
    with service.client(service.admin) as http:
        for _ in range(16):
            assert http.post("/v1/admin/recognitions", json=pair).status_code == 201
        listed = http.get("/v1/admin/recognitions", params={
            "recogniser": str(world.body_id), "subject": str(world.revoked_id)})
        assert len(listed.json()["recognitions"]) == 16
        refused = http.post("/v1/admin/recognitions", json=pair)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "too_many_recognitions"
        assert "already has 16 recognitions" in refused.json()["detail"]


def test_the_openapi_has_separate_request_and_response_schemas(service: Service) -> None:
    with service.client() as http:
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
    assert {"RecognitionIn", "RecognitionOut", "RecognitionListOut"} <= set(schemas)
    assert "kinds" in schemas["RecognitionIn"]["properties"]
    assert "recordedAt" in schemas["RecognitionOut"]["properties"]

