"""Slow-request attack on the anchor service, on this machine. Prints figures; asserts nothing.

    python scripts/slow_attack.py                     # 20,000 slow connections for 40 s
    python scripts/slow_attack.py --connections 2000 --duration 15

The service runs as its own process (``anchor-service serve``, default limits: 10 s to send a
request head, 30 s for a body, 1,000 connections) against a real anvil node. Attack processes
on loopback hold ``--connections`` connections between them, opening a new one for each one
the service closes: most send a request head that never ends, ``--slow-bodies`` a complete
head and a body that never ends, and ``--slow-readers`` pipeline requests for megabytes of
answers (the API page's script) and never read them. Meanwhile this process asks ``/healthz``
twice a second, submits one credential and waits for its anchor, and samples the service's
open file descriptors, memory (RSS) and log size.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import cast

import httpx

from localchain import AnvilChain
from testkit.net import wait_until_up
from testkit.processes import prepare
from testkit.world import build_world

HEAD = b"POST /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
# About 1.5 MB an answer, four of them pipelined: far more than the socket buffers hold.
NEVER_READ = b"GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 4
TCP_ESTABLISHED = 1


def _raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class Target:
    """The attacked service."""

    url: str
    port: int
    token: str
    pid: int
    log: Path


@dataclass(frozen=True)
class Share:
    """One attack process's part: ``count`` connections, ``slow_bodies`` of them with a slow
    body and ``slow_readers`` that never read, held for ``duration`` seconds."""

    count: int
    slow_bodies: int
    slow_readers: int
    duration: float


def _open(port: int, payload: bytes, *, reader: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reader:  # a small window, set before the handshake: the answers stall at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    try:
        sock.connect(("127.0.0.1", port))
        sock.sendall(payload)
    except OSError:
        sock.close()
        raise
    return sock


def _still_open(readers: list[socket.socket]) -> tuple[list[socket.socket], int]:
    """The connections the server has neither reset nor closed (found from their TCP state,
    without reading), and how many it has; those are closed here."""
    still = []
    for sock in readers:
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED:
            still.append(sock)
        else:
            sock.close()
    return still, len(readers) - len(still)


def _attack(target: Target, share: Share, results: Queue[dict[str, int]]) -> None:
    """One attack process: hold its share of slow connections until its time is up."""
    _raise_open_files()
    port, count, slow_bodies = target.port, share.count, share.slow_bodies
    body_head = HEAD + (f"Authorization: Bearer {target.token}\r\nContent-Length: 100000"
                        '\r\n\r\n{"credentials": [').encode()
    selector = selectors.DefaultSelector()
    stats = {"opened": 0, "connect_failed": 0, "closed_by_server": 0, "answered": 0,
             "readers_closed_by_server": 0}
    readers: list[socket.socket] = []  # never read: watched by their TCP state instead
    live = 0
    end = time.monotonic() + share.duration
    checked = time.monotonic()
    while time.monotonic() < end:
        for _ in range(min(200, count - live)):
            slot = stats["opened"] % count
            reader = slow_bodies <= slot < slow_bodies + share.slow_readers
            payload = body_head if slot < slow_bodies else NEVER_READ if reader else HEAD
            try:
                sock = _open(port, payload, reader=reader)
            except OSError:
                stats["connect_failed"] += 1
                continue
            stats["opened"] += 1
            live += 1
            if reader:
                readers.append(sock)
                continue
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        if time.monotonic() - checked >= 1:
            checked = time.monotonic()
            readers, closed = _still_open(readers)
            stats["readers_closed_by_server"] += closed
            live -= closed
        for key, _ in selector.select(timeout=0.01 if live < count else 0.2):
            sock = cast(socket.socket, key.fileobj)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                stats["answered"] += 1  # a 408 (or 429): the close follows
                continue
            selector.unregister(sock)
            sock.close()
            stats["closed_by_server"] += 1
            live -= 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    for sock in readers:
        sock.close()
    results.put(stats)


def _service(data: Path, chain: AnvilChain) -> tuple[subprocess.Popen[bytes], Target]:
    env, port, _, _, token = prepare(build_world(chain), data)
    env.update({"MICROCRED_BATCH_MAX_AGE": "1", "MICROCRED_LOG_JSON": "true"})
    log = data / "service.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "anchor_service", "serve"], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/healthz", process)
    return process, Target(url, port, token, process.pid, log)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--slow-bodies", type=int, default=2_000,
                        help="how many of them send a complete head and a slow body")
    parser.add_argument("--slow-readers", type=int, default=2_000,
                        help="how many of them pipeline requests for large answers and never "
                             "read")
    parser.add_argument("--workers", type=int, default=4, help="attack processes")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of attack")
    args = parser.parse_args()
    print(f"open-files limit of this process: {_raise_open_files()}")

    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        process, target = _service(Path(tmp), chain)
        pid, log, url = process.pid, target.log, target.url
        try:
            idle_fds, idle_log = _fds(pid), log.stat().st_size
            print(f"service up: {idle_fds} open fds, RSS {_rss_mib(pid):.0f} MiB, log "
                  f"{idle_log} bytes")
            results: Queue[dict[str, int]] = multiprocessing.Queue()
            share = Share(args.connections // args.workers, args.slow_bodies // args.workers,
                          args.slow_readers // args.workers, args.duration)
            workers = [multiprocessing.Process(target=_attack, args=(target, share, results))
                       for _ in range(args.workers)]
            started = time.monotonic()
            for worker in workers:
                worker.start()
            _watch(target, started, args.duration)
            stats = [results.get(timeout=120) for _ in workers]
            for worker in workers:
                worker.join(60)
            totals = {k: sum(s[k] for s in stats) for k in stats[0]}
            print(f"attack: {totals}")
            time.sleep(1)
            print(f"after the attack: {_fds(pid)} open fds, RSS {_rss_mib(pid):.0f} MiB, "
                  f"log {log.stat().st_size} bytes, "
                  f"/healthz {httpx.get(f'{url}/healthz', timeout=10).status_code}")
        finally:
            process.terminate()
            process.wait(30)
        print("the service's log, its warnings and errors:")
        for line in log.read_text(encoding="utf-8").splitlines():
            if " WARNING " in line or " ERROR " in line or '"level": "warning"' in line or (
                    '"level": "error"' in line):
                print("  " + line[:300])


def _watch(target: Target, started: float, duration: float) -> None:
    """Ask /healthz twice a second, submit one credential after 5 s and wait for its anchor;
    print a line every 2 s and a summary."""
    url, pid, log = target.url, target.pid, target.log
    auth = {"Authorization": f"Bearer {target.token}"}
    latencies: list[float] = []
    failures: dict[str, int] = {}
    peak_fds = 0
    peak_rss = 0.0
    public_id: str | None = None
    submitted_at = anchored_after = None
    last_print = 0.0
    while (now := time.monotonic()) - started < duration:
        elapsed = now - started
        t0 = time.monotonic()
        try:
            status = httpx.get(f"{url}/healthz", timeout=10).status_code
            if status == 200:
                latencies.append(time.monotonic() - t0)
            else:
                failures[str(status)] = failures.get(str(status), 0) + 1
        except httpx.HTTPError as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
        peak_fds = max(peak_fds, fds := _fds(pid))
        peak_rss = max(peak_rss, _rss_mib(pid))
        try:
            if public_id is None and elapsed > 5:
                answer = httpx.post(f"{url}/v1/credentials", headers=auth, timeout=10,
                                    json={"credentials": [{"id": "urn:slow-attack:probe"}]})
                if answer.status_code == 202:
                    public_id = answer.json()["accepted"][0]["id"]
                    submitted_at = time.monotonic()
            elif public_id is not None and anchored_after is None:
                state = httpx.get(f"{url}/v1/credentials/{public_id}", headers=auth,
                                  timeout=10).json()["state"]
                if state == "anchored":
                    anchored_after = time.monotonic() - (submitted_at or 0.0)
        except httpx.HTTPError as exc:
            failures[f"api {type(exc).__name__}"] = failures.get(
                f"api {type(exc).__name__}", 0) + 1
        if now - last_print >= 2:
            last_print = now
            recent = latencies[-4:]
            print(f"t={elapsed:5.1f}s fds={fds:5d} log={log.stat().st_size:8d} B "
                  f"healthz last={1000 * recent[-1] if recent else float('nan'):7.1f} ms "
                  f"ok={len(latencies)} failed={sum(failures.values())}", flush=True)
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) if ordered else float("nan")
    p99 = ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan")
    print(f"/healthz during the attack: {len(ordered)} answered 200, p50 {1000 * p50:.1f} ms, "
          f"p99 {1000 * p99:.1f} ms, max {1000 * max(ordered, default=float('nan')):.1f} ms; "
          f"failures {failures or 'none'}")
    print(f"peak open fds of the service: {peak_fds}; peak RSS {peak_rss:.0f} MiB")
    print(f"log size after the attack: {log.stat().st_size} bytes")
    print("credential submitted during the attack: " + (
        f"anchored {anchored_after:.1f} s after it was accepted" if anchored_after is not None
        else "accepted" if public_id else "not accepted") + " (batch max age 1 s)")


if __name__ == "__main__":
    main()
