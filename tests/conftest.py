"""Shared test configuration: the project's pytest plugin (testkit.pytest_plugin: ``--full``,
the deployed-world fixtures) and the private PostgreSQL server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports testkit: its helpers' asserts then explain their failures too.
pytest.register_assert_rewrite("testkit")

from tests.postgres import PostgresServer  # noqa: E402 - after the rewrite registration

pytest_plugins = ["testkit.pytest_plugin"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the session (started only if a test asks for it).
    Its folder is outside pytest's temp dir, which the postgres user may not enter."""
    root = Path(tempfile.mkdtemp(prefix="microcred-pg-"))
    server = PostgresServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
