"""The project's pytest plugin (``pytest_plugins = ["testkit.pytest_plugin"]`` in
tests/conftest.py): the ``--full`` option and the run sizes it selects, and the fixtures every
test folder shares (a deployed world on the in-process chain and on anvil)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

from localchain import AnvilChain, InProcessChain, LocalChain
from testkit.world import World, build_world

__all__ = ["DEFAULT_SIZES", "FULL_SIZES", "RunSizes"]


@dataclass(frozen=True)
class RunSizes:
    """How much work the runs whose length is a choice do (README, "Tests")."""

    sigkills: int  # SIGKILLs of a service replica in tests/anchor_service/test_crash.py
    load_seconds: int  # length of the load run in tests/test_load.py
    schema_examples: int  # schemathesis examples per operation (test_api_schema.py)
    hypothesis_examples: int  # max_examples of every property test without its own
    state_machine_sequences: int  # random sequences of tests/contracts/test_state_machine.py


DEFAULT_SIZES = RunSizes(sigkills=8, load_seconds=10, schema_examples=20,
                         hypothesis_examples=100, state_machine_sequences=200)
FULL_SIZES = RunSizes(sigkills=20, load_seconds=60, schema_examples=50,
                      hypothesis_examples=300, state_machine_sequences=2000)

# No per-example deadline: these machines are shared and timing noise is not a failure.
settings.register_profile("default", deadline=None,
                          max_examples=DEFAULT_SIZES.hypothesis_examples)
settings.register_profile(
    "full", deadline=None, max_examples=FULL_SIZES.hypothesis_examples, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full", action="store_true", default=False,
        help="run the full sizes (.ci/run does): "
             f"{FULL_SIZES.sigkills} SIGKILLs instead of {DEFAULT_SIZES.sigkills}, "
             f"a {FULL_SIZES.load_seconds} s load run instead of {DEFAULT_SIZES.load_seconds} s, "
             f"{FULL_SIZES.schema_examples} schemathesis examples per operation instead of "
             f"{DEFAULT_SIZES.schema_examples}, {FULL_SIZES.hypothesis_examples} Hypothesis "
             f"examples instead of {DEFAULT_SIZES.hypothesis_examples}, "
             f"{FULL_SIZES.state_machine_sequences} random sequences of the contracts' state "
             f"machine instead of {DEFAULT_SIZES.state_machine_sequences}",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: @settings decorators take what they leave unset from this profile.
    # Hypothesis's own --hypothesis-profile, when given, wins.
    if config.getoption("hypothesis_profile", default=None) is None:
        settings.load_profile("full" if config.getoption("full") else "default")


@pytest.fixture(scope="session")
def sizes(pytestconfig: pytest.Config) -> RunSizes:
    """The sizes of this run: FULL_SIZES with ``--full``, DEFAULT_SIZES otherwise."""
    return FULL_SIZES if pytestconfig.getoption("full") else DEFAULT_SIZES


def _start_chain(kind: str) -> LocalChain:
    if kind == "anvil":
        return AnvilChain.start()
    return InProcessChain.start()


@pytest.fixture(scope="module", params=["inprocess", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[LocalChain]:
    """A fresh local chain for the module: once in-process, once a real anvil node."""
    local = _start_chain(str(request.param))
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def deployed(chain: LocalChain) -> World:
    """The contracts deployed on ``chain``, with the cast of callers."""
    return build_world(chain)


@pytest.fixture
def world(deployed: World) -> Iterator[World]:
    """The deployed world, reset after each test by a chain snapshot."""
    snapshot = deployed.chain.snapshot()
    try:
        yield deployed
    finally:
        deployed.chain.revert(snapshot)


@pytest.fixture(scope="module")
def anvil_world() -> Iterator[World]:
    """A real anvil node with the contracts deployed and the cast of callers, for tests that
    need a chain other processes can reach (services, CLIs)."""
    chain = AnvilChain.start()
    try:
        yield build_world(chain)
    finally:
        chain.close()
