"""One settings path, one keystore module: every setting of the service and its commands is
read through pydantic-settings (anchor_service/settings.py), and keystores are decrypted in
one place (anchor_service/keystore.py)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anchor_service.settings import CommandSettings

PACKAGE = Path(__file__).parents[2] / "anchor_service"


def _calls_and_attributes(path: Path) -> set[str]:
    """Every dotted name used in ``path``'s code (``os.environ.get`` gives ``os.environ`` and
    ``os.environ.get``); comments and strings do not count."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            parts = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                parts.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name):
                found.add(".".join([current.id, *reversed(parts)]))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.update(f"os.{alias.name}" for alias in node.names)
    return found


def test_no_module_of_the_service_reads_the_environment_itself() -> None:
    readers = {"os.environ", "os.getenv", "os.environb", "os.getenvb"}
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(used & readers)
        for path in PACKAGE.rglob("*.py")
        if (used := _calls_and_attributes(path)) & readers
    }
    assert offenders == {}


def test_keystores_are_decrypted_and_encrypted_in_one_module() -> None:
    users = sorted(str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                   if _calls_and_attributes(path) & {"Account.decrypt", "Account.encrypt"})
    assert users == ["anchor_service/keystore.py"]


def test_command_settings_read_the_environment_when_made_and_hide_secrets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = "0x" + "5a" * 32
    monkeypatch.setenv("MICROCRED_PRIVATE_KEY", key)
    monkeypatch.setenv("MICROCRED_TOKEN", "mca_secret-token")
    monkeypatch.setenv("MICROCRED_RPC_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("MICROCRED_BATCH_MAX_SIZE", "7")  # the service's: ignored here
    settings = CommandSettings()
    assert settings.rpc_url == "http://127.0.0.1:9/"
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == key
    assert settings.token is not None
    assert settings.token.get_secret_value() == "mca_secret-token"
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert key not in shown
    assert "mca_secret-token" not in shown


def test_chain_commands_take_the_node_from_the_rpc_url_setting(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    environment |= {"MICROCRED_RPC_URL": "http://127.0.0.1:9",
                    "MICROCRED_PRIVATE_KEY": "0x" + "11" * 32}
    result = subprocess.run(
        [sys.executable, "-m", "anchor_service", "deploy", "--out", str(tmp_path / "d.json")],
        capture_output=True, text=True, timeout=120, check=False, env=environment)
    assert result.returncode == 2
    assert "no JSON-RPC node answers at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert "11" * 32 not in result.stderr + result.stdout
