"""Static analysis of the contracts: solhint (recommended rules, .solhint.json) and Slither,
driven through the project's own compiler wrapper. Every finding is either fixed or accepted
with its reason in contracts/static-analysis.json; a new finding fails, and so does an accepted
one that no longer appears (the list must stay true)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRIAGE: dict[str, Any] = json.loads((ROOT / "contracts" / "static-analysis.json").read_text())
SOLHINT = ROOT / "hardhat-free-local" / "node_modules" / ".bin" / "solhint"
SLITHER = ROOT / ".venv-tools" / "bin" / "slither"


def test_solhint_finds_nothing_beyond_the_rules_turned_off() -> None:
    assert SOLHINT.exists(), "solhint is missing: scripts/setup.sh installs the npm packages"
    config = json.loads((ROOT / ".solhint.json").read_text())
    turned_off = {rule for rule, level in config["rules"].items() if level == "off"}
    assert turned_off == set(TRIAGE["solhint"]["rules_turned_off"]), "each rule off has a reason"
    result = subprocess.run(
        [str(SOLHINT), "--max-warnings", "0", "-f", "unix", "contracts/**/*.sol"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _slither_findings() -> set[tuple[str, str]]:
    assert SLITHER.exists(), "Slither is missing: scripts/setup.sh --tests installs .venv-tools"
    result = subprocess.run(
        [str(SLITHER), "contracts/", "--solc", "hardhat-free-local/solc/solc.js",
         "--solc-standard-json",
         "--solc-remaps", "@openzeppelin/=hardhat-free-local/node_modules/@openzeppelin/",
         "--solc-args", "--via-ir --optimize", "--filter-paths", "node_modules", "--json", "-"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(result.stdout)
    assert report["success"], report.get("error")
    found = set()
    for detector in report["results"].get("detectors", []):
        element = detector["elements"][0]
        parent = element.get("type_specific_fields", {}).get("parent", {}).get("name", "")
        found.add((detector["check"], f"{parent}.{element['name']}"))
    return found


def test_slither_finds_only_accepted_findings() -> None:
    accepted = {(item["check"], item["function"]) for item in TRIAGE["slither"]["accepted"]}
    assert all(item["why"] for item in TRIAGE["slither"]["accepted"])
    found = _slither_findings()
    assert found - accepted == set(), "new Slither findings: fix them, or accept them with a reason"
    assert accepted - found == set(), "accepted findings that no longer appear: drop them"
