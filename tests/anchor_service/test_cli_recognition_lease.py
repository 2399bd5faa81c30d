"""``anchor-service registry recognise|withdraw-recognition`` given the service's database
(``--config`` or MICROCRED_DATABASE_URL) and a served issuer's anchoring key send under that
issuer's sending lease, as the service does: while another process holds it the command exits
1 "busy" and sends nothing; once it is free the command sends. With no database configured an
issuer's name is refused and no database is created. Real anvil, the CLI as a real process, a
real SQLite database whose lease the test takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from anchor_service.migrations import upgrade
from anchor_service.store import Store
from localchain import AnvilChain
from testkit.world import World
from tests.anchor_service.harness import write_deployment
from tests.anchor_service.test_cli_recognitions import _cli

BODY_DID = "did:web:body.example"


@pytest.fixture(scope="module")
def record(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_deployment(anvil_world, tmp_path_factory.mktemp("recognition-lease")))


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


def _cli_in(world: World, signer: LocalAccount, cwd: Path, database_url: str | None,
            *args: str) -> subprocess.CompletedProcess[str]:
    """``anchor-service registry ARGS`` run in ``cwd``, with MICROCRED_DATABASE_URL set to
    ``database_url`` (unset when None) and no other MICROCRED_ setting but the signer's key."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    environment["MICROCRED_PRIVATE_KEY"] = "0x" + bytes(signer.key).hex()
    if database_url is not None:
        environment["MICROCRED_DATABASE_URL"] = database_url
    chain = world.chain
    assert isinstance(chain, AnvilChain)
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", "registry", *args, "--rpc-url",
         str(chain.rpc_url)],
        capture_output=True, text=True, timeout=120, check=False, env=environment, cwd=cwd)


def test_a_database_from_the_environment_takes_the_lease_as_config_does(
        anvil_world: World, record: str, tmp_path: Path) -> None:
    world = anvil_world
    database = tmp_path / "service.sqlite3"
    upgrade(database)
    store = Store(database)
    try:
        issuer = store.add_issuer("uni-env", entity_id=world.issuer_id,
                                  key_address=world.issuer.address, did="did:web:uni-env.example")
        url = f"sqlite:///{database}"
        recognise = ("recognise", "--deployment", record, "--as", "uni-env", "--subject",
                     BODY_DID, "--kind", "formal-non-degree", "--json")
        nonce = _nonce(world)
        with store.issuer_lease(issuer.id) as lease:
            assert lease.held
            busy = _cli_in(world, world.issuer, tmp_path, url, *recognise)
            assert _nonce(world) == nonce  # nothing sent
        assert busy.returncode == 1, busy.stderr
        assert f"busy: the service is sending with {world.issuer.address} now" in busy.stderr

        made = _cli_in(world, world.issuer, tmp_path, url, *recognise)
        assert made.returncode == 0, made.stderr
        recognition_id = json.loads(made.stdout)["id"]

        # An id names the entity, but the database is configured: the lease is still taken.
        withdraw = ("withdraw-recognition", "--deployment", record, "--as",
                    str(world.issuer_id), str(recognition_id), "--json")
        with store.issuer_lease(issuer.id) as lease:
            assert lease.held
            busy = _cli_in(world, world.issuer, tmp_path, url, *withdraw)
            assert _nonce(world) == nonce + 1
        assert busy.returncode == 1, busy.stderr
        assert "busy:" in busy.stderr
        done = _cli_in(world, world.issuer, tmp_path, url, *withdraw)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["withdrawnAt"] is not None
    finally:
        store.close()


@pytest.mark.parametrize("command", ["recognise", "withdraw-recognition", "recognitions"])
def test_a_name_without_a_database_is_refused_and_creates_none(
        anvil_world: World, record: str, tmp_path: Path, command: str) -> None:
    world = anvil_world
    extra = {"recognise": ("--subject", BODY_DID, "--kind", "non-formal"),
             "withdraw-recognition": ("0",), "recognitions": ()}[command]
    nonce = _nonce(world)
    refused = _cli_in(world, world.issuer, tmp_path, None, command, "--deployment", record,
                      "--as", "uni-a", *extra)
    assert refused.returncode == 2, refused.stderr
    assert "an issuer's name needs the service's database (--config or " \
        "MICROCRED_DATABASE_URL); none is configured" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _nonce(world) == nonce
    assert not (tmp_path / "data").exists()  # no ./data/service.sqlite3 made to look it up
