"""Slow and half-sent requests against a real ``anchor-service serve`` process on anvil: the
open connections stay under the cap, connections that never finish their request head are
closed after the head timeout, slow bodies get 408, and meanwhile ``/healthz`` answers and a
credential is submitted and anchored, with a log that stays small. Loopback only, bounded
loops."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anchor_service.receipts import Receipts
from anchor_service.store import Store
from testkit.net import check_inclusion, wait_until_up
from testkit.processes import ServiceProcess, prepare
from testkit.world import World
from verifier.receipt import Receipt

HALF_SENT = 2_000
CAP = 500
BURST = 128  # connections asyncio accepts in one go before the cap is checked (the backlog)
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
HEAD = b"POST /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(autouse=True)
def open_files() -> None:
    """This test holds thousands of sockets of its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: closed at once
        return True


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Attacker:
    """A thread that keeps opening half-sent connections (at most ``limit``) until stopped."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Attacker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for sock in self.sockets:
            sock.close()

    def wait_for(self, count: int) -> None:
        """Until this thread has opened ``count`` connections."""
        deadline = time.monotonic() + 60
        while len(self.sockets) < count:
            assert time.monotonic() < deadline, f"only {len(self.sockets)} opened"
            time.sleep(0.05)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.sockets) < self.limit:
            with contextlib.suppress(OSError):  # refused or reset under load: go on
                self.sockets.append(_connect(self.port, HEAD))
            self._stop.wait(0.002)


@pytest.fixture
def service(anvil_world: World, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str, Path]]:
    env, port, database, _, token = prepare(anvil_world, tmp_path, signing=False)
    env.update({"MICROCRED_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                "MICROCRED_BODY_TIMEOUT": str(BODY_TIMEOUT),
                "MICROCRED_MAX_CONNECTIONS": str(CAP),
                "MICROCRED_LOG_REPEAT_INTERVAL": "2"})
    process = ServiceProcess(env, port, log=tmp_path / "service.log")
    process.start()
    try:
        yield process, token, Path(database)
    finally:
        process.kill()


def _wait_until_closed_by_server(sockets: list[socket.socket], within: float) -> None:
    deadline = time.monotonic() + within
    open_ones = list(sockets)
    while open_ones:
        assert time.monotonic() < deadline, f"{len(open_ones)} connections still open"
        open_ones = [s for s in open_ones if not _closed_by_server(s)]
        time.sleep(0.2)


def _anchored_under_attack(url: str, token: str, pid: int) -> tuple[str, int]:
    """Submit one credential and wait until it is anchored; its public id, and the most
    descriptors the service held meanwhile."""
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(f"{url}/v1/credentials", timeout=30, headers=auth,
                        json={"credentials": [{"id": "urn:slow-attack:1"}]})
    assert answer.status_code == 202, answer.text
    (public_id,) = (a["id"] for a in answer.json()["accepted"])
    deadline = time.monotonic() + 90
    peak, state = 0, ""
    while state != "anchored":
        assert time.monotonic() < deadline, f"not anchored under attack: {state}"
        peak = max(peak, _open_fds(pid))
        state = httpx.get(f"{url}/v1/credentials/{public_id}", timeout=30,
                          headers=auth).json()["state"]
        time.sleep(0.1)
    return public_id, peak


def test_half_sent_requests_neither_exhaust_the_service_nor_stop_anchoring(
        anvil_world: World, service: tuple[ServiceProcess, str, Path]) -> None:
    process, token, database = service
    assert process.process is not None
    pid, port = process.process.pid, process.port
    url = f"http://127.0.0.1:{port}"
    idle_fds = _open_fds(pid)

    half_sent = [_connect(port, HEAD) for _ in range(HALF_SENT)]
    peak = _open_fds(pid)
    try:
        with Attacker(port, limit=HALF_SENT) as attacker:
            attacker.wait_for(CAP)  # the attack goes on, past the cap, while we are served
            health = [httpx.get(f"{url}/healthz", timeout=30).status_code for _ in range(5)]
            public_id, during = _anchored_under_attack(url, token, pid)
            peak = max(peak, during, _open_fds(pid))
        assert health == [200] * 5
        # Under the cap (give or take a burst or two of accepts that have not reached it
        # yet): 4,000 half-sent requests did not hold 4,000 descriptors.
        assert peak <= idle_fds + CAP + 2 * BURST + 50, (idle_fds, peak)
        # Every one of them is closed by the service: evicted for a newer connection at the
        # cap, or after the head timeout.
        _wait_until_closed_by_server(half_sent, HEADER_TIMEOUT + 60)
    finally:
        for sock in half_sent:
            sock.close()

    store = Store(str(database))
    try:
        receipts = Receipts(store, chain_id=anvil_world.chain.chain_id,
                            contract=anvil_world.anchor.address)
        check_inclusion(Receipt.from_json(receipts.receipt(public_id).to_json()))
    finally:
        store.close()


def test_slow_heads_and_bodies_are_cut_off_with_a_small_log(
        service: tuple[ServiceProcess, str, Path], tmp_path: Path) -> None:
    process, token, _ = service
    port = process.port
    # Under the cap, so that nothing is evicted: only the head timeout closes these.
    half_sent = [_connect(port, HEAD) for _ in range(CAP // 2)]
    slow_head = HEAD + f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
    slow_bodies = [_connect(port, slow_head + b'{"credentials": [') for _ in range(20)]
    try:
        _wait_until_closed_by_server(half_sent, HEADER_TIMEOUT + 60)
        for sock in slow_bodies:  # 408, then closed
            sock.setblocking(True)
            sock.settimeout(BODY_TIMEOUT + 30)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    finally:
        for sock in half_sent + slow_bodies:
            sock.close()

    # Hundreds of connections timed out alike: a few lines, then one summary, written with the
    # next line logged once the interval is over (a garbage request's warning here).
    time.sleep(2.5)
    with _connect(port, b"NOT HTTP\r\n\r\n") as garbage:
        garbage.recv(4096)
    log = (tmp_path / "service.log").read_text(encoding="utf-8")
    assert len(log) < 16 * 1024, len(log)
    _assert_limited(log, "closing a connection that sent no", CAP // 2)
    _assert_limited(log, "request body not received", len(slow_bodies))


def _assert_limited(log: str, message: str, events: int) -> None:
    """``events`` alike lines in ``log`` were written as at most 10 lines per 2 s window, the
    rest counted in summaries. The closings spread over one or more windows, as the machine's
    load decides; every event is accounted for, and only windows that overflowed have a
    summary (of the 10 lines written in them)."""
    written = log.count(f"anchor_service.server: {message}")
    summaries = [int(n) for n in
                 re.findall(rf"suppressed (\d+) similar lines in 2 s: {re.escape(message)}", log)]
    assert summaries, f"no summary of {message!r}: {written} lines written"
    assert written + sum(summaries) == events, (written, summaries)
    assert written <= 10 * (len(summaries) + 1), (written, summaries)


def test_a_low_open_files_limit_lowers_the_cap_and_the_pipeline_keeps_its_descriptors(
        anvil_world: World, tmp_path: Path) -> None:
    """With 512 descriptors in all, a cap of 1,000 would let slow clients take every one
    (EMFILE for the database and the chain node): the service lowers it, keeps room for
    bursts of accepts and half free, and goes on anchoring under 1,500 half-sent
    requests."""
    limit = 512
    env, port, _, _, token = prepare(anvil_world, tmp_path, signing=False)
    env.update({"MICROCRED_MAX_CONNECTIONS": "1000", "MICROCRED_LOG_JSON": "false"})
    log_path = tmp_path / "service.log"
    script = ("import resource, sys; "
              f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit})); "
              "from anchor_service.cli import main; sys.exit(main(['serve']))")
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    half_sent: list[socket.socket] = []
    try:
        wait_until_up(f"{url}/healthz", process)
        half_sent = [_connect(port, HEAD) for _ in range(1_500)]
        with Attacker(port, limit=1_500):
            _, peak = _anchored_under_attack(url, token, process.pid)
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
    finally:
        for sock in half_sent:
            sock.close()
        process.kill()
        process.wait(10)
    assert peak < limit - 64, peak
    text = log_path.read_text(encoding="utf-8")
    assert "max_connections 1000 lowered to 128: the open-files limit is 512" in text
    assert "Too many open files" not in text


# --- Clients that do not read, trickle an answered body, or switch protocols ---

SMALL_CAP = 8
# About 34 KB an answer: 300 of them, pipelined, are far more than the socket buffers hold.
PIPELINED = b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 300


def _guarded_service(world: World, tmp_path: Path, **settings: str) -> ServiceProcess:
    env, port, _, _, _ = prepare(world, tmp_path)
    env.update({"MICROCRED_MAX_CONNECTIONS": str(SMALL_CAP),
                "MICROCRED_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                "MICROCRED_PUBLIC_RATE_LIMIT": "0"})
    env.update({f"MICROCRED_{name.upper()}": value for name, value in settings.items()})
    process = ServiceProcess(env, port, log=tmp_path / "service.log")
    process.start()
    return process


def _still_open(sock: socket.socket) -> bool:
    """Whether the server has neither closed nor reset this connection, found without reading
    from it (reading would let a stalled answer go on)."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state == 1  # TCP_ESTABLISHED; CLOSE_WAIT (FIN) or CLOSE (reset) otherwise


