"""Benchmark of POST /v1/verify over real HTTP, on this machine. Prints figures; asserts
nothing.

    python scripts/bench_verify_http.py              # 10 s per load phase
    python scripts/bench_verify_http.py --seconds 3  # shorter
    python scripts/bench_verify_http.py --workers 1  # one service process, no supervisor

The service runs as its own processes (`anchor-service serve`, SQLite, one worker per CPU
unless ``--workers`` says otherwise, as the stack runs) against a real anvil node, with the
public rate limit off and its default chain-reading settings (each verification judged at a
chain head seen after its request arrived); wrk (Debian package `wrk`, installed by
`scripts/setup.sh --tests`) is the client. Figures, each measured in this one run:
  1. verifications per second of one valid bundle with 16 connections (after ``--warmup``
     seconds of the same load, default 3, printed and not counted), p50 and p99 latency
     (target >= 1,500/s with 2 workers), beside the figure before the shared reorg-aware
     cache (712/s with one process, p50 21 ms) as a ratio, and GET /healthz under the same
     load for comparison;
  2. the service's memory (RSS, and its peak) for a maximal verification request (a body of
     the verification limit, 1 MiB, made of the smallest JSON values), for 16 of them at
     once, and for a 64 MiB body (refused with 413). With several workers both are summed
     over the worker processes (the supervisor serves nothing); the summed peak is an upper
     bound, as the workers need not peak at the same moment.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from anchor_service.samples import make_credential
from localchain import AnvilChain
from testkit.net import wait_until_up
from testkit.processes import prepare, serving_pids
from testkit.world import build_world
from testkit.wrk import CONNECTIONS, wrk, wrk_missing

VERIFY_LIMIT = 2**20  # the default verify_max_body_bytes
#: POST /v1/verify before the shared, reorg-aware cache and several workers (a96b149, one
#: process, a quiet 2-core machine): verifications/s and p50 (ms).
BEFORE_RATE, BEFORE_P50 = 712.0, 21.0


def start_service(data: Path, chain: AnvilChain,
                  workers: int = 0) -> tuple[subprocess.Popen[bytes], str, str]:
    """The service for a fresh deployment on ``chain`` with ``workers`` worker processes
    (0: one per CPU): its process, base URL and an issuer token."""
    env, port, _, _, token = prepare(build_world(chain), data)
    env["MICROCRED_WORKERS"] = str(workers)
    # The load comes from one address: without these, 50 requests/s is the ceiling and 4 of
    # the connections' verifications at a time are let in.
    env.update({"MICROCRED_LOG_JSON": "true", "MICROCRED_PUBLIC_RATE_LIMIT": "0",
                "MICROCRED_VERIFY_PER_CLIENT": "16"})
    process = subprocess.Popen([sys.executable, "-m", "anchor_service", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/healthz", process)
    return process, url, token


def issue_bundle(url: str, token: str) -> bytes:
    """One credential submitted, anchored, and its bundle fetched."""
    credential = make_credential(1, id_prefix="urn:bench:verify", validFrom="2026-01-01T00:00:00Z",
                                 subject={"name": "Zoë", "learningScope": "non-formal"})
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        answer = http.post("/v1/credentials", json={"credentials": [credential]})
        answer.raise_for_status()
        public_id = answer.json()["accepted"][0]["id"]
        deadline = time.monotonic() + 60
        while http.get(f"/v1/credentials/{public_id}").json()["state"] != "anchored":
            if time.monotonic() > deadline:
                raise SystemExit("the credential was not anchored within 60 s")
            time.sleep(0.1)
        bundle = http.get(f"/v1/credentials/{public_id}/bundle")
        bundle.raise_for_status()
        return bundle.content


def post_script(directory: Path, body: bytes) -> Path:
    """A wrk Lua script that POSTs ``body`` as JSON."""
    (directory / "bundle.json").write_bytes(body)
    script = directory / "post.lua"
    script.write_text(
        f'local f = io.open("{directory / "bundle.json"}", "rb")\n'
        "wrk.body = f:read(\"*a\")\nf:close()\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n',
        encoding="utf-8")
    return script


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) in KiB of the service whose process is ``pid`` (Linux /proc), summed
    over the processes that serve (:func:`serving_pids`)."""
    rss = peak = 0
    for serving in serving_pids(pid):
        try:
            status = Path(f"/proc/{serving}/status").read_text(encoding="utf-8")
        except OSError:
            continue  # a worker that ended since it was listed
        rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        peak += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss, peak


