"""``anchor-service stack`` is the only command that needs localchain, the development package
in hardhat-free-local/. Without it, the command says what to install and exits with code 2,
before it writes anything; the other commands do not import it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

# Runs the command line in a fresh interpreter where `import localchain` fails, as it does on an
# install of the service's own distribution.
_WITHOUT_LOCALCHAIN = (
    "import sys; sys.modules['localchain'] = None; "
    "from anchor_service.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _WITHOUT_LOCALCHAIN, *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def test_stack_without_localchain_names_the_package_and_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _run("stack", "--data-dir", str(data), "--port", "1", "--chain-port", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "stack needs localchain" in result.stderr
    assert "hardhat-free-local" in result.stderr
    assert not data.exists()  # refused before it made anything


def test_other_commands_run_without_localchain(tmp_path: Path) -> None:
    result = _run("demo")
    assert result.returncode == 0, result.stderr
    database = tmp_path / "db.sqlite3"
    result = _run("db", "upgrade", env={"MICROCRED_DATABASE_URL": f"sqlite:///{database}"})
    assert result.returncode == 0, result.stderr
    assert database.is_file()


def test_only_the_stack_module_imports_localchain() -> None:
    """The service's distribution does not ship localchain, so no other module may need it."""
    root = Path(__file__).parents[2]
    importers = set()
    for path in (root / "anchor_service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "localchain" for name in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"anchor_service/stack.py"}
