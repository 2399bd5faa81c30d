"""The bounded load run (scripts/load_test.py) as part of the suite: 50 concurrent clients on
loopback, zero errors, nothing lost. 60 s with ``--full`` (as .ci/run runs it), 10 s
otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.pytest_plugin import RunSizes

ROOT = Path(__file__).resolve().parents[1]


def test_fifty_clients_get_no_errors_and_lose_nothing(sizes: RunSizes) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load_test.py"),
         "--duration", str(sizes.load_seconds), "--clients", "50"],
        capture_output=True, text=True, timeout=600, check=False)
    print(result.stdout)  # the figures, shown with pytest -s or on failure
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "errors: 0" in result.stdout
    assert "anchored exactly once, receipt verified: yes" in result.stdout
