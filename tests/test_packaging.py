"""A plain (non-editable) build of the project installs and imports on its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ROOT_OF_TREE_A = "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("source") / "project"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(out), str(source)],
        check=True, timeout=300, capture_output=True,
    )
    (built,) = out.glob("microcred_anchor-*.whl")
    return built


def test_wheel_ships_packages_types_and_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "verifier/__init__.py", "verifier/merkle.py", "verifier/py.typed",
        "verifier/schemas/receipt-v1.schema.json", "verifier/schemas/bundle-v1.schema.json",
        "anchor_service/__init__.py", "anchor_service/py.typed",
        "anchor_service/examples/vc2-microcredential.json",
        "verifier/artifacts/IssuerRegistry.json", "verifier/artifacts/CredentialAnchor.json",
        "verifier/web/index.html", "verifier/web/verify.js", "verifier/web/verify.css",
        "verifier/web/favicon.svg", "anchor_service/api/web.py",
        "localchain/__init__.py", "localchain/py.typed",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "scripts/")) for name in names)


def test_installed_wheel_imports_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
         str(wheel)],
        check=True, timeout=300, capture_output=True,
    )
    probe = "\n".join([
        "import sys",
        f"sys.path.insert(0, {str(target)!r})",
        "import json, importlib.resources as resources",
        "import verifier.merkle, anchor_service",
        f"assert verifier.merkle.__file__.startswith({str(target)!r}), verifier.merkle.__file__",
        "schema = resources.files('verifier') / 'schemas' / 'receipt-v1.schema.json'",
        "json.loads(schema.read_text())",
        "print(verifier.merkle.MerkleTree([b'a']).root.hex())",
    ])
    # Isolated mode, from an empty folder: only the installed copy can be imported.
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ROOT_OF_TREE_A
