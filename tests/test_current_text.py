"""The project's text describes the present and names the project by its version: no "issue N"
references or "arrives later" promises in the source, docs and scripts (the changelog is the
history), one version everywhere, and setup.sh asks for the Node.js that package.json needs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import anchor_service

ROOT = Path(__file__).parents[1]
SKIPPED_DIRS = {".git", ".venv", ".venv-tools", "node_modules", "data", "build", "__pycache__",
                ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}
SKIPPED_FILES = {"CHANGELOG.md"}  # the history, where issue numbers belong
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".js", ".html", ".css", ".json", ".sol", ".txt",
                 ".in", ".lock", ".yml", ".yaml", ".cfg", ""}
STALE = re.compile(
    r"\bissues?\s*#?\d"              # an issue number, with or without "#"
    r"|\b(?:arrives?|comes?) with (?:the )?(?:later|next)\b"
    r"|\blater issues?\b",
    re.IGNORECASE,
)


def project_text_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.is_file() and path.name not in SKIPPED_FILES and path.suffix in TEXT_SUFFIXES:
            found.append(path)
    return found


def test_no_issue_numbers_or_promises_in_source_docs_and_scripts() -> None:
    files = project_text_files()
    assert any(p.name == "README.md" for p in files)
    assert any(p.name == "setup.sh" for p in files)
    stale = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if STALE.search(line):
                stale.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert stale == [], "\n".join(stale)


def test_the_demo_says_what_anchors_today() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anchor_service", "demo", "--count", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "anchor-service stack" in result.stdout
    assert not STALE.search(result.stdout + result.stderr)


def test_one_version_in_pyproject_the_package_and_the_cli() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["version"]
    assert anchor_service.__version__ == version
    result = subprocess.run(
        [sys.executable, "-m", "anchor_service", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"anchor-service {version}"


def test_setup_asks_for_the_node_version_package_json_needs() -> None:
    package = json.loads((ROOT / "hardhat-free-local" / "package.json").read_text("utf-8"))
    match = re.fullmatch(r">=\s*(\d+)", package["engines"]["node"])
    assert match, package["engines"]
    needed = int(match.group(1))
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    checks = re.findall(r"parseInt\(process\.versions\.node\) >= (\d+)", setup)
    messages = re.findall(r"need Node\.js >= (\d+)", setup)
    assert checks
    assert messages
    assert {int(v) for v in checks + messages} == {needed}


def test_the_readme_status_names_the_version_and_nothing_pending() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    status = readme.split("**Status.**", 1)[1].split("\n\n", 1)[0]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["version"]
    assert f"Version {version}" in status
    assert not re.search(r"\b(next|started|largely|later|soon|todo)\b", status, re.IGNORECASE), (
        status)
