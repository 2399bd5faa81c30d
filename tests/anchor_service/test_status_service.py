"""Status lists in the service, over real HTTP (uvicorn on loopback) on SQLite and PostgreSQL,
against the contracts on the in-process chain: status positions allocated per issuer at
acceptance (across concurrent writers), ``credentialStatus`` in every credential the service
signs (verified by our verifier), pre-signed and digest-only credentials kept as sent with a
position in their receipt, status changes one by one and in bulk (300 credentials in one
transaction), who may change them, and ``GET /v1/credentials/{id}/status`` with its block
evidence, at the latest block and in the past."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from hexbytes import HexBytes

from anchor_service._database import sql
from anchor_service.samples import make_credential
from anchor_service.status import StatusEntries, status_urls
from anchor_service.store import STATUS_RESERVATION, Issuer, NewCredential, StatusPosition, Store
from localchain import AnvilChain
from testkit.world import World, issuer_signing_key
from tests.anchor_service.harness import (
    Service,
    anchor_now,
    running_service,
    service_on_fresh_chain,
)
from verifier.bitstring import status_entries
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import STATUS_LIST_SIZE, StatusBits, StatusPurpose, read
from verifier.credential import canonicalize, leaf_input
from verifier.data_integrity import add_proof
from verifier.multikey import Multikey
from verifier.receipt import Bundle, Receipt
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, verify

DID = "did:web:uni-a.example"
LISTS = "https://uni-a.example/issuers/uni-a/status-lists"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Service]:
    """The service on each database, each with a chain of its own (the status positions of
    one issuer entity start at 0 on each)."""
    extra: dict[str, Any] = {}
    if request.param == "postgresql":
        extra["database_url"] = request.getfixturevalue("postgres").new_database()
    with service_on_fresh_chain(tmp_path_factory.mktemp("status"), max_body_bytes=2**20,
                                **extra) as running:
        yield running


def _submit(client: httpx.Client, credentials: list[dict[str, Any]]) -> list[str]:
    answer = client.post("/v1/credentials", json={"credentials": credentials})
    assert answer.status_code == 202, answer.text
    return [item["id"] for item in answer.json()["accepted"]]


def _position(service: Service, public_id: str) -> StatusPosition:
    record = service.store.credential(public_id)
    assert record is not None
    assert record.status is not None
    return record.status


def _bits(service: Service, position: StatusPosition) -> StatusBits:
    world = service.world
    return read(StatusBits, world.anchor.functions.statusOf(world.issuer_id, position.list,
                                                            position.index))


def _trust(world: World) -> TrustConfig:
    return TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),))


def test_positions_are_allocated_per_issuer_in_order_and_kept_on_resubmission(
        service: Service) -> None:
    store = service.store
    start = store.next_status_index(service.issuer_id)
    credentials = [make_credential(f"alloc-{n}", issuer=DID) for n in range(5)]
    with service.client(service.issuer_token) as client:
        ids = _submit(client, credentials)
        assert [_position(service, i) for i in ids] == [
            StatusPosition.of(start + n) for n in range(5)]
        # Sent again: the same ids, positions and signed documents; the positions drawn for
        # the resubmission stay unused (a gap), and the next credential comes after them.
        again = client.post("/v1/credentials", json={"credentials": credentials[:2]}).json()
        assert [(a["id"], a["created"]) for a in again["accepted"]] == [(i, False)
                                                                        for i in ids[:2]]
        assert [_position(service, i) for i in ids[:2]] == [
            StatusPosition.of(start), StatusPosition.of(start + 1)]
        (later,) = _submit(client, [make_credential("alloc-later", issuer=DID)])
        assert _position(service, later) == StatusPosition.of(start + 7)
        # Digests get positions too, from the same counter, in their acceptance's own
        # transaction: after the block the signed credentials' positions came from.
        digests = client.post("/v1/credentials", json={"digests": ["0x" + "5a" * 32]}).json()
        assert _position(service, digests["accepted"][0]["id"]) == StatusPosition.of(
            start + STATUS_RESERVATION)
    assert store.next_status_index(service.issuer_id) == start + STATUS_RESERVATION + 1


def test_concurrent_allocation_never_gives_a_position_twice(service: Service) -> None:
    """Writers on one database (threads here, replicas in production) each take a block of
    positions in one UPDATE ... RETURNING: the blocks never overlap."""
    found: list[list[StatusPosition]] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            block = service.store.allocate_status(service.issuer_id, 7)
            with lock:
                found.append(block)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [position for block in found for position in block]
    assert len(every) == len(set(every)) == 4 * 20 * 7
    for block in found:  # each block is consecutive
        first = block[0].list * STATUS_LIST_SIZE + block[0].index
        assert block == [StatusPosition.of(first + n) for n in range(7)]


def test_signed_credentials_carry_their_status_entries_and_verify(service: Service) -> None:
    world = service.world
    with service.client(service.issuer_token) as client:
        ids = _submit(client, [make_credential(f"entries-{n}", issuer=DID) for n in range(3)])
        anchor_now(client, ids)
        reader = JsonRpcChainReader(world.chain.w3)
        for public_id in ids:
            bundle = Bundle.from_json(client.get(f"/v1/credentials/{public_id}/bundle").text)
            receipt = bundle.receipt
            position = _position(service, public_id)
            assert (receipt.status_list, receipt.status_list_index) == (position.list,
                                                                        position.index)
            assert receipt.leaf_input == leaf_input(receipt.salt, receipt.credential_digest,
                                                    position.list, position.index)
            urls = {purpose: f"{LISTS}/{position.list}/{purpose}" for purpose in StatusPurpose}
            assert bundle.credential["credentialStatus"] == status_entries(urls, position.index)
            report = verify(bundle.credential, receipt, trust=_trust(world), reader=reader)
            assert report.valid, [(c.name, c.detail) for c in report.checks
                                  if c.status is not CheckStatus.PASSED]


def test_a_credential_with_its_own_credential_status_is_refused(service: Service) -> None:
    before = service.store.next_status_index(service.issuer_id)
    own = make_credential("own-status", issuer=DID, credentialStatus={
        "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "9", "statusListCredential": "https://elsewhere.example/list"})
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            make_credential("fine", issuer=DID), own]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "credential_status_set"
    assert answer.json()["detail"].startswith("credentials[1].credentialStatus: the service sets")
    assert service.store.next_status_index(service.issuer_id) == before  # none drawn


def test_presigned_credentials_are_kept_as_sent_with_a_position_in_the_receipt(
        service: Service) -> None:
    key = issuer_signing_key(DID)
    method = f"{DID}#{Multikey.from_public_key(key.public_key()).multibase}"
    presigned = add_proof(make_credential("presigned", issuer=DID), suite="eddsa-jcs-2022",
                          private_key=key, verification_method=method,
                          created="2026-11-01T00:00:00Z")
    with service.client(service.issuer_token) as client:
        (public_id,) = _submit(client, [presigned])
        anchor_now(client, [public_id])
        bundle = Bundle.from_json(client.get(f"/v1/credentials/{public_id}/bundle").text)
    assert bundle.credential == presigned  # no credentialStatus added: it is the issuer's
    position = _position(service, public_id)
    assert (bundle.receipt.status_list, bundle.receipt.status_list_index) == (
        position.list, position.index)


def test_bulk_revoke_of_300_credentials_is_one_transaction(service: Service) -> None:
    world = service.world
    with service.client(service.issuer_token) as client:
        ids = _submit(client, [make_credential(f"bulk-{n}", issuer=DID) for n in range(300)])
        untouched = _submit(client, [make_credential("bulk-not", issuer=DID)])[0]
        answer = client.post("/v1/credentials/revoke", json={"ids": ids, "reason": 4})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["action"], body["count"]) == ("revoke", 300)
        (tx_hash,) = body["transactionHashes"]
        receipt = world.chain.w3.eth.get_transaction_receipt(tx_hash)
        events = world.anchor.events.CredentialsRevoked().process_receipt(receipt)
        assert len(events) == 1
        assert events[0]["args"]["reason"] == 4
        for public_id in ids:
            assert _bits(service, _position(service, public_id)).revoked
        assert _bits(service, _position(service, untouched)) == StatusBits(False, False)
        status = client.get(f"/v1/credentials/{ids[150]}/status").json()
        assert (status["revoked"], status["suspended"]) == (True, False)
        # Reinstating them is refused (revocation is final), and nothing is sent.
        refused = client.post("/v1/credentials/reinstate", json={"ids": [untouched, ids[7]]})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "revoked"
        assert ids[7] in refused.json()["detail"]


def test_bulk_changes_are_all_or_nothing_and_bounded(service: Service) -> None:
    with service.client(service.issuer_token) as client:
        ids = _submit(client, [make_credential(f"all-or-none-{n}", issuer=DID)
                               for n in range(3)])
        unknown = client.post("/v1/credentials/suspend", json={"ids": [*ids, "nope"]})
        assert unknown.status_code == 404, unknown.text
        assert "no credential nope" in unknown.json()["detail"]
        assert "nothing was changed" in unknown.json()["detail"]
        for public_id in ids:
            assert _bits(service, _position(service, public_id)) == StatusBits(False, False)
        for body, status in (({"ids": []}, 422), ({"ids": ids, "reason": 256}, 422),
                             ({"ids": ids, "extra": 1}, 422), ({"ids": "x"}, 422),
                             ({"ids": ["x"] * 1001}, 413)):
            answer = client.post("/v1/credentials/suspend", json=body)
            assert answer.status_code == status, (body, answer.text)
        suspended = client.post("/v1/credentials/suspend", json={"ids": [*ids, ids[0]]})
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["count"] == 3
        assert len(suspended.json()["transactionHashes"]) == 1
        reinstated = client.post("/v1/credentials/reinstate", json={"ids": ids[:2]})
        assert reinstated.status_code == 200, reinstated.text
    assert [_bits(service, _position(service, i)).suspended for i in ids] == [False, False, True]


def test_another_issuer_cannot_change_or_read_the_status(service: Service) -> None:
    with service.client(service.issuer_token) as mine:
        (public_id,) = _submit(mine, [make_credential("isolation", issuer=DID)])
    with service.client(service.other_token) as other:
        for action in ("revoke", "suspend", "reinstate"):
            single = other.post(f"/v1/credentials/{public_id}/{action}", json={})
            assert single.status_code == 404, single.text
            bulk = other.post(f"/v1/credentials/{action}", json={"ids": [public_id]})
            assert bulk.status_code == 404, bulk.text
        assert other.get(f"/v1/credentials/{public_id}/status").status_code == 404
    with service.client(service.admin) as admin:
        assert admin.post(f"/v1/credentials/{public_id}/revoke", json={}).status_code == 403
        assert admin.post("/v1/credentials/revoke", json={"ids": [public_id]}).status_code == 403
    with service.client() as anonymous:
        assert anonymous.post("/v1/credentials/revoke",
                              json={"ids": [public_id]}).status_code == 401
    assert _bits(service, _position(service, public_id)) == StatusBits(False, False)


def test_status_with_block_evidence_now_and_in_the_past(service: Service) -> None:
    chain = service.world.chain
    with service.client(service.issuer_token) as client:
        (public_id,) = _submit(client, [make_credential("evidence", issuer=DID)])
        position = _position(service, public_id)
        before = client.get(f"/v1/credentials/{public_id}/status")
        assert before.status_code == 200, before.text
        first = before.json()
        assert (first["revoked"], first["suspended"]) == (False, False)
        assert (first["statusList"], first["statusListIndex"]) == (position.list,
                                                                   position.index)
        assert first["revocationList"] == f"{LISTS}/{position.list}/revocation"
        assert first["suspensionList"] == f"{LISTS}/{position.list}/suspension"
        block = chain.w3.eth.get_block(first["block"]["number"])
        assert first["block"] == {"number": block["number"], "hash": "0x" + block["hash"].hex(),
                                  "timestamp": block["timestamp"]}
        chain.increase_time(100)
        chain.mine()
        assert client.post(f"/v1/credentials/{public_id}/revoke", json={}).status_code == 200
        now = client.get(f"/v1/credentials/{public_id}/status").json()
        assert now["revoked"] is True
        assert now["block"]["number"] > first["block"]["number"]
        # The past, by block number and by time (unix seconds or RFC 3339).
        past = client.get(f"/v1/credentials/{public_id}/status",
                          params={"block": first["block"]["number"]}).json()
        assert (past["revoked"], past["block"]) == (False, first["block"])
        when = first["block"]["timestamp"] + 50
        for as_of in (str(when), _rfc3339(when)):
            then = client.get(f"/v1/credentials/{public_id}/status", params={"asOf": as_of})
            assert then.status_code == 200, then.text
            assert then.json()["revoked"] is False
            assert then.json()["block"]["timestamp"] <= when
        latest = chain.w3.eth.block_number
        for params, status, error in (
                ({"block": "-1"}, 400, "invalid_query"), ({"block": "x"}, 400, "invalid_query"),
                ({"asOf": "yesterday"}, 400, "invalid_query"),
                ({"asOf": "2026-01-01T00:00:00"}, 400, "invalid_query"),
                ({"block": "1", "asOf": "1"}, 400, "invalid_query"),
                ({"block": str(latest + 1000)}, 404, "unknown_block"),
                ({"asOf": str(now["block"]["timestamp"] + 10**6)}, 404, "unknown_block"),
                ({"asOf": "1"}, 404, "unknown_block")):
            answer = client.get(f"/v1/credentials/{public_id}/status", params=params)
            assert answer.status_code == status, (params, answer.text)
            assert answer.json()["error"] == error, params
            assert answer.json()["detail"]


def _rfc3339(seconds: int) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_credentials_anchored_on_1x_answer_409(service: Service) -> None:
    """A credential anchored before status lists (its position NULL, as migration 0004 leaves
    those anchored on CredentialAnchor 1.x): its receipt, bundle, status and status changes
    are refused with the reason."""
    with service.client(service.issuer_token) as client:
        (public_id,) = _submit(client, [make_credential("on-1x", issuer=DID)])
        anchor_now(client, [public_id])
        _forget_position(service, public_id)
        for method, path in (("GET", "/receipt"), ("GET", "/bundle"), ("GET", "/status"),
                             ("POST", "/revoke")):
            answer = client.request(method, f"/v1/credentials/{public_id}{path}",
                                    json={} if method == "POST" else None)
            assert answer.status_code == 409, (path, answer.text)
            assert answer.json()["error"] == "anchored_on_1x", path
            assert "CredentialAnchor 1.x" in answer.json()["detail"], path
        bulk = client.post("/v1/credentials/revoke", json={"ids": [public_id]})
        assert bulk.status_code == 409
        assert bulk.json()["error"] == "anchored_on_1x"


def _forget_position(service: Service, public_id: str) -> None:
    with service.store._write() as db:
        db.execute(sql("UPDATE credentials SET status_list = NULL, status_index = NULL "
                       "WHERE public_id = :id"), {"id": public_id})


def test_the_store_gives_positions_to_items_without_one(tmp_path: Path) -> None:
    with closing(Store(tmp_path / "store.sqlite3")) as store:
        issuer = store.add_issuer("u", entity_id=2, key_address="0x" + "11" * 20, did=DID)
        given = StatusPosition(3, 9)
        accepted = store.accept(issuer.id, [NewCredential(b"\x01" * 32, b"s" * 16),
                                            NewCredential(b"\x02" * 32, b"s" * 16,
                                                          status=given)])
        records = store.credentials([a.public_id for a in accepted])
        assert [records[a.public_id].status for a in accepted] == [StatusPosition(0, 0), given]


def test_receipts_bind_the_position(service: Service) -> None:
    """A receipt's position is in its leaf: the same receipt with another position does not
    lead to the anchored root."""
    with service.client(service.issuer_token) as client:
        (public_id,) = _submit(client, [make_credential("bound", issuer=DID)])
        anchor_now(client, [public_id])
        receipt = Receipt.from_json(client.get(f"/v1/credentials/{public_id}/receipt").text)
    from verifier.errors import ProofError  # noqa: PLC0415
    from verifier.merkle import verify_inclusion  # noqa: PLC0415

    verify_inclusion(receipt.leaf_input, receipt.leaf_index, receipt.tree_size,
                     list(receipt.audit_path), receipt.root)
    moved = leaf_input(receipt.salt, receipt.credential_digest, receipt.status_list,
                       (receipt.status_list_index + 1) % STATUS_LIST_SIZE)
    with pytest.raises(ProofError):
        verify_inclusion(moved, receipt.leaf_index, receipt.tree_size, list(receipt.audit_path),
                         receipt.root)


def test_the_credentials_command_changes_status_by_id(anvil_world: World,
                                                      tmp_path: Path) -> None:
    """``anchor-service credentials revoke|suspend|reinstate ID...`` as a real process, with
    the service's settings: the issuer's key from its keystore, all or nothing."""
    world = anvil_world
    chain = world.chain
    assert isinstance(chain, AnvilChain)
    with (running_service(world, tmp_path, max_body_bytes=2**20) as service,
          service.client(service.issuer_token) as client):
        # The anvil world is shared by other tests with their own databases: start this
        # database's positions far from theirs.
        service.store.allocate_status(service.issuer_id, 3 * STATUS_LIST_SIZE + 1000)
        ids = _submit(client, [make_credential(f"cli-{n}", issuer=DID) for n in range(3)])
        config = tmp_path / "service.env"
        config.write_text("\n".join((
            f"MICROCRED_DATABASE_URL=sqlite:///{tmp_path / 'service.sqlite3'}",
            f"MICROCRED_RPC_URL={chain.rpc_url}",
            f"MICROCRED_DEPLOYMENT={tmp_path / 'deployment.json'}",
            f"MICROCRED_KEYSTORE_DIR={tmp_path / 'keys'}",
            "MICROCRED_KEYSTORE_PASSWORD=pw", "")))

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
            return subprocess.run([sys.executable, "-m", "anchor_service", "credentials", *args,
                                   "--config", str(config)], capture_output=True, text=True,
                                  timeout=120, check=False, env=environment)

        def bits(public_id: str) -> tuple[bool, bool]:
            found = client.get(f"/v1/credentials/{public_id}/status").json()
            return found["revoked"], found["suspended"]

        suspended = cli("suspend", ids[0], ids[1], "--reason", "3")
        assert suspended.returncode == 0, suspended.stderr
        (tx_hash,) = suspended.stdout.split()
        assert world.anchor.events.CredentialsSuspended().process_receipt(
            chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))[0]["args"]["reason"] == 3
        assert [bits(i) for i in ids] == [(False, True), (False, True), (False, False)]
        revoked = cli("revoke", ids[2])
        assert revoked.returncode == 0, revoked.stderr
        for args, message in ((("reinstate", ids[0], ids[2]), "is revoked"),
                              (("revoke", ids[0], "nope"), "no credential nope"),
                              (("revoke", ids[0], "--reason", "256"), "reason code")):
            refused = cli(*args)
            assert refused.returncode == 2, refused.stderr
            assert message in refused.stderr
            assert "Traceback" not in refused.stderr
        assert [bits(i) for i in ids] == [(False, True), (False, True), (True, False)]
        reinstated = cli("reinstate", ids[0])
        assert reinstated.returncode == 0, reinstated.stderr
        assert bits(ids[0]) == (False, False)


@pytest.mark.parametrize(("name", "did"), [
    ("uni-a", DID), ("uni a/ü", "did:web:example.org%3A8443:issuers:x"),
    ("x", "did:web:uni-a.example")])
def test_status_entries_are_the_verifiers_and_canonical(name: str, did: str) -> None:
    """The entries the service signs are :func:`verifier.bitstring.status_entries`, and their
    canonical text (made from a template per list) is RFC 8785's."""
    issuer = Issuer(1, name, 2, "0x" + "11" * 20, did)
    made = StatusEntries(issuer)
    for position in (StatusPosition(0, 0), StatusPosition(0, 131071), StatusPosition(7, 42),
                     StatusPosition(0, 9)):
        entries, member = made.entries(position)
        urls = status_urls(issuer, position.list)
        assert urls is not None
        assert entries == status_entries(urls, position.index)
        assert member == canonicalize({"credentialStatus": entries})[1:-1]
    assert status_urls(Issuer(1, "k", 2, "0x" + "11" * 20, "did:key:z6Mk"), 0) is None
