"""Shared test configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from localchain import AnvilChain
from tests.contracts.conftest import World, build_world

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
