"""``anchor-service stack`` uses every CPU by default: one worker process per CPU (this
process's affinity) serves its port, and SIGTERM ends them all, and anvil, with exit code 0.
A real stack process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anchor_service.workers import worker_count
from testkit.net import free_port, wait_until_up
from testkit.processes import serving_pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(worker_count(0) < 2, reason="one CPU: the stack is one process")
def test_the_stack_serves_with_one_worker_per_cpu(tmp_path: Path) -> None:
    port, chain_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "anchor_service", "stack", "--data-dir", str(tmp_path / "data"),
         "--port", str(port), "--chain-port", str(chain_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
        expected = worker_count(0)
        deadline = time.monotonic() + 30
        while len(workers := serving_pids(process.pid)) != expected:
            assert time.monotonic() < deadline, (workers, expected)
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=90)
        assert process.returncode == 0, err[-3000:]
        assert f"with {expected} worker processes" in err
        assert not any(_alive(pid) for pid in workers)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", chain_port)) != 0  # anvil closed too
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