def maximal_body() -> bytes:
    """A bundle-shaped document of exactly the verification limit whose credential is made
    of the smallest JSON values (the most parsed objects per byte)."""
    head = b'{"format":"microcred-anchor-bundle","version":1,"credential":{"a":['
    tail = b'0]},"receipt":{}}'
    count = (VERIFY_LIMIT - len(head) - len(tail)) // 2
    body = head + b"0," * count + tail
    return body + b" " * (VERIFY_LIMIT - len(body))


def send_declared(url: str, size: int) -> bytes:
    """A verification request declaring ``size`` bytes, sent whole (unless refused early):
    the start of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(f"POST /v1/verify HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                           f"application/json\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b" " * 2**20
        try:
            for _ in range(size // len(chunk)):
                connection.sendall(chunk)
        except OSError:
            pass  # refused and closed early
        return connection.recv(200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=3.0, metavar="S",
                        help="seconds of the verification load first, not counted (default "
                        "3; 0: none)")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes of the service (default 0: one per CPU, as "
                        "the stack runs; the target is for 2 workers)")
    args = parser.parse_args(argv)
    if wrk_missing("bench_verify_http"):
        return 2
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        data = Path(tmp)
        (data / "service").mkdir()
        process, url, token = start_service(data / "service", chain, args.workers)
        try:
            bundle = issue_bundle(url, token)
            check = httpx.post(f"{url}/v1/verify", content=bundle,
                               headers={"Content-Type": "application/json"}, timeout=60)
            if not check.json().get("valid"):
                print(f"the bundle does not verify: {check.text}", file=sys.stderr)
                return 1
            workers = len(serving_pids(process.pid))
            print(f"service {url} (SQLite, anvil, {workers} worker "
                  f"process{'es' if workers > 1 else ''}), wrk with "
                  f"{CONNECTIONS} connections, {os.cpu_count()} cpus; {args.seconds:g} s per "
                  "phase")
            script = post_script(data, bundle)
            if args.warmup > 0:
                # Each worker's first verifications read the chain and fill its caches: the
                # figures are of the service once it has.
                warm = wrk(f"{url}/v1/verify", args.warmup, script)
                print(f"   (warm-up: {args.warmup:g} s of the same load, {warm['rate']:,.0f}/s, "
                      f"p99 {warm['p99']:.1f} ms, not counted)")
            verify = wrk(f"{url}/v1/verify", args.seconds, script)
            health = wrk(f"{url}/healthz", args.seconds, None)
            print(f"1. POST /v1/verify (one valid bundle, {len(bundle)} bytes): "
                  f"{verify['rate']:,.0f} verifications/s, p50 {verify['p50']:.1f} ms, "
                  f"p99 {verify['p99']:.1f} ms, non-2xx {verify['non_2xx']:.0f} "
                  "(target >= 1,500/s with 2 workers)")
            print(f"   before (a96b149, one process): {BEFORE_RATE:,.0f}/s, p50 "
                  f"{BEFORE_P50:.0f} ms; now x{verify['rate'] / BEFORE_RATE:.2f}")
            print(f"   GET /healthz, same connections: {health['rate']:,.0f}/s, "
                  f"p50 {health['p50']:.1f} ms, p99 {health['p99']:.1f} ms")

            before = memory_kib(process.pid)
            body = maximal_body()
            one = httpx.post(f"{url}/v1/verify", content=body,
                             headers={"Content-Type": "application/json"}, timeout=120)
            after_one = memory_kib(process.pid)
            answers: list[int] = []

            def maximal() -> None:
                answers.append(httpx.post(f"{url}/v1/verify", content=body, timeout=120,
                                          headers={"Content-Type": "application/json"})
                               .status_code)

            threads = [threading.Thread(target=maximal) for _ in range(CONNECTIONS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after_many = memory_kib(process.pid)
            refused = send_declared(url, 64 * 2**20).split(b"\r\n")[0].decode()
            after_huge = memory_kib(process.pid)
            summed = f", summed over {workers} worker processes" if workers > 1 else ""
            print(f"2. memory of the service (RSS / peak RSS{summed}): before "
                  f"{before[0] / 1024:.0f} / {before[1] / 1024:.0f} MiB")
            print(f"   after one maximal request ({len(body):,} bytes, answered "
                  f"{one.status_code}): {after_one[0] / 1024:.0f} / "
                  f"{after_one[1] / 1024:.0f} MiB")
            print(f"   after {CONNECTIONS} at once (answers {sorted(set(answers))}): "
                  f"{after_many[0] / 1024:.0f} / {after_many[1] / 1024:.0f} MiB")
            print(f"   after a 64 MiB body ({refused}): {after_huge[0] / 1024:.0f} / "
                  f"{after_huge[1] / 1024:.0f} MiB")
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
