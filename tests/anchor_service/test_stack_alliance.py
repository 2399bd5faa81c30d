"""`anchor-service stack` seeds a demo alliance, as a real process: the body and its three
universities are on chain as the start-up summary prints them, the recognitions among them
answer as described (through the body, direct for the formal kinds only, withdrawn), each
university's credentials are signed and anchored by the stack, the admin API lists the
recognitions, and a restart reuses all of it; a first run interrupted part way (a university
accredited without its key, a signing key not registered, recognitions not recorded) is
completed by the next one, and a third records nothing."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from anchor_service.chain import Deployment, Transactor, accredit, deploy, load_deployment
from anchor_service.demo_alliance import (
    ALLIANCE_DID,
    UNIVERSITIES,
    Alliance,
    did_of,
    seed_alliance,
)
from anchor_service.migrations import upgrade
from anchor_service.recognitions import recognise
from anchor_service.signing import SigningKeys
from anchor_service.store import Store
from localchain import AnvilChain
from testkit.net import check_inclusion, free_port, wait_until_up
from verifier.contract_types import (
    ALL_SCOPES,
    Entity,
    Kind,
    Recognition,
    RecognitionAnswer,
    RecognitionPath,
    Scope,
    read,
    signing_key_id,
)
from verifier.data_integrity import verify_proof
from verifier.multikey import Multikey
from verifier.receipt import Bundle

if TYPE_CHECKING:
    from web3.contract import Contract

_BODY = re.compile(r"Demo alliance: Demo Alliance, body (\d+) \((did:\S+)\)")
_UNI = re.compile(r"  (alliance-uni-[abc]): entity (\d+)  (did:\S+)  issuer token (\S+)")
_RECOGNITION = re.compile(r"recognition (\d+): (\S+) \(entity (\d+)\) recognises (.+?) "
                          r"\(entity (\d+)\) for ([a-z,-]+): .*; (active|withdrawn from \S+)")


def _start(data: Path, port: int, chain_port: int, log: IO[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "anchor_service", "stack", "--data-dir", str(data), "--port",
         str(port), "--chain-port", str(chain_port)],
        stdout=subprocess.DEVNULL, stderr=log, text=True)
    wait_until_up(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def _summary(text: str) -> dict[str, Any]:
    body = _BODY.search(text)
    assert body is not None, text
    return {"body": (int(body[1]), body[2]),
            "universities": {m[1]: (int(m[2]), m[3], m[4]) for m in _UNI.finditer(text)},
            "recognitions": [(int(m[1]), m[2], int(m[3]), m[4], int(m[5]), m[6], m[7])
                             for m in _RECOGNITION.finditer(text)]}


def _anchor_one(url: str, token: str, did: str, tag: str) -> Bundle:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as http:
        answer = http.post("/v1/credentials", json={"credentials": [
            {"id": f"urn:alliance:{tag}", "issuer": {"id": did},
             "credentialSubject": {"name": "Zoë", "ectsCredits": 5},
             "learningScope": "formal-non-degree"}]})
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        assert http.post("/v1/batches").status_code == 202
        deadline = time.monotonic() + 30
        while (bundle := http.get(f"/v1/credentials/{public_id}/bundle")).status_code != 200:
            assert time.monotonic() < deadline, bundle.text
            time.sleep(0.1)
    return Bundle.from_json(bundle.text)


def _check_entities(registry: Contract, printed: dict[str, Any], tokens: dict[str, str],
                    url: str) -> dict[str, int]:
    """The body and universities are on chain as printed, and the stack signs and anchors
    each university's credentials; the universities' entity ids by name."""
    body_id, body_did = printed["body"]
    assert body_did == ALLIANCE_DID
    body = read(Entity, registry.functions.entity(body_id))
    assert (body.did, body.kind, body.parent_id) == (ALLIANCE_DID, Kind.ACCREDITATION_BODY, 0)
    assert sorted(printed["universities"]) == list(UNIVERSITIES)
    ids = {}
    for name, (entity_id, did, token) in printed["universities"].items():
        entity = read(Entity, registry.functions.entity(entity_id))
        assert (entity.did, entity.kind, entity.parent_id) == (did, Kind.TRUSTED_ISSUER,
                                                               body_id)
        assert tokens[name] == token
        ids[name] = entity_id
        bundle = _anchor_one(url, token, did, name)
        check_inclusion(bundle.receipt)
        method = bundle.credential["proof"]["verificationMethod"]
        assert method.startswith(f"{did}#z6Mk")
        verify_proof(bundle.credential, method.partition("#")[2])
    return ids


def _check_recognitions(w3: Web3, registry: Contract, printed: dict[str, Any],
                        ids: dict[str, int], *, url: str, admin: str) -> int:
    """The recognitions are on chain as printed and answer as the demo says; the admin API
    lists them and records one for the alliance body. The number of recognitions after."""
    body_id = printed["body"][0]
    a, b, c = (ids[name] for name in UNIVERSITIES)
    assert len(printed["recognitions"]) == 3
    for rid, _r, recogniser, _s, subject, kinds, state in printed["recognitions"]:
        item = read(Recognition, registry.functions.recognition(rid))
        assert (item.recogniser_id, item.subject_id) == (recogniser, subject)
        assert ",".join(item.to_dict()["scope"]) == kinds
        assert (item.withdrawn_at != 0) == state.startswith("withdrawn")
    pairs = {(r[2], r[4]): r for r in printed["recognitions"]}
    assert pairs[(a, body_id)][5] == "formal-degree,formal-non-degree,non-formal"
    assert pairs[(b, c)][5] == "formal-degree,formal-non-degree"
    assert pairs[(c, a)][6].startswith("withdrawn from")
    withdrawn = read(Recognition, registry.functions.recognition(pairs[(c, a)][0]))
    now = int(w3.eth.get_block("latest")["timestamp"])

    def answer(x: int, y: int, kind: Scope, when: int = now) -> RecognitionPath:
        found = read(RecognitionAnswer, registry.functions.recognisedAt(x, y, int(kind), when))
        return found.path(x, y)

    for kind in (Scope.FORMAL_DEGREE, Scope.NON_FORMAL):
        assert answer(a, b, kind) is RecognitionPath.THROUGH_BODY
        assert answer(a, c, kind) is RecognitionPath.THROUGH_BODY
    assert answer(b, c, Scope.FORMAL_DEGREE) is RecognitionPath.DIRECT
    assert answer(b, c, Scope.NON_FORMAL) is RecognitionPath.NONE
    assert answer(b, a, Scope.FORMAL_DEGREE) is RecognitionPath.NONE
    assert answer(c, a, Scope.FORMAL_DEGREE) is RecognitionPath.NONE
    # Credentials issued before the withdrawal stay recognised.
    assert answer(c, a, Scope.FORMAL_DEGREE, withdrawn.withdrawn_at - 1) is \
        RecognitionPath.DIRECT

    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {admin}"}) as http:
        listed = http.get("/v1/admin/recognitions",
                          params={"recogniser": str(c), "subject": str(a)})
        assert listed.status_code == 200, listed.text
        assert listed.json()["recognitions"] == [withdrawn.to_dict()]
        # The body's key is in the keystore folder: the API acts for the alliance.
        made = http.post("/v1/admin/recognitions", json={
            "recogniser": ALLIANCE_DID,
            "subject": "did:web:localhost:issuers:demo-university", "kinds": ["non-formal"]})
        assert made.status_code == 201, made.text
    # Recorded by the body for its members: B now recognises the demo issuer's.
    assert answer(b, int(made.json()["subjectId"]), Scope.NON_FORMAL) is \
        RecognitionPath.THROUGH_BODY
    return int(registry.functions.recognitionCount().call())


def test_the_demo_alliance_is_on_chain_as_printed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port, chain_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "stack.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = _start(data, port, chain_port, log)
        try:
            printed = _summary(log_path.read_text(encoding="utf-8"))
            w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{chain_port}"))
            registry, _ = load_deployment(data / "deployment.json").contracts(w3)
            tokens = json.loads((data / "demo-tokens.json").read_text(encoding="utf-8"))
            ids = _check_entities(registry, printed, tokens, url)
            count = _check_recognitions(w3, registry, printed, ids, url=url,
                                        admin=tokens["admin"])
        finally:
            _stop(process)
    first = log_path.read_text(encoding="utf-8")
    assert "Traceback" not in first

    # A restart finds all of it and records nothing again.
    with log_path.open("w", encoding="utf-8") as log:
        again = _start(data, port, chain_port, log)
        try:
            w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{chain_port}"))
            registry, _ = load_deployment(data / "deployment.json").contracts(w3)
            assert int(registry.functions.recognitionCount().call()) == count
            assert _summary(log_path.read_text(encoding="utf-8")) == printed
        finally:
            _stop(again)



@dataclass
class _Seeding:
    """A chain with the contracts, the stack's keys, database and keystore folder."""

    w3: Web3
    registry: Contract
    admin: Transactor
    body_key: LocalAccount
    university_keys: list[LocalAccount]
    store: Store
    keys: Path
    deployment: Deployment

    def seed(self) -> Alliance:
        return seed_alliance(self.deployment, self.admin, body_key=self.body_key,
                             university_keys=self.university_keys, store=self.store,
                             keys=self.keys, password="demo-password")


