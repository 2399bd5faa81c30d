"""`anchor-service stack`, the README's main job, as a real process: it comes up, signs and
anchors a credential end to end, stops cleanly on SIGTERM (no anvil left behind), and a second
start reuses the contracts, the demo issuer (its DID and signing key) and the chain's
history."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from anchor_service.stack import DEMO_ISSUER_DID
from testkit.net import check_inclusion, free_port, wait_until_up
from verifier.data_integrity import verify_proof
from verifier.receipt import Bundle

ROOT = Path(__file__).parents[2]


def _start(data: Path, port: int, chain_port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anchor_service",
            "stack",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--chain-port",
            str(chain_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_up(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
    return process


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return err


def _anchored_bundle(http: httpx.Client, public_id: str) -> httpx.Response:
    """Anchor now, and wait for the credential's bundle."""
    assert http.post("/v1/batches").status_code == 202
    deadline = time.monotonic() + 30
    while (bundle := http.get(f"/v1/credentials/{public_id}/bundle")).status_code != 200:
        assert time.monotonic() < deadline, bundle.text
        time.sleep(0.1)
    return bundle


def _anvil_on(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_stack_comes_up_anchors_and_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port, chain_port = free_port(), free_port()
    process = _start(data, port, chain_port)
    try:
        token = json.loads((data / "demo-tokens.json").read_text())["issuer"]
        assert (data / "demo-tokens.json").stat().st_mode & 0o077 == 0
        headers = {"Authorization": f"Bearer {token}"}
        did = DEMO_ISSUER_DID
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            # Another issuer's credential is not signed in the demo issuer's name.
            foreign = http.post("/v1/credentials", json={"credentials": [
                {"id": "urn:stack:0", "issuer": {"id": "did:web:demo-university.example"}}]})
            assert foreign.status_code == 422, foreign.text
            assert foreign.json()["error"] == "issuer_mismatch"
            answer = http.post(
                "/v1/credentials",
                json={"credentials": [{"id": "urn:stack:1", "issuer": {"id": did}}]},
            )
            assert answer.status_code == 202, answer.text
            public_id = answer.json()["accepted"][0]["id"]
            bundle = _anchored_bundle(http, public_id)
        receipt = Bundle.from_json(bundle.text).receipt
        check_inclusion(receipt)
        # Signed out of the box, with the demo issuer's Ed25519 key, and the signature covers
        # what is anchored.
        signed = Bundle.from_json(bundle.text).credential
        method = signed["proof"]["verificationMethod"]
        assert method.startswith(f"{did}#z6Mk")
        assert verify_proof(signed, method.partition("#")[2]).cryptosuite == "eddsa-jcs-2022"
    finally:
        err = _stop(process)
    assert "Traceback" not in err
    assert not _anvil_on(chain_port), "anvil was left running"
    deployment = json.loads((data / "deployment.json").read_text())

    again = _start(data, port, chain_port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            # Same contracts, same database, and the chain still knows the anchor.
            assert json.loads((data / "deployment.json").read_text()) == deployment
            assert http.get(f"/v1/credentials/{public_id}").json()["state"] == "anchored"
            assert http.get(f"/v1/credentials/{public_id}/receipt").json()["root"] == (
                "0x" + receipt.root.hex()
            )
            # The same issuer, DID and signing key: a new credential is signed with the key.
            again_answer = http.post("/v1/credentials", json={"credentials": [
                {"id": "urn:stack:2", "issuer": did}]})
            assert again_answer.status_code == 202, again_answer.text
            second = _anchored_bundle(http, again_answer.json()["accepted"][0]["id"])
            assert Bundle.from_json(second.text).credential["proof"]["verificationMethod"] == \
                method
    finally:
        err = _stop(again)
    assert "reusing the contracts" in err


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_readme_session_verifies_the_examples_with_the_stacks_trust_file(
        tmp_path: Path) -> None:
    """The README's session as written: copy the examples, submit them with the demo token,
    and verify the bundles with the trust file the stack wrote: all VALID, exit 0."""
    data = tmp_path / "data"
    port, chain_port = free_port(), free_port()
    process = _start(data, port, chain_port)
    try:
        deployment = json.loads((data / "deployment.json").read_text())
        trust = json.loads((data / "trust.json").read_text())
        assert trust == {
            "deployments": [{"name": "local stack", "chainId": deployment["chainId"],
                             "anchor": deployment["anchor"],
                             "registry": deployment["registry"]}],
            "minConfirmations": 1,
        }
        # Secrets and personal data are owner-only, the database's WAL files included.
        assert _mode(data) == 0o700
        assert _mode(data / "keys") == 0o700
        # The anchoring keystores (the demo issuer's, the demo alliance body's and its three
        # universities') and the four issuers' signing keys, all encrypted.
        key_files = sorted((data / "keys").iterdir())
        assert sorted(path.suffix for path in key_files) == [".json"] * 5 + [".pem"] * 4
        for path in key_files:
            if path.suffix == ".pem":
                assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            else:
                assert "ciphertext" in json.loads(path.read_text())["crypto"]
        for path in (*key_files, data / "demo-tokens.json", data / "service.sqlite3",
                     data / "service.sqlite3-wal", data / "service.sqlite3-shm"):
            assert _mode(path) == 0o600, (path, oct(_mode(path)))

        credentials = tmp_path / "my-credentials"
        shutil.copytree(ROOT / "anchor_service" / "examples", credentials)
        token = json.loads((data / "demo-tokens.json").read_text())["issuer"]
        bin_dir = Path(sys.executable).parent
        submitted = subprocess.run(
            [str(bin_dir / "anchor-service"), "submit", str(credentials), "--quiet",
             "--url", f"http://127.0.0.1:{port}"],
            env={**os.environ, "MICROCRED_TOKEN": token},
            capture_output=True, text=True, timeout=180, check=False,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        bundles = list(credentials.glob("*.bundle.json"))
        assert len(bundles) == 4
        assert {_mode(bundle) for bundle in bundles} == {0o600}  # the learners' credentials

        # The folder as submit left it: credentials and bundles side by side. The verifier
        # takes the bundles and names the credentials it skipped.
        verified = subprocess.run(
            [str(bin_dir / "verify-credential"), str(credentials), "--trust",
             str(data / "trust.json"), "--rpc-url", f"http://127.0.0.1:{chain_port}"],
            capture_output=True, text=True, timeout=180, check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.count(": VALID, issuer") == 4, verified.stdout
        assert "4 of 4 valid" in verified.stdout, verified.stdout
        assert "skipped 4 file(s) that are not bundles" in verified.stderr, verified.stderr
        # A second run of submit skips the bundles it wrote and anchors nothing new.
        again = subprocess.run(
            [str(bin_dir / "anchor-service"), "submit", str(credentials), "--quiet",
             "--url", f"http://127.0.0.1:{port}"],
            env={**os.environ, "MICROCRED_TOKEN": token},
            capture_output=True, text=True, timeout=180, check=False,
        )
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        err = _stop(process)
    assert "Traceback" not in err
