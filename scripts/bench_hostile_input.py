"""Benchmark of hostile JSON documents against the strict parsers. Prints figures; asserts
nothing.

    python scripts/bench_hostile_input.py              # 10 MiB documents
    python scripts/bench_hostile_input.py --mib 1      # smaller, for a smoke test

Each document goes through parse_credential (parse_json_object, then the JCS check) and, as
a bundle (the document where a bundle carries its credential), through Bundle.from_json:
the paths of POST /v1/credentials, POST /v1/verify and the verify-credential CLI. Every
document is either rejected or parsed; the time is the wall time of one call (best of
--repeat), with the outcome. The target is under 1 s for a 10 MiB document.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from verifier.credential import parse_credential
from verifier.errors import VerifierError
from verifier.receipt import Bundle

ROOT = Path(__file__).resolve().parents[1]
RECEIPT = json.loads(
    (ROOT / "tests/verifier/vectors/receipts/valid-bundle.json").read_text("utf-8"))["receipt"]


def _documents(size: int) -> dict[str, str]:
    """Each document as the text of a credential (the value a bundle would carry)."""
    return {
        # Escaped quotes among brackets inside a string that never ends.
        "escaped quotes among brackets": '{"x": "' + '\\"[{' * (size // 4),
        # Brackets and escaped quotes alone, no string ever opened properly.
        "brackets and escaped quotes": '{\\"\\"' * (size // 5),
        "deep nesting": '{"a":' * (size // 5),
        "deep arrays": "[" * size,
        "brackets inside strings": '{"s": [' + ",".join(
            ['"' + "[{" * 40 + '"'] * (size // 83)) + "]}",
        "backslashes": '{"s": "' + "\\" * ((size - 9) // 2 * 2) + '"}',
        "escaped quotes in a valid string": '{"s": "' + '\\"' * (size // 2 - 5) + '"}',
        "huge integer": '{"n": ' + "9" * (size - 8) + "}",
        "huge float": '{"n": 1.' + "0" * (size - 10) + "}",
        # Not hostile by shape, but the most values per byte: the cost is the parse itself.
        "many small arrays": '{"a": [' + "[]," * (size // 3 - 4) + "[]]}",
    }


def _bundle(credential_text: str) -> str:
    return ('{"format": "microcred-anchor-bundle", "version": 1, "receipt": '
            + json.dumps(RECEIPT) + ', "credential": ' + credential_text + "}")


def _timed(call: Callable[[], object], repeat: int) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            call()
            outcome = "parsed"
        except VerifierError as exc:
            outcome = "rejected: " + str(exc)[:70]
        best = min(best, time.perf_counter() - started)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=float, default=10.0, help="document size (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many (default 3)")
    args = parser.parse_args()
    size = int(args.mib * 1024 * 1024)
    print(f"documents of {size:,} bytes; best of {args.repeat}")
    print(f"{'document':<34} {'parse_credential':>16} {'Bundle.from_json':>16}  outcome")
    for name, text in _documents(size).items():
        data = text.encode("utf-8")
        bundle = _bundle(text).encode("utf-8")
        credential_time, outcome = _timed(partial(parse_credential, data), args.repeat)
        bundle_time, _ = _timed(partial(Bundle.from_json, bundle), args.repeat)
        print(f"{name:<34} {credential_time:>14.3f} s {bundle_time:>14.3f} s  {outcome}")


if __name__ == "__main__":
    main()
