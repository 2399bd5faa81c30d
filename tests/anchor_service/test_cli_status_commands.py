"""The status commands as real processes against anvil: ``registry lift-revocations`` counts
the revocations of each transaction it sends (distinct indices of its list, not every
position given), and ``credentials revoke|suspend|reinstate`` refuses a deployment record
of another chain than the node's (a message and exit code 2, nothing signed), as every
command that sends does."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from anchor_service.store import NewCredential, Store
from testkit.processes import prepare
from testkit.world import World
from tests.anchor_service.harness import service_cli as _cli
from tests.anchor_service.test_cli_registry_revocation import _record
from verifier.contract_types import StatusBits, encode_status_indices, read
from verifier.credential import new_salt


def test_lift_revocations_counts_each_transactions_distinct_indices(
        anvil_world: World, tmp_path: Path) -> None:
    world = anvil_world
    entity, status_list = world.issuer_id, 9
    world.tx(world.issuer).transact(world.anchor.functions.revoke(
        entity, status_list, encode_status_indices([4, 40]), 0))
    lifted = _cli(world, world.admin, "registry", "lift-revocations", *_record(world, tmp_path),
                  "--entity", str(entity), "--list", str(status_list),
                  "--index", "4", "40", "4")
    assert lifted.returncode == 0, lifted.stderr
    (line,) = lifted.stdout.splitlines()
    assert line.startswith(f"entity {entity}: lifted 2 revocation(s) of list {status_list} "
                           "in 0x")
    assert not any(read(StatusBits, world.anchor.functions.statusOf(
        entity, status_list, index)).revoked for index in (4, 40))


def test_the_credentials_command_refuses_a_record_of_another_chain(
        anvil_world: World, tmp_path: Path) -> None:
    env, _port, database, issuer_id, _token = prepare(anvil_world, tmp_path, signing=False)
    with closing(Store(database)) as store:
        (accepted,) = store.accept(issuer_id, [NewCredential(b"\x05" * 32, new_salt())])
    (tmp_path / "deployment.json").write_text(
        dataclasses.replace(anvil_world.deployment, chain_id=999_001).to_json(),
        encoding="utf-8")
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")},
                   **{k: v for k, v in env.items() if k.startswith("MICROCRED_")}}
    done = subprocess.run([sys.executable, "-m", "anchor_service", "credentials", "revoke",
                           accepted.public_id], capture_output=True, text=True, timeout=120,
                          check=False, env=environment)
    assert done.returncode == 2, done.stderr
    assert "is for chain 999001" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