def _non_reader(port: int) -> socket.socket:
    """A connection that asks for megabytes of answers, pipelined, and never reads: the
    service's writes to it stall."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before the handshake
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(PIPELINED)
    return sock


def _healthz_within(url: str, attempts: int) -> list[object]:
    """Ask ``/healthz`` until it answers 200, at most ``attempts`` times; what each try got."""
    outcomes: list[object] = []
    for _ in range(attempts):
        try:
            outcomes.append(httpx.get(f"{url}/healthz", timeout=5).status_code)
        except httpx.TransportError as exc:
            outcomes.append(type(exc).__name__)
        if outcomes[-1] == 200:
            break
        time.sleep(0.3)
    return outcomes


def test_clients_that_never_read_their_answers_neither_hold_the_cap_nor_stay(
        anvil_world: World, tmp_path: Path) -> None:
    """A full cap of connections whose answers nobody reads: a new client is still served
    (a stalled connection is closed for it), and every stalled one is closed once its client
    has read nothing for the body timeout."""
    stall_timeout = 8.0
    process = _guarded_service(anvil_world, tmp_path, body_timeout=str(stall_timeout))
    url = f"http://127.0.0.1:{process.port}"
    readers: list[socket.socket] = []
    try:
        readers = [_non_reader(process.port) for _ in range(SMALL_CAP)]
        time.sleep(1.0)  # the answers fill the socket buffers and the writes stall
        outcomes = _healthz_within(url, attempts=5)  # well within the stall timeout
        assert outcomes[-1] == 200, outcomes
        deadline = time.monotonic() + stall_timeout + 30
        while any(_still_open(sock) for sock in readers):
            assert time.monotonic() < deadline, (
                f"{sum(map(_still_open, readers))} non-reading connections still open")
            time.sleep(0.2)
        log = (tmp_path / "service.log").read_text(encoding="utf-8")
        assert "closing a connection whose client has not read any of its answer" in log
    finally:
        for sock in readers:
            sock.close()
        process.kill()


def test_an_answered_request_cannot_trickle_its_body_for_ever(
        anvil_world: World, tmp_path: Path) -> None:
    """A request refused before its body was read (413 here) announced a body the service
    drops as it comes; a client sending a byte of it now and then is closed after the body
    timeout, instead of holding its connection for ever."""
    body_timeout = 3.0
    process = _guarded_service(anvil_world, tmp_path, body_timeout=str(body_timeout))
    sock = _connect(process.port, HEAD + b"Content-Length: 100000000\r\n\r\n")
    try:
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        deadline = time.monotonic() + body_timeout + 20
        closed = False
        while not closed:
            assert time.monotonic() < deadline, "still open, a byte at a time"
            try:
                sock.sendall(b"x")
            except OSError:  # reset by the server
                closed = True
            closed = closed or not _still_open(sock)
            time.sleep(0.5)
    finally:
        sock.close()
        process.kill()


def test_websocket_upgrades_do_not_fill_the_cap(anvil_world: World, tmp_path: Path) -> None:
    """The service has no WebSocket routes: an upgrade request is plain HTTP to it, and its
    connection is counted, and released, like any other (a connection handed over to a
    WebSocket protocol would stay counted: the cap would fill with closed connections)."""
    process = _guarded_service(anvil_world, tmp_path)
    url = f"http://127.0.0.1:{process.port}"
    upgrade = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    try:
        for _ in range(2 * SMALL_CAP):
            with _connect(process.port, upgrade) as sock:
                answer = sock.recv(4096)
                assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        outcomes = _healthz_within(url, attempts=5)
        assert outcomes[-1] == 200, outcomes
        # One connection at a time: the cap was never reached.
        log = (tmp_path / "service.log").read_text(encoding="utf-8")
        assert "connection cap of" not in log, log[-2000:]
    finally:
        process.kill()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _tcp_memory_bytes() -> int:
    """The kernel's memory for TCP buffers, all sockets of the machine (``/proc/net/sockstat``
    counts it in pages)."""
    for line in Path("/proc/net/sockstat").read_text(encoding="ascii").splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * resource.getpagesize()
    raise AssertionError("no TCP line in /proc/net/sockstat")


def test_clients_that_never_read_hold_little_of_their_answers_in_memory(
        anvil_world: World, tmp_path: Path) -> None:
    """200 clients pipelining requests for the API page's 1.5 MB script and reading nothing:
    the process and the kernel queue a small piece of each answer, not the answers (the
    kernel's send buffers alone, left to grow, would hold about 600 MB)."""
    readers_count = 200
    process = _guarded_service(anvil_world, tmp_path, max_connections=str(2 * readers_count),
                               body_timeout="60")
    assert process.process is not None
    pid = process.process.pid
    big = b"GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 4
    readers: list[socket.socket] = []
    try:
        assert httpx.get(f"http://127.0.0.1:{process.port}/docs/swagger-ui-bundle.js",
                         timeout=30).status_code == 200  # loaded and cached once
        before = _rss_bytes(pid) + _tcp_memory_bytes()
        for _ in range(readers_count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", process.port))
            sock.sendall(big)
            readers.append(sock)
        time.sleep(2.0)  # the answers are being written until every connection stalls
        grown = _rss_bytes(pid) + _tcp_memory_bytes() - before
        assert all(_still_open(sock) for sock in readers)  # under the cap and the timeout
        # About 200 x (a 16 KiB write buffer, a 16 KiB piece, a 256 KiB kernel buffer).
        assert grown < 160 * 2**20, f"RSS and TCP buffers grew by {grown / 2**20:.0f} MiB"
    finally:
        for sock in readers:
            sock.close()
        process.kill()
