"""`anchor-service deploy` and `anchor-service registry ...` as real processes against a real
anvil node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from localchain import AnvilChain


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilChain]:
    chain = AnvilChain.start()
    try:
        yield chain
    finally:
        chain.close()


def _cli(chain: AnvilChain, signer: LocalAccount | None, *args: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    if signer is not None:
        environment["MICROCRED_PRIVATE_KEY"] = "0x" + bytes(signer.key).hex()
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", *args, "--rpc-url", str(chain.rpc_url)],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )


def test_deploy_and_administer_the_registry(anvil: AnvilChain, tmp_path: Path) -> None:
    admin, body, issuer_key, stranger = anvil.accounts[:4]
    record = tmp_path / "deployments" / "local.json"
    deployed = _cli(anvil, admin, "deploy", "--out", str(record))
    assert deployed.returncode == 0, deployed.stderr
    deployment = json.loads(record.read_text())
    assert deployment["chainId"] == anvil.chain_id
    assert set(deployment) == {"registry", "anchor", "chainId", "blockNumber", "deployer",
                               "artifactHash"}
    dep = ("--deployment", str(record))

    step = _cli(anvil, admin, "registry", "accredit-body", *dep, "--did", "did:web:body.eu",
                "--scope", "formal-degree,non-formal")
    assert step.returncode == 0, step.stderr
    assert "accredited body 1" in step.stdout
    step = _cli(anvil, admin, "registry", "add-key", *dep, "--entity", "1", "--key", body.address)
    assert step.returncode == 0, step.stderr

    # The body accredits an issuer with its own key, read from an encrypted keystore.
    keystore = tmp_path / "body.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes(body.key), "s3cret")))
    step = _cli(anvil, None, "registry", "add-issuer", *dep, "--parent", "1", "--did",
                "did:web:uni.eu", "--scope", "non-formal", "--keystore", str(keystore),
                env={"MICROCRED_KEYSTORE_PASSWORD": "s3cret"})
    assert step.returncode == 0, step.stderr
    step = _cli(anvil, body, "registry", "add-key", *dep, "--entity", "2", "--key",
                issuer_key.address)
    assert step.returncode == 0, step.stderr
    assert _cli(anvil, body, "registry", "suspend", *dep, "--entity", "2").returncode == 0
    assert _cli(anvil, admin, "registry", "revoke-key", *dep, "--key", issuer_key.address,
                "--effective-from", "1").returncode == 0

    listing = _cli(anvil, None, "registry", "list", *dep, "--json")
    assert listing.returncode == 0, listing.stderr
    entities = json.loads(listing.stdout)
    assert [(e["id"], e["kind"], e["status"], e["did"]) for e in entities] == [
        (1, "body", "active", "did:web:body.eu"), (2, "issuer", "suspended", "did:web:uni.eu")]
    assert entities[0]["scope"] == ["formal-degree", "non-formal"]
    assert entities[1]["keys"][0]["key"] == issuer_key.address
    assert entities[1]["keys"][0]["revokedAt"] == 1

    # Failures: a revert names the contract error (exit 1); bad input and setup exit 2.
    denied = _cli(anvil, stranger, "registry", "accredit-body", *dep, "--did", "did:web:x",
                  "--scope", "non-formal")
    assert denied.returncode == 1
    assert "NotAuthorized" in denied.stderr
    bad_scope = _cli(anvil, admin, "registry", "accredit-body", *dep, "--did", "did:web:y",
                     "--scope", "informal")
    assert bad_scope.returncode == 2
    assert "unknown scope 'informal'" in bad_scope.stderr
    wrong_password = _cli(anvil, None, "registry", "suspend", *dep, "--entity", "2",
                          "--keystore", str(keystore), env={"MICROCRED_KEYSTORE_PASSWORD": "x"})
    assert wrong_password.returncode == 2
    assert "wrong password" in wrong_password.stderr
    no_key = _cli(anvil, None, "registry", "suspend", *dep, "--entity", "2")
    assert no_key.returncode == 2
    assert "MICROCRED_PRIVATE_KEY" in no_key.stderr
    for result in (denied, bad_scope, wrong_password, no_key):
        assert "Traceback" not in result.stderr
        assert bytes(admin.key).hex() not in result.stderr + result.stdout


def test_commands_fail_cleanly_without_a_node(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anchor_service", "deploy", "--rpc-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MICROCRED_PRIVATE_KEY": "0x" + "11" * 32},
    )
    assert result.returncode == 2
    assert "no JSON-RPC node answers at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
