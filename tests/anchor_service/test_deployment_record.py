"""Deployment records are camelCase JSON like every other JSON document of the project. A record
in the snake_case spelling of release 0.1.0 still loads, through the library and through the
command line against a real node; a record that mixes the spellings, lacks a key, has an
unknown one or a value of the wrong type is refused with a message that says which."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anchor_service.chain import Deployment, load_deployment
from anchor_service.errors import ChainError
from testkit.net import free_port, wait_until_up
from testkit.world import World

# What `anchor-service deploy` of release 0.1.0 wrote (keys sorted, the field names themselves).
RELEASE_0_1_0 = """{
  "anchor": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  "artifact_hash": "0xf869df6e4698a6581e8c3861ca3d1f38175d5744d025378b89be24c3ffb8d255",
  "block_number": 2,
  "chain_id": 31337,
  "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3"
}
"""
EXPECTED = Deployment(
    chain_id=31337, registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    anchor="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", block_number=2,
    deployer="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    artifact_hash="0xf869df6e4698a6581e8c3861ca3d1f38175d5744d025378b89be24c3ffb8d255")


def _camel() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(EXPECTED.to_json())
    return record


def test_a_record_is_written_in_camel_case() -> None:
    assert _camel() == {
        "anchor": EXPECTED.anchor, "artifactHash": EXPECTED.artifact_hash, "blockNumber": 2,
        "chainId": 31337, "deployer": EXPECTED.deployer, "registry": EXPECTED.registry}
    assert Deployment.from_json(EXPECTED.to_json()) == EXPECTED


def test_a_record_of_release_0_1_0_still_loads(tmp_path: Path) -> None:
    assert Deployment.from_json(RELEASE_0_1_0) == EXPECTED
    path = tmp_path / "deployment.json"
    path.write_text(RELEASE_0_1_0, encoding="utf-8")
    assert load_deployment(path) == EXPECTED


@pytest.mark.parametrize(("change", "message"), [
    ({"chain_id": 31337}, "mixes the camelCase keys ['artifactHash', 'blockNumber'] with the "
                          "snake_case keys of release 0.1.0 ['chain_id']: use one spelling"),
    ({"network": "local"}, "unknown keys ['network']"),
    ({"chainId": None}, "chainId must be a positive integer, not None"),
    ({"chainId": True}, "chainId must be a positive integer, not True"),
    ({"blockNumber": "2"}, "blockNumber must be a non-negative integer, not '2'"),
    ({"anchor": "0x1234"}, "anchor must be 0x and 40 hex digits, not '0x1234'"),
    ({"artifactHash": 7}, "artifactHash must be 0x and 64 hex digits, not 7"),
])
def test_a_malformed_record_is_refused_saying_why(change: dict[str, Any], message: str,
                                                  tmp_path: Path) -> None:
    record = _camel() | change
    if "chain_id" in change:
        del record["chainId"]  # the same key in both spellings
    with pytest.raises(ChainError) as refused:
        Deployment.from_json(json.dumps(record))
    assert message in str(refused.value)
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ChainError, match=re.escape(f"deployment record {path}: {message}")):
        load_deployment(path)


@pytest.mark.parametrize("text", ["[]", "{", '{"chainId": 1}', RELEASE_0_1_0.replace(
    '  "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",\n', "")])
def test_a_record_that_is_not_a_whole_record_is_refused(text: str) -> None:
    with pytest.raises(ChainError, match=r"not JSON|not a JSON object|missing keys"):
        Deployment.from_json(text)


def _registry_list(world: World, record: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", "registry", "list", "--json",
         "--deployment", str(record), "--rpc-url", str(world.chain.rpc_url)],
        capture_output=True, text=True, timeout=120, check=False, env=environment)


def test_the_command_line_reads_an_old_record_and_refuses_a_mixed_one(
        anvil_world: World, tmp_path: Path) -> None:
    deployment = anvil_world.deployment
    old = tmp_path / "old.json"
    old.write_text(json.dumps(dataclasses.asdict(deployment)), encoding="utf-8")
    listed = _registry_list(anvil_world, old)
    assert listed.returncode == 0, listed.stderr
    assert [entity["id"] for entity in json.loads(listed.stdout)][:2] == [1, 2]

    mixed = tmp_path / "mixed.json"
    record = json.loads(deployment.to_json())
    record["block_number"] = record.pop("blockNumber")
    mixed.write_text(json.dumps(record), encoding="utf-8")
    refused = _registry_list(anvil_world, mixed)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert f"deployment record {mixed}: mixes the camelCase keys" in refused.stderr
    assert "'block_number'" in refused.stderr


@pytest.mark.parametrize("text", ['{"chainId": 1}', "not json", None])
def test_serve_refuses_a_missing_or_malformed_record_before_it_starts(
        text: str | None, tmp_path: Path) -> None:
    """Exit 2 with the record's problem on stderr, no traceback and no server started."""
    record = tmp_path / "deployment.json"
    if text is not None:
        record.write_text(text, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    environment.update({"MICROCRED_DEPLOYMENT": str(record),
                        "MICROCRED_DATABASE_URL": f"sqlite:///{tmp_path / 'service.sqlite3'}",
                        "MICROCRED_PORT": str(free_port())})
    result = subprocess.run([sys.executable, "-m", "anchor_service", "serve"],
                            capture_output=True, text=True, timeout=120, check=False,
                            env=environment)
    assert result.returncode == 2, result.stderr
    assert f"deployment record {record}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Started server" not in result.stderr


def _stack(data: Path, port: int, chain_port: int) -> str:
    """Start ``anchor-service stack``, wait until it is ready, stop it; its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "anchor_service", "stack", "--data-dir", str(data),
         "--port", str(port), "--chain-port", str(chain_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    return err


def test_the_stack_reuses_an_old_record_and_rewrites_it_in_camel_case(tmp_path: Path) -> None:
    """A stack data folder of release 0.1.0 keeps its contracts: the record in the old spelling
    is read, the contracts are reused, and the record is written back in today's."""
    data = tmp_path / "data"
    port, chain_port = free_port(), free_port()
    _stack(data, port, chain_port)
    record = data / "deployment.json"
    deployment = Deployment.from_json(record.read_text(encoding="utf-8"))
    record.write_text(json.dumps(dataclasses.asdict(deployment), indent=2, sort_keys=True),
                      encoding="utf-8")

    err = _stack(data, port, chain_port)
    assert "reusing the contracts" in err
    assert "Traceback" not in err
    assert record.read_text(encoding="utf-8") == deployment.to_json()
