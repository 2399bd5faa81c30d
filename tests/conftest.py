"""Shared test configuration: the project's pytest plugin (testkit.pytest_plugin: ``--full``,
the deployed-world fixtures) and the private PostgreSQL server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Before anything imports testkit: its helpers' asserts then explain their failures too.
pytest.register_assert_rewrite("testkit")

from tests.postgres import PostgresServer  # noqa: E402 - after the rewrite registration

if TYPE_CHECKING:
    from testkit.world import World
    from tests.anchor_service.vc_stack import VcStack

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


@pytest.fixture(scope="module")
def stack(anvil_world: World, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[VcStack]:
    """The served stack of signing issuers (tests/anchor_service/vc_stack.py) on the anvil
    world, one per test module, its files in a temp dir named after the module."""
    # Imported here: the service and its web stack load only for the modules that use it.
    from tests.anchor_service.vc_stack import vc_stack  # noqa: PLC0415

    name = request.module.__name__.rpartition(".")[2]
    with vc_stack(anvil_world, tmp_path_factory.mktemp(name)) as running:
        yield running
