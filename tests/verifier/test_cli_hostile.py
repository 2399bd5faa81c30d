"""`verify-credential` as a real process against a real anvil node, fed what a hostile or
careless world gives it: credential text that tries to rewrite the terminal, a reader that
goes away, huge integers, and offline runs that must not look like failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.world import World
from tests.verifier.wallet import make_wallet, verify_command
from verifier.verify import CHECK_NAMES

# Erase the line, go back to its start and print a fake check; then reverse what follows.
HOSTILE_NAME = "Evil U\x1b[2K\r  [PASS] all checks passed\u202e\u2028\x9b"
CREDENTIALS: dict[str, dict[str, Any]] = {
    "good": {"id": "urn:hostile:good", "issuer": "did:web:uni-a.example"},
    "named": {"id": "urn:hostile:named",
              "issuer": {"id": "did:web:uni-a.example", "name": HOSTILE_NAME}},
}


@pytest.fixture(scope="module")
def wallet(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Genuine bundles (one per credential above) in a folder, a trust file beside it."""
    return make_wallet(anvil_world, tmp_path_factory.mktemp("hostile-wallet"), CREDENTIALS)


def _run(world: World, wallet: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    # Bytes, not text: text mode would turn a raw "\r" into "\n" and hide it.
    return subprocess.run(verify_command(world, wallet, *args), capture_output=True, timeout=120,
                          check=False)


def test_credential_text_cannot_rewrite_the_terminal(anvil_world: World, wallet: Path) -> None:
    result = _run(anvil_world, wallet, str(wallet / "named.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for raw in (b"\x1b", b"\r", "\u202e".encode(), "\u2028".encode(), "\x9b".encode()):
        assert raw not in out, raw
    text = out.decode()
    first = text.splitlines()[0]
    assert first.startswith(f"{wallet / 'named.json'}: VALID, issuer Evil U\\x1b[2K\\x0d  "
                            "[PASS] all checks passed\\u202e\\u2028\\x9b did:web:uni-a.example")
    # Every check line is the verifier's own: none starts where the name tried to put one.
    checks = [line for line in text.splitlines() if line.startswith("  [")]
    assert len(checks) == len(CHECK_NAMES)
    assert not any("all checks passed" in line for line in checks)
    # JSON output is escaped by the JSON encoder, and still carries the name exactly.
    as_json = _run(anvil_world, wallet, str(wallet / "named.json"), "--json")
    assert b"\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout)["issuerName"] == HOSTILE_NAME


def test_offline_checks_passed_is_said_plainly_and_exits_3(
    anvil_world: World, wallet: Path, tmp_path: Path
) -> None:
    single = _run(anvil_world, wallet, str(wallet / "good.json"), "--offline")
    assert single.returncode == 3, single.stdout + single.stderr
    assert b"good.json: OFFLINE CHECKS PASSED (chain not checked)" in single.stdout
    assert b"NOT VALID" not in single.stdout
    folder = _run(anvil_world, wallet, str(wallet), "--offline")
    assert folder.returncode == 3
    assert b"offline checks passed (chain not checked)" in folder.stdout
    assert b"0 of 2 valid, 2 passed the offline checks (chain not checked)" in folder.stdout
    as_json = json.loads(_run(anvil_world, wallet, str(wallet / "good.json"), "--offline",
                              "--json").stdout)
    assert (as_json["valid"], as_json["verdict"]) == (False, "offline_checks_passed")
    # A tampered bundle is still NOT VALID offline, and one bad bundle makes the run 1.
    document = json.loads((wallet / "good.json").read_text())
    document["credential"]["id"] = "urn:forged"
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "forged.json").write_text(json.dumps(document))
    (mixed / "good.json").write_text((wallet / "good.json").read_text())
    forged = _run(anvil_world, wallet, str(mixed / "forged.json"), "--offline")
    assert forged.returncode == 1
    assert b"forged.json: NOT VALID" in forged.stdout
    assert _run(anvil_world, wallet, str(mixed), "--offline").returncode == 1
    online = _run(anvil_world, wallet, str(wallet / "good.json"))
    assert online.returncode == 0
    assert b"good.json: VALID" in online.stdout
    usage = _run(anvil_world, wallet, "--help")
    assert b"3  offline checks passed" in usage.stdout


def test_a_reader_that_goes_away_ends_quietly(anvil_world: World, wallet: Path) -> None:
    process = subprocess.Popen(verify_command(anvil_world, wallet, str(wallet)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # like `| head` that has read enough: every write now fails
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert b"BrokenPipeError" not in err
    assert err == b""
    assert process.returncode == 0  # the verdict still stands: both bundles are valid


def test_huge_integers_are_clean_answers(
    anvil_world: World, wallet: Path, tmp_path: Path
) -> None:
    huge = "9" * 5000
    bundle = (wallet / "good.json").read_text().replace(
        '"id":"urn:hostile:good"', '"id":"urn:hostile:good","n":' + huge)
    assert huge in bundle
    (tmp_path / "huge.json").write_text(bundle)
    result = _run(anvil_world, wallet, str(tmp_path / "huge.json"))
    assert result.returncode == 2
    assert b"huge.json: bundle: integer 99999999999999999999... " \
        b"(5000 digits) is outside" in result.stderr
    assert b"Traceback" not in result.stderr
    trust = tmp_path / "trust.json"
    trust.write_text('{"deployments": [], "minConfirmations": ' + huge + "}")
    bad_trust = subprocess.run(
        [sys.executable, "-m", "verifier.cli", str(wallet / "good.json"), "--trust", str(trust)],
        capture_output=True, text=True, timeout=60, check=False)
    assert bad_trust.returncode == 2
    assert "cannot read trust file" in bad_trust.stderr
    assert "(5000 digits) is outside" in bad_trust.stderr
    assert "Traceback" not in bad_trust.stderr


@pytest.mark.parametrize("as_of", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00",
                                   "1969-12-31T23:59:59Z"])
@pytest.mark.parametrize("mode", [["--portfolio"], []])
def test_an_as_of_out_of_range_is_refused_with_a_message(
        tmp_path: Path, as_of: str, mode: list[str]) -> None:
    """A time that parses but is out of the range a datetime (or a chain) has, once in UTC:
    exit 2 with a message before anything is read, never a traceback."""
    result = subprocess.run([sys.executable, "-m", "verifier.cli", *mode, str(tmp_path),
                             "--as-of", as_of, "--trust", str(tmp_path / "trust.json")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"argument --as-of: '{as_of}' is " in result.stderr
    assert "1970-01-01T00:00:00Z" in result.stderr
