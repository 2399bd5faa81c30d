"""Schemathesis against the service's own OpenAPI schema, over real HTTP on anvil: generated
requests for every operation get no 5xx, and every answer conforms to the documented status
codes, content types and response schemas. Run as schemathesis's own command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.pytest_plugin import RunSizes
from testkit.world import World
from tests.anchor_service.harness import Service, running_service

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("schema"),
                         max_body_bytes=1024 * 1024, rate_limit=0, public_rate_limit=0) as up:
        yield up


# POST /v1/credentials, POST /v1/verify and POST /v1/portfolios/verify run without the
# positive-data check: their schemas cannot say that numbers must be exact in I-JSON (a
# documented rule), so schemathesis's "valid" bodies are rightly refused: credentials with
# floats like 2e16 with 422, and any body with an integer literal of more than 16 digits with
# 400 (the parser refuses it).
RUNS = {
    "issuer": ["--exclude-path-regex", "^/v1/(admin|credentials$|verify$|portfolios/verify$)"],
    "submit": ["--include-path-regex", "^/v1/credentials$",
               "--exclude-checks", "positive_data_acceptance"],
    "verify": ["--include-path-regex", "^/v1/(verify|portfolios/verify)$",
               "--exclude-checks", "positive_data_acceptance"],
    "admin": ["--include-path-regex", "^/v1/admin"],
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_every_operation_conforms(service: Service, run: str, tmp_path: Path,
                                  sizes: RunSizes) -> None:
    """``sizes.schema_examples`` generated examples per operation (50 with ``--full``, 20
    otherwise)."""
    token = service.admin if run == "admin" else service.issuer_token
    result = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{service.url}/openapi.json", *RUNS[run],
         "--header", f"Authorization: Bearer {token}", "--checks", "all",
         "--max-examples", str(sizes.schema_examples), "--seed", "20261128", "--no-color",
         "--suppress-health-check", "all", "--generation-with-security-parameters", "false",
         "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr, encoding="utf-8")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