@pytest.fixture
def seeding(tmp_path: Path) -> Iterator[_Seeding]:
    chain = AnvilChain.start(port=free_port())
    try:
        admin_key, _body, _issuer, body_key, *university_keys = chain.accounts[:7]
        admin = Transactor(chain.w3, admin_key)
        deployment = deploy(admin, admin_transfer_delay=3600)
        registry, _ = deployment.contracts(chain.w3)
        upgrade(tmp_path / "service.sqlite3")
        store = Store(tmp_path / "service.sqlite3")
        try:
            yield _Seeding(chain.w3, registry, admin, body_key, university_keys, store,
                           tmp_path / "keys", deployment)
        finally:
            store.close()
    finally:
        chain.close()


def _stopped_part_way(seeding: _Seeding) -> tuple[int, int, int]:
    """A first run stopped part way: the body and A accredited, but A's anchoring key never
    added; B complete but its signing key known only to the database. The body's, A's and B's
    entity ids."""
    registry, admin = seeding.registry, seeding.admin
    body = Transactor(seeding.w3, seeding.body_key)
    body_id = accredit(admin, registry, parent=0, kind=Kind.ACCREDITATION_BODY,
                       did=ALLIANCE_DID, scope=ALL_SCOPES)
    admin.transact(registry.functions.addKey(body_id, seeding.body_key.address, 0, 0))
    a_id = accredit(body, registry, parent=body_id, kind=Kind.TRUSTED_ISSUER,
                    did=did_of(UNIVERSITIES[0]), scope=ALL_SCOPES)
    b_key = seeding.university_keys[1]
    b_id = accredit(body, registry, parent=body_id, kind=Kind.TRUSTED_ISSUER,
                    did=did_of(UNIVERSITIES[1]), scope=ALL_SCOPES)
    body.transact(registry.functions.addKey(b_id, b_key.address, 0, 0))
    b = seeding.store.add_issuer(UNIVERSITIES[1], entity_id=b_id, key_address=b_key.address,
                                 did=did_of(UNIVERSITIES[1]))
    unregistered, _path = SigningKeys(seeding.keys, "demo-password").create("ed25519")
    seeding.store.set_signing_key(b.id, unregistered.multibase, "eddsa-jcs-2022")
    return body_id, a_id, b_id


