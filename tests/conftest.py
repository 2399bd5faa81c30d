"""Shared test configuration."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from localchain import AnvilChain
from tests.contracts.conftest import World, build_world
from tests.postgres import PostgresServer

# No per-example deadline: these machines are shared and timing noise is not a failure.
settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=300, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="module")
def anvil_world() -> Iterator[World]:
    """A real anvil node with the contracts deployed and the cast of callers, for tests that
    need a chain other processes can reach (services, CLIs)."""
    chain = AnvilChain.start()
    try:
        yield build_world(chain)
    finally:
        chain.close()


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
