"""The bounded load run (scripts/load_test.py) as part of the suite: 50 concurrent clients on
loopback, zero errors, nothing lost. CI runs the full 60 s; a local run 10 s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = "60" if os.environ.get("CI") else "10"


def test_fifty_clients_get_no_errors_and_lose_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load_test.py"), "--duration", SECONDS,
         "--clients", "50"], capture_output=True, text=True, timeout=600, check=False)
    print(result.stdout)  # the figures, shown with pytest -s or on failure
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "errors: 0" in result.stdout
    assert "anchored exactly once, receipt verified: yes" in result.stdout