def _check_seeded(seeding: _Seeding, alliance: Alliance) -> None:
    """Each university's anchoring and signing keys are on chain, and the recognitions answer
    as the summary prints them."""
    registry = seeding.registry
    for uni, key in zip(alliance.universities, seeding.university_keys, strict=True):
        assert int(registry.functions.entityOfKey(key.address).call()) == uni.entity_id
        assert uni.signing_key is not None
        registered = {bytes(k) for k in registry.functions.entitySigningKeys(uni.entity_id).call()}
        assert signing_key_id(Multikey.from_multibase(uni.signing_key)) in registered
    a, b, c = (uni.entity_id for uni in alliance.universities)
    now = int(seeding.w3.eth.get_block("latest")["timestamp"])

    def path(x: int, y: int, kind: Scope, when: int = now) -> RecognitionPath:
        found = read(RecognitionAnswer, registry.functions.recognisedAt(x, y, int(kind), when))
        return found.path(x, y)

    printed = _summary(alliance.summary({}))["recognitions"]
    assert [(r[2], r[4], r[5]) for r in printed] == [
        (a, alliance.body_id, "formal-degree,formal-non-degree,non-formal"),
        (b, c, "formal-degree,formal-non-degree"),
        (c, a, "formal-degree,formal-non-degree,non-formal")]
    assert path(a, b, Scope.NON_FORMAL) is RecognitionPath.THROUGH_BODY
    assert path(a, c, Scope.FORMAL_DEGREE) is RecognitionPath.THROUGH_BODY
    assert path(b, c, Scope.FORMAL_DEGREE) is RecognitionPath.DIRECT
    assert path(b, c, Scope.NON_FORMAL) is RecognitionPath.NONE
    withdrawn = alliance.recognitions[2].recognition
    assert printed[2][6].startswith("withdrawn from")
    assert withdrawn.withdrawn_at != 0
    assert path(c, a, Scope.FORMAL_DEGREE, withdrawn.withdrawn_at) is RecognitionPath.NONE
    assert path(c, a, Scope.FORMAL_DEGREE, withdrawn.withdrawn_at - 1) is \
        RecognitionPath.DIRECT


def test_an_interrupted_first_seeding_is_completed_by_the_next(
        seeding: _Seeding, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = seeding.registry
    body_id, a_id, b_id = _stopped_part_way(seeding)
    # ... and a second run that stops after its first recognition.
    made: list[int] = []

    def recognise_once(*args: Any, **kwargs: Any) -> Recognition:
        if made:
            raise RuntimeError("stopped here")
        item = recognise(*args, **kwargs)
        made.append(item.id)
        return item

    monkeypatch.setattr("anchor_service.demo_alliance.recognise", recognise_once)
    with pytest.raises(RuntimeError, match="stopped here"):
        seeding.seed()
    assert int(registry.functions.recognitionCount().call()) == 1
    monkeypatch.setattr("anchor_service.demo_alliance.recognise", recognise)

    alliance = seeding.seed()
    assert alliance.body_id == body_id
    assert [uni.entity_id for uni in alliance.universities][:2] == [a_id, b_id]
    assert alliance.recognitions[0].recognition.id == made[0]
    _check_seeded(seeding, alliance)

    def counts() -> tuple[int, int, int]:
        return (int(registry.functions.recognitionCount().call()),
                int(registry.functions.signingKeyCount().call()),
                seeding.w3.eth.get_transaction_count(seeding.body_key.address))

    before = counts()
    assert seeding.seed().summary({}) == alliance.summary({})
    assert counts() == before  # the third run sent nothing
