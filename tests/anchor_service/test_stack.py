"""`anchor-service stack`, the README's main job, as a real process: it comes up, anchors a
credential end to end, stops cleanly on SIGTERM (no anvil left behind), and a second start
reuses the contracts, the demo issuer and the chain's history."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import check_inclusion, free_port, wait_until_up
from verifier.receipt import Bundle


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
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            answer = http.post(
                "/v1/credentials",
                json={
                    "credentials": [
                        {"id": "urn:stack:1", "issuer": {"id": "did:web:demo-university.example"}}
                    ]
                },
            )
            assert answer.status_code == 202, answer.text
            public_id = answer.json()["accepted"][0]["id"]
            assert http.post("/v1/batches").status_code == 202
            deadline = time.monotonic() + 30
            while (bundle := http.get(f"/v1/credentials/{public_id}/bundle")).status_code != 200:
                assert time.monotonic() < deadline, bundle.text
                time.sleep(0.1)
        receipt = Bundle.from_json(bundle.text).receipt
        check_inclusion(receipt)
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
    finally:
        err = _stop(again)
    assert "reusing the contracts" in err
