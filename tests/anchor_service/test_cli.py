"""The demo command, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from verifier.credential import credential_digest, leaf_input, parse_credential
from verifier.merkle import verify_inclusion


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_demo_builds_and_verifies_a_batch(tmp_path: Path) -> None:
    extra = tmp_path / "mine.json"
    extra.write_text('{"learner": "Ada", "course": "Merkle trees"}', encoding="utf-8")
    out = tmp_path / "batch.json"
    result = _run("demo", "--count", "300", "--out", str(out), str(extra))
    assert result.returncode == 0, result.stderr
    assert "batch of 305 credentials" in result.stdout
    assert "tampered" in result.stdout
    assert "rejected (RootMismatchError)" in result.stdout
    assert "not anchored" in result.stdout
    batch = json.loads(out.read_text(encoding="utf-8"))
    assert batch["treeSize"] == 305
    root = bytes.fromhex(batch["root"][2:])
    mine = parse_credential(extra.read_bytes())
    leaves = {leaf["credentialDigest"]: leaf for leaf in batch["leaves"]}
    leaf = leaves["0x" + credential_digest(mine).hex()]
    verify_inclusion(
        leaf_input(bytes.fromhex(leaf["salt"][2:]), credential_digest(mine),
                   leaf["statusList"], leaf["statusListIndex"]),
        leaf["leafIndex"], 305, [bytes.fromhex(h[2:]) for h in leaf["auditPath"]], root,
    )


def test_demo_rejects_a_bad_credential_file_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"score": NaN}', encoding="utf-8")
    result = _run("demo", "--count", "0", str(bad))
    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert "NaN is not a JSON number" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_reports_missing_file_and_bad_count(tmp_path: Path) -> None:
    missing = _run("demo", "--count", "0", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "No such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    negative = _run("demo", "--count", "-1")
    assert negative.returncode == 2
    assert "--count" in negative.stderr
