"""The registry commands as real processes against anvil: back-dated entity revocation
(`registry revoke-since`) as the verifier then sees it, ISO 8601 times, help lines; and the
refused reinstatement of a revoked credential over real HTTP, and the lifting of revocations by
a root administrator (`registry lift-revocations`), by credential id and by position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.samples import make_credential
from anchor_service.store import BatchState, NewCredential, Store
from testkit.world import World
from tests.anchor_service.harness import anchor_now, running_service, write_deployment
from tests.anchor_service.harness import service_cli as _cli
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import (
    Entity,
    KeyInfo,
    Status,
    StatusBits,
    encode_status_indices,
    read,
)
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, verify

REGISTRY_COMMANDS = ("accredit-body", "add-issuer", "add-key", "revoke-key", "revoke-since",
                     "suspend", "reactivate", "revoke", "lift-revocations", "list")


def _record(world: World, directory: Path) -> tuple[str, str]:
    return "--deployment", str(write_deployment(world, directory))


def _iso(seconds: int, hours: int = 0) -> str:
    return datetime.fromtimestamp(seconds, timezone(timedelta(hours=hours))).isoformat()


def _anchor(world: World, store: Store, issuer_id: int, key: LocalAccount,
            credential: dict[str, Any]) -> Bundle:
    """Anchor one credential with ``key`` through the service's pipeline; its bundle."""
    (accepted,) = store.accept(issuer_id, [NewCredential(credential_digest(credential),
                                                         new_salt(), canonicalize(credential))])
    pipeline = Pipeline(store, world.chain.w3, world.deployment, {issuer_id: key},
                        BatchPolicy(max_size=100, max_age=0))
    pipeline.run_once()
    pipeline.run_once()
    assert {b.state for b in store.batches(issuer_id=issuer_id)} == {BatchState.ANCHORED}
    receipts = Receipts(store, chain_id=world.chain.chain_id, contract=world.anchor.address)
    return receipts.bundle(accepted.public_id)


def test_revoke_since_untrusts_later_anchors_only(anvil_world: World, tmp_path: Path) -> None:
    world = anvil_world
    dep = _record(world, tmp_path)
    key, later_key = world.chain.accounts[6], world.chain.accounts[7]
    step = _cli(world, world.admin, "registry", "add-issuer", *dep, "--parent",
                str(world.body_id), "--did", "did:web:since.example", "--scope", "non-formal")
    assert step.returncode == 0, step.stderr
    entity_id = int(step.stdout.split()[2])
    # ISO 8601 times with a zone, for every time option.
    until = "2099-01-01T00:00:00+01:00"
    step = _cli(world, world.admin, "registry", "add-key", *dep, "--entity", str(entity_id),
                "--key", key.address, "--valid-until", until)
    assert step.returncode == 0, step.stderr
    step = _cli(world, world.admin, "registry", "add-key", *dep, "--entity", str(entity_id),
                "--key", later_key.address, "--valid-from", "2090-01-01T00:00:00Z")
    assert step.returncode == 0, step.stderr
    info = read(KeyInfo, world.registry.functions.keyInfo(key.address))
    assert info.valid_until == int(datetime.fromisoformat(until).timestamp())
    later = read(KeyInfo, world.registry.functions.keyInfo(later_key.address))
    assert later.valid_from == int(datetime(2090, 1, 1, tzinfo=UTC).timestamp())

    store = Store(tmp_path / "db.sqlite3")
    try:
        issuer = store.add_issuer("since", entity_id=entity_id, key_address=key.address,
                                  did="did:web:since.example")
        credential = make_credential("before", id_prefix="urn:since",
                                     issuer="did:web:since.example",
                                     subject={"name": "Zoë", "learningScope": "non-formal"})
        before = _anchor(world, store, issuer.id, key, credential)
        world.chain.increase_time(3600)
        after = _anchor(world, store, issuer.id, key, {**credential, "id": "urn:since:after"})
    finally:
        store.close()
    anchored_before = before.receipt.anchor
    assert anchored_before is not None
    t_before = int(world.chain.w3.eth.get_block(anchored_before.block_number)["timestamp"])
    since = _iso(t_before + 1800, hours=2)  # between the two anchors, in another zone

    step = _cli(world, world.admin, "registry", "revoke-key", *dep, "--key", later_key.address,
                "--effective-from", _iso(t_before))
    assert step.returncode == 0, step.stderr
    assert read(KeyInfo, world.registry.functions.keyInfo(later_key.address)).revoked_at == t_before
    step = _cli(world, world.admin, "registry", "revoke-since", *dep, "--entity",
                str(entity_id), "--since", since)
    assert step.returncode == 0, step.stderr
    assert "revoked, with effect from" in step.stdout
    entity = read(Entity, world.registry.functions.entity(entity_id))
    assert entity.status is Status.REVOKED
    assert entity.revoked_from == t_before + 1800

    # About the anchoring key's trust: these credentials are anchored unsigned, on purpose.
    trust = TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),), require_signature=False)
    reader = JsonRpcChainReader(world.chain.w3)
    kept = verify(before.credential, before.receipt, trust=trust, reader=reader)
    assert kept.valid, kept.to_dict()
    dropped = verify(after.credential, after.receipt, trust=trust, reader=reader)
    assert not dropped.valid
    assert [c.name for c in dropped.checks if c.status is CheckStatus.FAILED] == [
        "issuer_trusted_at_anchoring"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--since", "2026-01-01T00:00:00", "has no time zone"),
    ("--since", "last tuesday", "is not an ISO 8601 date-time"),
    ("--since", "-5", "is not an ISO 8601 date-time"),
    ("--since", "99999999999999", "outside the registry's time range"),
])
def test_unreadable_times_exit_2(anvil_world: World, tmp_path: Path, option: str, value: str,
                                 message: str) -> None:
    dep = _record(anvil_world, tmp_path)
    result = _cli(anvil_world, anvil_world.admin, "registry", "revoke-since", *dep,
                  "--entity", str(anvil_world.revoked_id), option, value)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    for command, time_option in (("revoke-key", "--effective-from"), ("add-key", "--valid-from"),
                                 ("add-key", "--valid-until")):
        naive = _cli(anvil_world, anvil_world.admin, "registry", command, *dep, "--entity", "1",
                     "--key", anvil_world.stranger.address, time_option, "2026-01-01T09:00")
        assert naive.returncode == 2, (command, time_option)
        assert "has no time zone" in naive.stderr


