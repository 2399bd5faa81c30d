"""The service works only with the 2.x contracts: a deployment record naming contracts of
another version (a CredentialAnchor 1.x deployment, whose ``anchor(bytes32,uint64)`` has the
same selector) is refused when the components are built, by ``anchor-service serve`` (exit
code 2 and a message, no traceback) and by the pipeline (nothing anchored, ``/readyz`` says
why); ``anchor-service stack`` deploys 2.x contracts afresh over a 1.x record. Real anvil,
real processes; the "1.x" contracts are minimal contracts whose every call answers the ABI
string "1.0.0" (or nothing), deployed from hand-assembled bytecode."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode
from hexbytes import HexBytes

from anchor_service import stack
from anchor_service.chain import Transactor, check_contract_versions, contract_version
from anchor_service.errors import ContractVersionError
from anchor_service.pipeline import Pipeline
from anchor_service.service import build_components
from anchor_service.settings import ServiceSettings
from anchor_service.store import Store
from testkit.processes import prepare
from testkit.world import World


def _constant_contract(world: World, answer: bytes) -> str:
    """Deploy a contract whose every call returns ``answer``; its address."""
    def copier(length: int) -> bytes:
        # PUSH2 len, PUSH1 14, PUSH1 0, CODECOPY, PUSH2 len, PUSH1 0, RETURN: the code after
        # these 14 bytes is returned (by the creation code: as the runtime code).
        size = length.to_bytes(2, "big")
        return b"\x61" + size + b"\x60\x0e\x60\x00\x39\x61" + size + b"\x60\x00\xf3"

    runtime = copier(len(answer)) + answer
    init = copier(len(runtime)) + runtime
    w3 = world.chain.w3
    signed = world.admin.sign_transaction({
        "data": HexBytes(init), "nonce": w3.eth.get_transaction_count(world.admin.address),
        "gas": 200_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id,
        "value": 0})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction))
    address = receipt["contractAddress"]
    assert address is not None
    return str(address)


@pytest.fixture(scope="module")
def old_anchor(anvil_world: World) -> str:
    return _constant_contract(anvil_world, abi_encode(["string"], ["1.0.0"]))


def test_the_2x_deployment_passes_and_a_1x_anchor_is_refused(anvil_world: World,
                                                              old_anchor: str) -> None:
    w3 = anvil_world.chain.w3
    assert contract_version(w3, anvil_world.deployment.anchor) == "2.0.0"
    # A minor version of the registry (2.1.0: recognitions) is of the same major: accepted.
    assert contract_version(w3, anvil_world.deployment.registry) == "2.1.0"
    assert contract_version(w3, old_anchor) == "1.0.0"
    check_contract_versions(w3, anvil_world.deployment)
    old = dataclasses.replace(anvil_world.deployment, anchor=old_anchor)
    with pytest.raises(ContractVersionError) as refused:
        check_contract_versions(w3, old)
    assert f"CredentialAnchor at {old_anchor} is version 1.0.0" in str(refused.value)
    assert "anchor-service 0.1.x" in str(refused.value)


def test_a_registry_without_version_is_refused(anvil_world: World) -> None:
    silent = _constant_contract(anvil_world, b"")
    old = dataclasses.replace(anvil_world.deployment, registry=silent)
    with pytest.raises(ContractVersionError, match=r"IssuerRegistry at .* answers no version"):
        check_contract_versions(anvil_world.chain.w3, old)


def test_building_the_components_refuses_a_1x_anchor(anvil_world: World, old_anchor: str,
                                                     tmp_path: Path) -> None:
    _env, _port, database, _issuer, _token = prepare(anvil_world, tmp_path, signing=False)
    record = tmp_path / "deployment.json"
    record.write_text(dataclasses.replace(anvil_world.deployment, anchor=old_anchor).to_json(),
                      encoding="utf-8")
    settings = ServiceSettings(rpc_url=str(anvil_world.chain.rpc_url), deployment=record,
                               database_url=f"sqlite:///{database}",
                               keystore_dir=tmp_path / "keys", keystore_password="pw")
    with pytest.raises(ContractVersionError, match=r"is version 1\.0\.0"):
        build_components(settings)


def test_the_pipeline_does_not_anchor_on_a_1x_anchor(anvil_world: World, old_anchor: str,
                                                     tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        old = dataclasses.replace(anvil_world.deployment, anchor=old_anchor)
        pipeline = Pipeline(store, anvil_world.chain.w3, old, {})
        assert pipeline.check_chain() is False
        assert pipeline.chain_problem is not None
        assert pipeline.chain_problem.startswith("wrong contracts: ")
        assert "version 1.0.0" in pipeline.chain_problem
    finally:
        store.close()


def test_serve_refuses_a_1x_anchor_with_a_message(anvil_world: World, old_anchor: str,
                                                  tmp_path: Path) -> None:
    env, _port, _database, _issuer, _token = prepare(anvil_world, tmp_path, signing=False)
    (tmp_path / "deployment.json").write_text(
        dataclasses.replace(anvil_world.deployment, anchor=old_anchor).to_json(),
        encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "anchor_service", "serve"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr  # the CLI's code for a refused configuration
    assert "is version 1.0.0" in done.stderr
    assert "deploy the 2.x contracts" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_stack_deploys_afresh_over_a_1x_record(anvil_world: World, old_anchor: str,
                                                   tmp_path: Path) -> None:
    record = tmp_path / "deployment.json"
    old = dataclasses.replace(anvil_world.deployment, anchor=old_anchor)
    record.write_text(old.to_json(), encoding="utf-8")
    admin = Transactor(anvil_world.chain.w3, anvil_world.admin)
    deployment, fresh = stack._deployment(record, admin)
    assert fresh is True
    assert deployment.anchor != old_anchor
    check_contract_versions(anvil_world.chain.w3, deployment)
    assert json.loads(record.read_text(encoding="utf-8"))["anchor"] == deployment.anchor
    # And the 2.x record it wrote is reused on the next start.
    again, fresh = stack._deployment(record, admin)
    assert (again, fresh) == (deployment, False)
