"""Every Python package that scripts/setup.sh installs, pip and the build backend included, is
pinned to an exact release with the sha256 of its files and installed hash-checked; the
project's own build uses the pinned backend, not one fetched unchecked into pip's isolated
build environment. These are checks of the project's own files; a fresh install from them is
what scripts/setup.sh does (and `bash scripts/test.sh` runs it first)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
LOCKS = ("requirements.lock", "requirements-build.lock", "requirements-tools.lock")
SETUP = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")


def pins(lock: str) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its hashes), checking the shape of every entry."""
    found: dict[str, tuple[Version, list[str]]] = {}
    text = (ROOT / lock).read_text(encoding="utf-8")
    # An entry is its requirement line with "\" continuations; comments stand on their own.
    for entry in re.split(r"\n(?=\S)", text):
        lines = [line.strip().rstrip("\\").strip() for line in entry.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if not lines:
            continue
        requirement, *options = lines
        assert not requirement.startswith("-"), f"{lock}: option line {requirement!r}"
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;@]+)", requirement)
        assert match, f"{lock}: {requirement!r} is not an exact pin"
        hashes = [option.removeprefix("--hash=sha256:") for option in options]
        assert hashes, f"{lock}: {requirement} has no hash"
        for value in hashes:
            assert re.fullmatch(r"[0-9a-f]{64}", value), f"{lock}: {requirement}: {value!r}"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{lock}: {name} twice"
        found[name] = (Version(match.group(2)), hashes)
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    assert len(pins(lock)) >= 3


# The project and the development distributions that setup.sh installs next to it.
PYPROJECTS = ("pyproject.toml", "hardhat-free-local/pyproject.toml", "testkit/pyproject.toml")


@pytest.mark.parametrize("pyproject", PYPROJECTS)
def test_the_project_lock_satisfies_every_declared_dependency(pyproject: str) -> None:
    project = tomllib.loads((ROOT / pyproject).read_text(encoding="utf-8"))["project"]
    locked = pins("requirements.lock")
    declared = [*project["dependencies"],
                *(d for extra in project.get("optional-dependencies", {}).values()
                  for d in extra)]
    assert declared, pyproject
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(project["name"]):
            continue  # the project's own extras
        assert name in locked, f"{text} is not in requirements.lock: run scripts/update_pins.sh"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"requirements.lock pins {name} {locked[name][0]}, outside {text}")


def test_pip_and_the_build_backend_are_pinned_once() -> None:
    build = pins("requirements-build.lock")
    main = pins("requirements.lock")
    assert {"pip", "setuptools", "wheel"} <= set(build)
    for name in ("setuptools", "wheel"):
        assert build[name][0] == main[name][0], name
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "build-system"]
    for text in build_system["requires"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(build[name][0]), text
    assert "slither-analyzer" in pins("requirements-tools.lock")


def test_setup_installs_only_hash_checked_pins_and_builds_with_the_pinned_backend() -> None:
    installs = re.findall(r"-m pip install((?:[^\n]*\\\n)*[^\n]*)", SETUP)
    assert installs
    for command in installs:
        if "-e ." in command:
            # The project from this tree: no dependency resolution, no isolated build env.
            assert "--no-deps" in command, command
            assert "--no-build-isolation" in command, command
        else:
            assert "--require-hashes" in command, command
            assert "--no-deps" in command, command
            assert re.search(r"-r (requirements-build\.lock|\"\$2\")", command), command
    assert "--no-build-isolation -r" in SETUP  # sdists in the lock build with pinned setuptools
    assert "-r requirements-build.lock" in SETUP  # pip itself, exact and hashed, comes first
    assert "locked_install .venv requirements.lock" in SETUP
    for pyproject in PYPROJECTS:  # a changed distribution is installed again
        assert f"{pyproject} " in SETUP, pyproject
    assert "-e ./hardhat-free-local" in SETUP
    assert "-e ./testkit" in SETUP
    assert "locked_install .venv-tools requirements-tools.lock" in SETUP
    assert "pip check" in SETUP
    assert not re.search(r"pip>=|-c constraints|--upgrade", SETUP)


def test_the_update_script_regenerates_the_locks_and_is_documented() -> None:
    script = (ROOT / "scripts" / "update_pins.sh").read_text(encoding="utf-8")
    assert "--generate-hashes" in script
    for lock in LOCKS:
        assert f"--output-file {lock}" in script, lock
        assert "bash scripts/update_pins.sh" in (ROOT / lock).read_text(encoding="utf-8")
    assert "hardhat-free-local/pyproject.toml" in script  # localchain's dependencies are pinned
    assert "testkit/pyproject.toml" in script  # and testkit's
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/update_pins.sh" in readme
    assert "--require-hashes" in readme


@pytest.mark.parametrize("folder", ["hardhat-free-local", "interop"])
def test_npm_packages_are_pinned_exactly_with_integrity_and_installed_with_npm_ci(
        folder: str) -> None:
    manifest = json.loads((ROOT / folder / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ROOT / folder / "package-lock.json").read_text(encoding="utf-8"))
    for section in ("dependencies", "devDependencies"):
        for name, spec in manifest.get(section, {}).items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", spec), f"{folder}: {name} {spec!r} not exact"
    packages = {path: entry for path, entry in lock["packages"].items() if path}
    assert packages
    for path, entry in packages.items():
        if entry.get("link"):
            continue
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]+=*", entry.get("integrity", "")), \
            f"{folder}/package-lock.json: {path} has no sha512 integrity"
    # npm ci installs exactly the lock (npm install could move it).
    assert f"npm ci --prefix {folder} " in SETUP
