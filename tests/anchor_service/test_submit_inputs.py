"""Hostile and careless inputs on every path that carries a credential, over real HTTP (uvicorn
on loopback) against anvil, with `anchor-service submit` and `verify-credential` as real
processes: one nesting limit counted on the credential itself, huge integers as clean errors,
bad files named and left out while the others get their bundles, bundles skipped by content,
and a progress bar that finishes when two files hold the same credential."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor_service.samples import make_credential
from testkit.world import World
from tests.anchor_service.harness import Service, anchor_now, running_service
from verifier.credential import MAX_DEPTH
from verifier.receipt import Bundle


@pytest.fixture(scope="module")
def service(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(anvil_world, tmp_path_factory.mktemp("inputs"),
                         max_body_bytes=4 * 1024 * 1024) as running:
        yield running


def nested(depth: int, tag: str) -> dict[str, Any]:
    """A credential of the service's issuer whose deepest value (an empty object) sits
    ``depth`` levels down: MAX_DEPTH is the deepest the library accepts."""
    inner: dict[str, Any] = {}
    for _ in range(depth - 1):
        inner = {"d": inner}
    return make_credential(f"{tag}-{depth}", d=inner)


def submit_cli(service: Service, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", "submit", str(path), "--url", service.url,
         *extra],
        env={**os.environ, "MICROCRED_TOKEN": service.issuer_token, "COLUMNS": "120"},
        capture_output=True, text=True, timeout=180, check=False)


def verify_cli(service: Service, bundle: Path, trust: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier.cli", str(bundle), "--trust", str(trust),
         "--rpc-url", str(service.world.chain.rpc_url)],
        capture_output=True, text=True, timeout=120, check=False)


def write_trust(service: Service, path: Path) -> Path:
    world = service.world
    path.write_text(json.dumps({"deployments": [{
        "chainId": world.chain.chain_id, "anchor": world.anchor.address,
        "registry": world.registry.address}]}))
    return path


def post_json(service: Service, path: str, body: bytes, token: str | None = None) -> Any:
    with service.client(token) as client:
        return client.post(path, content=body, headers={"Content-Type": "application/json"})


def test_one_nesting_limit_counted_on_the_credential_on_every_path(
    service: Service, tmp_path: Path
) -> None:
    deepest, too_deep = nested(MAX_DEPTH, "api"), nested(MAX_DEPTH + 1, "api")
    # POST /v1/credentials: the {"credentials": [...]} wrapper does not count.
    accepted = post_json(service, "/v1/credentials",
                         json.dumps({"credentials": [deepest]}).encode(), service.issuer_token)
    assert accepted.status_code == 202, accepted.text
    refused = post_json(service, "/v1/credentials",
                        json.dumps({"credentials": [too_deep]}).encode(), service.issuer_token)
    assert refused.status_code in (400, 422), refused.text
    assert "nested deeper than 128 levels" in refused.json()["detail"]
    public_id = accepted.json()["accepted"][0]["id"]
    with service.client(service.issuer_token) as client:
        anchor_now(client, [public_id])
        bundle = client.get(f"/v1/credentials/{public_id}/bundle").text
    # POST /v1/verify: the bundle around the credential does not count either.
    report = post_json(service, "/v1/verify", bundle.encode()).json()
    assert report["valid"] is True, report
    document = json.loads(bundle)
    document["credential"] = too_deep
    deeper = post_json(service, "/v1/verify", json.dumps(document).encode())
    assert deeper.status_code == 400, deeper.text
    assert "nested deeper than 128 levels" in deeper.json()["detail"]
    # verify-credential, on the same two bundles.
    trust = write_trust(service, tmp_path / "trust.json")
    (tmp_path / "deepest.bundle.json").write_text(bundle)
    (tmp_path / "too-deep.bundle.json").write_text(json.dumps(document))
    valid = verify_cli(service, tmp_path / "deepest.bundle.json", trust)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    invalid = verify_cli(service, tmp_path / "too-deep.bundle.json", trust)
    assert invalid.returncode == 2
    assert "nested deeper than 128 levels" in invalid.stderr
    # anchor-service submit: the deepest is anchored, the deeper one named and left out.
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "deepest.json").write_text(json.dumps(nested(MAX_DEPTH, "cli")))
    (folder / "too-deep.json").write_text(json.dumps(nested(MAX_DEPTH + 1, "cli")))
    result = submit_cli(service, folder, "--quiet")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "too-deep.json: credential: JSON is nested deeper than 128 levels" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.glob("*.bundle.json")) == ["deepest.bundle.json"]
    written = dict(Bundle.from_json((folder / "deepest.bundle.json").read_text()).credential)
    assert written.pop("proof")["type"] == "DataIntegrityProof"  # signed by the service
    assert [e["type"] for e in written.pop("credentialStatus")] == [
        "BitstringStatusListEntry"] * 2
    assert written == nested(MAX_DEPTH, "cli")


def test_huge_integers_are_4xx_or_a_failed_check_never_a_500(
    service: Service, tmp_path: Path
) -> None:
    huge = "9" * 5000
    body = b'{"credentials": [{"id": "urn:huge", "n": ' + huge.encode() + b"}]}"
    refused = post_json(service, "/v1/credentials", body, service.issuer_token)
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"].startswith(
        "request body: integer 99999999999999999999... (5000 digits) is outside +-(2**53 - 1)")
    # /v1/verify refuses it as it refuses any text that is not strict JSON.
    bundle = (b'{"format": "microcred-anchor-bundle", "version": 1, "credential": {"n": '
              + huge.encode() + b'}, "receipt": {}}')
    answer = post_json(service, "/v1/verify", bundle)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_json"
    assert "integer 99999999999999999999... (5000 digits) is outside" in answer.json()["detail"]
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "huge.json").write_text('{"id": "urn:huge", "n": ' + huge + "}")
    (folder / "fine.json").write_text(json.dumps(make_credential("huge-neighbour")))
    result = submit_cli(service, folder, "--quiet")
    assert result.returncode == 2
    assert "huge.json: credential: integer 99999999999999999999... (5000 digits)" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.glob("*.bundle.json")) == ["fine.bundle.json"]


def test_bad_files_are_named_bundles_skipped_and_the_rest_anchored(
    service: Service, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for n in range(3):
        (folder / f"c{n}.json").write_text(json.dumps(make_credential(f"mixed-{n}")))
    (folder / "broken.json").write_text('{"id": "urn:broken",')
    (folder / "nan.json").write_text('{"score": NaN}')
    first = submit_cli(service, folder, "--quiet")
    assert first.returncode == 2, first.stdout + first.stderr
    assert "broken.json: credential: invalid JSON" in first.stderr
    assert "nan.json: credential: NaN" in first.stderr
    assert "2 input(s) left out" in first.stderr
    assert "Traceback" not in first.stderr
    bundles = sorted(p.name for p in folder.glob("*.bundle.json"))
    assert bundles == ["c0.bundle.json", "c1.bundle.json", "c2.bundle.json"]


def test_bundles_and_receipts_are_skipped_by_content_and_named(
    service: Service, tmp_path: Path
) -> None:
    with service.client(service.issuer_token) as client:
        public_id = client.post("/v1/credentials", json={"credentials": [
            make_credential("kept-in-a-wallet")]}).json()["accepted"][0]["id"]
        anchor_now(client, [public_id])
        bundle = client.get(f"/v1/credentials/{public_id}/bundle").json()
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "my-wallet-copy.json").write_text(json.dumps(bundle))
    (clean / "receipt.json").write_text(json.dumps(bundle["receipt"]))
    (clean / "earlier.bundle.json").write_text(json.dumps(bundle))
    (clean / "new.json").write_text(json.dumps(make_credential("clean-new")))
    second = submit_cli(service, clean, "--quiet")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "skipped my-wallet-copy.json: a bundle, not a credential" in second.stderr
    assert "skipped receipt.json: a receipt, not a credential" in second.stderr
    assert "skipped 1 *.bundle.json file(s)" in second.stderr
    assert sorted(p.name for p in clean.glob("*.bundle.json")) == [
        "earlier.bundle.json", "new.bundle.json"]
    only_bundles = tmp_path / "only-bundles"
    only_bundles.mkdir()
    (only_bundles / "b.json").write_text(json.dumps(bundle))
    nothing = submit_cli(service, only_bundles, "--quiet")
    assert nothing.returncode == 2
    assert "no credentials to anchor (1 bundle or receipt file(s) skipped)" in nothing.stderr


def test_the_progress_bar_finishes_when_two_files_hold_the_same_credential(
    service: Service, tmp_path: Path
) -> None:
    folder = tmp_path / "twins"
    folder.mkdir()
    twin = json.dumps(make_credential("twin"))
    for name in ("a.json", "b.json"):
        (folder / name).write_text(twin)
    (folder / "c.json").write_text(json.dumps(make_credential("single")))
    result = submit_cli(service, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()
             if line.split() and line.split()[0] in {"submitting", "anchoring", "writing"}}
    assert "3/3" in lines["submitting"], result.stdout
    assert "2/2" in lines["anchoring"], result.stdout  # two distinct credentials
    assert "3/3" in lines["writing"], result.stdout
    assert sorted(p.name for p in folder.glob("*.bundle.json")) == [
        "a.bundle.json", "b.bundle.json", "c.bundle.json"]