def test_every_registry_command_has_a_help_line(anvil_world: World) -> None:
    result = _cli(anvil_world, None, "registry", "--help")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    for name in REGISTRY_COMMANDS:
        at = [n for n, line in enumerate(lines) if line.split()[:1] == [name]]
        assert at, f"{name} is not listed with a description:\n{result.stdout}"
        text = lines[at[0]].removeprefix(name).strip() or lines[at[0] + 1]
        assert len(text.split()) >= 3, (name, text)
    for command in (("deploy",), ("registry", "revoke-since")):
        own = _cli(anvil_world, None, *command, "--help")
        assert own.returncode == 0
        description = own.stdout.split("\n\n")[1]
        assert not description.startswith(("options:", "positional")), own.stdout


def test_reinstating_a_revoked_credential_is_refused_until_a_root_admin_lifts_it(
        anvil_world: World, tmp_path: Path) -> None:
    world = anvil_world
    with (running_service(world, tmp_path, max_body_bytes=256 * 1024) as service,
          service.client(service.issuer_token) as client):
        public_id = client.post("/v1/credentials", json={
            "credentials": [make_credential("reinstate-revoked")]}).json()["accepted"][0]["id"]
        anchor_now(client, [public_id])

        def status() -> tuple[bool, bool]:
            found = client.get(f"/v1/credentials/{public_id}/status").json()
            return found["revoked"], found["suspended"]

        assert client.post(f"/v1/credentials/{public_id}/suspend", json={}).status_code == 200
        assert client.post(f"/v1/credentials/{public_id}/revoke", json={}).status_code == 200
        refused = client.post(f"/v1/credentials/{public_id}/reinstate", json={"reason": 3})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "revoked"
        assert "revocation is final" in refused.json()["detail"]
        assert "liftRevocations" in refused.json()["detail"]
        assert "anchor-service registry lift-revocations" in refused.json()["detail"]
        # Nothing was sent: still revoked, and still suspended.
        assert status() == (True, True)
        schema = client.get("/openapi.json").json()
        reinstate = schema["paths"]["/v1/credentials/{credential_id}/reinstate"]["post"]
        assert "409" in reinstate["responses"]
        assert "liftRevocations" in reinstate["description"]

        # Only a root administrator lifts a revocation: by credential id, through the
        # service's database.
        config = tmp_path / "service.env"
        config.write_text(f"MICROCRED_DATABASE_URL=sqlite:///{tmp_path / 'service.sqlite3'}\n")
        command = ("registry", "lift-revocations", *_record(world, tmp_path),
                   "--credential", public_id, "--config", str(config))
        by_issuer = _cli(world, world.issuer, *command)
        assert by_issuer.returncode == 1, by_issuer.stderr
        assert "NotAuthorized" in by_issuer.stderr
        assert "Traceback" not in by_issuer.stderr
        assert status() == (True, True)
        lifted = _cli(world, world.admin, *command)
        assert lifted.returncode == 0, lifted.stderr
        assert "lifted 1 revocation(s)" in lifted.stdout
        assert status() == (False, True)
        assert client.post(f"/v1/credentials/{public_id}/reinstate", json={}).status_code == 200
        assert status() == (False, False)


def test_lift_revocations_by_position_and_its_usage_errors(anvil_world: World,
                                                            tmp_path: Path) -> None:
    world = anvil_world
    entity, status_list, indices = world.issuer_id, 7, [5, 6, 300]
    packed = encode_status_indices(indices)
    world.tx(world.issuer).transact(world.anchor.functions.revoke(entity, status_list, packed, 0))
    dep = _record(world, tmp_path)
    for wrong, message in ((("--entity", str(entity)), "go together"),
                           (("--entity", str(entity), "--list", "7", "--index", "131072"),
                            "131071"),
                           (("--credential", "x", "--entity", "1"), "either --credential")):
        refused = _cli(world, world.admin, "registry", "lift-revocations", *dep, *wrong)
        assert refused.returncode == 2, refused.stderr
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr
    lifted = _cli(world, world.admin, "registry", "lift-revocations", *dep, "--entity",
                  str(entity), "--list", str(status_list), "--index", "6", "300")
    assert lifted.returncode == 0, lifted.stderr
    assert [read(StatusBits, world.anchor.functions.statusOf(entity, status_list, i)).revoked
            for i in indices] == [True, False, False]
