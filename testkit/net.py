"""Network helpers shared by the tests and the benchmark scripts that run real processes and
servers."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx

from verifier.merkle import verify_inclusion
from verifier.receipt import Receipt

__all__ = ["check_inclusion", "free_port", "wait_until_up"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str] | subprocess.Popen[bytes] | None = None,
                  *, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 2xx; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode} before {url} "
                                 "answered")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def check_inclusion(receipt: Receipt) -> None:
    """The receipt's own audit path leads from its leaf to its root (raises otherwise)."""
    verify_inclusion(receipt.leaf_input, receipt.leaf_index, receipt.tree_size,
                     list(receipt.audit_path), receipt.root)
