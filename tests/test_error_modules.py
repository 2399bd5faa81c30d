"""Every error class of a package lives in one of its ``errors.py`` modules, under the package's
root exception, so that a reader finds all of them in one place. Outside those modules a class
may derive from an exception only as a private helper (``_Name``) that stays in its module, and
never from the package's root. Read from the source (AST), not by importing, so that a module
behind an optional dependency is checked too."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# package folder -> its root exception
PACKAGES = {
    "verifier": "VerifierError",
    "anchor_service": "AnchorServiceError",
    "hardhat-free-local/localchain": "LocalChainError",
}
BUILTIN_EXCEPTIONS = frozenset(
    name for name in dir(builtins)
    if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name),
                                                               BaseException))


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):  # errors.ChainError, web3.exceptions.X
            names.add(base.attr)
    return names


def _classes(folder: Path) -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [(path, node) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    return found


def _error_names(classes: list[tuple[Path, ast.ClassDef]], root: str) -> set[str]:
    """Names of the classes that derive, directly or not, from ``root``."""
    names = {root}
    grown = True
    while grown:
        grown = False
        for _, node in classes:
            if node.name not in names and _base_names(node) & names:
                names.add(node.name)
                grown = True
    return names


@pytest.mark.parametrize(("folder", "root"), PACKAGES.items())
def test_every_error_class_is_defined_in_an_errors_module(folder: str, root: str) -> None:
    classes = _classes(ROOT / folder)
    assert any(node.name == root and path.name == "errors.py" for path, node in classes), root
    errors = _error_names(classes, root)
    misplaced = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                 for path, node in classes
                 if path.name != "errors.py" and node.name in errors]
    assert not misplaced, f"derive from {root} outside errors.py: {misplaced}"


@pytest.mark.parametrize(("folder", "root"), PACKAGES.items())
def test_exceptions_outside_errors_modules_are_private_helpers(folder: str, root: str) -> None:
    classes = _classes(ROOT / folder)
    exceptions = _error_names(classes, root) | BUILTIN_EXCEPTIONS
    public = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
              for path, node in classes
              if path.name != "errors.py" and _base_names(node) & exceptions
              and not node.name.startswith("_")]
    assert not public, f"public exceptions outside errors.py: {public}"


def test_the_scan_sees_a_misplaced_error(tmp_path: Path) -> None:
    """The scan follows the hierarchy through several levels and qualified base names."""
    (tmp_path / "errors.py").write_text("class RootError(Exception): ...\n"
                                        "class ChildError(RootError): ...\n")
    (tmp_path / "chain.py").write_text("from pkg import errors\n"
                                       "class GrandchildError(errors.ChildError): ...\n"
                                       "class _Signal(Exception): ...\n")
    classes = _classes(tmp_path)
    errors = _error_names(classes, "RootError")
    assert errors == {"RootError", "ChildError", "GrandchildError"}
    outside = {node.name for path, node in classes if path.name != "errors.py"}
    assert outside & errors == {"GrandchildError"}
