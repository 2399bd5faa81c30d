"""The bounded load run (scripts/load_test.py) as part of the suite: 50 concurrent clients on
loopback with the service's mix of requests, on SQLite and on PostgreSQL, zero errors, nothing
lost. 60 s with ``--full`` (as .ci/run runs it), 10 s otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.pytest_plugin import RunSizes
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]


def _load(seconds: int, *options: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load_test.py"),
         "--duration", str(seconds), "--clients", "50", *options],
        capture_output=True, text=True, timeout=900, check=False)
    print(result.stdout)  # the figures, shown with pytest -s or on failure
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "errors: 0" in result.stdout
    assert "anchored exactly once, receipt verified: yes" in result.stdout
    # Every route of the mix was exercised, not only the submissions.
    for route in ("submit", "state", "receipt", "verify", "vc-verify", "status-list"):
        assert f"\n  {route} " in result.stdout, f"no {route} request was made"


def test_fifty_clients_get_no_errors_and_lose_nothing(sizes: RunSizes) -> None:
    _load(sizes.load_seconds)


def test_fifty_clients_on_postgresql_get_no_errors_and_lose_nothing(
        sizes: RunSizes, postgres: PostgresServer) -> None:
    _load(sizes.load_seconds, "--database", postgres.new_database())
