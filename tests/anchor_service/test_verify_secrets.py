"""No secret of the RPC URL (its path and query, where providers put API keys) reaches a
verification answer, valid or not, when the node answers, answers 429, or is down: not the
public POST /v1/verify, not the verification page, not the verify-credential CLI's output.
Real anvil behind a proxy that answers on any path, real HTTP, a real CLI process."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.world import World
from tests.anchor_service.rpc_proxy import CountingRpcProxy
from tests.anchor_service.test_verify_limits import JSON, verify_service
from tests.verifier.test_bounded_chain_reads import HugeBatch, anchor_huge_batch


@pytest.fixture
def batch(anvil_world: World) -> HugeBatch:
    return anchor_huge_batch(anvil_world, 5, tree_size=6)


@pytest.fixture
def node(anvil_world: World) -> Iterator[CountingRpcProxy]:
    with CountingRpcProxy(str(anvil_world.chain.rpc_url)) as proxy:
        yield proxy


def _secret_url(node: CountingRpcProxy) -> tuple[str, list[str]]:
    path_key, query_key = "pathkey-" + uuid.uuid4().hex, "querykey-" + uuid.uuid4().hex
    return (f"{node.url}/secret-key-path/{path_key}?apikey={query_key}",
            [path_key, query_key, "secret-key-path"])


def _reasons(report: dict[str, object]) -> str:
    checks = report["checks"]
    assert isinstance(checks, list)
    return " | ".join(str(c["detail"]) for c in checks if c["status"] == "not_checked")


def test_verification_answers_and_the_page_hold_no_secret(
        anvil_world: World, node: CountingRpcProxy, batch: HugeBatch, tmp_path: Path) -> None:
    url, secrets = _secret_url(node)
    bundle = batch.bundle.to_json().encode()
    answers: list[str] = []
    with verify_service(anvil_world, tmp_path, url) as service, \
            httpx.Client(base_url=service, timeout=60) as http:
        # The provider's quota is used up before the first verification (the reader, made at
        # first use, has nothing cached).
        node.rate_limited = True
        for page in ("/verify", "/verify/verify.js", "/verify/verify.css",
                     "/verify/favicon.svg", "/verify/nothing-here.js"):
            answers.append(http.get(page).text)
        answers.append(http.post("/v1/verify", content=b"{nope", headers=JSON).text)

        limited = http.post("/v1/verify", content=bundle, headers=JSON)
        answers.append(limited.text)
        assert limited.status_code == 200
        assert "the node answered HTTP 429 (too many requests)" in _reasons(limited.json())

        node.stop()  # the node is gone: connections are refused
        down = http.post("/v1/verify", content=bundle, headers=JSON)
        answers.append(down.text)
        assert down.status_code == 200
        assert "cannot connect to the node" in _reasons(down.json())
        as_of = http.post("/v1/verify", params={"asOf": "2030-01-01T00:00:00Z"},
                          content=bundle, headers=JSON)
        answers.append(as_of.text)
        # A report quoting the bundle's own text goes through the redactor too: a bundle
        # that holds the URL's path and query gets them back redacted.
        secret_path = url.removeprefix(node.url)
        echoed = http.post("/v1/verify", content=json.dumps({"format": secret_path}).encode(),
                           headers=JSON)
    assert echoed.status_code == 200
    assert "[redacted]" in echoed.text
    assert secret_path not in echoed.text
    for secret in secrets:
        assert not any(secret in answer for answer in answers), secret
    # Nothing was hidden by redaction in the others: the reports never held the URL.
    assert not any("[redacted]" in answer for answer in answers)


def _cli(bundle: Path, trust: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier.cli", str(bundle), "--trust", str(trust),
         "--rpc-url", url], capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_prints_no_secret(anvil_world: World, node: CountingRpcProxy,
                                  batch: HugeBatch, tmp_path: Path) -> None:
    url, secrets = _secret_url(node)
    bundle, trust = tmp_path / "bundle.json", tmp_path / "trust.json"
    bundle.write_text(batch.bundle.to_json(), encoding="utf-8")
    trust.write_text(json.dumps({"deployments": [{
        "chainId": anvil_world.chain.chain_id, "anchor": anvil_world.anchor.address,
        "registry": anvil_world.registry.address}]}), encoding="utf-8")
    ok = _cli(bundle, trust, url)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    node.rate_limited = True
    limited = _cli(bundle, trust, url)
    assert "HTTP 429" in limited.stdout, limited.stdout + limited.stderr
    node.stop()
    down = _cli(bundle, trust, url)
    assert "cannot connect to the node" in down.stdout, down.stdout + down.stderr
    # A chain that cannot be read is no verdict on the credential: said so, exit 2, not 1.
    for unread in (limited, down):
        assert unread.returncode == 2, unread.stdout + unread.stderr
        assert ": NOT CHECKED (the chain could not be read)" in unread.stdout
        assert "NOT VALID" not in unread.stdout
    for result in (ok, limited, down):
        assert "Traceback" not in result.stderr
        for secret in secrets:
            assert secret not in result.stdout, secret
            assert secret not in result.stderr, secret
