"""wrk (Debian package ``wrk``, installed by ``scripts/setup.sh --tests``) as the load client of
the HTTP benchmark scripts: one run, its figures parsed from wrk's text output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

__all__ = ["CONNECTIONS", "wrk", "wrk_missing"]

CONNECTIONS: Final = 16


def wrk(url: str, seconds: float, script: Path | None) -> dict[str, float]:
    """wrk with :data:`CONNECTIONS` connections on 2 threads for ``seconds``, with the Lua
    ``script`` if given: requests/s, p50 and p99 (ms), non-2xx answers (a 304 counts as 3xx,
    not as an error). A figure wrk did not print is NaN."""
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds:g}s", "--latency",
               "--timeout", "10s", *(["-s", str(script)] if script is not None else []), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rate": float(rate.group(1)) if rate else float("nan"),
            "p50": _latency(output, "50%"), "p99": _latency(output, "99%"),
            "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0}


def wrk_missing(program: str) -> bool:
    """Whether wrk is missing, said on stderr on behalf of ``program`` if so."""
    if shutil.which("wrk") is not None:
        return False
    print(f"{program}: needs wrk (bash scripts/setup.sh --tests, or apt-get install wrk)",
          file=sys.stderr)
    return True


def _latency(output: str, quantile: str) -> float:
    match = re.search(rf"^\s+{quantile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
