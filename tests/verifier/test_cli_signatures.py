"""`verify-credential` and issuer signatures, as a real process against a real anvil node:
``--allow-unsigned`` and ``--issuer-key``, and what the output says about the signature."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from testkit.world import World
from tests.verifier.wallet import make_wallet, signing_key_of, verify_command
from verifier.multikey import Multikey

ISSUER = "did:web:uni-a.example"
ISSUER_KEY = Multikey.from_public_key(signing_key_of(ISSUER).public_key()).multibase


@pytest.fixture(scope="module")
def wallet(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a signed bundle and an unsigned one, and a trust file beside it."""
    folder = tmp_path_factory.mktemp("signatures")
    make_wallet(anvil_world, folder, {"signed": {"id": "urn:cli:signed", "issuer": ISSUER}})
    unsigned = folder.parent / "unsigned-wallet"
    unsigned.mkdir()
    make_wallet(anvil_world, unsigned, {"unsigned": {"id": "urn:cli:unsigned",
                                                     "issuer": ISSUER}}, signed=False)
    (folder / "unsigned.json").write_text((unsigned / "unsigned.json").read_text())
    return folder


def _run(world: World, wallet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(verify_command(world, wallet, *args), capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_signed_bundle_names_its_signature(anvil_world: World, wallet: Path) -> None:
    result = _run(anvil_world, wallet, str(wallet / "signed.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"signed (eddsa-jcs-2022) with {ISSUER}#{ISSUER_KEY}" in result.stdout
    for name in ("signature_valid", "signing_key_registered",
                 "signing_key_trusted_at_anchoring"):
        assert f"[PASS] {name}" in result.stdout


def test_an_unsigned_bundle_fails_unless_allowed(anvil_world: World, wallet: Path) -> None:
    refused = _run(anvil_world, wallet, str(wallet / "unsigned.json"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "[FAIL] signature_valid: the credential is not signed" in refused.stdout
    allowed = _run(anvil_world, wallet, str(wallet / "unsigned.json"), "--allow-unsigned")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "UNSIGNED: no issuer signature" in allowed.stdout
    assert "[n/a ] signature_valid" in allowed.stdout
    as_json = json.loads(_run(anvil_world, wallet, str(wallet / "unsigned.json"),
                              "--allow-unsigned", "--json").stdout)
    assert as_json["unsignedAllowed"] is True
    assert as_json["valid"] is True
    signed = json.loads(_run(anvil_world, wallet, str(wallet / "signed.json"),
                             "--allow-unsigned", "--json").stdout)
    assert signed["unsignedAllowed"] is False
    assert signed["signature"]["verificationMethod"] == f"{ISSUER}#{ISSUER_KEY}"


def test_issuer_key_offline(anvil_world: World, wallet: Path) -> None:
    bundle = str(wallet / "signed.json")
    same = _run(anvil_world, wallet, bundle, "--offline", "--issuer-key", ISSUER_KEY)
    assert same.returncode == 3, same.stdout + same.stderr
    assert "[PASS] signature_valid" in same.stdout
    other = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    wrong = _run(anvil_world, wallet, bundle, "--offline", "--issuer-key", other.multibase)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert f"the proof names key {ISSUER_KEY}, but the key given is {other.multibase}" \
        in wrong.stdout


@pytest.mark.parametrize("key", [
    "not-a-key",                     # not multibase
    "z1111",                         # no known multicodec header
    ISSUER_KEY + "x",                # not a key any more
    "u" + ISSUER_KEY[1:],            # another multibase encoding
    "z" + "1" * 300,                 # over the length limit
])
def test_a_bad_issuer_key_exits_2_with_a_message(anvil_world: World, wallet: Path,
                                                 key: str) -> None:
    result = _run(anvil_world, wallet, str(wallet / "signed.json"), "--issuer-key", key)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("verify-credential: error: --issuer-key: "), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
