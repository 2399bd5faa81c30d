"""`anchor-service registry recognise|withdraw-recognition|recognitions` as real processes
against anvil: a recognition recorded, listed and withdrawn as the registry then holds it, and
each refusal (another entity's key, a root administrator's, a bad kind, the entity itself, an
empty window, a second withdrawal) with its message and exit code, nothing recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from testkit.world import World
from tests.anchor_service.harness import service_cli, write_deployment
from verifier.contract_types import OPEN_UNTIL, Recognition, Scope, read

SUBJECT_DID = "did:web:revoked.example"  # the world's second issuer (status is not checked)


def _cli(world: World, signer: LocalAccount | None, *args: str) -> subprocess.CompletedProcess[str]:
    return service_cli(world, signer, "registry", *args)


@pytest.fixture(scope="module")
def record(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_deployment(anvil_world, tmp_path_factory.mktemp("recognitions")))


def _count(world: World) -> int:
    return int(world.registry.functions.recognitionCount().call())


def test_recognise_list_and_withdraw(anvil_world: World, record: str) -> None:
    world = anvil_world
    subject = int(world.registry.functions.entityIdByDid(SUBJECT_DID).call())
    made = _cli(world, world.issuer, "recognise", "--deployment", record,
                "--as", str(world.issuer_id), "--subject", SUBJECT_DID,
                "--kind", "formal-degree", "--kind", "non-formal",
                "--from", "2020-01-01T00:00:00Z", "--json")
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    on_chain = read(Recognition, world.registry.functions.recognition(shown["id"]))
    assert (on_chain.recogniser_id, on_chain.subject_id) == (world.issuer_id, subject)
    assert on_chain.scope == Scope.FORMAL_DEGREE | Scope.NON_FORMAL
    assert (on_chain.valid_from, on_chain.valid_until) == (1577836800, OPEN_UNTIL)
    assert on_chain.withdrawn_at == 0
    assert shown == on_chain.to_dict()

    # By DID, all of the entity's; and by --subject, that pair's only.
    listed = _cli(world, None, "recognitions", "--deployment", record,
                  "--as", "did:web:uni-a.example")
    assert listed.returncode == 0, listed.stderr
    assert (f"recognition {on_chain.id}: entity {world.issuer_id} recognises entity "
            f"{subject} for formal-degree,non-formal; issued from 2020-01-01T00:00:00Z until "
            "open") in listed.stdout
    assert "active" in listed.stdout
    pair = _cli(world, None, "recognitions", "--deployment", record, "--as",
                str(world.issuer_id), "--subject", str(subject), "--json")
    assert pair.returncode == 0, pair.stderr
    assert on_chain.to_dict() in json.loads(pair.stdout)["recognitions"]
    none = _cli(world, None, "recognitions", "--deployment", record, "--as",
                str(world.issuer_id), "--subject", str(world.body_id))
    assert none.returncode == 0, none.stderr
    assert "has recorded no recognitions" in none.stdout

    withdrawn = _cli(world, world.issuer, "withdraw-recognition", "--deployment", record,
                     "--as", str(world.issuer_id), str(on_chain.id))
    assert withdrawn.returncode == 0, withdrawn.stderr
    after = read(Recognition, world.registry.functions.recognition(on_chain.id))
    assert after.withdrawn_at != 0
    assert "withdrawn from" in withdrawn.stdout
    listed = _cli(world, None, "recognitions", "--deployment", record, "--as",
                  str(world.issuer_id), "--subject", SUBJECT_DID)
    assert f"recognition {on_chain.id}:" in listed.stdout
    assert "withdrawn from" in listed.stdout

    again = _cli(world, world.issuer, "withdraw-recognition", "--deployment", record,
                 "--as", str(world.issuer_id), str(on_chain.id))
    assert again.returncode == 1
    assert f"recognition {on_chain.id} is already withdrawn" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize("case", [
    ("body", "issuer", (), 1, "is not a trusted anchoring key of entity"),
    ("admin", "issuer", (), 1, "is a root administrator's key"),
    ("issuer", "issuer", ("--kind", "informal"), 2, "invalid choice: 'informal'"),
    ("issuer", "issuer", ("--self",), 1, "cannot record a recognition of itself"),
    ("issuer", "issuer", ("--from", "2000", "--until", "1000"), 1, "empty window"),
    ("issuer", "issuer", ("--from", "1000", "--until", "1000"), 1, "empty window"),
    ("issuer", "issuer", ("--subject-did", "did:web:nobody.example"), 2,
     "no entity with DID did:web:nobody.example"),
    ("issuer", "999", (), 2, "no entity 999 in the registry"),
])
def test_refused_recognitions_record_nothing(anvil_world: World, record: str,
                                             case: tuple[str, str, tuple[str, ...], int, str]
                                             ) -> None:
    world = anvil_world
    who, as_entity, extra, code, message = case
    signer = {"body": world.body, "admin": world.admin, "issuer": world.issuer}[who]
    subject = SUBJECT_DID
    options = list(extra)
    if "--self" in options:
        options.remove("--self")
        subject = str(world.issuer_id)
    if "--subject-did" in options:
        subject = options[1]
        options = []
    kinds = [] if "--kind" in options else ["--kind", "formal-degree"]
    before = _count(world)
    result = _cli(world, signer, "recognise", "--deployment", record, "--as",
                  str(world.issuer_id) if as_entity == "issuer" else as_entity,
                  "--subject", subject, *kinds, *options)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _count(world) == before


def test_withdrawal_takes_the_recognisers_own_key(anvil_world: World, record: str) -> None:
    world = anvil_world
    made = _cli(world, world.issuer, "recognise", "--deployment", record, "--as",
                str(world.issuer_id), "--subject", SUBJECT_DID, "--kind", "formal-non-degree",
                "--json")
    assert made.returncode == 0, made.stderr
    recognition_id = json.loads(made.stdout)["id"]
    for signer in (world.body, world.admin):  # its accreditor, a root administrator
        refused = _cli(world, signer, "withdraw-recognition", "--deployment", record, "--as",
                       str(world.issuer_id), str(recognition_id))
        assert refused.returncode == 1
        assert "not authorised" in refused.stderr
    # --as names another entity than the recognition's recogniser: refused before sending.
    other = _cli(world, world.body, "withdraw-recognition", "--deployment", record, "--as",
                 str(world.body_id), str(recognition_id))
    assert other.returncode == 2
    assert f"is entity {world.issuer_id}'s, not entity {world.body_id}'s" in other.stderr
    unknown = _cli(world, world.issuer, "withdraw-recognition", "--deployment", record,
                   "--as", str(world.issuer_id), "424242")
    assert unknown.returncode == 2
    assert "no recognition 424242 in the registry" in unknown.stderr
    still = read(Recognition, world.registry.functions.recognition(recognition_id))
    assert still.withdrawn_at == 0


def test_help_lists_the_recognition_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "anchor_service", "registry", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    for name in ("recognise", "withdraw-recognition", "recognitions"):
        assert name in result.stdout


def test_an_issuer_named_in_the_services_database(anvil_world: World, record: str,
                                                  tmp_path: Path) -> None:
    """--as takes an issuer's name in the service's database (--config)."""
    from anchor_service.migrations import upgrade  # noqa: PLC0415
    from anchor_service.store import Store  # noqa: PLC0415

    world = anvil_world
    database = tmp_path / "service.sqlite3"
    upgrade(database)
    store = Store(database)
    try:
        store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                         did="did:web:uni-a.example")
    finally:
        store.close()
    config = tmp_path / "service.env"
    config.write_text(f"MICROCRED_DATABASE_URL=sqlite:///{database}\n", encoding="utf-8")
    listed = _cli(world, None, "recognitions", "--deployment", record, "--as", "uni-a",
                  "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["recogniserId"] == world.issuer_id
    missing = _cli(world, None, "recognitions", "--deployment", record, "--as", "uni-z",
                   "--config", str(config))
    assert missing.returncode == 2
    assert "not an entity id, a DID, or an issuer in the service's database" in missing.stderr
