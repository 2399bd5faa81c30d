"""The signing-key registry commands as real processes against anvil: ``registry
add-signing-key``, ``signing-keys``, ``shorten-signing-key`` and ``revoke-signing-key`` (a key
named by its publicKeyMultibase or its id, ISO 8601 times), as the chain then holds them;
bad input exits 2 with a message, a refusal by the contract exits 1 naming its error."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_account.signers.local import LocalAccount

from testkit.world import World
from tests.anchor_service.harness import service_cli, write_deployment
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import TrustCode, signing_key_id
from verifier.multikey import Multikey

NEW_COMMANDS = ("add-signing-key", "revoke-signing-key", "shorten-signing-key", "signing-keys")


def _cli(world: World, signer: LocalAccount | None, *args: str) -> subprocess.CompletedProcess[str]:
    return service_cli(world, signer, "registry", *args)


@pytest.fixture
def deployment(anvil_world: World, tmp_path: Path) -> tuple[str, str]:
    return "--deployment", str(write_deployment(anvil_world, tmp_path))


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _listed(world: World, deployment: tuple[str, str], entity_id: int) -> list[dict[str, object]]:
    result = _cli(world, None, "signing-keys", str(entity_id), *deployment, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["entity"] == entity_id
    keys: list[dict[str, object]] = document["signingKeys"]
    return keys


def test_add_list_shorten_and_revoke_a_signing_key(anvil_world: World,
                                                   deployment: tuple[str, str]) -> None:
    world = anvil_world
    ed_key = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    p256_key = Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    before = len(_listed(world, deployment, world.issuer_id))
    for key in (ed_key, p256_key):
        added = _cli(world, world.body, "add-signing-key", *deployment, "--entity",
                     str(world.issuer_id), "--public-key", key.multibase)
        assert added.returncode == 0, added.stderr
        assert added.stdout.strip() == (
            f"signing key 0x{signing_key_id(key).hex()} ({key.key_type.label} {key.multibase}) "
            f"added to entity {world.issuer_id}")

    listed = _listed(world, deployment, world.issuer_id)[before:]
    assert [(k["publicKeyMultibase"], k["type"], k["state"], k["trustedNow"]) for k in listed] \
        == [(ed_key.multibase, "Ed25519", "trusted", True),
            (p256_key.multibase, "P-256", "trusted", True)]
    assert listed[0]["keyId"] == "0x" + signing_key_id(ed_key).hex()
    text = _cli(world, None, "signing-keys", str(world.issuer_id), *deployment)
    assert text.returncode == 0, text.stderr
    assert f"0x{signing_key_id(p256_key).hex()} P-256   {p256_key.multibase}  trusted" \
        in text.stdout

    # Rotation: the P-256 key by its id, with an ISO 8601 time.
    until = world.now() + 86_400
    shortened = _cli(world, world.issuer, "shorten-signing-key",
                     "0x" + signing_key_id(p256_key).hex(), "--valid-until", _iso(until),
                     *deployment)
    assert shortened.returncode == 0, shortened.stderr
    assert f"now expires at {_iso(until)} ({until})" in shortened.stdout

    # Compromise: the Ed25519 key by its publicKeyMultibase, back-dated by the accreditor.
    world.chain.increase_time(120)
    compromise = world.now() - 60
    revoked = _cli(world, world.body, "revoke-signing-key", ed_key.multibase,
                   "--effective-from", _iso(compromise), *deployment)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == (f"signing key 0x{signing_key_id(ed_key).hex()} is "
                                      f"revoked, with effect from {_iso(compromise)} "
                                      f"({compromise})")
    listed = _listed(world, deployment, world.issuer_id)[before:]
    assert (listed[0]["revokedAt"], listed[0]["state"]) == (compromise, "key revoked")
    assert listed[1]["validUntil"] == until

    reader = JsonRpcChainReader(str(world.chain.rpc_url), head_max_age=0)
    registry = world.registry.address
    assert reader.signing_key_trusted_at(registry, signing_key_id(ed_key),
                                         compromise - 1).trusted is True
    assert reader.signing_key_trusted_at(registry, signing_key_id(ed_key),
                                         compromise).code is TrustCode.KEY_REVOKED

    # The contract's refusals: exit 1, the error by name.
    again = _cli(world, world.body, "add-signing-key", *deployment, "--entity",
                 str(world.issuer_id), "--public-key", ed_key.multibase)
    assert again.returncode == 1
    assert "SigningKeyAlreadyRegistered" in again.stderr
    backdated = _cli(world, world.issuer, "revoke-signing-key", p256_key.multibase,
                     "--effective-from", str(compromise), *deployment)
    assert backdated.returncode == 1
    assert "BackdatingNotAllowed" in backdated.stderr


def test_refusals_and_bad_input(anvil_world: World, deployment: tuple[str, str]) -> None:
    world = anvil_world
    key = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    p384 = Multikey.from_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    entity = ("--entity", str(world.issuer_id))
    cases: list[tuple[LocalAccount | None, tuple[str, ...], int, str]] = [
        (world.stranger, ("add-signing-key", *entity, "--public-key", key.multibase), 1,
         "NotAuthorized"),
        (world.issuer, ("add-signing-key", *entity, "--public-key", key.multibase), 1,
         "NotAuthorized"),
        (world.body, ("add-signing-key", *entity, "--public-key", "zNotAKey0"), 2,
         "not in the base58btc alphabet"),
        (world.body, ("add-signing-key", *entity, "--public-key", "z6Mk"), 2,
         "publicKeyMultibase"),
        (world.body, ("add-signing-key", *entity, "--public-key", p384.multibase), 2,
         "Ed25519 and P-256 signing keys, not P-384"),
        (world.body, ("revoke-signing-key", "0x1234"), 2,
         "is not a signing key id (0x and 64 hex digits)"),
        (world.body, ("revoke-signing-key", key.multibase, "--effective-from",
                      "2026-03-01T09:00:00"), 2, "time zone"),
        (world.body, ("revoke-signing-key", key.multibase), 1, "UnknownSigningKey"),
        (None, ("signing-keys", "999"), 2, "no entity 999"),
        (None, ("signing-keys", "two"), 2, "invalid int value"),
    ]
    for signer, args, code, message in cases:
        result = _cli(world, signer, *args, *deployment)
        assert (result.returncode, message in result.stderr) == (code, True), (args,
                                                                               result.stderr)
        assert "Traceback" not in result.stderr
    unused = _listed(world, deployment, world.issuer_id)
    assert key.multibase not in {k["publicKeyMultibase"] for k in unused}


def test_help_lists_the_signing_key_commands(anvil_world: World) -> None:
    result = _cli(anvil_world, None, "--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for name in NEW_COMMANDS:
        at = [n for n, line in enumerate(lines) if line.split()[:1] == [name]]
        assert at, f"{name} is not listed with a description:\n{result.stdout}"
        text = lines[at[0]].strip().removeprefix(name).strip() or lines[at[0] + 1]
        assert len(text.split()) >= 3, (name, text)
