"""`verify-credential` as a real process against a real anvil node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.world import World
from tests.verifier.wallet import make_wallet, verify_command
from verifier import cli
from verifier.chain import JsonRpcChainReader


@pytest.fixture(scope="module")
def wallet(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two genuine bundles, and a trust file beside it."""
    return make_wallet(anvil_world, tmp_path_factory.mktemp("wallet"), {
        f"bundle{n}": {"id": f"urn:cli:{n}", "issuer": "did:web:uni-a.example"}
        for n in range(2)})


def _run(world: World, wallet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(verify_command(world, wallet, *args), capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_valid_bundle_exits_0_with_a_checklist(anvil_world: World, wallet: Path) -> None:
    result = _run(anvil_world, wallet, str(wallet / "bundle0.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID, issuer did:web:uni-a.example" in result.stdout
    assert "[PASS] issuer_trusted_at_anchoring" in result.stdout


def test_a_folder_with_a_tampered_bundle_exits_1_with_a_summary(
    anvil_world: World, wallet: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = (wallet / "bundle0.json").read_text()
    (folder / "good.json").write_text(good)
    document = json.loads(good)
    document["credential"]["id"] = "urn:forged"
    (folder / "forged.json").write_text(json.dumps(document))
    # Its format spelled with an escape: still a bundle, verified (and well formed).
    (folder / "escaped.json").write_text(good.replace("microcred-anchor-bundle",
                                                      "microcred-anchor-bundl\\u0065"))
    # A bundle without its receipt: malformed, so not valid.
    (folder / "broken.json").write_text('{"format": "microcred-anchor-bundle", "version": 1}')
    # The credential a bundle was made from, beside it: skipped and named.
    (folder / "credential.json").write_text(json.dumps(document["credential"]))
    result = _run(anvil_world, wallet, str(folder))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 of 4 valid" in result.stdout
    assert "forged.json" in result.stdout
    assert "failed: digest_matches" in result.stdout
    assert "failed: receipt_well_formed" in result.stdout
    assert "skipped 1 file(s) that are not bundles: credential.json" in result.stderr
    as_json = json.loads(_run(anvil_world, wallet, str(folder), "--json").stdout)
    assert {Path(d["file"]).name: d["valid"] for d in as_json} == {
        "broken.json": False, "escaped.json": True, "forged.json": False, "good.json": True}


def test_a_file_that_is_not_json_is_an_error_and_the_others_are_still_verified(
    anvil_world: World, wallet: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "with-junk"
    folder.mkdir()
    (folder / "good.json").write_text((wallet / "bundle0.json").read_text())
    (folder / "junk.json").write_text("{not json")
    result = _run(anvil_world, wallet, str(folder))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "junk.json: bundle: invalid JSON at line 1 column 2" in result.stderr
    assert "1 of 1 valid" in result.stdout
    alone = _run(anvil_world, wallet, str(folder / "junk.json"), "--json")
    assert alone.returncode == 2
    assert alone.stdout == ""
    assert "Traceback" not in result.stderr + alone.stderr


def test_offline_exits_3_and_marks_chain_checks_not_checked(
    anvil_world: World, wallet: Path
) -> None:
    result = _run(anvil_world, wallet, str(wallet / "bundle1.json"), "--offline")
    assert result.returncode == 3
    assert "OFFLINE CHECKS PASSED (chain not checked)" in result.stdout
    assert "[PASS] merkle_inclusion" in result.stdout
    assert "[----] anchored_on_chain: offline: needs the chain" in result.stdout


def test_errors_exit_2_with_a_message(anvil_world: World, wallet: Path, tmp_path: Path) -> None:
    missing = _run(anvil_world, wallet, str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    bad_trust = tmp_path / "trust.json"
    bad_trust.write_text('{"deployments": [{"chainId": 0}]}')
    result = subprocess.run(
        [sys.executable, "-m", "verifier.cli", str(wallet / "bundle0.json"), "--trust",
         str(bad_trust)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "deployments.0" in result.stderr
    assert "Traceback" not in result.stderr + missing.stderr
    naive = _run(anvil_world, wallet, str(wallet / "bundle0.json"), "--as-of", "2027-01-01")
    assert naive.returncode == 2
    assert "has no time zone" in naive.stderr


def test_as_of_before_the_anchor_exits_1(anvil_world: World, wallet: Path) -> None:
    result = _run(anvil_world, wallet, str(wallet / "bundle0.json"), "--as-of",
                  "2020-01-01T00:00:00Z")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[FAIL] anchored_on_chain: the root was anchored at" in result.stdout


def test_a_version_1_bundle_exits_1_saying_what_reads_it(anvil_world: World, wallet: Path,
                                                         tmp_path: Path) -> None:
    """A bundle from a CredentialAnchor 1.x deployment (format version 1, no status position)
    is not valid here, and the report says why and what verifies it."""
    document = json.loads((wallet / "bundle0.json").read_text())
    document["version"] = 1
    document["receipt"]["version"] = 1
    for field in ("statusList", "statusListIndex"):
        del document["receipt"][field]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    result = _run(anvil_world, wallet, str(old))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[FAIL] receipt_well_formed: bundle.version: version 1 comes from a " \
        "CredentialAnchor 1.x deployment" in result.stdout
    assert "microcred-anchor<0.2" in result.stdout


def test_ignore_log_blooms_makes_a_reader_that_reads_each_new_head(
        anvil_world: World, wallet: Path) -> None:
    """``--ignore-log-blooms``: the reader the CLI makes does not trust the node's blooms
    (tests/verifier/test_chain_state_blooms.py shows what that changes), a bundle verifies as
    before, and the option is refused with ``--offline``, which reads no chain."""
    args = ["bundle.json", "--trust", "trust.json", "--rpc-url", str(anvil_world.chain.rpc_url)]
    for extra, trusted in (([], True), (["--ignore-log-blooms"], False)):
        reader = cli._reader(cli._parser().parse_args([*args, *extra]))
        assert isinstance(reader, JsonRpcChainReader)
        assert reader.trusts_log_blooms is trusted
        reader.close()
    result = _run(anvil_world, wallet, str(wallet / "bundle0.json"), "--ignore-log-blooms")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID, issuer did:web:uni-a.example" in result.stdout
    offline = _run(anvil_world, wallet, str(wallet / "bundle0.json"), "--offline",
                   "--ignore-log-blooms")
    assert offline.returncode == 2
    assert "--ignore-log-blooms is about reading the chain, not --offline" in offline.stderr
