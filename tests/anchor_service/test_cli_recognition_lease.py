"""``anchor-service registry recognise|withdraw-recognition`` given the service's database
(``--config``) and a served issuer's anchoring key send under that issuer's sending lease, as
the service does: while another process holds it the command exits 1 "busy" and sends
nothing; once it is free the command sends. Real anvil, the CLI as a real process, a real
SQLite database whose lease the test takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anchor_service.migrations import upgrade
from anchor_service.store import Store
from testkit.world import World
from tests.anchor_service.test_cli_recognitions import _cli

BODY_DID = "did:web:body.example"


@pytest.fixture(scope="module")
def record(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("recognition-lease") / "deployment.json"
    path.write_text(anvil_world.deployment.to_json(), encoding="utf-8")
    return str(path)


def _nonce(world: World) -> int:
    return int(world.chain.w3.eth.get_transaction_count(world.issuer.address, "pending"))


def test_the_commands_wait_for_a_served_issuers_sending_lease(
        anvil_world: World, record: str, tmp_path: Path) -> None:
    world = anvil_world
    database = tmp_path / "service.sqlite3"
    upgrade(database)
    store = Store(database)
    try:
        issuer = store.add_issuer("uni-a", entity_id=world.issuer_id,
                                  key_address=world.issuer.address, did="did:web:uni-a.example")
        config = tmp_path / "service.env"
        config.write_text(f"MICROCRED_DATABASE_URL=sqlite:///{database}\n", encoding="utf-8")
        recognise = ("recognise", "--deployment", record, "--as", "uni-a", "--subject",
                     BODY_DID, "--kind", "non-formal", "--config", str(config), "--json")

        nonce = _nonce(world)
        # The service's pipeline (or a route) sends with this key now.
        with store.issuer_lease(issuer.id) as lease:
            assert lease.held
            busy = _cli(world, world.issuer, *recognise)
            assert _nonce(world) == nonce  # nothing sent
        assert busy.returncode == 1, busy.stderr
        assert f"busy: the service is sending with {world.issuer.address} now" in busy.stderr

        made = _cli(world, world.issuer, *recognise)
        assert made.returncode == 0, made.stderr
        recognition_id = json.loads(made.stdout)["id"]

        withdraw = ("withdraw-recognition", "--deployment", record, "--as", "uni-a",
                    str(recognition_id), "--config", str(config), "--json")
        with store.issuer_lease(issuer.id) as lease:
            assert lease.held
            busy = _cli(world, world.issuer, *withdraw)
        assert busy.returncode == 1, busy.stderr
        assert "busy:" in busy.stderr
        done = _cli(world, world.issuer, *withdraw)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["withdrawnAt"] is not None

        # Without --config the command cannot know of the service: it sends at once.
        with store.issuer_lease(issuer.id) as lease:
            assert lease.held
            unaware = _cli(world, world.issuer, "recognise", "--deployment", record, "--as",
                           str(world.issuer_id), "--subject", BODY_DID, "--kind",
                           "formal-degree", "--json")
        assert unaware.returncode == 0, unaware.stderr
    finally:
        store.close()
