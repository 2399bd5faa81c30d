"""A plain (non-editable) build of the project installs and imports on its own, and builds
without setuptools warning that it would leave data folders out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from anchor_service import migrations

ROOT = Path(__file__).parents[1]
ROOT_OF_TREE_A = "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel, and everything the build printed."""
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("source") / "project"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache"))
    out = tmp_path_factory.mktemp("wheel")
    # --verbose: pip passes setuptools' own output (and its warnings) through.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--verbose", "--wheel-dir", str(out), str(source)],
        check=True, timeout=300, capture_output=True, text=True,
    )
    (built,) = out.glob("microcred_anchor-*.whl")
    return built, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(build: tuple[Path, str]) -> Path:
    return build[0]


def test_the_build_prints_no_package_data_warning(build: tuple[Path, str]) -> None:
    _, output = build
    assert "adding 'verifier/schemas/receipt-v2.schema.json'" in output  # the output is there
    assert "would be ignored" not in output
    assert "Package would be ignored" not in output


def test_wheel_ships_packages_types_and_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "verifier/__init__.py", "verifier/merkle.py", "verifier/py.typed",
        "verifier/schemas/receipt-v2.schema.json", "verifier/schemas/bundle-v2.schema.json",
        "anchor_service/__init__.py", "anchor_service/py.typed",
        "anchor_service/examples/vc2-microcredential.json",
        "verifier/artifacts/IssuerRegistry.json", "verifier/artifacts/CredentialAnchor.json",
        "verifier/contexts/manifest.json", "verifier/contexts/credentials-v2.jsonld",
        "verifier/contexts/ob-v3p0-context-3.0.3.json",
        "verifier/web/index.html", "verifier/web/verify.js", "verifier/web/verify.css",
        "verifier/web/page.js",
        "verifier/web/favicon.svg", "anchor_service/api/web.py",
        "anchor_service/api/docs.py", "anchor_service/api/docs_assets/index.html",
        "anchor_service/api/docs_assets/swagger-init.js",
        "anchor_service/cli/__init__.py", "anchor_service/cli/token.py",
        "anchor_service/migrations/__init__.py", "anchor_service/migrations/env.py",
        "anchor_service/migrations/script.py.mako",
        "anchor_service/migrations/versions/0001_release_0_1_0.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "scripts/")) for name in names)
    # localchain is the development distribution of hardhat-free-local/, not the service's.
    assert not any(name.startswith("localchain/") for name in names)
    # Nor testkit, the development distribution of the test support in testkit/.
    assert not any(name.startswith("testkit/") for name in names)
    # Every file of every data folder, not only the ones named above.
    for folder in ("verifier/schemas", "verifier/artifacts", "verifier/web", "verifier/contexts",
                   "anchor_service/examples", "anchor_service/api/docs_assets",
                   "anchor_service/migrations", "anchor_service/migrations/versions"):
        shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).iterdir()
                   if p.is_file()}
        assert shipped, folder
        assert shipped <= names, shipped - names


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own (no dependencies: the venv has them)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
         str(wheel)],
        check=True, timeout=300, capture_output=True,
    )
    return target


def _run_installed(installed: Path, lines: list[str], cwd: Path) -> str:
    """Run ``lines`` in isolated mode from an empty folder, so that only the installed copy
    can be imported; their output."""
    probe = "\n".join(["import sys", f"sys.path.insert(0, {str(installed)!r})", *lines])
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_installed_wheel_imports_outside_the_source_tree(installed: Path, tmp_path: Path) -> None:
    output = _run_installed(installed, [
        "import json, importlib.resources as resources",
        "import verifier.merkle, anchor_service",
        f"assert verifier.merkle.__file__.startswith({str(installed)!r}), verifier.merkle.__file__",
        "schema = resources.files('verifier') / 'schemas' / 'receipt-v2.schema.json'",
        "json.loads(schema.read_text())",
        "print(verifier.merkle.MerkleTree([b'a']).root.hex())",
    ], tmp_path)
    assert output == ROOT_OF_TREE_A


def test_installed_wheel_migrates_a_database_with_its_own_revisions(installed: Path,
                                                                    tmp_path: Path) -> None:
    """The migrations ship inside the package: an installed wheel creates a database at its
    head revision from its own files."""
    output = _run_installed(installed, [
        "from anchor_service import migrations",
        f"assert migrations.__file__.startswith({str(installed)!r}), migrations.__file__",
        f"print(migrations.revisions(), migrations.upgrade({str(tmp_path / 'db.sqlite3')!r}))",
    ], tmp_path)
    # Every revision of the source tree, and its head, shipped.
    assert output == f"{migrations.revisions()} {migrations.head()}"


def test_installed_wheel_canonicalises_with_its_bundled_contexts(installed: Path,
                                                                 tmp_path: Path) -> None:
    """The JSON-LD contexts ship inside the package: an installed wheel loads them (checked
    against its manifest) for RDF canonicalisation, offline."""
    output = _run_installed(installed, [
        "import verifier.jsonld as jsonld",
        f"assert jsonld.__file__.startswith({str(installed)!r}), jsonld.__file__",
        "document = {'@context': ['https://www.w3.org/ns/credentials/v2'],",
        "            'type': ['VerifiableCredential'], 'credentialSubject': {'name': 'A'}}",
        "nquads = jsonld.canonical_nquads(document)",
        "print(len(jsonld.bundled_contexts().urls), nquads.count('\\n'))",
    ], tmp_path)
    assert output == f"{len(list((ROOT / 'verifier' / 'contexts').glob('*.json*'))) - 1} 3"


def test_localchain_is_a_distribution_of_its_own(tmp_path: Path) -> None:
    """hardhat-free-local/ builds the development distribution microcred-localchain: the
    package localchain with its type marker, and none of the npm side next to it."""
    source = tmp_path / "hardhat-free-local"
    shutil.copytree(ROOT / "hardhat-free-local", source, ignore=shutil.ignore_patterns(
        "node_modules", "build", "*.egg-info", "__pycache__"))
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(source)],
        check=True, timeout=300, capture_output=True,
    )
    (built,) = out.glob("microcred_localchain-*.whl")
    names = set(zipfile.ZipFile(built).namelist())
    for required in ("localchain/__init__.py", "localchain/__main__.py", "localchain/py.typed",
                     "localchain/anvil.py", "localchain/inprocess.py"):
        assert required in names, required
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(
        ".dist-info")}
    assert packages == {"localchain"}, packages
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(built).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    assert any("eth-tester" in line for line in requires), requires
