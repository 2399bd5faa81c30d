"""`anchor-service token create`, the installed console script as a real process, on real
SQLite and real PostgreSQL; the tokens it prints are then used against a real service
process: an admin token can do admin things, an issuer token only its issuer's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from testkit.processes import ServiceProcess, prepare
from testkit.world import World

CONSOLE_SCRIPT = Path(sys.executable).parent / "anchor-service"


def _token_create(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONSOLE_SCRIPT), "token", "create", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _created(result: subprocess.CompletedProcess[str]) -> str:
    """The token a successful run printed: its whole stdout, one line; never on stderr."""
    assert result.returncode == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert token.startswith("mca_")
    assert "\n" not in token
    assert "shown only this once" in result.stderr
    assert token not in result.stderr
    return token


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_created_tokens_work_with_their_role_against_the_service(
        anvil_world: World, tmp_path: Path, database: str, request: pytest.FixtureRequest,
) -> None:
    location = (request.getfixturevalue("postgres").new_database()
                if database == "postgresql" else None)
    env, port, stored, _, _ = prepare(anvil_world, tmp_path, location)
    admin = _created(_token_create(env, "--role", "admin"))
    issuer = _created(_token_create(env, "--role", "issuer", "--issuer", "uni-a"))
    assert admin != issuer
    if database == "sqlite":
        assert admin.encode() not in Path(stored).read_bytes()  # only its hash is kept

    service = ServiceProcess(env, port, log=tmp_path / "service.log")
    service.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            as_admin = {"Authorization": f"Bearer {admin}"}
            as_issuer = {"Authorization": f"Bearer {issuer}"}
            made = http.post("/v1/admin/tokens", json={"role": "admin"}, headers=as_admin)
            assert made.status_code == 201, made.text
            refused = http.post("/v1/admin/tokens", json={"role": "admin"}, headers=as_issuer)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "forbidden"
            accepted = http.post("/v1/credentials", headers=as_issuer,
                                 json={"credentials": [{"id": f"urn:token-cli:{database}",
                                                       "issuer": "did:web:uni-a.example"}]})
            assert accepted.status_code == 202, accepted.text
            # The admin token belongs to no issuer: issuer routes refuse it.
            assert http.get("/v1/batches", headers=as_admin).status_code == 403
    finally:
        service.kill()
    log = (tmp_path / "service.log").read_text(encoding="utf-8", errors="replace")
    assert admin not in log
    assert issuer not in log


def test_bad_role_or_unknown_issuer_exit_2_with_a_message(anvil_world: World,
                                                          tmp_path: Path) -> None:
    env, *_ = prepare(anvil_world, tmp_path)
    cases = {
        ("--role", "root"): "invalid choice: 'root'",
        ("--role", "issuer", "--issuer", "uni-z"): "no issuer named 'uni-z'",
        ("--role", "issuer"): "an issuer token needs --issuer NAME",
        ("--role", "admin", "--issuer", "uni-a"): "an admin token belongs to no issuer",
    }
    for args, message in cases.items():
        result = _token_create(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr


def test_a_database_that_cannot_be_opened_exits_1_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    folder = tmp_path / "a-folder"  # where the database file should be: SQLite cannot open it
    folder.mkdir()
    env["MICROCRED_DATABASE_URL"] = f"sqlite:///{folder}"
    result = _token_create(env, "--role", "admin")
    assert result.returncode == 1, result.stderr
    assert "cannot open" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
